"""What a merge means when reading: a merged ticket points at the one it joined (so a reply naming it, its portal
link and its page lead there), and linked tickets show each other. The commands are `tickets.actions.merging`."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.models import Ticket, TicketLink

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


async def merged_from(session: AsyncSession, number: int) -> list[int]:
    """The tickets merged into this one, which its page names beside the history they brought."""
    return list(await session.scalars(select(Ticket.id).where(Ticket.merged_into_id == number).order_by(Ticket.id)))
