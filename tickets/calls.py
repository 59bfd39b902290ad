"""LogCall: a phone call goes on the client's card and, by what happened on it, becomes work on a ticket.

- a missed inbound call (no answer, busy, failed, voicemail) is callback work: it joins the client's
  open callback ticket, or opens one with its own deadline, routed like any new ticket;
- an answered call, or an agent's outbound call, lands on the client's open ticket (an open callback
  first); with notes and no open ticket it opens one, owed to the agent on the call (the dispatcher gives it);
- an agent's outbound call, or an inbound one an agent answered, is a response to the client: it sets
  the ticket's first response and meets its callback deadline;
- a call from a withheld number is kept, on no card and no ticket: nobody can be called back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import cast

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets import audit, deadlines
from tickets.errors import InvalidInput
from tickets.inbound import CallDetails, Inbound
from tickets.ingest import group_for, record_created, subject_from
from tickets.models import (
    ACTIVE_STATUSES,
    Agent,
    Call,
    CallDisposition,
    Customer,
    CustomerIdentity,
    Direction,
    EventKind,
    Group,
    Message,
    Priority,
    Ticket,
    TicketStatus,
)
from tickets.ports import Assigner, Regulations

CHANNEL = "phone"
CALLBACK = "callback"
"""Category of the tickets missed calls open; their regulation is to call the client back."""


@dataclass
class CallBatch:
    """What one transaction of many calls looks up once, and keeps current as its calls are logged.

    A CDR import logs hundreds of calls per transaction; asking the database the same questions for
    each (whose number is this, what is open for them) was most of its time.
    """

    logged: dict[str, Call] = field(default_factory=dict)
    """Calls logged before or earlier in the batch, by call id."""
    by_extension: dict[str, Agent | None] = field(default_factory=dict)
    cards: dict[tuple[str, str], Customer] = field(default_factory=dict)
    """The card of each (kind, address) of the batch that has one (held here, so the session keeps them)."""
    open_tickets: dict[Customer, list[Ticket]] = field(default_factory=dict)
    """Active tickets of every customer the batch has met, locked for the transaction."""
    touched: set[Customer] = field(default_factory=set)
    """Cards already marked updated in this transaction: one UPDATE each, not one per call."""
    held: list[Ticket] = field(default_factory=list)
    """Tickets loaded for this batch, held so the session's identity map keeps them."""
    groups: dict[str | None, Group] = field(default_factory=dict)
    """Group of new tickets, by the name the call asked for."""
    new_calls: dict[str, _NewCall] = field(default_factory=dict)
    """Calls of this batch, inserted together by `finish_batch` (their card or message may still lack an id)."""


@dataclass
class _NewCall:
    values: dict[str, object]
    customer: Customer | None
    message: Message | None
    ticket: Ticket | None


@dataclass(frozen=True)
class CallResult:
    call_id: str
    call: Call | None
    """The stored call; None only inside a batch, until `finish_batch` inserts it."""
    ticket: Ticket | None
    """The ticket the call landed on; None for a withheld number, or an answered call without notes and no open
    ticket."""
    created: bool
    """The call opened this ticket."""
    duplicate: bool
    """This call id was logged before: nothing was written."""


