"""The customer portal: what the holder of a ticket's unguessable link may see and do — its status and public
history (never internal notes), a reply that joins the ticket like any client message, and one rating once it
is resolved."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.clock import Clock
from tickets.errors import Conflict, InvalidInput, NotFound
from tickets.inbound import AttachmentRef, Identity, Inbound
from tickets.merging import followed
from tickets.models import Customer, CustomerIdentity, Direction, Message, Rating, Ticket, TicketStatus

if TYPE_CHECKING:
    from tickets.ingest import IngestResult

CHANNEL = "portal"
RATED_STATUSES = (TicketStatus.resolved, TicketStatus.closed)
MAX_REPLY = 20_000
MAX_COMMENT = 2_000


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


class PortalCommands:
    """Provided by `TicketService`: the clock, `ingest` and one transaction per command."""

    _clock: Clock
    if TYPE_CHECKING:
        def _transaction(self) -> AbstractAsyncContextManager[AsyncSession]: ...
        async def ingest(self, inbound: Inbound) -> IngestResult: ...

    async def portal_view(self, key: str) -> PortalView:
        async with self._transaction() as session:
            ticket = await _ticket(session, key)
            messages = list(await session.scalars(
                select(Message).where(Message.ticket_id == ticket.id,
                                      Message.direction.in_((Direction.inbound, Direction.outbound)))
                .order_by(Message.id)))
            rating = await session.scalar(select(Rating).where(Rating.ticket_id == ticket.id))
            return PortalView(ticket, await session.get_one(Customer, ticket.customer_id), messages, rating)

    async def portal_reply(self, key: str, text: str, idempotency_key: str | None = None,
                           attachments: tuple[AttachmentRef, ...] = ()) -> int:
        """The client's message from the portal, stored as if they had written on their channel; the ticket it
        joined (a closed one's follow-up is a new ticket)."""
        text = text.strip()
        if not text and not attachments:
            raise InvalidInput({"body": "write something or attach a file"})
        if len(text) > MAX_REPLY:
            raise InvalidInput({"body": f"at most {MAX_REPLY} characters"})
        async with self._transaction() as session:
            ticket = await _ticket(session, key)
            identity = (await session.execute(
                select(CustomerIdentity.kind, CustomerIdentity.address)
                .where(CustomerIdentity.customer_id == ticket.customer_id).order_by(CustomerIdentity.id).limit(1)
            )).first()
            if identity is None:
                raise Conflict("this ticket's client has no address to write from")
        result = await self.ingest(Inbound(
            channel=CHANNEL, identities=(Identity(identity[0], identity[1]),), body_text=text, subject=ticket.subject,
            ticket_number=ticket.id, external_id=f"portal:{ticket.id}:{idempotency_key}" if idempotency_key else None,
            attachments=attachments,
        ))
        return result.ticket.id

    async def rate(self, key: str, score: int, comment: str | None) -> Rating:
        if not 1 <= score <= 5:
            raise InvalidInput({"score": "from 1 to 5"})
        comment = (comment or "").strip()[:MAX_COMMENT] or None
        try:
            async with self._transaction() as session:
                ticket = await _ticket(session, key)
                if ticket.status not in RATED_STATUSES:
                    raise Conflict("a ticket is rated once it is resolved")
                if await session.scalar(select(Rating.id).where(Rating.ticket_id == ticket.id)) is not None:
                    raise Conflict("this ticket has been rated already")
                rating = Rating(ticket_id=ticket.id, score=score, comment=comment, created_at=self._clock.now())
                session.add(rating)
                return rating
        except IntegrityError as exc:  # two answers at once: the first one counts
            raise Conflict("this ticket has been rated already") from exc


async def _ticket(session: AsyncSession, key: str) -> Ticket:
    ticket = await session.scalar(select(Ticket).where(Ticket.portal_key == key)) if key else None
    if ticket is None:
        raise NotFound("no such ticket link")
    return await followed(session, ticket)  # a merged ticket's link shows the ticket it joined
