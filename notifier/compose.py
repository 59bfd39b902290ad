"""Email replies and acknowledgements become outbox rows inside the transaction of the change that causes them.

Threading is ours to keep: every outbound mail gets our own Message-ID (stored as the message's
external id, so the client's answer finds its ticket), In-Reply-To/References to the client's latest
mail, and the `[#NUMBER]` token in the subject.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import make_msgid
from pathlib import Path
from typing import Any, Protocol

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from notifier import outbox
from tickets.language import answer_in
from tickets.models import (
    Customer,
    CustomerIdentity,
    Direction,
    Event,
    Group,
    Message,
    Ticket,
)
from tickets.ports import Notice, ReceivedFacts

log = logging.getLogger(__name__)

CHANNEL = "email"
MAIL_CHANNELS = (CHANNEL, "webform")
"""Tickets whose client is answered by email: mail, and web forms (which ask for an address)."""
MAX_REFERENCES = 20
TEMPLATES = Path(__file__).parent / "templates"

# Automated senders: acknowledging them only feeds mail loops.
_AUTOMATED_LOCAL_PART = re.compile(
    r"^(mailer-daemon|postmaster|no[-_.]?reply|do[-_.]?not[-_.]?reply|bounces?|auto[-_.]?reply)([+-].*)?$",
    re.IGNORECASE,
)
_REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|aw|sv|ответ)(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE)


class _SmtpSettings(Protocol):
    @property
    def reply_from(self) -> str: ...


class MailSettings(Protocol):
    """The part of the settings composing mail needs (the sender of replies, the base of the portal links)."""

    @property
    def smtp(self) -> _SmtpSettings: ...

    @property
    def public_url(self) -> str: ...


@dataclass(frozen=True)
class _ClientMail:
    """The client's mail we answer: who wrote it, to which of our addresses, and its threading ids."""

    sender: str | None
    message_id: str | None
    references: list[str]


def ticket_subject(number: int, subject: str, *, reply: bool) -> str:
    """`[#N] subject` or `Re: [#N] subject`, without doubling a reply prefix or our token already there."""
    token = f"[#{number}]"
    rest = _REPLY_PREFIX.sub("", subject or "")
    rest = " ".join(rest.replace(token, " ").split())
    rest = _REPLY_PREFIX.sub("", rest)
    subject = f"{token} {rest}".rstrip()
    return f"Re: {subject}" if reply else subject


def is_automated_sender(address: str | None) -> bool:
    """mailer-daemon, postmaster and noreply addresses: never answered automatically."""
    if not address or "@" not in address:
        return True
    return bool(_AUTOMATED_LOCAL_PART.match(address.rpartition("@")[0]))


def paragraphs(text: str) -> list[list[str]]:
    """Plain text as paragraphs of lines, for the HTML part."""
    blocks = re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip())
    return [block.split("\n") for block in blocks if block.strip()]


def _domain(address: str) -> str:
    domain = address.rpartition("@")[2].strip().rstrip(">") or "localhost"
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return "localhost"


def _references(mail: _ClientMail) -> list[str]:
    chain = [r for r in mail.references if _message_id(r)]
    if (own := _message_id(mail.message_id)) is not None:
        chain.append(own)
    return list(dict.fromkeys(chain))[-MAX_REFERENCES:]


_MSG_ID = re.compile(r"<[^<>\s@]+@[^<>\s@]+>")


def _message_id(value: Any) -> str | None:
    """`value` if it is a Message-ID (`<left@right>`, no spaces or line breaks), else None: what a web form or a
    chat names its messages by is not one, and must not reach a mail header."""
    return value if isinstance(value, str) and _MSG_ID.fullmatch(value) else None


def _usable(address: Any) -> str | None:
    if not isinstance(address, str) or "@" not in address or address.endswith(".invalid"):
        return None
    return address.strip()