async def log_call_in(
    session: AsyncSession,
    inbound: Inbound,
    now: datetime,
    router: Assigner,
    default_group: str,
    regulations: Regulations | None,
    batch: CallBatch,
) -> CallResult:
    """The whole LogCall inside the caller's transaction; `batch.logged` must hold this call if it was logged before."""
    details = inbound.call
    if details is None or not inbound.external_id:
        raise InvalidInput({"call_id": "a call needs the PBX's call id"})
    known = batch.logged.get(inbound.external_id)
    if known is not None:
        landed = await session.get(Ticket, known.ticket_id) if known.ticket_id else None
        return CallResult(known.call_id, known, landed, created=False, duplicate=True)
    if inbound.external_id in batch.new_calls:  # twice in one batch
        return CallResult(inbound.external_id, None, batch.new_calls[inbound.external_id].ticket, False, True)

    agent = await _agent(session, details, batch)
    customer = await _card(session, inbound, now, batch) if inbound.identities else None
    ticket: Ticket | None = None
    created = False
    reason = ""
    if customer is not None:
        ticket, created, reason = await _ticket_for(
            session, inbound, details, customer, agent, now, router, default_group, regulations, batch
        )
    message = _message(inbound, details, ticket, customer, agent, reason, now) if ticket is not None else None
    if message is not None:
        session.add(message)
    values: dict[str, object] = dict(
        call_id=inbound.external_id,
        direction=Direction(details.direction),
        disposition=CallDisposition(details.disposition),
        caller=details.caller,
        called=details.called,
        caller_name=inbound.customer_name,
        ticket_id=ticket.id if ticket else None,
        agent_id=agent.id if agent else None,
        extension=details.extension,
        started_at=details.started_at,
        answered_at=details.answered_at,
        ended_at=details.ended_at,
        duration=details.duration,
        talk_time=details.talk_time,
        notes=details.notes,
        recording_url=details.recording_url,
        source=details.source,
        created_at=now,
    )
    batch.new_calls[inbound.external_id] = _NewCall(values, customer, message, ticket)
    if ticket is not None:
        ticket.updated_at = now
        if responds(details, agent):
            at = min(details.answered_at or details.started_at, now)
            if ticket.first_response_at is None:
                ticket.first_response_at = at
            ticket.processed_at = ticket.processed_at or at
            met = await deadlines.fulfil(session, ticket.id, deadlines.FIRST_RESPONSE, at)
            audit.record(session, ticket.id, EventKind.call_response, now, actor=_actor(agent),
                         reason=describe(details), call_id=inbound.external_id, deadlines_met=met)
        else:
            audit.record(session, ticket.id, EventKind.call_logged, now, actor=_actor(agent), reason=describe(details),
                         call_id=inbound.external_id)
    return CallResult(inbound.external_id, None, ticket, created=created, duplicate=False)


async def finish_batch(session: AsyncSession, batch: CallBatch, results: list[CallResult]) -> list[CallResult]:
    """Insert the batch's calls in one statement (after their new cards and messages got ids) and fill them in."""
    if batch.new_calls:
        await session.flush()
        rows = [
            {**new.values, "customer_id": new.customer.id if new.customer else None,
             "message_id": new.message.id if new.message else None}
            for new in batch.new_calls.values()
        ]
        table = cast(Table, Call.__table__)
        # Core, not the ORM's bulk insert: without a RETURNING order to keep, it is one multi-row INSERT per page.
        ids = list(await session.scalars(insert(table).returning(table.c.id), rows))
        for call in await session.scalars(select(Call).where(Call.id.in_(ids))):
            batch.logged[call.call_id] = call
        batch.new_calls.clear()
    return [result if result.call is not None else replace(result, call=batch.logged[result.call_id])
            for result in results]


async def start_batch(session: AsyncSession, inbounds: Sequence[Inbound]) -> CallBatch:
    """Look up, in three queries, what the batch's calls need: calls logged before, cards, their open tickets."""
    batch = CallBatch()
    call_ids = {i.external_id for i in inbounds if i.external_id}
    if call_ids:
        batch.logged = {c.call_id: c for c in await session.scalars(select(Call).where(Call.call_id.in_(call_ids)))}
    if batch.logged:  # the tickets duplicates answer with, in one query rather than one each
        batch.held.extend(await session.scalars(
            select(Ticket).where(Ticket.id.in_({c.ticket_id for c in batch.logged.values() if c.ticket_id}))
        ))
    wanted = {(i.kind, i.address) for inbound in inbounds for i in inbound.identities}
    if wanted:
        rows = await session.execute(
            select(CustomerIdentity.kind, CustomerIdentity.address, Customer)
            .join(Customer, Customer.id == CustomerIdentity.customer_id)
            .where(  # both columns, so the (kind, address) unique index serves it
                CustomerIdentity.kind.in_({kind for kind, _ in wanted}),
                CustomerIdentity.address.in_({address for _, address in wanted}),
            )
        )
        batch.cards = {(kind, address): card for kind, address, card in rows if (kind, address) in wanted}
    by_id = {card.id: card for card in batch.cards.values()}
    if by_id:
        batch.open_tickets = {card: [] for card in by_id.values()}
        for ticket in await session.scalars(
            select(Ticket)
            .where(Ticket.customer_id.in_(by_id), Ticket.status.in_(ACTIVE_STATUSES))
            .order_by(Ticket.id)
            .with_for_update()
        ):
            batch.open_tickets[by_id[ticket.customer_id]].append(ticket)
    return batch


