"""The console queue's one read (`TicketService.queue_lines`): the tickets `list_tickets` gives, with their clients'
names and their next regulation steps as stored, with the list's filters and its limit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from switchboard.bootstrap import Runtime
from tickets.inbound import Identity, Inbound
from tickets.models import OPEN_STATUSES, Deadline, DeadlineStatus, Presence, Role, TicketStatus


def written(subject: str, address: str, name: str | None = None, channel: str = "webform") -> Inbound:
    return Inbound(channel=channel, identities=(Identity("email", address),), subject=subject, body_text="Help",
                   customer_name=name)


async def test_queue_lines_are_the_list_with_names_and_next_steps(runtime: Runtime, add_agent: Any) -> None:
    mia, _ = await add_agent("Mia", role=Role.manager, presence=Presence.offline)
    service = runtime.service
    named = (await service.ingest(written("Kettle leaks", "olga@mail.example", name="Olga Smirnova"))).ticket
    nameless = (await service.ingest(written("Toaster burns", "no.name@mail.example"))).ticket
    chat = (await service.ingest(written("Where is my order?", "chat.visitor@mail.example", channel="webchat"))).ticket

    lines = await service.queue_lines(mia, status=list(OPEN_STATUSES), limit=200)

    assert [line.ticket.id for line in lines] == [chat.id, nameless.id, named.id]  # newest first
    by_id = {line.ticket.id: line for line in lines}
    assert by_id[named.id].customer == "Olga Smirnova"
    assert by_id[nameless.id].customer == "no.name@mail.example"  # no name: their first address
    assert by_id[named.id].ticket.subject == "Kettle leaks"
    assert (by_id[chat.id].ticket.channel, by_id[chat.id].ticket.status) == ("webchat", TicketStatus.new)
    assert by_id[chat.id].ticket.created_at == chat.created_at
    assert by_id[named.id].ticket.customer_id == named.customer_id

    tickets = (await service.list_tickets(mia, status=list(OPEN_STATUSES), limit=200)).tickets
    assert [t.id for t in tickets] == [line.ticket.id for line in lines]
    async with runtime.sessions() as session:
        pending = list(await session.scalars(
            select(Deadline).where(Deadline.status == DeadlineStatus.pending).order_by(Deadline.due_at)))
    assert pending  # the built-in regulation's steps
    for ticket in tickets:
        line = by_id[ticket.id]
        assert (line.ticket.priority, line.ticket.status) == (ticket.priority, ticket.status)
        soonest = next(d for d in pending if d.ticket_id == ticket.id)
        assert line.deadlines.next is not None
        assert (line.deadlines.next.step, line.deadlines.next.due_at) == (soonest.step, soonest.due_at)
        assert line.deadlines.breached is False

    assert [line.ticket.id for line in await service.queue_lines(mia, channel="webchat")] == [chat.id]
    assert [line.ticket.id for line in await service.queue_lines(mia, limit=2)] == [chat.id, nameless.id]
    assert [line.ticket.id for line in await service.queue_lines(mia, search="toaster")] == [nameless.id]
    assert [line.ticket.id for line in await service.queue_lines(mia, assignee=mia.id)] == []
    assert await service.queue_lines(mia, status=[TicketStatus.closed]) == []
