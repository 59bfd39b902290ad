"""The receipt and its dispatch, on both databases: what a receipt leaves owed, the dispatcher loop completing it in
batches, the clock counting from creation, and the agents' load counters staying equal to what they hold through
every change the API allows."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from switchboard.bootstrap import Runtime
from switchboard.dispatcher import DispatchLoop
from tests.conftest import wait_dispatched
from tickets.actions import receipts
from tickets.clock import Clock, ManualClock
from tickets.inbound import Identity, Inbound
from tickets.models import Agent, ClockEvent, Deadline, Event, Outbox, Role, Ticket, TicketStatus


@pytest.fixture
def clock() -> Clock:
    return ManualClock()


def form(n: int, **changes: Any) -> Inbound:
    return Inbound(channel="webform", identities=(Identity("email", f"client{n}@example.com"),),
                   body_text=f"Problem {n}", subject=f"Problem {n}", customer_name=f"Client {n}", **changes)


async def rows(runtime: Runtime, model: Any, *where: Any) -> list[Any]:
    async with runtime.sessions() as session:
        return list(await session.scalars(select(model).where(*where)))


async def test_a_receipt_leaves_routing_and_the_plan_owed_and_the_clock_counts_from_creation(
    runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    anna, _ = await add_agent("Anna")
    runtime.service.wake_dispatcher = lambda: None  # a dispatcher runs elsewhere: the receipt only stores
    received = (await runtime.service.ingest(form(1))).ticket
    [owed] = await rows(runtime, Ticket, Ticket.id == received.id)
    assert (owed.status, owed.assignee_id, owed.regulation) == (TicketStatus.new, None, None)
    assert owed.dispatch_owed_at == clock.now() and owed.route_owed
    assert await rows(runtime, Deadline) == [] and await rows(runtime, Event, Event.kind == "assigned") == []
    assert [o.kind for o in await rows(runtime, Outbox)] == ["ack"]  # what the client is told is in the receipt

    runtime.service.wake_dispatcher = None
    control = (await runtime.service.ingest(form(2))).ticket  # same moment, dispatched at once
    clock.advance(timedelta(hours=3))
    done = await runtime.service.dispatch_owed()
    assert [t.id for t in done.tickets] == [received.id] and done.assigned == 1

    [ticket] = await rows(runtime, Ticket, Ticket.id == received.id)
    assert (ticket.status, ticket.assignee_id, ticket.dispatch_owed_at, ticket.route_owed) == (
        TicketStatus.open, anna.id, None, False)
    [started] = await rows(runtime, ClockEvent, ClockEvent.ticket_id == ticket.id, ClockEvent.kind == "started")
    assert started.created_at == ticket.created_at
    due = {d.step: d.due_at for d in await rows(runtime, Deadline, Deadline.ticket_id == ticket.id)}
    assert due and due == {d.step: d.due_at for d in await rows(runtime, Deadline, Deadline.ticket_id == control.id)}
    assert (await runtime.service.dispatch_owed()).tickets == []  # nothing owed: a second run does nothing


async def test_a_dispatcher_that_read_its_clock_before_the_receipt_committed_still_hands_over_its_notice(
    runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    """A dispatcher in another process reads the time, then selects the owed tickets: a receipt committed in between
    dates its acknowledgement after that time. The dispatcher left it out (only rows due by its time), and the
    client's acknowledgement waited for the minute's sweep."""
    await add_agent("Anna")
    runtime.service.wake_dispatcher = lambda: None  # the receipt only stores; the dispatcher is elsewhere
    received = (await runtime.service.ingest(form(1))).ticket
    [ack] = await rows(runtime, Outbox, Outbox.ticket_id == received.id)
    elsewhere = dataclasses.replace(runtime.service.deps, clock=ManualClock(clock.now() - timedelta(milliseconds=5)))
    done = await receipts.dispatch_owed(elsewhere)
    assert [t.id for t in done.tickets] == [received.id]
    assert done.outbox == [ack.id]


async def test_a_follow_up_to_a_ticket_waiting_in_its_queue_leaves_it_there(runtime: Runtime, add_agent: Any) -> None:
    await add_agent("Anna", presence="offline")
    first = await runtime.service.ingest(form(1, external_id="m1"))
    again = await runtime.service.ingest(form(1, external_id="m2", ticket_number=first.ticket.id))
    assert again.ticket.id == first.ticket.id and not again.created
    queued = await rows(runtime, Event, Event.ticket_id == first.ticket.id, Event.kind == "queued")
    assert len(queued) == 1  # routed (and queued) once; the follow-up waits with it, for the drain
    assert [t.dispatch_owed_at for t in await rows(runtime, Ticket)] == [None]


async def test_the_loop_dispatches_concurrent_receipts_in_batches_each_once_with_even_loads(
    runtime: Runtime, add_agent: Any
) -> None:
    agents = [(await add_agent(f"Agent {n}", capacity=100))[0] for n in range(4)]
    loop = DispatchLoop(runtime.service, sweep_seconds=0.5)
    await loop.start()
    try:
        results = await asyncio.gather(*(runtime.service.ingest(form(n)) for n in range(60)))
        assert all(r.created and r.ticket.status == TicketStatus.new for r in results)  # answered after the receipt
        await wait_dispatched(runtime)
    finally:
        await loop.stop()
    tickets = await rows(runtime, Ticket)
    assert len(tickets) == 60 and all(t.status == TicketStatus.open for t in tickets)
    held = Counter(t.assignee_id for t in tickets)
    assert set(held) == {a.id for a in agents} and max(held.values()) - min(held.values()) <= 1, held
    assigned = Counter(e.ticket_id for e in await rows(runtime, Event, Event.kind == "assigned"))
    notices = Counter(o.ticket_id for o in await rows(runtime, Outbox, Outbox.kind == "assigned"))
    assert assigned == notices == Counter({t.id: 1 for t in tickets})
    assert await runtime.service.recount_loads() == 0


async def test_receipts_left_owed_by_a_stopped_process_are_dispatched_when_a_loop_starts(
    runtime: Runtime, add_agent: Any
) -> None:
    anna, _ = await add_agent("Anna")
    runtime.service.wake_dispatcher = lambda: None
    for n in range(5):
        await runtime.service.ingest(form(n))
    loop = DispatchLoop(runtime.service, sweep_seconds=60)  # no sweep within the test: its start alone does it
    await loop.start()
    try:
        await wait_dispatched(runtime, timeout=10)
    finally:
        await loop.stop()
    assert {t.assignee_id for t in await rows(runtime, Ticket)} == {anna.id}


async def load_counters(runtime: Runtime) -> dict[int, tuple[int, int]]:
    async with runtime.sessions() as session:
        return {a: (n, w) for a, n, w in await session.execute(select(Agent.id, Agent.load_open, Agent.load_weight))}


async def counted_loads(runtime: Runtime) -> dict[int, tuple[int, int]]:
    """What the agents hold, counted from their tickets with the router's weights."""
    weights = runtime.service.deps.router.weights  # the configured router's, to count with
    held: dict[int, tuple[int, int]] = {}
    async with runtime.sessions() as session:
        agents = list(await session.scalars(select(Agent.id)))
        rows_ = await session.execute(select(Ticket.assignee_id, Ticket.channel, Ticket.priority, func.count())
                                      .where(Ticket.status.in_((TicketStatus.open, TicketStatus.pending)))
                                      .group_by(Ticket.assignee_id, Ticket.channel, Ticket.priority))
        for agent, channel, priority, count in rows_:
            n, w = held.get(agent, (0, 0))
            held[agent] = (n + count, w + count * weights.milli(channel, str(priority)))
    return {agent: held.get(agent, (0, 0)) for agent in agents}