async def _card(session: AsyncSession, inbound: Inbound, now: datetime, batch: CallBatch) -> Customer:
    """The caller's card from the batch's lookups; a number never seen gets a new card (and joins the lookups).

    A call has one identity, the client's number (`channels.phone.entry.call_inbound`).
    """
    (identity,) = inbound.identities
    customer = batch.cards.get((identity.kind, identity.address))
    if customer is None:  # the batch's lookup found no card for it: a new client, inserted with the batch
        customer = Customer(name=inbound.customer_name, created_at=now, updated_at=now)
        session.add(customer)
        session.add(CustomerIdentity(customer=customer, kind=identity.kind, address=identity.address, created_at=now))
        batch.cards[(identity.kind, identity.address)] = customer
        batch.open_tickets[customer] = []
    elif customer not in batch.touched:
        if not customer.name and inbound.customer_name:
            customer.name = inbound.customer_name
        customer.updated_at = now
    batch.touched.add(customer)
    return customer


async def _agent(session: AsyncSession, details: CallDetails, batch: CallBatch) -> Agent | None:
    """The agent on the call by id or email (unknown ones are refused), or by extension (unknown ones are just kept)."""
    if details.agent_id is not None:
        agent = await session.get(Agent, details.agent_id)
        if agent is None:
            raise InvalidInput({"agent": f"no agent with id {details.agent_id}"})
        return agent
    if details.agent_email is not None:
        agent = await session.scalar(select(Agent).where(Agent.email == details.agent_email))
        if agent is None:
            raise InvalidInput({"agent": f"no agent with email {details.agent_email}"})
        return agent
    if details.extension is not None:
        if details.extension not in batch.by_extension:
            batch.by_extension[details.extension] = await session.scalar(
                select(Agent).where(Agent.extension == details.extension)
            )
        return batch.by_extension[details.extension]
    return None


def responds(details: CallDetails, agent: Agent | int | None) -> bool:
    """The call answers the client (their ticket's first response): the agent's own call, or one an agent took."""
    return details.direction == "out" or (details.disposition == "answered" and agent is not None)


def _open_ticket(batch: CallBatch, customer: Customer) -> Ticket | None:
    """The client's open callback ticket, else their most recently active open ticket on any channel."""
    tickets = batch.open_tickets[customer]
    return min(tickets, key=lambda t: (t.category != CALLBACK, -t.updated_at.timestamp(), -t.id), default=None)


def _open_callback(batch: CallBatch, customer: Customer) -> Ticket | None:
    return max((t for t in batch.open_tickets[customer] if t.category == CALLBACK), key=lambda t: t.id, default=None)


