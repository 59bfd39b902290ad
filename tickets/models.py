"""The ticket store's tables; one schema for SQLite and PostgreSQL, changed only through alembic."""

from __future__ import annotations

import enum
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
    or_,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

# BigInteger primary keys that are still SQLite ROWID aliases (SQLite only autoincrements INTEGER).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends (SQLite hands them back naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ticket store; use the clock")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class StrEnum(enum.StrEnum):
    """Stored and shown by value (`str(Priority.high)` is `high`)."""


REMIND_BY = ("email", "telegram", "sms", "console")
"""The ways an agent may choose to be reminded of a planned contact (`console`: the console notice alone)."""


class Role(StrEnum):
    agent = "agent"
    manager = "manager"
    admin = "admin"


class Presence(StrEnum):
    available = "available"
    away = "away"
    offline = "offline"


class TicketStatus(StrEnum):
    new = "new"
    open = "open"
    pending = "pending"
    resolved = "resolved"
    closed = "closed"


# Statuses that count towards an agent's load and keep a ticket "open" for threading.
ACTIVE_STATUSES = (TicketStatus.new, TicketStatus.open, TicketStatus.pending)
LOAD_STATUSES = (TicketStatus.open, TicketStatus.pending)
CLOSED_STATUSES = (TicketStatus.resolved, TicketStatus.closed)
OPEN_STATUSES = (TicketStatus.new, TicketStatus.open, TicketStatus.pending)
"""Not closed: what queues list."""
"""Finished: no regulation clock runs, nothing is overdue."""


class Priority(StrEnum):
    low = "low"
    normal = "normal"
    high = "high"
    critical = "critical"


PRIORITY_RANK = {Priority.low: 0, Priority.normal: 1, Priority.high: 2, Priority.critical: 3}


class Direction(StrEnum):
    inbound = "in"
    outbound = "out"
    internal = "internal"


class DeliveryStatus(StrEnum):
    queued = "queued"
    sent = "sent"
    delivered = "delivered"
    """Shown to the client (a web-chat visitor's browser confirmed it)."""
    failed = "failed"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as plain strings with a CHECK, so later values need no type migration on PostgreSQL.
    return Enum(cls, name=name, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(8))
    tier: Mapped[str | None] = mapped_column(String(32))
    """A service level the client bought (gold, basic): regulations may match on it."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    identities: Mapped[list[CustomerIdentity]] = relationship(
        back_populates="customer", order_by="CustomerIdentity.id", lazy="raise"
    )


class CustomerIdentity(Base):
    """One address a customer writes from; (kind, address) is unique so a client has one card."""

    __tablename__ = "customer_identities"
    __table_args__ = (UniqueConstraint("kind", "address"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    customer: Mapped[Customer] = relationship(back_populates="identities", lazy="raise")


class Group(Base):
    """A department: a queue of tickets, the agents who work it and the head who is alerted."""

    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    head_email: Mapped[str | None] = mapped_column(String(320))
    acknowledge: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    """Send new email tickets of this group an acknowledgement with their number."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AgentGroup(Base):
    __tablename__ = "agent_groups"

    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True, index=True)


class Skill(Base):
    """Something a ticket may require of its agent (a language, a product line); admins keep the list."""

    __tablename__ = "skills"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AgentSkill(Base):
    __tablename__ = "agent_skills"

    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    skill_id: Mapped[int] = mapped_column(ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True, index=True)


class RoutingRule(Base):
    """Where a new ticket goes: tickets matching every condition set here get its group, skills, priority and tags."""

    __tablename__ = "routing_rules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    """Rules are checked in this order."""
    channel: Mapped[str | None] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(8))
    from_group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    """Matches tickets the channel address placed in this group."""
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    skills: Mapped[str] = mapped_column(String(300), default="", server_default="")
    """Required skills, as `Ticket.skills` holds them."""
    priority: Mapped[Priority | None] = mapped_column(_enum(Priority, "rule_priority"))
    tags: Mapped[str] = mapped_column(String(300), default="", server_default="")
    """Tags the ticket gets (comma-joined, as `tickets.tags.normalize_tags` gives them)."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


