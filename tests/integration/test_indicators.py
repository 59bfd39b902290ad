"""The head's indicators per agent on the dashboard: tickets and planned contacts in work, mean first-answer and
handling times, protracted tickets and overdue planned contacts, highlighted outside the head's band; with CSV."""

from __future__ import annotations

import io
import re
from csv import reader
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from switchboard.bootstrap import Runtime
from tests.integration.test_console import PASSWORD, form, sign_in
from tickets.actions.plans import NextContact
from tickets.clock import ManualClock
from tickets.models import Role

MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MONDAY)


async def test_the_head_sees_each_agents_work_and_what_is_outside_the_band(
    client: TestClient[Any, Any], runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    mia, _ = await add_agent("Mia", email="mia@example.com", role=Role.manager, presence="offline", language="en")
    await runtime.service.set_password(mia.id, PASSWORD)
    anna, _ = await add_agent("Anna", email="anna@example.com")
    numbers = [(await runtime.service.ingest(form(n))).ticket.id for n in range(3)]
    clock.advance(timedelta(hours=2))
    await runtime.service.add_message(anna, numbers[0], "On it.", internal=False)  # answered 2 h after
    await runtime.service.update_ticket(anna, numbers[0], {"status": "resolved", "outcome": "solved"})
    clock.advance(timedelta(days=4))
    await runtime.service.add_message(anna, numbers[1], "Still on it.", internal=False)  # moved: not protracted
    customer = (await runtime.service.get_ticket(anna, numbers[2])).customer.id
    await runtime.service.record_activity(anna, customer, "call", next_contact=NextContact(
        clock.now() + timedelta(hours=1), "Call back"))
    clock.advance(timedelta(hours=2))  # the planned contact is overdue now

    await sign_in(client, email="mia@example.com")
    page = await (await client.get("/desk/dashboard", params={"band": "0-1"})).text()
    section = re.search(r'id="indicators">(.*?)</section>', page, re.S)
    assert section, page
    row = re.search(r"<tr><td>Anna</td>(.*?)</tr>", section.group(1), re.S)
    assert row
    late = re.search(r'<li data-planned="\d+"><span class="badge late">([^<]*)</span>\s*<strong>Anna</strong> ·\s*'
                     rf'<a href="/desk/customers/{customer}">([^<]*)</a> — Call back', section.group(1))
    assert late and late.group(1) == "1 h", section.group(1)  # her head sees which, and how late
    cells = re.findall(r'<td( class="out-of-band")?>([^<]*)</td>', row.group(1))
    assert [(bool(marked), value) for marked, value in cells] == [
        (True, "2"),  # in work: two, outside 0–1
        (False, "1"),  # one planned contact …
        (True, "1"),  # … overdue
        (False, "50.0"),  # first answers: 2 h and 98 h
        (False, "2.0"),  # handled (resolved) in 2 h
        (True, "1")]  # the third ticket: nothing done for 4 days
    csv = await (await client.get("/desk/dashboard/indicators.csv", params={"stale": "5"})).text()
    rows = list(reader(io.StringIO(csv.removeprefix("\ufeff"))))
    assert rows == [["Agent", "In work", "Planned contacts", "Planned, overdue", "First answer, h (mean)",
                     "Handling, h (mean)", "Protracted"], ["Anna", "2", "1", "1", "50.0", "2.0", "0"]]  # none 5 days