async def _ticket_for(
    session: AsyncSession,
    inbound: Inbound,
    details: CallDetails,
    customer: Customer,
    agent: Agent | None,
    now: datetime,
    router: Assigner,
    default_group: str,
    regulations: Regulations | None,
    batch: CallBatch,
) -> tuple[Ticket | None, bool, str]:
    if details.missed:
        callback = _open_callback(batch, customer)
        if callback is not None:
            if regulations is not None:
                # Called back already, and missed again: the promise to call back starts over.
                due = regulations.callback_due(details.ended_at or details.started_at)
                await deadlines.restart(session, callback.id, CALLBACK, "call_back", due)
            return callback, False, f"another missed call while callback #{callback.id} is open"
        opened = await _new_ticket(session, inbound, customer, now, router, default_group,
                                   callback_subject(inbound, details), batch, category=CALLBACK,
                                   reason="missed call: call the client back")
        if regulations is not None:
            due = regulations.callback_due(details.ended_at or details.started_at)
            deadlines.start(session, opened, CALLBACK, "call_back", due, now)
        batch.open_tickets[customer].append(opened)
        return opened, True, "missed call: callback"
    chosen = next((t for t in batch.open_tickets[customer] if t.id == details.ticket_number), None)
    if chosen is not None:
        return chosen, False, f"call the agent put on ticket #{chosen.id}"
    ticket = _open_ticket(batch, customer)
    if ticket is not None:
        return ticket, False, f"call with the client while ticket #{ticket.id} is open"
    if not details.notes:
        return None, False, ""
    subject = subject_from(details.notes)
    ticket = await _new_ticket(session, inbound, customer, now, router, default_group, subject, batch,
                               category=None, reason=f"{describe(details)} with notes")
    if agent is not None:  # the agent who talked to the client keeps the work they noted: the dispatcher gives it
        ticket.route_to_id = agent.id
    batch.open_tickets[customer].append(ticket)
    return ticket, True, "notes of a call"


async def _new_ticket(
    session: AsyncSession, inbound: Inbound, customer: Customer, now: datetime, router: Assigner, default_group: str,
    subject: str, batch: CallBatch, *, category: str | None, reason: str,
) -> Ticket:
    if inbound.group not in batch.groups:
        batch.groups[inbound.group] = await group_for(session, inbound.group, default_group, now)
    group = batch.groups[inbound.group]
    if customer.id is None:
        await session.flush()  # a card new in this batch gets its id
    ticket = Ticket(
        subject=subject[:300],
        status=TicketStatus.new,
        priority=inbound.priority or Priority.normal,
        category=category,
        channel=CHANNEL,
        customer_id=customer.id,
        group_id=group.id,
        created_at=now,
        updated_at=now,
    )
    placed = await router.place(session, ticket, inbound.language)
    session.add(ticket)
    await session.flush()
    record_created(session, ticket, placed, reason, now)
    return ticket


def _message(
    inbound: Inbound, details: CallDetails, ticket: Ticket, customer: Customer | None, agent: Agent | None,
    reason: str, now: datetime,
) -> Message:
    outbound = details.direction == "out"
    return Message(
        ticket_id=ticket.id,
        direction=Direction.outbound if outbound else Direction.inbound,
        channel=CHANNEL,
        external_id=inbound.external_id,
        customer_id=None if outbound or customer is None else customer.id,
        author_id=agent.id if outbound and agent else None,
        body_text=details.notes or describe(details),
        attachments=[],
        thread_reason=reason[:200] or None,
        meta={"call": call_meta(details)},
        created_at=now,
    )


def call_meta(details: CallDetails) -> dict[str, object]:
    return {
        "direction": details.direction,
        "disposition": details.disposition,
        "caller": details.caller,
        "called": details.called,
        "started_at": details.started_at.isoformat(),
        "duration": details.duration,
        "talk_time": details.talk_time,
        "extension": details.extension,
        "recording_url": details.recording_url,
    }


def _party(inbound: Inbound, details: CallDetails) -> str:
    number = details.called if details.direction == "out" else details.caller
    name = inbound.customer_name
    return f"{name} ({number})" if name and number else (name or number or "a withheld number")


def callback_subject(inbound: Inbound, details: CallDetails) -> str:
    return f"Call back {_party(inbound, details)}: missed call"


def describe(details: CallDetails) -> str:
    """One line for the ticket history: "Inbound call, missed", "Outbound call, answered, talk 2:05"."""
    text = f"{'Outbound' if details.direction == 'out' else 'Inbound'} call, {details.disposition}"
    if details.talk_time:
        minutes, seconds = divmod(details.talk_time, 60)
        text += f", talk {minutes}:{seconds:02d}"
    if details.extension:
        text += f", extension {details.extension}"
    return text


def _actor(agent: Agent | None) -> Agent | str:
    return agent if agent is not None else "phone"
