"""Agents' replies on Telegram tickets: an outbox row per reply, sent with the bot, split at Telegram's limit."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from notifier import outbox
from notifier.chat import latest_client_meta, resolved_text
from tickets.models import CustomerIdentity, Message, Ticket
from tickets.ports import Notice, ReceivedFacts

log = logging.getLogger(__name__)

CHANNEL = "telegram"
MAX_MESSAGE = 4096
BLOCKED = "the client blocked the bot"
MAX_INLINE_WAIT = 60.0
"""A 429 asking to wait longer than this goes back to the queue instead of holding the worker."""


def split_text(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Pieces of at most `limit` characters, cut at a line break, else a space, else hard."""
    pieces: list[str] = []
    while len(text) > limit:
        window = text[:limit]
        cut = window.rfind("\n")
        if cut <= 0:
            cut = window.rfind(" ")
        if cut <= 0:
            pieces.append(window)
            text = text[limit:]
            continue
        pieces.append(text[:cut].rstrip())
        text = text[cut + 1 :]
    pieces.append(text)
    return [p for p in pieces if p.strip()] or [text]


async def _queue(
    session: AsyncSession, kind: str, chat_id: str, text: str, ticket: Ticket, now: datetime, *,
    dedupe_key: str, message_id: int | None = None,
) -> int:
    """One outbox row for the chat, due now; returns its id for delivery after commit."""
    return await outbox.queue(
        session, now, kind=kind, channel=CHANNEL, recipient=chat_id, subject=None, body_text=text, headers={},
        ticket_id=ticket.id, message_id=message_id, dedupe_key=dedupe_key,
    )


class TelegramNotifications:
    """`tickets.ports.Notifications` for Telegram: a public reply goes to the chat the client writes from."""

    async def ticket_created(self, session: AsyncSession, ticket: Ticket, message: Message, now: datetime) -> list[int]:
        return []

    def acknowledgement(self, facts: ReceivedFacts) -> Notice | None:
        return None  # a chat answers in the chat itself

    async def reply_added(self, session: AsyncSession, ticket: Ticket, message: Message, now: datetime) -> list[int]:
        if ticket.channel != CHANNEL:
            return []
        chat_id = await self._chat_id(session, ticket)
        if chat_id is None:
            log.warning("reply %s on ticket #%s stays queued: no Telegram chat known", message.id, ticket.id)
            return []
        return [await _queue(session, "reply", chat_id, message.body_text, ticket, now,
                             dedupe_key=f"reply:{message.id}", message_id=message.id)]

    async def ticket_resolved(self, session: AsyncSession, ticket: Ticket, now: datetime) -> list[int]:
        """Tell the client in their chat, in their language, and that writing again reopens it."""
        if ticket.channel != CHANNEL:
            return []
        chat_id = await self._chat_id(session, ticket)
        if chat_id is None:
            return []
        text = await resolved_text(session, ticket)
        return [await _queue(session, "resolved", chat_id, text, ticket, now,
                             dedupe_key=f"resolved:{ticket.id}:{now.isoformat()}")]

    async def _chat_id(self, session: AsyncSession, ticket: Ticket) -> str | None:
        """The chat of the client's latest Telegram message, else their user id (a private chat has the same id)."""
        meta = await latest_client_meta(session, ticket, CHANNEL, "chat_id")
        if meta is not None:
            return str(meta["chat_id"])
        return await session.scalar(
            select(CustomerIdentity.address)
            .where(CustomerIdentity.customer_id == ticket.customer_id, CustomerIdentity.kind == CHANNEL)
            .order_by(CustomerIdentity.id)
            .limit(1)
        )
