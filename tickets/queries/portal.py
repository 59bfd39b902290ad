"""The customer portal's view: a ticket's status and public history (never internal notes) and its rating, for
whoever holds the ticket's unguessable link."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.deps import Deps
from tickets.errors import NotFound
from tickets.merging import followed
from tickets.models import Customer, Direction, Message, Rating, Ticket, TicketStatus

CHANNEL = "portal"
RATED_STATUSES = (TicketStatus.resolved, TicketStatus.closed)


@dataclass(frozen=True)
class PortalView:
    ticket: Ticket
    customer: Customer
    messages: list[Message]
    """Client messages and agents' public replies, oldest first."""
    rating: Rating | None

    @property
    def may_rate(self) -> bool:
        return self.rating is None and self.ticket.status in RATED_STATUSES


async def portal_ticket(session: AsyncSession, key: str) -> Ticket:
    ticket = await session.scalar(select(Ticket).where(Ticket.portal_key == key)) if key else None
    if ticket is None:
        raise NotFound("no such ticket link")
    return await followed(session, ticket)  # a merged ticket's link shows the ticket it joined


async def portal_view(deps: Deps, key: str) -> PortalView:
    async with deps.store.session() as session:
        ticket = await portal_ticket(session, key)
        messages = list(await session.scalars(
            select(Message).where(Message.ticket_id == ticket.id,
                                  Message.direction.in_((Direction.inbound, Direction.outbound)))
            .order_by(Message.id)))
        rating = await session.scalar(select(Rating).where(Rating.ticket_id == ticket.id))
        return PortalView(ticket, await session.get_one(Customer, ticket.customer_id), messages, rating)


async def portal_number(deps: Deps, key: str) -> int:
    """The number of the ticket a portal link leads to (NotFound for any other key): checked first, so nothing a
    request sends is read or kept for a link that leads nowhere."""
    async with deps.store.session() as session:
        return (await portal_ticket(session, key)).id
