"""IngestMessage: one inbound message becomes a stored, threaded, routed ticket in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets import audit
from tickets.content import sanitize_html
from tickets.errors import InvalidInput, NotStored
from tickets.inbound import Inbound
from tickets.merging import followed
from tickets.models import (
    ACTIVE_STATUSES,
    Customer,
    CustomerIdentity,
    DeliveryStatus,
    Direction,
    EventKind,
    Group,
    Message,
    Priority,
    Ticket,
    TicketStatus,
    TicketTag,
)
from tickets.ports import Assigner, Placed


@dataclass(frozen=True)
class IngestResult:
    ticket: Ticket
    message: Message
    created: bool
    """A new ticket was opened for this message."""
    duplicate: bool
    """The message had been stored before (a redelivery); nothing was written."""
    needs_routing: bool = False
    """The ticket waits for an agent: the caller routes it last, so the agents stay locked only until commit."""


@dataclass(frozen=True)
class _Thread:
    ticket: Ticket
    reason: str
    created: bool
    needs_routing: bool


async def ingest_in(
    session: AsyncSession, inbound: Inbound, now: datetime, router: Assigner, default_group: str
) -> IngestResult:
    """Store and thread the message inside the caller's transaction; the caller routes a ticket that
    `needs_routing` (after writing anything else, as routing locks the agents) and commits, retrying on a race."""
    if not inbound.identities:
        raise InvalidInput({"identities": "a message needs at least one way to reach its sender"})
    if inbound.external_id:
        existing = await session.scalar(
            select(Message).where(Message.channel == inbound.channel, Message.external_id == inbound.external_id)
        )
        if existing is not None:
            ticket = await session.get_one(Ticket, existing.ticket_id)
            return IngestResult(ticket, existing, created=False, duplicate=True)
    if inbound.bounce_of is not None:
        return await _bounce(session, inbound, now)

    customer = await _customer_card(session, inbound, now)
    thread = await _thread(session, inbound, customer, now, router, default_group)
    message = _message(inbound, thread.ticket, thread.reason, now, customer_id=customer.id, direction=Direction.inbound)
    session.add(message)
    thread.ticket.updated_at = now
    await session.flush()
    return IngestResult(thread.ticket, message, created=thread.created, duplicate=False,
                        needs_routing=thread.needs_routing)


def message_meta(inbound: Inbound) -> dict[str, Any]:
    """What a stored message keeps of its channel's details: the adapter's meta, the other addresses it went to and
    why it is an automatic answer (both paths of the receipt store the same)."""
    meta = dict(inbound.meta)
    if inbound.participants:
        meta["participants"] = list(inbound.participants)
    if inbound.auto_reply:
        meta["auto_reply"] = inbound.auto_reply
    return meta


def _message(
    inbound: Inbound, ticket: Ticket, reason: str, now: datetime, *, customer_id: int | None, direction: Direction
) -> Message:
    meta = message_meta(inbound)
    return Message(
        ticket_id=ticket.id,
        direction=direction,
        channel=inbound.channel,
        external_id=inbound.external_id,
        customer_id=customer_id,
        body_text=inbound.body_text,
        body_html=sanitize_html(inbound.body_html),
        attachments=[a.as_dict() for a in inbound.attachments],
        thread_reason=reason,
        meta=meta,
        problems=list(inbound.problems),
        raw=inbound.raw.as_dict() if inbound.raw else None,
        created_at=now,
    )


async def _bounce(session: AsyncSession, inbound: Inbound, now: datetime) -> IngestResult:
    """A delivery failure report joins the ticket of the message that bounced and marks that message failed."""
    bounced = await session.scalar(
        select(Message).where(
            Message.channel == inbound.channel,
            Message.external_id == inbound.bounce_of,
            Message.direction == Direction.outbound,
        )
    )
    if bounced is None:
        raise NotStored(f"delivery failure report about {inbound.bounce_of}, which we did not send")
    ticket = await session.get_one(Ticket, bounced.ticket_id, with_for_update=True)
    reason = inbound.bounce_reason or "delivery failed"
    bounced.delivery_status = DeliveryStatus.failed
    bounced.delivery_error = reason[:1000]
    report = _message(inbound, ticket, f"delivery failure report for message {bounced.id}", now,
                      customer_id=None, direction=Direction.internal)
    session.add(report)
    ticket.updated_at = now
    audit.record(session, ticket.id, EventKind.delivery_failed, now, actor=f"channel:{inbound.channel}",
                 reason=reason[:500], message_id=bounced.id)
    await session.flush()
    return IngestResult(ticket, report, created=False, duplicate=False)


async def _customer_card(session: AsyncSession, inbound: Inbound, now: datetime) -> Customer:
    """The one card every identity of this sender maps to; new identities join the first card found."""
    known = {
        (row.kind, row.address): row
        for row in await session.scalars(
            select(CustomerIdentity).where(
                or_(*(and_(CustomerIdentity.kind == i.kind, CustomerIdentity.address == i.address)
                      for i in inbound.identities))
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


async def _on_ticket(session: AsyncSession, ticket: Ticket, customer: Customer, inbound: Inbound) -> bool:
    """Whether the sender may add to this ticket: its customer, or someone an earlier message went to."""
    if ticket.customer_id == customer.id:
        return True
    addresses = {i.address for i in inbound.identities}
    metas = await session.scalars(select(Message.meta).where(Message.ticket_id == ticket.id))
    return any(addresses & set(meta.get("participants", ())) for meta in metas)


async def _earlier(
    session: AsyncSession, inbound: Inbound, customer: Customer, now: datetime
) -> tuple[Ticket | None, str]:
    """The ticket this message continues, by the channel's rules in order of how telling they are."""
    notes: list[str] = []
    if inbound.thread_ids:
        rows = await session.execute(
            select(Message.external_id, Message.ticket_id).where(
                Message.channel == inbound.channel, Message.external_id.in_(inbound.thread_ids)
            )
        )
        ticket_of = {external_id: ticket_id for external_id, ticket_id in rows}
        matched = next((tid for tid in inbound.thread_ids if tid in ticket_of), None)
        if matched is not None:
            ticket = await followed(session, await session.get_one(Ticket, ticket_of[matched], with_for_update=True),
                              lock=True)
            if await _on_ticket(session, ticket, customer, inbound):
                return ticket, f"replies to {matched} of ticket #{ticket.id}"
            notes.append(f"replied to {matched} of ticket #{ticket.id} but the sender is not on it")
    if inbound.ticket_number is not None:
        referenced = await session.get(Ticket, inbound.ticket_number, with_for_update=True)
        if referenced is not None:
            referenced = await followed(session, referenced, lock=True)
        if referenced is not None and referenced.customer_id == customer.id:
            return referenced, f"references ticket #{referenced.id}"
        if referenced is not None:
            notes.append(f"names ticket #{referenced.id} but the sender is not its customer")
    if inbound.continue_open_within is not None:
        continued = await session.scalar(
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
        if continued is not None:
            return continued, f"continues the customer's open {inbound.channel} ticket #{continued.id}"
    return None, "; ".join(notes)


async def _thread(
    session: AsyncSession, inbound: Inbound, customer: Customer, now: datetime, router: Assigner, default_group: str
) -> _Thread:
    """Join the ticket this message continues, or open one, saying why.

    A follow-up on a ticket already waiting in its queue leaves it there; the queue drain routes it.
    """
    earlier, reason = await _earlier(session, inbound, customer, now)
    if earlier is not None and earlier.status != TicketStatus.closed:
        reopen = earlier.status == TicketStatus.resolved and inbound.auto_reply is None
        if reopen:
            earlier.status = TicketStatus.open if earlier.assignee_id else TicketStatus.new
            earlier.resolved_at = None
            audit.record(session, earlier.id, EventKind.reopened, now, actor="customer", reason="the customer replied")
            reason += "; reopened it"
        elif earlier.status == TicketStatus.pending and inbound.auto_reply is None:
            # We were waiting on the client and they answered: the ticket is the agent's move again (and the
            # regulation clock, which stood while it was pending, runs again).
            earlier.status = TicketStatus.open
            audit.record(session, earlier.id, EventKind.status_changed, now, actor="customer", old="pending",
                         new="open", reason="the customer replied")
            reason += "; no longer waiting on the client"
        audit.record(session, earlier.id, EventKind.message_received, now, actor="customer", channel=inbound.channel,
                     auto_reply=inbound.auto_reply)
        return _Thread(earlier, reason, False, reopen and earlier.assignee_id is None)

    if inbound.auto_reply is not None:
        raise NotStored(f"automatic reply ({inbound.auto_reply}) to no open ticket")
    group = await group_for(session, inbound.group, default_group, now)
    ticket = Ticket(
        subject=(inbound.subject or subject_from(inbound.body_text))[:300],
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
    placed = await router.place(session, ticket, inbound.language)
    session.add(ticket)
    await session.flush()
    if earlier is not None:
        reason = f"follow-up to closed ticket #{earlier.id} ({reason})"
    else:
        reason = f"new {inbound.channel} message" + (f"; {reason}" if reason else "")
    reason = record_created(session, ticket, placed, reason, now)
    return _Thread(ticket, reason[:200], True, True)


def record_created(session: AsyncSession, ticket: Ticket, placed: Placed, reason: str, now: datetime) -> str:
    """The new ticket's `created` event (naming the rules that placed it) and the tags those rules give it."""
    rules = placed.describe()
    reason += f"; {rules}" if rules else ""
    audit.record(session, ticket.id, EventKind.created, now, actor="customer", reason=reason[:500],
                 channel=ticket.channel)
    if placed.tags:
        session.add_all([TicketTag(ticket_id=ticket.id, tag=tag) for tag in placed.tags])
        audit.record(session, ticket.id, EventKind.tags_changed, now, actor="router", reason=rules,
                     old="", new=", ".join(placed.tags))
    return reason


async def group_for(session: AsyncSession, name: str | None, default_group: str, now: datetime) -> Group:
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


def subject_from(text: str) -> str:
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first_line[:80] or "(no subject)"
