"""Email threading rules in the store: Message-ID chains, who may join a ticket, auto-replies and bounces."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from switchboard.bootstrap import Runtime
from tickets.errors import NotStored
from tickets.inbound import Identity, Inbound
from tickets.models import Customer, DeliveryStatus, Message, Role, Ticket, TicketStatus


def mail(sender: str, text: str = "Hello", *, message_id: str, **kwargs: object) -> Inbound:
    return Inbound(channel="email", identities=(Identity("email", sender),), body_text=text, external_id=message_id,
                   subject="Printer", **kwargs)  # type: ignore[arg-type]


async def tickets_count(runtime: Runtime) -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Ticket)) or 0)


async def outbound_with_id(runtime: Runtime, manager, number: int, message_id: str) -> Message:
    """An agent's reply as the notifier leaves it: an outbound message carrying our Message-ID."""
    reply = await runtime.service.add_message(manager, number, "We are on it", internal=False)
    async with runtime.sessions.begin() as session:
        await session.execute(update(Message).where(Message.id == reply.id).values(external_id=message_id))
    return reply


async def test_reply_by_message_id_joins_and_says_why(runtime: Runtime, add_agent) -> None:
    manager, _ = await add_agent(role=Role.manager)
    first = await runtime.service.ingest(mail("ann@example.com", message_id="<a1@example.com>"))
    await outbound_with_id(runtime, manager, first.ticket.id, "<r1@support.example>")

    reply = await runtime.service.ingest(
        mail("ann@example.com", "thanks", message_id="<a2@example.com>",
             thread_ids=("<r1@support.example>", "<a1@example.com>"))
    )
    assert reply.ticket.id == first.ticket.id and not reply.created
    assert reply.message.thread_reason == f"replies to <r1@support.example> of ticket #{first.ticket.id}"


async def test_someone_else_replying_is_kept_apart_unless_on_the_ticket(runtime: Runtime, add_agent) -> None:
    manager, _ = await add_agent(role=Role.manager)
    first = await runtime.service.ingest(
        mail("ann@example.com", message_id="<a1@example.com>", participants=("colleague@example.com",))
    )
    await outbound_with_id(runtime, manager, first.ticket.id, "<r1@support.example>")

    stranger = await runtime.service.ingest(
        mail("bob@elsewhere.example", "me too", message_id="<b1@elsewhere.example>",
             thread_ids=("<r1@support.example>",))
    )
    assert stranger.created and stranger.ticket.id != first.ticket.id
    assert "not on it" in (stranger.message.thread_reason or "")

    colleague = await runtime.service.ingest(
        mail("colleague@example.com", "adding details", message_id="<c1@example.com>",
             thread_ids=("<r1@support.example>",))
    )
    assert colleague.ticket.id == first.ticket.id


async def test_ticket_token_by_a_stranger_does_not_hijack(runtime: Runtime) -> None:
    first = await runtime.service.ingest(mail("ann@example.com", message_id="<a1@example.com>"))
    guess = await runtime.service.ingest(
        mail("mallory@example.com", message_id="<m1@example.com>", ticket_number=first.ticket.id)
    )
    assert guess.created and guess.ticket.id != first.ticket.id
    assert guess.message.thread_reason == (
        f"new email message; names ticket #{first.ticket.id} but the sender is not its customer"
    )


async def test_one_mail_to_two_support_addresses_is_one_ticket(runtime: Runtime) -> None:
    to_support = await runtime.service.ingest(mail("ann@example.com", message_id="<same@example.com>", group="Support"))
    to_sales = await runtime.service.ingest(mail("ann@example.com", message_id="<same@example.com>", group="Sales"))
    assert to_sales.duplicate and to_sales.ticket.id == to_support.ticket.id
    assert await tickets_count(runtime) == 1


async def test_auto_reply_never_opens_or_reopens(runtime: Runtime, add_agent) -> None:
    manager, _ = await add_agent(role=Role.manager)
    with pytest.raises(NotStored):
        await runtime.service.ingest(mail("away@example.com", "I am out", message_id="<oof1@example.com>",
                                          auto_reply="Auto-Submitted: auto-replied"))
    assert await tickets_count(runtime) == 0

    first = await runtime.service.ingest(mail("ann@example.com", message_id="<a1@example.com>"))
    await outbound_with_id(runtime, manager, first.ticket.id, "<r1@support.example>")
    await runtime.service.update_ticket(manager, first.ticket.id, {"status": "resolved"})
    oof = await runtime.service.ingest(mail("ann@example.com", "on holiday", message_id="<oof2@example.com>",
                                            thread_ids=("<r1@support.example>",), auto_reply="X-Autoreply"))
    assert oof.ticket.id == first.ticket.id
    assert oof.ticket.status == TicketStatus.resolved
    assert oof.message.meta["auto_reply"] == "X-Autoreply"


async def test_bounce_marks_the_outbound_message_failed(runtime: Runtime, add_agent) -> None:
    manager, _ = await add_agent(role=Role.manager)
    first = await runtime.service.ingest(mail("ann@example.com", message_id="<a1@example.com>"))
    reply = await outbound_with_id(runtime, manager, first.ticket.id, "<r1@support.example>")

    report = await runtime.service.ingest(
        mail("mailer-daemon@mx.example.com", "Delivery failed", message_id="<dsn1@mx.example.com>",
             bounce_of="<r1@support.example>", bounce_reason="5.1.1 user unknown")
    )
    assert report.ticket.id == first.ticket.id and not report.created
    view = await runtime.service.get_ticket(manager, first.ticket.id)
    failed = next(m for m in view.messages if m.id == reply.id)
    assert failed.delivery_status == DeliveryStatus.failed and failed.delivery_error == "5.1.1 user unknown"
    assert view.events[-1].kind == "delivery_failed"
    async with runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Customer)) == 1  # no card for the mailer daemon

    with pytest.raises(NotStored):
        await runtime.service.ingest(mail("mailer-daemon@mx.example.com", "?", message_id="<dsn2@mx.example.com>",
                                          bounce_of="<never-sent@support.example>"))


async def test_parse_problems_headers_and_raw_are_kept(runtime: Runtime, add_agent) -> None:
    manager, _ = await add_agent(role=Role.manager)
    raw = await runtime.attachments.save("message.eml", "message/rfc822", b"Subject: broken\r\n\r\n\xff\xfe")
    result = await runtime.service.ingest(
        mail("ann@example.com", "broken", message_id="<b@example.com>", problems=("bad base64 in part 2",), raw=raw,
             meta={"from": "ann@example.com", "recipient": "support@example.com"})
    )
    view = await runtime.service.get_ticket(manager, result.ticket.id)
    stored = view.messages[0]
    assert stored.problems == ["bad base64 in part 2"]
    assert stored.raw is not None and stored.raw["sha256"] == raw.sha256
    assert stored.meta["recipient"] == "support@example.com"
    assert runtime.attachments.open_path(stored.raw["path"]).read_bytes().startswith(b"Subject: broken")