class EmailNotifications:
    """`tickets.ports.Notifications` for the email channel: the agent's reply, the acknowledgement, the resolution
    notice."""

    def __init__(self, settings: MailSettings) -> None:
        self._reply_from = settings.smtp.reply_from
        self._public_url = settings.public_url.rstrip("/")
        self.templates = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )

    async def ticket_resolved(self, session: AsyncSession, ticket: Ticket, now: datetime) -> list[int]:
        """Tell the client their email ticket was resolved, in their thread, and that replying reopens it."""
        if ticket.channel not in MAIL_CHANNELS:
            return []
        latest = await self._latest_client_mail(session, ticket)
        recipient = (latest.sender if latest else None) or await self._customer_address(session, ticket)
        if recipient is None or is_automated_sender(recipient):
            log.info("no resolution notice for ticket #%s: sender %s is automated or unknown", ticket.id, recipient)
            return []
        sender = await self._support_address(session, ticket)
        if recipient.lower() == sender.lower():
            return []
        customer = await session.get(Customer, ticket.customer_id)
        language = answer_in(customer.language if customer else None)
        text = self.templates.get_template(f"resolved.{language}.txt").render(
            name=customer.name if customer else None, number=ticket.id, subject=ticket.subject,
            portal=self.portal_link(ticket),
        )
        return [await self.queue_mail(
            session,
            kind="resolved",
            dedupe_key=f"resolved:{ticket.id}:{now.isoformat()}",
            ticket=ticket,
            message_id=None,
            sender=sender,
            recipient=recipient,
            subject=ticket_subject(ticket.id, ticket.subject, reply=True),
            text=text,
            headers={
                "Message-ID": make_msgid(domain=_domain(sender)),
                "In-Reply-To": latest.message_id if latest else None,
                "References": _references(latest) if latest else [],
                "Auto-Submitted": "auto-replied",
                "X-Auto-Response-Suppress": "All",
            },
            language=language,
            now=now,
        )]

    async def reply_added(self, session: AsyncSession, ticket: Ticket, message: Message, now: datetime) -> list[int]:
        if ticket.channel not in MAIL_CHANNELS:
            return []
        latest = await self._latest_client_mail(session, ticket)
        recipient = (latest.sender if latest else None) or await self._customer_address(session, ticket)
        if recipient is None:
            log.warning("reply %s on ticket #%s stays queued: the client has no email address", message.id, ticket.id)
            return []
        sender = await self._support_address(session, ticket)
        subject = ticket_subject(ticket.id, ticket.subject, reply=True)
        message_id = make_msgid(domain=_domain(sender))
        in_reply_to = latest.message_id if latest else None
        references = _references(latest) if latest else []
        message.external_id = message_id
        message.meta = {
            "message_id": message_id,
            "from": sender,
            "to": recipient,
            "subject": subject,
            "in_reply_to": in_reply_to,
            "references": references,
        }
        return [await self.queue_mail(
            session,
            kind="reply",
            dedupe_key=f"reply:{message.id}",
            ticket=ticket,
            message_id=message.id,
            sender=sender,
            recipient=recipient,
            subject=subject,
            text=message.body_text,
            headers={"Message-ID": message_id, "In-Reply-To": in_reply_to, "References": references},
            language=None,
            now=now,
        )]

    async def ticket_created(self, session: AsyncSession, ticket: Ticket, message: Message, now: datetime) -> list[int]:
        if ticket.channel not in MAIL_CHANNELS or message.direction != Direction.inbound:
            return []
        group = await session.get(Group, ticket.group_id)
        if group is None:
            return []
        customer = await session.get(Customer, ticket.customer_id)
        meta = message.meta or {}
        address = None if _usable(meta.get("from")) else await self._customer_address(session, ticket)
        notice = self.acknowledgement(ReceivedFacts(
            ticket.channel, group.name, group.acknowledge, customer.name if customer else None,
            customer.language if customer else None, address, meta, message.external_id, ticket.subject,
            ticket.portal_key))
        if notice is None:
            return []
        return [await outbox.write_notice(session, notice, ticket.id, now)]

    def acknowledgement(self, facts: ReceivedFacts) -> Notice | None:
        """Tell the client their mail or form became ticket N, in the thread of their mail; nobody automated."""
        meta = facts.meta
        if facts.channel not in MAIL_CHANNELS or meta.get("auto_reply") or not facts.group_acknowledges:
            return None
        recipient = _usable(meta.get("from")) or _usable(facts.client_address)
        if recipient is None or is_automated_sender(recipient):
            log.info("no acknowledgement: sender %s is automated or unknown", recipient)
            return None
        sender = _usable(meta.get("recipient")) or self._reply_from
        if recipient.lower() == sender.lower():
            log.info("no acknowledgement: it came from our own address %s", sender)
            return None
        references = meta.get("references")
        client_mail = _ClientMail(
            recipient, facts.external_id, list(references) if isinstance(references, list) else []
        )
        return Notice(
            kind="ack", channel=CHANNEL, recipient=recipient, template="ack",
            params={"name": facts.customer_name, "subject": facts.subject, "team": facts.group_name,
                    "language": answer_in(facts.customer_language), "portal_key": facts.portal_key},
            headers=mail_headers(sender, recipient, {
                "Message-ID": make_msgid(domain=_domain(sender)),
                "In-Reply-To": _message_id(facts.external_id),
                "References": _references(client_mail),
                # RFC 3834: an automatic answer; well-behaved responders do not answer it back.
                "Auto-Submitted": "auto-replied",
                "X-Auto-Response-Suppress": "All",
            }),
            dedupe_prefix="ack:",
        )

    def portal_link(self, ticket: Ticket) -> str | None:
        """Where the client follows the ticket online (tickets from before the portal have none)."""
        return f"{self._public_url}/portal/{ticket.portal_key}" if ticket.portal_key else None

    async def queue_mail(
        self,
        session: AsyncSession,
        *,
        kind: str,
        dedupe_key: str,
        ticket: Ticket | None,
        message_id: int | None,
        sender: str,
        recipient: str,
        subject: str,
        text: str,
        headers: dict[str, Any],
        language: str | None,
        now: datetime,
        due_at: datetime | None = None,
        extra: dict[str, Any] | None = None,
    ) -> int:
        """One email outbox row with our headers and the HTML alternative; `due_at` defers it (a fallback copy)."""
        html = self.templates.get_template("message.html").render(
            paragraphs=paragraphs(text), subject=subject, lang=language
        )
        stored = mail_headers(sender, recipient, headers)
        if extra:
            stored.update(extra)
        return await outbox.queue(
            session,
            now,
            due_at=due_at,
            kind=kind,
            channel=CHANNEL,
            recipient=recipient,
            subject=subject,
            body_text=text,
            body_html=html,
            headers=stored,
            ticket_id=ticket.id if ticket is not None else None,
            message_id=message_id,
            dedupe_key=dedupe_key,
        )

    async def _latest_client_mail(self, session: AsyncSession, ticket: Ticket) -> _ClientMail | None:
        """The client's newest mail on the ticket, preferring a human one to an out-of-office answer."""
        rows = (
            await session.execute(
                select(Message.external_id, Message.meta)
                .where(
                    Message.ticket_id == ticket.id,
                    Message.direction == Direction.inbound,
                    Message.channel == CHANNEL,
                )
                .order_by(Message.id.desc())
                .limit(10)
            )
        ).all()
        if not rows:
            return None
        external_id, meta = next(((e, m) for e, m in rows if not (m or {}).get("auto_reply")), rows[0])
        meta = meta or {}
        return _ClientMail(_usable(meta.get("from")), external_id, list(meta.get("references") or []))

    async def _customer_address(self, session: AsyncSession, ticket: Ticket) -> str | None:
        addresses = await session.scalars(
            select(CustomerIdentity.address)
            .where(CustomerIdentity.customer_id == ticket.customer_id, CustomerIdentity.kind == "email")
            .order_by(CustomerIdentity.id)
        )
        return next((a for a in map(_usable, addresses) if a), None)

    async def _support_address(self, session: AsyncSession, ticket: Ticket) -> str:
        """The address the client first wrote to, so the conversation keeps one sender."""
        meta = await session.scalar(
            select(Message.meta)
            .where(Message.ticket_id == ticket.id, Message.direction == Direction.inbound, Message.channel == CHANNEL)
            .order_by(Message.id)
            .limit(1)
        )
        return _usable((meta or {}).get("recipient")) or self._reply_from


