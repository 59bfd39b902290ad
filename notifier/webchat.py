"""Web chat: agents' replies reach the visitor's browser through Redis pub/sub; unseen ones follow by email.

The worker publishes each reply once on one Redis channel; every web process listens and hands the event
to the sockets it holds for that visitor. A visitor who is away gets the reply from the store when they
come back, and by email after a delay unless their browser confirmed it was shown (the row is cancelled).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from notifier import outbox
from notifier.chat import client_language, latest_client_meta, resolved_text
from notifier.compose import EmailNotifications, ticket_subject
from notifier.delivery import SKIP_IF_SEEN, OutFile
from notifier.senders import TemporaryFailure
from tickets.models import Agent, Direction, Message, Ticket
from tickets.ports import Notice, ReceivedFacts

log = logging.getLogger(__name__)

CHANNEL = "webchat"
EVENTS = "switchboard:webchat"
"""The one Redis pub/sub channel every web process listens on; events name their visitor."""
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), undefined=StrictUndefined, autoescape=False
)


def message_event(message: Message, author: str | None, portal_key: str | None = None) -> dict[str, Any]:
    """A message as the chat widget shows it: the same shape live and in the history.

    Its files are links into the ticket's portal (`portal_key`), on the chat page's own origin: the portal's link
    is what the client holds for that ticket, so the chat needs no download credential of its own.
    """
    files = [{"name": str(ref.get("name") or "file"), "size": int(ref.get("size") or 0),
              "url": f"/portal/{portal_key}/files/{message.id}/{index}"}
             for index, ref in enumerate(message.attachments or [])] if portal_key else []
    return {
        "id": message.id,
        "ticket": message.ticket_id,
        "direction": "in" if message.direction == Direction.inbound else "out",
        "author": author,
        "text": message.body_text,
        "files": files,
        "at": message.created_at.isoformat(),
    }


def envelope(visitor: str, event: Mapping[str, Any]) -> str:
    """What goes over Redis: the visitor it is for and the event their sockets receive."""
    return json.dumps({"visitor": visitor, "event": event}, ensure_ascii=False)


class WebchatNotifications:
    """`tickets.ports.Notifications` for web chat: the reply goes live to the visitor, and by email if unseen."""

    def __init__(
        self, email: EmailNotifications, reply_from: str, public_url: str, email_after: timedelta | None
    ) -> None:
        self._email = email
        self._reply_from = reply_from
        self._public_url = public_url
        self._email_after = email_after

    async def ticket_created(self, session: AsyncSession, ticket: Ticket, message: Message, now: datetime) -> list[int]:
        return []

    def acknowledgement(self, facts: ReceivedFacts) -> Notice | None:
        return None  # a chat answers in the chat itself

    async def reply_added(self, session: AsyncSession, ticket: Ticket, message: Message, now: datetime) -> list[int]:
        if ticket.channel != CHANNEL:
            return []
        visitor = await _latest_visitor_meta(session, ticket)
        if visitor is None:
            log.warning("reply %s on ticket #%s stays queued: no web-chat visitor on the ticket", message.id, ticket.id)
            return []
        author = await session.scalar(select(Agent.name).where(Agent.id == message.author_id))
        ids = [await outbox.queue(
            session, now, kind="reply", channel=CHANNEL, recipient=visitor["visitor"], subject=None,
            body_text=message.body_text,
            headers={"event": {"type": "message", "message": message_event(message, author, ticket.portal_key)}},
            ticket_id=ticket.id, message_id=message.id, dedupe_key=f"reply:{message.id}",
        )]
        address = visitor.get("email")
        if address and self._email_after is not None:
            ids.append(await self._unseen_copy(session, ticket, message, author, address, visitor.get("name"), now,
                                               self._email_after))
        return ids

    async def ticket_resolved(self, session: AsyncSession, ticket: Ticket, now: datetime) -> list[int]:
        if ticket.channel != CHANNEL:
            return []
        visitor = await _latest_visitor_meta(session, ticket)
        if visitor is None:
            return []
        text = await resolved_text(session, ticket)
        event = {"type": "status", "ticket": ticket.id, "status": "resolved", "text": text}
        return [await outbox.queue(
            session, now, kind="resolved", channel=CHANNEL, recipient=visitor["visitor"], subject=None, body_text=text,
            headers={"event": event}, ticket_id=ticket.id, dedupe_key=f"resolved:{ticket.id}:{now.isoformat()}",
        )]

    async def _unseen_copy(
        self, session: AsyncSession, ticket: Ticket, message: Message, author: str | None, address: str,
        name: str | None, now: datetime, after: timedelta,
    ) -> int:
        """The reply by email, due after the delay; the deliverer cancels it if the visitor saw it first."""
        language = await client_language(session, ticket)
        text = _templates.get_template(f"chat_missed.{language}.txt").render(
            name=name, author=author, number=ticket.id, text=message.body_text, url=f"{self._public_url}/chat"
        )
        domain = self._reply_from.rpartition("@")[2] or "localhost"
        return await self._email.queue_mail(
            session, kind="chat_missed", dedupe_key=f"chat-missed:{message.id}", ticket=ticket, message_id=message.id,
            sender=self._reply_from, recipient=address, subject=ticket_subject(ticket.id, ticket.subject, reply=True),
            text=text, headers={"Message-ID": make_msgid(domain=domain), "Auto-Submitted": "auto-generated"},
            language=language, now=now, due_at=now + after, extra={SKIP_IF_SEEN: True},
        )


class WebchatSender:
    """Publishes a web-chat outbox row on Redis; a visitor who is away reads it from the store on return."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def send_text(self, chat_id: str, text: str, details: Mapping[str, Any],
                        files: Sequence[OutFile] = ()) -> str | None:
        event = details.get("event") or {"type": "notice", "text": text}
        try:
            receivers = await self._redis.publish(EVENTS, envelope(chat_id, event))
        except (RedisError, OSError) as exc:
            raise TemporaryFailure(f"Redis unavailable for web chat: {exc!r}") from exc
        log.debug("web-chat event for %s reached %d web processes", chat_id, receivers)
        return None


async def _latest_visitor_meta(session: AsyncSession, ticket: Ticket) -> dict[str, Any] | None:
    """Who the client is in the chat: the visitor (and the name/email they left) of their newest message."""
    return await latest_client_meta(session, ticket, CHANNEL, "visitor")
