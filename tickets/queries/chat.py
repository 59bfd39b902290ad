"""A chat visitor's history: found by the visitor (the prefix of their messages' ids), never by the card."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Select, func, select

from tickets.deps import Deps
from tickets.models import Agent, Direction, Message, Ticket


@dataclass(frozen=True)
class ChatHistory:
    """What a chat visitor sees when they come back: their tickets' public messages, oldest first."""

    messages: Sequence[tuple[Message, str | None]]
    """Each message with its author's name (agents' replies)."""
    latest: Ticket | None
    """The ticket they wrote on last, which their next message continues while it is open or recent."""
    portal_keys: Mapping[int, str]
    """Each of their tickets' portal link key, by number: the chat links their files there."""


async def chat_history(deps: Deps, channel: str, sender_prefix: str, limit: int = 200) -> ChatHistory:
    """The tickets a chat visitor wrote on, found by the prefix of their messages' external ids.

    By visitor, not by customer card: a visitor who typed someone's email must not see that card's history.
    """
    async with deps.store.session() as session:
        tickets = chat_tickets(channel, sender_prefix)
        rows = await session.execute(
            select(Message, Agent.name)
            .outerjoin(Agent, Agent.id == Message.author_id)
            .where(Message.ticket_id.in_(tickets), Message.direction.in_((Direction.inbound, Direction.outbound)))
            .order_by(Message.id.desc())
            .limit(limit)
        )
        messages = [(message, author) for message, author in rows][::-1]
        latest_id = await session.scalar(select(func.max(Message.ticket_id)).where(Message.ticket_id.in_(tickets)))
        latest = await session.get(Ticket, latest_id) if latest_id is not None else None
        keys = {number: key for number, key in await session.execute(
            select(Ticket.id, Ticket.portal_key).where(Ticket.id.in_({m.ticket_id for m, _ in messages})))
            if key} if any(m.attachments for m, _ in messages) else {}
        return ChatHistory(messages, latest, keys)


def chat_tickets(channel: str, sender_prefix: str) -> Select[int]:
    return select(Message.ticket_id).where(
        Message.channel == channel,
        Message.direction == Direction.inbound,
        Message.external_id.startswith(sender_prefix, autoescape=True),
    )
