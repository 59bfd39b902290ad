"""What the holder of a ticket's portal link may do: write to it (joining it like any client message) and rate
it once it is resolved."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tickets.actions.receipts import ingest
from tickets.deps import Deps
from tickets.errors import Conflict, InvalidInput
from tickets.inbound import AttachmentRef, Identity, Inbound
from tickets.models import CustomerIdentity, Rating
from tickets.queries.portal import CHANNEL, RATED_STATUSES, portal_ticket

MAX_REPLY = 20_000
MAX_COMMENT = 2_000


def check_reply(text: str, *, files: int) -> str:
    """The reply's text as stored, or InvalidInput: checked before any file of it is kept."""
    text = text.strip()
    if not text and not files:
        raise InvalidInput({"body": "write something or attach a file"})
    if len(text) > MAX_REPLY:
        raise InvalidInput({"body": f"at most {MAX_REPLY} characters"})
    return text


async def portal_reply(deps: Deps, key: str, text: str, idempotency_key: str | None = None,
                       attachments: tuple[AttachmentRef, ...] = ()) -> int:
    """The client's message from the portal, stored as if they had written on their channel; the ticket it
    joined (a closed one's follow-up is a new ticket)."""
    text = check_reply(text, files=len(attachments))
    async with deps.store.session() as session:
        ticket = await portal_ticket(session, key)
        identity = (await session.execute(
            select(CustomerIdentity.kind, CustomerIdentity.address)
            .where(CustomerIdentity.customer_id == ticket.customer_id).order_by(CustomerIdentity.id).limit(1)
        )).first()
        if identity is None:
            raise Conflict("this ticket's client has no address to write from")
    result = await ingest(deps, Inbound(
        channel=CHANNEL, identities=(Identity(identity[0], identity[1]),), body_text=text, subject=ticket.subject,
        ticket_number=ticket.id, external_id=f"portal:{ticket.id}:{idempotency_key}" if idempotency_key else None,
        attachments=attachments,
    ))
    return result.ticket.id


async def rate(deps: Deps, key: str, score: int, comment: str | None) -> Rating:
    if not 1 <= score <= 5:
        raise InvalidInput({"score": "from 1 to 5"})
    comment = (comment or "").strip()[:MAX_COMMENT] or None
    try:
        async with deps.store.session() as session:
            ticket = await portal_ticket(session, key)
            if ticket.status not in RATED_STATUSES:
                raise Conflict("a ticket is rated once it is resolved")
            if await session.scalar(select(Rating.id).where(Rating.ticket_id == ticket.id)) is not None:
                raise Conflict("this ticket has been rated already")
            rating = Rating(ticket_id=ticket.id, score=score, comment=comment, created_at=deps.clock.now())
            session.add(rating)
            return rating
    except IntegrityError as exc:  # two answers at once: the first one counts
        raise Conflict("this ticket has been rated already") from exc
