"""Links and merges between tickets of one client: a link says two tickets are about the same thing and shows
each on the other; a merge moves one ticket's history into another and closes it, for the client who wrote about
one problem twice (by mail and then by chat, say). A merged ticket points at the one it joined, so a reply naming
it, its portal link and its page all lead there."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tickets import audit, deadlines
from tickets.clock import Clock
from tickets.db import rows_changed
from tickets.errors import Conflict, InvalidInput
from tickets.models import ACTIVE_STATUSES, Agent, Call, EventKind, Message, Ticket, TicketLink, TicketStatus
from tickets.ports import Assigner, Timer

MAX_HOPS = 20
"""A merged ticket's target may itself be merged later; the chain is followed this far (a guard, never reached)."""


async def followed(session: AsyncSession, ticket: Ticket, *, lock: bool = False) -> Ticket:
    """The ticket a message or link for `ticket` belongs on now: itself, or the one it was merged into."""
    for _ in range(MAX_HOPS):
        if ticket.merged_into_id is None:
            break
        ticket = await session.get_one(Ticket, ticket.merged_into_id, with_for_update=lock)
    return ticket


async def linked_tickets(session: AsyncSession, number: int) -> list[Ticket]:
    """Both directions of the links: a link is stored once, lower number first."""
    other = select(TicketLink.linked_id).where(TicketLink.ticket_id == number).union(
        select(TicketLink.ticket_id).where(TicketLink.linked_id == number))
    return list(await session.scalars(select(Ticket).where(Ticket.id.in_(other)).order_by(Ticket.id)))


class MergeCommands:
    """Provided by `TicketService`: the clock, the router, one transaction per command, the visibility check,
    the status change and the regulation tracking that every other command uses."""

    _clock: Clock
    _router: Assigner
    if TYPE_CHECKING:
        def _transaction(self) -> AbstractAsyncContextManager[AsyncSession]: ...
        async def _visible_ticket(self, session: AsyncSession, viewer: Agent, number: int,
                                  lock: bool = False) -> Ticket: ...
        def _set_status(self, session: AsyncSession, viewer: Agent, ticket: Ticket, status: TicketStatus,
                        now: datetime, assignee_after: int | None) -> bool: ...
        async def _track(self, session: AsyncSession, ticket: Ticket, now: datetime, reason: str,
                         *, new: bool = False) -> list[Timer]: ...
        async def _after_commit(self, outbox_ids: list[int], timers: list[Timer] = ...) -> None: ...

    async def _pair(self, session: AsyncSession, viewer: Agent, number: int, other: int) -> tuple[Ticket, Ticket]:
        """Both tickets, locked in number order (so two merges of the same pair cannot deadlock), checked."""
        if number == other:
            raise InvalidInput({"ticket": "a ticket cannot be linked to or merged with itself"})
        first, second = sorted((number, other))
        found = {n: await self._visible_ticket(session, viewer, n, lock=True) for n in (first, second)}
        ticket, partner = found[number], found[other]
        if ticket.customer_id != partner.customer_id:
            raise Conflict(f"#{other} belongs to another client; only one client's tickets are linked or merged "
                           "(add the address to their card and merge the cards first)")
        for t in (ticket, partner):
            if t.merged_into_id is not None:
                raise Conflict(f"#{t.id} was merged into #{t.merged_into_id}; use that ticket")
        return ticket, partner

    async def link_tickets(self, viewer: Agent, number: int, other: int) -> None:
        now = self._clock.now()
        async with self._transaction() as session:
            await self._pair(session, viewer, number, other)
            low, high = sorted((number, other))
            if await session.get(TicketLink, (low, high)) is not None:
                return  # linked already: asking twice is not an error
            session.add(TicketLink(ticket_id=low, linked_id=high, actor_id=viewer.id, created_at=now))
            for this, that in ((number, other), (other, number)):
                audit.record(session, this, EventKind.linked, now, actor=viewer, reason=f"linked to #{that}",
                             ticket=that)

    async def unlink_tickets(self, viewer: Agent, number: int, other: int) -> None:
        now = self._clock.now()
        async with self._transaction() as session:
            for n in sorted((number, other)):
                await self._visible_ticket(session, viewer, n)
            low, high = sorted((number, other))
            gone = await rows_changed(
                session, delete(TicketLink).where(TicketLink.ticket_id == low, TicketLink.linked_id == high))
            if not gone:
                return
            for this, that in ((number, other), (other, number)):
                audit.record(session, this, EventKind.unlinked, now, actor=viewer,
                             reason=f"no longer linked to #{that}", ticket=that)

    async def merge_ticket(self, viewer: Agent, number: int, into: int) -> int:
        """Move #number's messages, calls and links onto #into and close #number; returns how many messages
        moved. The target must be active: a resolved ticket is reopened first, on purpose, by an agent."""
        now = self._clock.now()
        async with self._transaction() as session:
            source, target = await self._pair(session, viewer, number, into)
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
            frees = self._set_status(session, viewer, source, TicketStatus.closed, now, source.assignee_id)
            source.merged_into_id = target.id
            source.updated_at = now
            await deadlines.cancel(session, source.id)
            audit.record(session, source.id, EventKind.merged, now, actor=viewer, reason=f"merged into #{target.id}",
                         into=target.id, messages=moved)
            audit.record(session, target.id, EventKind.merged_in, now, actor=viewer, reason=f"#{source.id} merged in",
                         source=source.id, messages=moved)
            timers = await self._track(session, target, now, f"{viewer.name} merged #{source.id} in")
            if frees:
                locked = await self._router.lock(session, {source.group_id},
                                                 [source.assignee_id] if source.assignee_id else [])
                await self._router.drain(session, {source.group_id}, now, locked=locked)
        await self._after_commit([], timers)
        return moved


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



async def merged_from(session: AsyncSession, number: int) -> list[int]:
    """The tickets merged into this one, which its page names beside the history they brought."""
    return list(await session.scalars(select(Ticket.id).where(Ticket.merged_into_id == number).order_by(Ticket.id)))