async def test_load_counters_equal_what_each_agent_holds_after_every_change_the_api_allows(
    runtime: Runtime, client: TestClient[Any, Any], add_agent: Any, clock: ManualClock
) -> None:
    anna, anna_h = await add_agent("Anna", capacity=50)
    boris, boris_h = await add_agent("Boris", capacity=50)
    await add_agent("Vera", capacity=50)
    _, manager = await add_agent("Mia", role=Role.manager, presence="offline")
    await runtime.service.add_group("Sales")
    numbers = [(await runtime.service.ingest(form(n, external_id=f"f{n}"))).ticket.id for n in range(12)]
    telegram = await runtime.service.ingest(Inbound(channel="telegram", body_text="hi", external_id="tg1",
                                                    identities=(Identity("telegram", "777"),)))

    async def patch(number: int, headers: dict[str, str], **changes: Any) -> None:
        response = await client.patch(f"/api/v1/tickets/{number}", json=changes, headers=headers)
        assert response.status == 200, await response.text()

    n = iter(numbers)
    await patch(next(n), anna_h, assignee=anna.id)                     # taken
    await patch(next(n), manager, assignee=boris.id)                   # transferred
    await patch(next(n), manager, assignee=None)                       # returned to the queue (and routed again)
    await patch(next(n), anna_h, status="pending")
    await patch(next(n), manager, status="resolved")
    await patch(next(n), manager, status="closed")
    await patch(next(n), manager, priority="critical")                 # weighs more
    await patch(next(n), manager, priority="low", category="billing")
    await patch(next(n), manager, group="Sales")                       # nobody in Sales: back to a queue
    reopened = next(n)
    await patch(reopened, manager, status="resolved")
    await runtime.service.ingest(form(9, external_id="f9-again", ticket_number=reopened))  # the client reopens it
    merged, into = [(await runtime.service.ingest(form(50, external_id=f"same-client-{k}"))).ticket.id for k in "ab"]
    response = await client.post(f"/api/v1/tickets/{merged}/merge", json={"into": into}, headers=manager)
    assert response.status == 200, await response.text()
    await patch(telegram.ticket.id, manager, priority="high")          # a chat weighs 2, high 1.5
    response = await client.patch("/api/v1/agents/me", json={"presence": "offline"}, headers=boris_h)
    assert response.status == 200  # Boris's untouched tickets return to the queue and go to the others
    clock.advance(timedelta(days=3))
    assert runtime.escalations is not None
    await runtime.escalations.sweep()                                  # the regulation's steps reassign and alert

    counters = await load_counters(runtime)
    assert counters == await counted_loads(runtime)
    assert any(weight not in (0, 1000 * count) for count, weight in counters.values())  # weights took part
    assert await runtime.service.recount_loads() == 0