def skill_key(names: Iterable[str]) -> str:
    """A set of skill names as one comparable string (sorted, comma-joined), so queues can group by it in SQL."""
    return ",".join(sorted({n.strip().lower() for n in names if n.strip()}))


def skill_set(key: str | None) -> frozenset[str]:
    return frozenset(filter(None, (key or "").split(",")))


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    extension: Mapped[str | None] = mapped_column(String(16), unique=True)
    """The agent's PBX extension: call logs name agents by it."""
    role: Mapped[Role] = mapped_column(_enum(Role, "agent_role"), default=Role.agent)
    presence: Mapped[Presence] = mapped_column(_enum(Presence, "agent_presence"), default=Presence.available)
    capacity: Mapped[int] = mapped_column(Integer, default=10)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    last_assigned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """The agent's last API request (kept to the minute); idle agents go offline after a while."""
    presence_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    language: Mapped[str | None] = mapped_column(String(8))
    """The language alerts and notices to this agent are written in (en, ru); unset → the default."""
    telegram_chat_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    """The Telegram chat the agent linked (/link CODE to the bot): alerts may go there."""
    remind_by: Mapped[str | None] = mapped_column(String(16))
    """How their planned contacts remind them besides the console notice (`REMIND_BY`); unset → Telegram when linked,
    else email."""
    password_hash: Mapped[str | None] = mapped_column(String(255))
    """argon2id hash of the console password (`switchboard agent passwd`); unset → API token only."""
    load_open: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Open and pending tickets held, kept by every flush that moves one (`tickets.loads`): what capacity limits."""
    load_weight: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Their summed weights (channel x priority) in thousandths, kept the same way: what the router compares."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    def reachable_by(self, medium: str) -> bool:
        """Whether a reminder by this medium (`REMIND_BY`) can reach them: Telegram once linked, SMS with a phone."""
        return {"telegram": bool(self.telegram_chat_id), "sms": bool(self.phone)}.get(medium, True)


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_queue", "group_id", "status", "priority", "created_at"),
        Index("ix_tickets_assignee_status", "assignee_id", "status"),
        Index("ix_tickets_customer_channel_status", "customer_id", "channel", "status"),
        Index("ix_tickets_status_id", "status", "id"),
        Index("ix_tickets_created_at", "created_at"),  # the dashboard's window over a long history
        # Tickets no regulation has looked at yet (older than the engine): the first sweep plans them.
        Index("ix_tickets_unplanned", "id", postgresql_where=text("regulation IS NULL"),
              sqlite_where=text("regulation IS NULL")),
        # What the dispatcher still owes: a handful of rows at any moment, whatever the size of the table.
        Index("ix_tickets_dispatch_owed", "id", postgresql_where=text("dispatch_owed_at IS NOT NULL"),
              sqlite_where=text("dispatch_owed_at IS NOT NULL")),
    )

    # The primary key is the ticket's human number: short, unique, never reused.
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subject: Mapped[str] = mapped_column(String(300))
    # active_history: the load counters need a ticket's old assignee, status and priority whenever one changes.
    status: Mapped[TicketStatus] = mapped_column(_enum(TicketStatus, "ticket_status"), default=TicketStatus.new,
                                                 active_history=True)
    priority: Mapped[Priority] = mapped_column(_enum(Priority, "ticket_priority"), default=Priority.normal,
                                               active_history=True)
    category: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(String(40))
    """How the request ended, from the list the admin keeps (`Outcome`): set when it is resolved."""
    outcome_reason: Mapped[str | None] = mapped_column(String(60))
    """Why, for an outcome that asks for a reason (a refusal: price, benefits unclear, …)."""
    channel: Mapped[str] = mapped_column(String(16), active_history=True)
    skills: Mapped[str] = mapped_column(String(300), default="", server_default="")
    """Skills its agent must have, sorted and comma-joined (`skill_key`); empty → anyone in the group."""
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"), active_history=True)
    follows_up_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    """Set when an agent merged this ticket into another of the client's: its messages moved there, it is closed,
    and a reply naming it, or its portal link, leads to that ticket."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    first_response_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """First response or an agent's explicit take-over: what "processed" means to a regulation."""
    regulation: Mapped[str | None] = mapped_column(String(32))
    """The regulation whose ladder the ticket is on ("": none applies; None: not planned yet)."""
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    portal_key: Mapped[str | None] = mapped_column(String(43), unique=True, default=lambda: secrets.token_urlsafe(24))
    """The unguessable part of the client's /portal link (in acknowledgements and resolution notices)."""
    dispatch_owed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """Set by the receipt, cleared by the dispatcher: since when routing and the regulation plan are owed (the time
    the plan's clock events are written at). Kept at the first receipt when several arrive before one dispatch."""
    dispatch_reason: Mapped[str | None] = mapped_column(String(200))
    """What the receipt said happened ("registered via email", "the client wrote via telegram"), for the clock."""
    route_owed: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    """The dispatcher is to find the ticket an agent (new, or reopened with nobody on it); a follow-up to a ticket
    already waiting in its queue leaves that to the queue's drain."""
    route_to_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    """With `route_owed`: the agent the dispatcher gives the ticket to instead of choosing one (the agent who took
    the call that opened it). The receipt only names them, so it locks no agent's load counter."""
    escalated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """When a regulation's step took it to the head of its department (it shows as escalated in their queue)."""
    escalated_to_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    """The head, when the head is an agent here."""

    @property
    def number(self) -> int:
        return self.id


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        Index("ix_messages_ticket_id", "ticket_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    direction: Mapped[Direction] = mapped_column(_enum(Direction, "message_direction"))
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str | None] = mapped_column(String(255))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    body_text: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    delivery_status: Mapped[DeliveryStatus | None] = mapped_column(_enum(DeliveryStatus, "delivery_status"))
    delivery_error: Mapped[str | None] = mapped_column(String(1000))
    thread_reason: Mapped[str | None] = mapped_column(String(200))
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default=text("'{}'"))
    """Channel details kept for threading and display (email: Message-ID, References, From, To, Cc, …)."""
    problems: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    """What could not be decoded; the message was stored anyway, with its raw form."""
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """The original bytes as received (an attachment-store reference)."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    @classmethod
    def delivery_open(cls) -> ColumnElement[bool]:
        """Its delivery status may still change: `delivered` (the client's screen showed it) is never undone."""
        return or_(cls.delivery_status.is_(None), cls.delivery_status != DeliveryStatus.delivered)


class OutboxStatus(StrEnum):
    queued = "queued"
    sending = "sending"
    sent = "sent"
    delivered = "delivered"
    failed = "failed"
    cancelled = "cancelled"
    """Not needed any more (the email copy of a chat reply the client had already seen)."""


class Outbox(Base):
    """A notification or reply to deliver, written in the same transaction as the change that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(500))
    body_text: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str | None] = mapped_column(Text)
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[OutboxStatus] = mapped_column(_enum(OutboxStatus, "outbox_status"), default=OutboxStatus.queued)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(1000))
    provider_id: Mapped[str | None] = mapped_column(String(255), index=True)
    """The provider's id (relay queue id, SMS gateway message id): delivery receipts find the row by it."""
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    template: Mapped[str | None] = mapped_column(String(64))
    """A notice written as its template's name and `params`: the worker renders it when it delivers it, so no
    transaction that writes one spends time rendering (`notifier.render`)."""
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class CannedResponse(Base):
    """A reply agents insert and adapt instead of typing it again; `{name}` and `{number}` are filled in."""

    __tablename__ = "canned_responses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    title: Mapped[str] = mapped_column(String(100), unique=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class TicketLink(Base):
    """Two tickets of one client an agent marked as related (same problem, a follow-up by another channel);
    stored once, the lower number first."""

    __tablename__ = "ticket_links"
    __table_args__ = (CheckConstraint("ticket_id < linked_id", name="ordered"),
                      Index("ix_ticket_links_linked_id", "linked_id"))

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    linked_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Rating(Base):
    """The client's answer to "how did we do?" on a resolved ticket: one per ticket."""

    __tablename__ = "ratings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), unique=True)
    score: Mapped[int] = mapped_column(Integer)
    """1 (bad) to 5 (excellent)."""
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Parked(Base):
    """An inbound item a channel could not store after its retries: kept whole for an admin, so the channel moves
    on to the next client's item and nothing is lost (the dead-letter table)."""

    __tablename__ = "parked_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str | None] = mapped_column(String(255))
    """The channel's own name for the item: a Message-ID, a Telegram update id, a web-chat message id."""
    payload: Mapped[str | None] = mapped_column(Text)
    """The item as it came (JSON, a form), when it is text; a mail's bytes are in `raw`."""
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """The stored file of the item's bytes (an `AttachmentRef`), for a mail."""
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class TicketTag(Base):
    """A free label on a ticket ("refund", "vip", "возврат"): agents filter queues by it."""

    __tablename__ = "ticket_tags"
    __table_args__ = (Index("ix_ticket_tags_tag", "tag"),)

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(40), primary_key=True)


