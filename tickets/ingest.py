"""IngestMessage: one inbound message becomes a stored, threaded, routed ticket in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets import audit
from tickets.content import sanitize_html
from tickets.errors import InvalidInput
from tickets.inbound import Inbound
from tickets.models import (
    ACTIVE_STATUSES,
    Customer,
    CustomerIdentity,
    Direction,
    Group,
    Message,
    Priority,
    Ticket,
    TicketStatus,
)
from tickets.ports import Assigner


@dataclass(frozen=True)
class IngestResult:
    ticket: Ticket
    message: Message
    created: bool
    """A new ticket was opened for this message."""
    duplicate: bool
    """The message had been stored before (a redelivery); nothing was written."""


async def ingest_in(
    session: AsyncSession, inbound: Inbound, now: datetime, router: Assigner, default_group: str
) -> IngestResult:
    """The whole ingest inside the caller's transaction; the caller commits (and retries on a race)."""
    if not inbound.identities:
        raise InvalidInput({"identities": "a message needs at least one way to reach its sender"})
    if inbound.external_id:
        existing = await session.scalar(
            select(Message).where(Message.channel == inbound.channel, Message.external_id == inbound.external_id)
        )
        if existing is not None:
            ticket = await session.get_one(Ticket, existing.ticket_id)
            return IngestResult(ticket, existing, created=False, duplicate=True)

    customer = await _customer_card(session, inbound, now)
    ticket, reason, created, needs_routing = await _thread(session, inbound, customer, now, default_group)
    message = Message(
        ticket_id=ticket.id,
        direction=Direction.inbound,
        channel=inbound.channel,
        external_id=inbound.external_id,
        customer_id=customer.id,
        body_text=inbound.body_text,
        body_html=sanitize_html(inbound.body_html),
        attachments=[a.as_dict() for a in inbound.attachments],
        thread_reason=reason,
        created_at=now,
    )
    session.add(message)
    ticket.updated_at = now
    if needs_routing:
        await router.assign(session, ticket, now)
    await session.flush()
    return IngestResult(ticket, message, created=created, duplicate=False)


async def _customer_card(session: AsyncSession, inbound: Inbound, now: datetime) -> Customer:
    """The one card every identity of this sender maps to; new identities join the first card found."""
    known = {
        (row.kind, row.address): row
        for row in await session.scalars(
            select(CustomerIdentity).where(
                or_(*(and_(CustomerIdentity.kind == i.kind, CustomerIdentity.address == i.address) for i in inbound.identities))
            )
        )
    }
    owner_id = next(
        (known[(i.kind, i.address)].customer_id for i in inbound.identities if (i.kind, i.address) in known), None
    )
    if owner_id is None:
        customer = Customer(name=inbound.customer_name, language=inbound.language, created_at=now, updated_at=now)
        session.add(customer)
        await session.flush()
    else:
        customer = await session.get_one(Customer, owner_id)
        if not customer.name and inbound.customer_name:
            customer.name = inbound.customer_name
        if not customer.language and inbound.language:
            customer.language = inbound.language
        customer.updated_at = now
    for identity in inbound.identities:
        if (identity.kind, identity.address) not in known:
            session.add(
                CustomerIdentity(customer_id=customer.id, kind=identity.kind, address=identity.address, created_at=now)
            )
    return customer


async def _thread(
    session: AsyncSession, inbound: Inbound, customer: Customer, now: datetime, default_group: str
) -> tuple[Ticket, str, bool, bool]:
    """Find the ticket this message continues, or open one: (ticket, why, created, needs routing).

    A follow-up on a ticket already waiting in its queue leaves it there; the queue drain routes it.
    """
    earlier: Ticket | None = None
    reason = ""
    if inbound.ticket_number is not None:
        referenced = await session.get(Ticket, inbound.ticket_number, with_for_update=True)
        if referenced is not None and referenced.customer_id == customer.id:
            earlier, reason = referenced, f"references ticket #{referenced.id}"
    if earlier is None and inbound.continue_open_within is not None:
        earlier = await session.scalar(
            select(Ticket)
            .where(
                Ticket.customer_id == customer.id,
                Ticket.channel == inbound.channel,
                Ticket.status.in_(ACTIVE_STATUSES),
                Ticket.updated_at >= now - inbound.continue_open_within,
            )
            .order_by(Ticket.updated_at.desc())
            .limit(1)
            .with_for_update()
        )
        if earlier is not None:
            reason = f"continues the customer's open {inbound.channel} ticket #{earlier.id}"

    if earlier is not None and earlier.status != TicketStatus.closed:
        reopened = earlier.status == TicketStatus.resolved
        if reopened:
            earlier.status = TicketStatus.open if earlier.assignee_id else TicketStatus.new
            earlier.resolved_at = None
            audit.record(session, earlier.id, "reopened", now, actor="customer", reason="the customer replied")
            reason += "; reopened it"
        audit.record(session, earlier.id, "message_received", now, actor="customer", channel=inbound.channel)
        return earlier, reason, False, reopened and earlier.assignee_id is None

    group = await _group(session, inbound.group, default_group, now)
    ticket = Ticket(
        subject=(inbound.subject or _subject_from(inbound.body_text))[:300],
        status=TicketStatus.new,
        priority=inbound.priority or Priority.normal,
        category=inbound.category,
        channel=inbound.channel,
        customer_id=customer.id,
        group_id=group.id,
        follows_up_id=earlier.id if earlier is not None else None,
        created_at=now,
        updated_at=now,
    )
    session.add(ticket)
    await session.flush()
    if earlier is not None:
        reason = f"follow-up to closed ticket #{earlier.id}"
    else:
        reason = f"new {inbound.channel} message"
    audit.record(session, ticket.id, "created", now, actor="customer", reason=reason, channel=inbound.channel)
    return ticket, reason, True, True


async def _group(session: AsyncSession, name: str | None, default_group: str, now: datetime) -> Group:
    if name:
        group = await session.scalar(select(Group).where(Group.name == name))
        if group is not None:
            return group
    return await ensure_group(session, default_group, now)


async def ensure_group(session: AsyncSession, name: str, now: datetime) -> Group:
    group = await session.scalar(select(Group).where(Group.name == name))
    if group is None:
        group = Group(name=name, created_at=now)
        session.add(group)
        await session.flush()
    return group


def _subject_from(text: str) -> str:
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first_line[:80] or "(no subject)"
