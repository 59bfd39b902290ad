"""Issue 7's acceptance, tried as a new user would: `switchboard serve` with a regulations file in seconds, the CLI
and HTTP only.

A web-form request left untouched is reassigned to the other agent at +1 unit and the department head gets an
email and an SMS at +2; a critical defect left unprocessed alerts the production manager at the end of the first
business day (a calendar whose working day ends a few seconds from now); answering the client before the first
step stops the ladder; GET on a ticket shows every step and its outcome.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_routing_acceptance import Desk
from tests.integration.test_serve import Serve

UNIT = 4  # seconds
CLOSES_IN = 75  # seconds: when the short working day of the critical defect's calendar ends


def regulations(closing: datetime) -> str:
    return f"""\
calendars:
  short_day:
    timezone: UTC
    hours: "00:00:00-{closing:%H:%M:%S}"
    days: mon-sun
contacts:
  production_manager: {{email: pm@example.com, phone: "+447911123457"}}
regulations:
  - name: critical_defect
    match: {{category: defect, priority: critical}}
    calendar: short_day
    steps:
      - name: day_one
        at: end of business day 1
        unless: processed
        notify: [{{to: production_manager, by: [email, sms]}}]
  - name: request
    steps:
      - name: reassign
        after: {UNIT}s
        unless: processed
        reassign: true
        notify: [{{to: [assignee, previous_assignee], by: email}}]
      - name: head
        after: {UNIT}s
        since: previous
        unless: resolved
        breach: true
        notify: [{{to: group_head, by: [email, sms]}}]
"""


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    # Far enough that serve's start and the set-up commands end before the working day does, also on a loaded
    # two-core machine (at +25 s, and once at +45 s with other work on the machine, a CI run created the defect
    # after closing, and its step moved to tomorrow).
    closing = datetime.now(UTC) + timedelta(seconds=CLOSES_IN)
    if closing.date() != datetime.now(UTC).date():
        pytest.skip("the working day of this test's calendar would end after midnight")
    path = tmp_path / "regulations.yaml"
    path.write_text(regulations(closing))
    server = Serve(tmp_path, {"SWITCHBOARD_HTTP_FORM_RATE_LIMIT": "0", "SWITCHBOARD_REGULATIONS": str(path)})
    server.closing = closing  # type: ignore[attr-defined]
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def until(check: Callable[[], Any], timeout: float = 40) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.25)
    return result


def outcomes(ticket: dict[str, Any]) -> dict[str, str]:
    return {d["step"]: d["outcome"] for d in ticket["deadlines"]}


def test_the_regulations_fire_as_written_and_the_ticket_shows_every_step(serve: Serve) -> None:
    desk = Desk(serve)
    desk.cli("group", "add", "Support", "--head", "max@example.com")
    desk.add_agent("Max", "--role", "manager", "--phone", "+447911123456")
    desk.cli("agent", "set", "max@example.com", "--presence", "offline")
    desk.add_agent("Anna")
    desk.add_agent("Boris")
    desk.cli("rule", "add", "--category", "defect", "--priority", "critical")

    untouched = desk.form(1)
    answered = desk.form(2)
    defect = desk.form(3, category="defect")
    closing: datetime = serve.closing  # type: ignore[attr-defined]
    assert datetime.now(UTC) < closing, "the set-up outlasted the working day: the defect's step is tomorrow's"
    first = desk.holder(untouched)
    assert first in ("Anna", "Boris")

    # Answer the second request at once: its ladder stops before the first step.
    answerer = desk.holder(answered)
    status, _ = desk.api("POST", f"/api/v1/tickets/{answered}/messages", answerer, {"body": "Looking into it"})
    assert status == 201
    shown = desk.ticket(answered)
    assert outcomes(shown) == {"reassign": "met", "head": "cancelled"}

    # +1 unit: reassigned to the other agent; both are told.
    ticket = until(lambda: (t := desk.ticket(untouched)) and outcomes(t)["reassign"] == "fired" and t)
    other = "Boris" if first == "Anna" else "Anna"
    assert desk.holder(untouched) == other
    assert any("reassigned from" in r for r in desk.events(untouched, "sla_step_fired"))
    # +2 units: the head of the department gets an email and an SMS.
    ticket = until(lambda: (t := desk.ticket(untouched)) and outcomes(t)["head"] == "breached" and t)
    steps = {d["step"]: d for d in ticket["deadlines"]}
    assert ticket["regulation"] == "request" and [d["position"] for d in ticket["deadlines"]] == [0, 1]
    for step in steps.values():
        assert step["fired_at"] >= step["due_at"] and step["came_due_unmet"] is True
    assert [e["kind"] for e in ticket["clock"]] == ["started"]

    notifications = desk.cli("notifications", "list", "--ticket", str(untouched))
    lines = notifications.splitlines()
    assert any(" email " in line and "to max@example.com" in line for line in lines), notifications
    assert any(" sms " in line and "to +447911123456" in line for line in lines), notifications
    assert (any("to anna@example.com" in line for line in lines)
            and any("to boris@example.com" in line for line in lines))
    mail = until(lambda: "max@example.com" in (out := desk.cli("mail", "outbox")) and out)
    assert f"[#{untouched}] Breached" in mail  # the email went out (to the mail sink: no relay configured)

    # The critical defect: nobody processed it, and the short working day closes — the production manager is told.
    ticket = until(lambda: (t := desk.ticket(defect)) and outcomes(t).get("day_one") == "fired" and t,
                   timeout=(closing - datetime.now(UTC)).total_seconds() + 40)
    assert ticket["regulation"] == "critical_defect"
    lines = desk.cli("notifications", "list", "--ticket", str(defect)).splitlines()
    assert any(" email " in line and "to pm@example.com" in line for line in lines)
    assert any(" sms " in line and "to +447911123457" in line for line in lines)
    assert outcomes(desk.ticket(answered)) == {"reassign": "met", "head": "cancelled"}  # still stopped
