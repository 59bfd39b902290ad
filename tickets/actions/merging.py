"""Links and merges between tickets of one client: a link says two tickets are about the same thing and shows
each on the other; a merge moves one ticket's history into another and closes it, for the client who wrote about
one problem twice (by mail and then by chat, say). A merged ticket points at the one it joined, so a reply naming
it, its portal link and its page all lead there (`tickets.merging.followed`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from tickets import audit, deadlines
from tickets.access import visible_ticket
from tickets.actions.tickets import set_status
from tickets.db import rows_changed
from tickets.deps import Deps
from tickets.errors import Conflict, InvalidInput
from tickets.merging import linked_tickets
from tickets.models import ACTIVE_STATUSES, Agent, Call, EventKind, Message, Ticket, TicketLink, TicketStatus


async def _move_links(session: AsyncSession, source: int, target: int, actor: Agent, now: datetime) -> None:
    """The merged ticket's links become the target's (a link to the target itself is dropped)."""
    partners = {t.id for t in await linked_tickets(session, source)} - {target}
    await session.execute(delete(TicketLink).where(or_(TicketLink.ticket_id == source,
                                                       TicketLink.linked_id == source)))
    if not partners:
        return
    have = {t.id for t in await linked_tickets(session, target)}
    for partner in sorted(partners - have):
        low, high = sorted((partner, target))
        session.add(TicketLink(ticket_id=low, linked_id=high, actor_id=actor.id, created_at=now))


async def _pair(session: AsyncSession, viewer: Agent, number: int, other: int) -> tuple[Ticket, Ticket]:
    """Both tickets, locked in number order (so two merges of the same pair cannot deadlock), checked."""
    if number == other:
        raise InvalidInput({"ticket": "a ticket cannot be linked to or merged with itself"})
    first, second = sorted((number, other))
    found = {n: await visible_ticket(session, viewer, n, lock=True) for n in (first, second)}
    ticket, partner = found[number], found[other]
    if ticket.customer_id != partner.customer_id:
        raise Conflict(f"#{other} belongs to another client; only one client's tickets are linked or merged "
                       "(add the address to their card and merge the cards first)")
    for t in (ticket, partner):
        if t.merged_into_id is not None:
            raise Conflict(f"#{t.id} was merged into #{t.merged_into_id}; use that ticket")
    return ticket, partner


async def link_tickets(deps: Deps, viewer: Agent, number: int, other: int) -> None:
    now = deps.clock.now()
    async with deps.store.session() as session:
        await _pair(session, viewer, number, other)
        low, high = sorted((number, other))
        if await session.get(TicketLink, (low, high)) is not None:
            return  # linked already: asking twice is not an error
        session.add(TicketLink(ticket_id=low, linked_id=high, actor_id=viewer.id, created_at=now))
        for this, that in ((number, other), (other, number)):
            audit.record(session, this, EventKind.linked, now, actor=viewer, reason=f"linked to #{that}",
                         ticket=that)


async def unlink_tickets(deps: Deps, viewer: Agent, number: int, other: int) -> None:
    now = deps.clock.now()
    async with deps.store.session() as session:
        for n in sorted((number, other)):
            await visible_ticket(session, viewer, n)
        low, high = sorted((number, other))
        gone = await rows_changed(
            session, delete(TicketLink).where(TicketLink.ticket_id == low, TicketLink.linked_id == high))
        if not gone:
            return
        for this, that in ((number, other), (other, number)):
            audit.record(session, this, EventKind.unlinked, now, actor=viewer,
                         reason=f"no longer linked to #{that}", ticket=that)


async def merge_ticket(deps: Deps, viewer: Agent, number: int, into: int) -> int:
    """Move #number's messages, calls and links onto #into and close #number; returns how many messages
    moved. The target must be active: a resolved ticket is reopened first, on purpose, by an agent."""
    now = deps.clock.now()
    async with deps.store.unit() as uow:
        session = uow.session
        source, target = await _pair(session, viewer, number, into)
        if target.status not in ACTIVE_STATUSES:
            raise Conflict(f"#{into} is {target.status}; reopen it before merging into it")
        if source.status == TicketStatus.closed:
            raise Conflict(f"#{number} is closed; only open work is merged")
        moved = await rows_changed(
            session, update(Message).where(Message.ticket_id == source.id).values(ticket_id=target.id))
        await session.execute(update(Call).where(Call.ticket_id == source.id).values(ticket_id=target.id))
        await _move_links(session, source.id, target.id, viewer, now)
        if target.first_response_at is None and source.first_response_at is not None:
            target.first_response_at = source.first_response_at  # the client was answered on the other one
        target.processed_at = target.processed_at or source.processed_at
        target.updated_at = now
        frees = set_status(session, viewer, source, TicketStatus.closed, now, source.assignee_id)
        source.merged_into_id = target.id
        source.updated_at = now
        await deadlines.cancel(session, source.id)
        audit.record(session, source.id, EventKind.merged, now, actor=viewer, reason=f"merged into #{target.id}",
                     into=target.id, messages=moved)
        audit.record(session, target.id, EventKind.merged_in, now, actor=viewer, reason=f"#{source.id} merged in",
                     source=source.id, messages=moved)
        uow.schedule(await deps.track(session, target, now, f"{viewer.name} merged #{source.id} in"))
        if frees:
            locked = await deps.router.lock(session, {source.group_id},
                                             [source.assignee_id] if source.assignee_id else [])
            await deps.router.drain(session, {source.group_id}, now, locked=locked)
    return moved
