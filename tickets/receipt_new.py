"""The receipt of a message that opens a ticket, in the fewest database calls each backend allows.

Most of what arrives is a client writing about something new: one address, no thread to follow, nothing to
dedupe against. For that shape each backend replaces the ORM's dozen statements by one read (the redelivery
check, the client's card, an open ticket the message might continue, the group, the routing rules) and one write
(card and identity, ticket, message, its `created` event, the acknowledgement): `tickets.receipt_pg` as a
data-modifying CTE through asyncpg, `tickets.receipt_sqlite` as plain statements in one call on the SQLite
connection's thread. What the read shows decides here, the same for both: whatever is not that shape (a
redelivery, an open ticket to continue, an unknown group, a rule moving the ticket elsewhere or tagging it) goes to
the ORM path, which decides every case; the rows written are the same as that path writes
(`tests/integration/test_receipt_paths.py`).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from tickets.content import sanitize_html
from tickets.inbound import Inbound
from tickets.ingest import message_meta, subject_from
from tickets.models import ACTIVE_STATUSES, Direction, Message, Priority, Ticket, TicketStatus
from tickets.ports import Assigner, Notice, Notifications, ReceivedFacts

ACTIVE = "(" + ", ".join(f"'{status.value}'" for status in ACTIVE_STATUSES) + ")"
"""The active statuses as an SQL list (`t.status IN ...`), for both backends' reads."""


class Found(NamedTuple):
    """What the read found, in the order both backends' reads select it."""

    seen: int | None
    """The ticket a message with this (channel, external id) already went to: a redelivery."""
    customer_id: int | None
    name: str | None
    language: str | None
    email: str | None
    """The card's first email address (the acknowledgement's fallback recipient)."""
    open_ticket: int | None
    """An open ticket of this client on this channel the message could continue."""
    group_id: int | None
    group: str | None
    acknowledges: bool | None
    rules: Sequence[Sequence[Any]] | None


@dataclass
class Planned:
    """The rows the write stores, decided before it (nothing here reads the database)."""

    ticket: Ticket
    reason: str
    meta: dict[str, Any]
    html: str | None
    attachments: list[dict[str, Any]]
    raw: dict[str, Any] | None
    notice: Notice | None
    customer_id: int | None
    """The existing card, or None for a new one."""


def applies(inbound: Inbound) -> bool:
    """The shape this path takes: one address, a message about something new (no thread, number or bounce)."""
    return (len(inbound.identities) == 1 and not inbound.thread_ids and inbound.ticket_number is None
            and inbound.bounce_of is None and inbound.auto_reply is None and inbound.call is None)


def open_window(inbound: Inbound, now: datetime) -> datetime | None:
    """Since when an open ticket of the client's on this channel takes the message instead (None: never)."""
    return now - inbound.continue_open_within if inbound.continue_open_within is not None else None


def plan(inbound: Inbound, found: Found, now: datetime, router: Assigner, notifications: Notifications | None
         ) -> Planned | None:
    """The rows for a new ticket, or None when what was found is another case, for the ORM path to decide."""
    if found.seen is not None or found.open_ticket is not None or found.group_id is None:
        return None
    identity = inbound.identities[0]
    ticket = Ticket(subject=(inbound.subject or subject_from(inbound.body_text))[:300], status=TicketStatus.new,
                    priority=inbound.priority or Priority.normal, category=inbound.category, channel=inbound.channel,
                    skills="", group_id=found.group_id, created_at=now, updated_at=now,
                    portal_key=secrets.token_urlsafe(24))
    placed = router.place_using(found.rules or [], ticket, inbound.language)
    if ticket.group_id != found.group_id or placed.tags:
        return None  # a rule moved it (that group's name and acknowledgement apply) or tags it: the ORM path's case
    rules = placed.describe()
    reason = (f"new {inbound.channel} message" + (f"; {rules}" if rules else ""))[:500]
    meta = message_meta(inbound)
    notice = notifications.acknowledgement(ReceivedFacts(
        inbound.channel, found.group or "", bool(found.acknowledges), found.name or inbound.customer_name,
        found.language or inbound.language,
        found.email or (identity.address if identity.kind == "email" else None), meta, inbound.external_id,
        ticket.subject, ticket.portal_key)) if notifications is not None else None
    return Planned(ticket, reason, meta, sanitize_html(inbound.body_html), [a.as_dict() for a in inbound.attachments],
                   inbound.raw.as_dict() if inbound.raw else None, notice, found.customer_id)


def stored(inbound: Inbound, planned: Planned, now: datetime, number: int, card: int, message_id: int
           ) -> tuple[Ticket, Message]:
    """The ticket and message as the write stored them (not attached to any session)."""
    ticket = planned.ticket
    ticket.id, ticket.customer_id = number, card
    ticket.dispatch_owed_at, ticket.route_owed = now, True
    message = Message(id=message_id, ticket_id=number, direction=Direction.inbound, channel=inbound.channel,
                      external_id=inbound.external_id, customer_id=card, body_text=inbound.body_text,
                      body_html=planned.html, attachments=planned.attachments, thread_reason=planned.reason[:200],
                      meta=planned.meta, problems=list(inbound.problems), raw=planned.raw, created_at=now)
    return ticket, message