class TicketSeen(Base):
    """When an agent last opened a ticket: a client's message after it is unread to them (the queue marks it)."""

    __tablename__ = "ticket_seen"

    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SavedView(Base):
    """A queue an agent filtered and named, to open again in one click (the console's own views)."""

    __tablename__ = "saved_views"
    __table_args__ = (UniqueConstraint("agent_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(60))
    query: Mapped[str] = mapped_column(String(1000))
    """The queue's address after `/desk?`: its view, filters and order."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WebSession(Base):
    """A console login: the cookie holds a random token, the table only its SHA-256."""

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_agent_id", "agent_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    csrf: Mapped[str] = mapped_column(String(64))
    """The token every form of this session must carry back."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OutboxAttempt(Base):
    """One try at delivering an outbox row, or a provider's receipt about it: the row's delivery history."""

    __tablename__ = "outbox_attempts"
    __table_args__ = (Index("ix_outbox_attempts_outbox_id", "outbox_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    """The row's attempt count when this happened (a receipt keeps the last attempt's number)."""
    outcome: Mapped[str] = mapped_column(String(16))
    """sent, retry, failed, abandoned (its worker died), unconfirmed, cancelled, or a receipt's
    delivered/undelivered."""
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    error: Mapped[str | None] = mapped_column(String(1000))
    provider_id: Mapped[str | None] = mapped_column(String(255))


class EventKind(StrEnum):
    """Every kind of audit event (`events.kind`): what `tickets.audit.record` writes and the console and reports
    read."""

    created = "created"
    message_received = "message_received"
    reopened = "reopened"
    status_changed = "status_changed"
    delivery_failed = "delivery_failed"
    assigned = "assigned"
    queued = "queued"
    not_reassigned = "not_reassigned"
    returned = "returned"
    unassigned = "unassigned"
    taken = "taken"
    transferred = "transferred"
    replied = "replied"
    note_added = "note_added"
    priority_changed = "priority_changed"
    group_changed = "group_changed"
    skills_changed = "skills_changed"
    category_changed = "category_changed"
    customer_merged = "customer_merged"
    linked = "linked"
    unlinked = "unlinked"
    merged = "merged"
    merged_in = "merged_in"
    call_logged = "call_logged"
    call_response = "call_response"
    sla_step_fired = "sla_step_fired"
    sla_breached = "sla_breached"
    escalated = "escalated"
    sla_step_dropped = "sla_step_dropped"
    tags_changed = "tags_changed"
    outcome_set = "outcome_set"


class Event(Base):
    """The audit trail: one row for every change to a ticket, with who did it and why."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_ticket_id", "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(500))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CallDisposition(StrEnum):
    answered = "answered"
    missed = "missed"
    busy = "busy"
    failed = "failed"
    voicemail = "voicemail"


class Call(Base):
    """One phone call as the PBX or an agent logged it; `call_id` (the PBX's id) makes logging it twice harmless."""

    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_customer_id", "customer_id", "started_at"),
        Index("ix_calls_ticket_id", "ticket_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(255), unique=True)
    direction: Mapped[Direction] = mapped_column(_enum(Direction, "call_direction"))
    disposition: Mapped[CallDisposition] = mapped_column(_enum(CallDisposition, "call_disposition"))
    caller: Mapped[str | None] = mapped_column(String(64))
    """E.164 for an outside number; an extension as written; None when withheld."""
    called: Mapped[str | None] = mapped_column(String(64))
    caller_name: Mapped[str | None] = mapped_column(String(200))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    """None when the caller withheld their number: the call is kept, but nobody can be called back."""
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    extension: Mapped[str | None] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    duration: Mapped[int] = mapped_column(Integer, default=0)
    talk_time: Mapped[int] = mapped_column(Integer, default=0)
    notes: Mapped[str | None] = mapped_column(Text)
    recording_url: Mapped[str | None] = mapped_column(String(1000))
    source: Mapped[str] = mapped_column(String(16))
    """Where the entry came from: `api` or `cdr`."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LiveCallState(StrEnum):
    ringing = "ringing"
    answered = "answered"
    ended = "ended"


class LiveCall(Base):
    """A call as the PBX reports it while it happens (CTI events): who it rings, who took it, the card it pops.

    At hang-up it is logged as a `Call` through the same path as `POST /api/v1/calls` (same call id, so a CDR
    import of it later is a duplicate); the row stays as the caller log's history.
    """

    __tablename__ = "live_calls"
    __table_args__ = (Index("ix_live_calls_state", "state", "started_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(255), unique=True)
    direction: Mapped[Direction] = mapped_column(_enum(Direction, "live_call_direction"))
    state: Mapped[LiveCallState] = mapped_column(_enum(LiveCallState, "live_call_state"))
    caller: Mapped[str | None] = mapped_column(String(64))
    called: Mapped[str | None] = mapped_column(String(64))
    client_number: Mapped[str | None] = mapped_column(String(64))
    """The outside party in E.164 (the caller of an inbound call); None when withheld or not a number."""
    queue: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(8), default="cti", server_default="cti")
    """Who reports it: `cti` (the endpoint) or `ami` (the Asterisk session); its log entry says the same."""
    ringing: Mapped[list[int]] = mapped_column(JSON, default=list)
    """The agents whose phone rings (or who dial out): they get the pop."""
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    """Who answered (or made) the call."""
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    """The ticket an agent put the call on from the pop; the logged call joins it."""
    cause: Mapped[str | None] = mapped_column(String(32))
    logged_call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    @property
    def people(self) -> set[int]:
        """The agents on the call: those it rang for, and whoever took it."""
        return {*self.ringing, *([self.agent_id] if self.agent_id else [])}


class ActivityType(Base):
    """A kind of contact with a client (call, meeting, demonstration, …): the list the admin keeps."""

    __tablename__ = "activity_types"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Activity(Base):
    """A contact with a client as the agent recorded it: its type, outcome and note, on the card (and a ticket)."""

    __tablename__ = "activities"
    __table_args__ = (Index("ix_activities_customer_id", "customer_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    type_id: Mapped[int] = mapped_column(ForeignKey("activity_types.id"))
    outcome: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    call_id: Mapped[str | None] = mapped_column(String(255))
    """The call it records, when recorded from the pop."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PlanStatus(StrEnum):
    pending = "pending"
    done = "done"
    """The agent recorded a contact with the client after planning it."""


class PlannedContact(Base):
    """The next contact an agent planned with a client: reminded at `due_at` by a timer, overdue until kept."""

    __tablename__ = "planned_contacts"
    __table_args__ = (Index("ix_planned_contacts_status_due_at", "status", "due_at"),
                      Index("ix_planned_contacts_agent_id", "agent_id", "status", "due_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    activity_id: Mapped[int | None] = mapped_column(ForeignKey("activities.id", ondelete="SET NULL"))
    """The activity that planned it."""
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    what: Mapped[str] = mapped_column(String(300))
    status: Mapped[PlanStatus] = mapped_column(_enum(PlanStatus, "plan_status"))
    reminded_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """When the reminder went (its lateness is this minus `due_at`)."""
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Outcome(Base):
    """How a request can end (solved, refused, duplicate, no answer from the client, …): the list the admin keeps."""

    __tablename__ = "outcomes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    needs_reason: Mapped[bool] = mapped_column(Boolean, default=False)
    """A refusal: resolving with it asks which of `OutcomeReason` was the reason."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OutcomeReason(Base):
    """A reason for a refusal (price, benefits unclear, competitor, …): their shares show the weak spots."""

    __tablename__ = "outcome_reasons"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class InstallSecret(Base):
    """A credential of the installation (the CTI endpoint's token), kept as its hash and rotated with the CLI."""

    __tablename__ = "install_secrets"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DeadlineStatus(StrEnum):
    pending = "pending"
    paused = "paused"
    """The ticket waits on the client: the clock stands, `due_at` is where it stood."""
    met = "met"
    """The condition came true in time or late; `met_at` against `due_at` tells which."""
    fired = "fired"
    """Due and not met: the step's actions were carried out (once), at `fired_at`."""
    cancelled = "cancelled"


class Deadline(Base):
    """A promise a regulation made about a ticket; the database, not the job queue, is its record."""

    __tablename__ = "deadlines"
    __table_args__ = (
        UniqueConstraint("ticket_id", "regulation", "step"),
        Index("ix_deadlines_status_due_at", "status", "due_at"),
        Index("ix_deadlines_created_at", "created_at"),  # the dashboard's compliance window
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    regulation: Mapped[str] = mapped_column(String(32))
    step: Mapped[str] = mapped_column(String(32))
    met_by: Mapped[str] = mapped_column(String(32))
    """What fulfils it: `first_response` (a reply or a call to the client), `processed`, `resolved` or `replied`."""
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[DeadlineStatus] = mapped_column(
        _enum(DeadlineStatus, "deadline_status"), default=DeadlineStatus.pending
    )
    met_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Its place in the regulation's ladder (the order the API shows)."""
    kind: Mapped[str] = mapped_column(String(8), default="step", server_default="step")
    """`step` of a ladder, a target's `warning`, or the `target` itself."""
    plan: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Bumped at every re-plan: the timer job's id carries it, so an outdated timer finds nothing to do."""
    reference_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """What its time counts from (creation, the step before, the client's message)."""
    fired_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    breach: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    """Firing it marked the ticket's regulation breached."""
    version: Mapped[str | None] = mapped_column(String(12))
    """The regulation version that planned it."""

    @property
    def breached(self) -> bool:
        """Broken: fired with a breach, or met after it was due."""
        return self.breach or (self.met_at is not None and self.met_at > self.due_at)


class ClockEvent(Base):
    """A ticket's regulation clock: started, paused, resumed, stopped, re-planned, with why and which version."""

    __tablename__ = "sla_clock_events"
    __table_args__ = (Index("ix_sla_clock_events_ticket_id", "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(300))
    regulation: Mapped[str | None] = mapped_column(String(32))
    version: Mapped[str | None] = mapped_column(String(12))
    """Digest of the regulation and its calendar as they were used."""
    calendar: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


def _trigram_index(name: str, column: Any) -> Index:
    """GIN trigram index on lower(column): what lets search's `LIKE '%text%'` skip the scan of every row. PostgreSQL
    only (pg_trgm, migration 0010); SQLite has no such index and scans."""
    label = f"lower_{column.key}"
    return Index(name, func.lower(column).label(label), postgresql_using="gin",
                 postgresql_ops={label: "gin_trgm_ops"}).ddl_if(dialect="postgresql")


SEARCH_INDEXES = (
    _trigram_index("ix_tickets_subject_trgm", Ticket.subject),
    _trigram_index("ix_messages_body_text_trgm", Message.body_text),
    _trigram_index("ix_customers_name_trgm", Customer.name),
    _trigram_index("ix_customer_identities_address_trgm", CustomerIdentity.address),
)