def mail_headers(sender: str, recipient: str, headers: dict[str, Any]) -> dict[str, Any]:
    """The headers an email row stores: lists joined, empty ones dropped, and a Message-ID fixed when queued, never at
    sending: a retry after a lost answer is the same message to the recipient's mail system (SMTP cannot confirm
    exactly once; a worker killed between the relay's 250 and our commit sends again, and the Message-ID is what
    lets that copy be recognised)."""
    stored: dict[str, Any] = {"From": sender, "To": recipient}
    for name, value in headers.items():
        if isinstance(value, list):
            value = " ".join(value)
        if value:
            stored[name] = value
    stored.setdefault("Message-ID", make_msgid(domain=_domain(sender)))
    return stored


class CompositeNotifications:
    """Asks every channel's notifications in turn; each writes rows only for its own tickets."""

    def __init__(self, *channels: Any, reactions: Sequence[Any] = ()) -> None:
        self.channels = channels
        self.reactions = tuple(reactions)
        """What reacts to a transaction's events (assignment notices): each has `events_recorded`."""

    async def ticket_created(self, session: AsyncSession, ticket: Ticket, message: Message, now: datetime) -> list[int]:
        ids: list[int] = []
        for channel in self.channels:
            ids += await channel.ticket_created(session, ticket, message, now)
        return ids

    def acknowledgement(self, facts: ReceivedFacts) -> Notice | None:
        return next((n for c in self.channels if (n := c.acknowledgement(facts)) is not None), None)

    async def reply_added(self, session: AsyncSession, ticket: Ticket, message: Message, now: datetime) -> list[int]:
        ids: list[int] = []
        for channel in self.channels:
            ids += await channel.reply_added(session, ticket, message, now)
        return ids

    async def ticket_resolved(self, session: AsyncSession, ticket: Ticket, now: datetime) -> list[int]:
        ids: list[int] = []
        for channel in self.channels:
            ids += await channel.ticket_resolved(session, ticket, now)
        return ids

    async def events_recorded(self, session: AsyncSession, events: Sequence[Event], now: datetime) -> list[int]:
        ids: list[int] = []
        for reaction in self.reactions:
            ids += await reaction.events_recorded(session, events, now)
        return ids
