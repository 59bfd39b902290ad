"""The built-in `request` regulation as the seed text says it: "a request left unsatisfied for a day passes to the
least-loaded other agent; if it is not worked out within another day, it goes to the head of the department, who
is notified". Unsatisfied is not unanswered: a request answered in time but still open after two working days
reaches the head, and shows as escalated in the head's queue."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from switchboard.bootstrap import Runtime
from tests.integration.test_regulations import HOUR, MONDAY_9, alerts, fetch, form
from tickets.clock import ManualClock
from tickets.models import Agent, Role, Ticket


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MONDAY_9)


async def test_an_answered_but_unresolved_request_reaches_the_head_and_shows_as_escalated(
    runtime: Runtime, client: TestClient[Any, Any], add_agent: Any, clock: ManualClock
) -> None:
    await runtime.service.add_group("Support", head_email="head@example.com")
    head, head_headers = await add_agent("Hanna Head", email="head@example.com", phone="+447700900002",
                                         role=Role.manager, presence="offline")
    anna, _ = await add_agent("Anna", capacity=5)
    await add_agent("Boris", capacity=5)
    ticket = (await runtime.service.ingest(form())).ticket
    holder = await fetch(runtime, Agent, (await fetch(runtime, Ticket, ticket.id)).assignee_id)
    await runtime.service.add_message(holder, ticket.id, "We are looking into it", internal=False)  # in time

    clock.advance(9 * HOUR)  # Monday 18:00: answered, but not worked out
    assert runtime.escalations is not None
    await runtime.escalations.sweep()
    moved = await fetch(runtime, Ticket, ticket.id)
    assert moved.assignee_id != holder.id and moved.escalated_at is None

    clock.advance(24 * HOUR)  # Tuesday 18:00: still not resolved
    await runtime.escalations.sweep()
    escalated = await fetch(runtime, Ticket, ticket.id)
    assert escalated.escalated_at == clock.now() and escalated.escalated_to_id == head.id
    assert ("email", "head@example.com") in await alerts(runtime, ticket.id)
    lines = await runtime.service.queue_lines(head, escalated=True)
    assert [line.ticket.id for line in lines] == [ticket.id]
    # Agents of the group see it escalated too (the head is the one alerted).
    assert [line.ticket.id for line in await runtime.service.queue_lines(anna, escalated=True)] == [ticket.id]
    listed = await (await client.get("/api/v1/tickets", params={"escalated": "true"}, headers=head_headers)).json()
    assert [(t["number"], t["escalated_to"]) for t in listed["items"]] == [(ticket.id, head.id)]
    detail = await (await client.get(f"/api/v1/tickets/{ticket.id}", headers=head_headers)).json()
    assert any(e["kind"] == "escalated" and "Hanna Head" in e["reason"] for e in detail["events"])
