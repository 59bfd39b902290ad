"""IngestMessage against the real store: customer cards, dedupe, threading, routing, audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from switchboard.bootstrap import Runtime
from tickets.clock import ManualClock
from tickets.errors import InvalidInput
from tickets.inbound import Identity, Inbound
from tickets.models import Customer, CustomerIdentity, Event, Message, Presence, Role, Ticket, TicketStatus


def mail(address: str = "client@example.com", text: str = "Hello", **kwargs: object) -> Inbound:
    return Inbound(channel="email", identities=(Identity("email", address),), body_text=text, **kwargs)  # type: ignore[arg-type]


async def count(runtime: Runtime, model: type) -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def test_new_message_becomes_an_assigned_ticket_with_audit(runtime: Runtime, add_agent) -> None:
    alice, _ = await add_agent("Alice")
    result = await runtime.service.ingest(mail(text="Printer on fire", subject="Help", customer_name="Carl"))

    assert result.created and not result.duplicate
    assert result.ticket.status == TicketStatus.open
    assert result.ticket.assignee_id == alice.id
    assert result.ticket.subject == "Help"
    view = await runtime.service.get_ticket(alice, result.ticket.id)
    assert [m.body_text for m in view.messages] == ["Printer on fire"]
    assert view.customer.name == "Carl"
    assert [(e.kind, e.actor) for e in view.events] == [("created", "customer"), ("assigned", "router")]
    assert view.events[1].reason.startswith("least-loaded: 0 open")


async def test_redelivery_returns_the_same_ticket(runtime: Runtime, add_agent) -> None:
    await add_agent()
    first = await runtime.service.ingest(mail(external_id="<m1@example.com>"))
    again = await runtime.service.ingest(mail(external_id="<m1@example.com>", text="changed on the way"))

    assert again.duplicate and not again.created
    assert again.ticket.id == first.ticket.id
    assert await count(runtime, Message) == 1
    assert await count(runtime, Ticket) == 1
    # the same external id on another channel is a different message
    other = await runtime.service.ingest(
        Inbound(channel="webform", identities=(Identity("email", "client@example.com"),), body_text="x",
                external_id="<m1@example.com>")
    )
    assert not other.duplicate and other.ticket.id != first.ticket.id


async def test_one_customer_card_across_identities(runtime: Runtime) -> None:
    first = await runtime.service.ingest(mail("ann@example.com"))
    both = await runtime.service.ingest(
        Inbound(channel="webform",
                identities=(Identity("phone", "+442079460958"), Identity("email", "ann@example.com")),
                body_text="call me")
    )
    by_phone = await runtime.service.ingest(
        Inbound(channel="phone", identities=(Identity("phone", "+442079460958"),), body_text="missed call")
    )

    assert first.ticket.customer_id == both.ticket.customer_id == by_phone.ticket.customer_id
    assert await count(runtime, Customer) == 1
    async with runtime.sessions() as session:
        identities = {tuple(row)
                      for row in await session.execute(select(CustomerIdentity.kind, CustomerIdentity.address))}
    assert identities == {("email", "ann@example.com"), ("phone", "+442079460958")}


async def test_ticket_reference_is_honoured_only_for_its_customer(runtime: Runtime) -> None:
    original = await runtime.service.ingest(mail("owner@example.com"))
    follow_up = await runtime.service.ingest(mail("owner@example.com", ticket_number=original.ticket.id, text="more"))
    stranger = await runtime.service.ingest(mail("mallory@example.com", ticket_number=original.ticket.id,
                                                 text="hijack"))

    assert follow_up.ticket.id == original.ticket.id and not follow_up.created
    assert follow_up.message.thread_reason == f"references ticket #{original.ticket.id}"
    assert stranger.created and stranger.ticket.id != original.ticket.id


async def test_chat_continues_the_open_ticket_within_the_window(runtime: Runtime, clock: ManualClock) -> None:
    window = timedelta(hours=4)

    def chat(text: str) -> Inbound:
        return Inbound(channel="telegram", identities=(Identity("telegram", "42"),), body_text=text,
                       continue_open_within=window)

    first = await runtime.service.ingest(chat("hi"))
    clock.advance(timedelta(hours=1))
    second = await runtime.service.ingest(chat("are you there?"))
    clock.advance(timedelta(hours=5))
    third = await runtime.service.ingest(chat("hello again, next day"))

    assert second.ticket.id == first.ticket.id and not second.created
    assert third.created and third.ticket.id != first.ticket.id


async def test_reply_reopens_resolved_and_closed_starts_linked_ticket(runtime: Runtime, add_agent) -> None:
    agent, _ = await add_agent(role=Role.manager)
    original = await runtime.service.ingest(mail())
    await runtime.service.update_ticket(agent, original.ticket.id, {"status": "resolved"})

    reopened = await runtime.service.ingest(mail(ticket_number=original.ticket.id, text="still broken"))
    assert reopened.ticket.id == original.ticket.id
    assert reopened.ticket.status == TicketStatus.open and reopened.ticket.resolved_at is None
    assert "reopened" in (reopened.message.thread_reason or "")

    await runtime.service.update_ticket(agent, original.ticket.id, {"status": "closed"})
    after_close = await runtime.service.ingest(mail(ticket_number=original.ticket.id, text="new problem"))
    assert after_close.created and after_close.ticket.follows_up_id == original.ticket.id
    assert after_close.message.thread_reason == (
        f"follow-up to closed ticket #{original.ticket.id} (references ticket #{original.ticket.id})"
    )


async def test_least_loaded_with_ties_to_the_agent_idle_longest(
    runtime: Runtime, add_agent, clock: ManualClock
) -> None:
    a, _ = await add_agent("A")
    b, _ = await add_agent("B")
    c, _ = await add_agent("C")
    assignees = []
    for n in range(6):
        clock.advance(timedelta(seconds=1))
        result = await runtime.service.ingest(mail(f"c{n}@example.com"))
        assignees.append(result.ticket.assignee_id)
    # never assigned agents first (in id order), then whoever was assigned longest ago
    assert assignees == [a.id, b.id, c.id, a.id, b.id, c.id]


async def test_capacity_and_presence_are_respected(runtime: Runtime, add_agent) -> None:
    busy, _ = await add_agent("Busy", capacity=1)
    await add_agent("Away", presence=Presence.away)
    first = await runtime.service.ingest(mail("1@example.com"))
    second = await runtime.service.ingest(mail("2@example.com"))

    assert first.ticket.assignee_id == busy.id
    assert second.ticket.status == TicketStatus.new and second.ticket.assignee_id is None
    async with runtime.sessions() as session:
        queued = await session.scalar(select(Event).where(Event.ticket_id == second.ticket.id, Event.kind == "queued"))
    assert queued is not None and queued.reason == "every available agent is at capacity"

    # resolving frees capacity: the waiting ticket is routed in the same transaction
    await runtime.service.update_ticket(busy, first.ticket.id, {"status": "resolved"})
    view = await runtime.service.get_ticket(busy, second.ticket.id)
    assert view.ticket.assignee_id == busy.id and view.ticket.status == TicketStatus.open


async def test_queue_drains_highest_priority_then_oldest_when_an_agent_arrives(
    runtime: Runtime, add_agent, clock: ManualClock
) -> None:
    from tickets.models import Priority

    normal_old = await runtime.service.ingest(mail("a@example.com"))
    clock.advance(timedelta(minutes=1))
    critical = await runtime.service.ingest(mail("b@example.com", priority=Priority.critical))
    clock.advance(timedelta(minutes=1))
    normal_new = await runtime.service.ingest(mail("c@example.com"))
    assert {r.ticket.status for r in (normal_old, critical, normal_new)} == {TicketStatus.new}

    agent, _ = await add_agent("Late", capacity=2)
    order = []
    async with runtime.sessions() as session:
        rows = await session.execute(
            select(Event.ticket_id).where(Event.kind == "assigned").order_by(Event.id)
        )
        order = [ticket_id for (ticket_id,) in rows]
    assert order == [critical.ticket.id, normal_old.ticket.id]
    still_waiting = await runtime.service.get_ticket(agent, normal_new.ticket.id)
    assert still_waiting.ticket.status == TicketStatus.new


async def test_agent_in_another_group_does_not_get_the_ticket(runtime: Runtime, add_agent) -> None:
    await runtime.service.add_group("Sales")
    seller, _ = await add_agent("Seller", groups=["Sales"])
    supporter, _ = await add_agent("Supporter")
    sales = await runtime.service.ingest(mail("buyer@example.com", group="Sales"))
    support = await runtime.service.ingest(mail("user@example.com"))
    unknown_group = await runtime.service.ingest(mail("x@example.com", group="No such group"))

    assert sales.ticket.assignee_id == seller.id
    assert support.ticket.assignee_id == supporter.id
    assert unknown_group.ticket.assignee_id == supporter.id  # falls back to the default group


async def test_message_without_any_address_is_refused(runtime: Runtime) -> None:
    with pytest.raises(InvalidInput) as refused:
        await runtime.service.ingest(Inbound(channel="webform", identities=(), body_text="anonymous"))
    assert "identities" in refused.value.fields
    assert await count(runtime, Ticket) == 0


async def test_html_is_sanitised_before_it_is_stored(runtime: Runtime) -> None:
    result = await runtime.service.ingest(
        mail(body_html='<p onclick="steal()">Hi<script>alert(1)</script> <a href="javascript:x()">link</a></p>')
    )
    assert result.message.body_html is not None
    assert "script" not in result.message.body_html
    assert "onclick" not in result.message.body_html
    assert "javascript:" not in result.message.body_html
    assert "Hi" in result.message.body_html


async def test_follow_up_on_a_queued_ticket_waits_with_it(runtime: Runtime, add_agent) -> None:
    first = await runtime.service.ingest(mail("patient@example.com"))
    again = await runtime.service.ingest(mail("patient@example.com", ticket_number=first.ticket.id, text="hello?"))
    assert again.ticket.id == first.ticket.id and again.ticket.status == TicketStatus.new

    agent, _ = await add_agent(role=Role.manager)
    view = await runtime.service.get_ticket(agent, first.ticket.id)
    assert [e.kind for e in view.events] == ["created", "queued", "message_received", "assigned"]
    assert view.ticket.assignee_id == agent.id
