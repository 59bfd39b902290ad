"""What the chat channels (Telegram, web chat) tell a client in the same words."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.language import answer_in
from tickets.models import Customer, Direction, Message, Ticket

RESOLVED = {
    "en": "Your request #{number} has been resolved. If anything is still wrong, just write here "
          "and we will reopen it.",
    "ru": "Ваше обращение №{number} решено. Если что-то осталось не так, просто напишите сюда — мы откроем его снова.",
}


async def latest_client_meta(session: AsyncSession, ticket: Ticket, channel: str, key: str) -> dict[str, Any] | None:
    """The channel details of the client's newest message on the ticket that has `key` (where to answer them)."""
    metas = await session.scalars(
        select(Message.meta)
        .where(Message.ticket_id == ticket.id, Message.direction == Direction.inbound, Message.channel == channel)
        .order_by(Message.id.desc())
        .limit(5)
    )
    return next((dict(meta) for meta in metas if (meta or {}).get(key) is not None), None)


async def client_language(session: AsyncSession, ticket: Ticket) -> str:
    """The language to write to the ticket's client in."""
    return answer_in(await session.scalar(select(Customer.language).where(Customer.id == ticket.customer_id)))


async def resolved_text(session: AsyncSession, ticket: Ticket) -> str:
    """The resolution notice in the client's language; writing again reopens the ticket."""
    return RESOLVED[await client_language(session, ticket)].format(number=ticket.id)
