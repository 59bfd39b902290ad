"""Calls while they happen: what the PBX reports (it rings, someone answers, it ends) kept as one `LiveCall` row.

Each event is one short transaction on that row (locked, so events of one call arriving together apply in turn).
The row names the agents to pop the caller's card for, and at hang-up what the call log needs; logging it is the
caller's next step (`TicketService.log_calls`, the path `POST /api/v1/calls` takes), so a call reported by CTI and
by a CDR import is logged once, under its call id.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets import audit
from tickets.access import customer_visible, visibility, visible_ticket
from tickets.actions.receipts import dispatch_after_receipt
from tickets.deps import Deps
from tickets.dispatch import owe
from tickets.errors import Conflict, NotFound
from tickets.inbound import CallDetails, Identity, Inbound
from tickets.ingest import group_for
from tickets.models import (
    ACTIVE_STATUSES,
    Agent,
    Customer,
    CustomerIdentity,
    Direction,
    InstallSecret,
    LiveCall,
    LiveCallState,
    Priority,
    Ticket,
    TicketStatus,
)
from tickets.models import EventKind as AuditKind
from tickets.numbers import as_id
from tickets.queries.live_calls import may_see
from tickets.queries.staff import hash_token

CTI_SECRET = "cti"
EventKind = Literal["ring", "answer", "hangup"]
Disposition = Literal["answered", "missed", "busy", "failed", "voicemail"]
BUSY_CAUSES: dict[str, Disposition] = {"busy": "busy", "congestion": "failed", "notfound": "failed",
                                       "failed": "failed"}
"""Hang-up causes (Zammad's generic CTI, lower-cased) that say why nobody answered; anything else is `missed`."""
ANSWERED_CAUSES = {"answeredelsewhere"}


@dataclass(frozen=True)
class CallEvent:
    """One thing the PBX reported about a call, its numbers already read (E.164, an extension, or None)."""

    call_id: str
    kind: EventKind
    direction: Literal["in", "out"]
    caller: str | None = None
    called: str | None = None
    client_number: str | None = None
    """The outside party in E.164: the caller of an inbound call, the called of an outbound one."""
    users: tuple[str, ...] = ()
    """Agents by name (Zammad's `user[]`): those the call rings for, or who dial."""
    extensions: tuple[str, ...] = ()
    """Agents by extension: the ringing or dialling phone."""
    answering: str | None = None
    """Who answered: an agent's id, email or extension (Zammad's `answeringNumber`)."""
    queue: str | None = None
    cause: str | None = None
    source: Literal["cti", "ami"] = "cti"


@dataclass(frozen=True)
class CallChange:
    """A call after one event, and who hears of it (the agents it rings for, and whoever took it)."""

    call: LiveCall
    agents: tuple[int, ...]

    @classmethod
    def of(cls, call: LiveCall) -> CallChange:
        return cls(call, tuple(sorted(call.people)))


async def rotate_cti_token(deps: Deps) -> str:
    """A new token for the CTI endpoint (`/api/v1/cti/{token}`); the one before stops working at once."""
    token = secrets.token_urlsafe(24)
    async with deps.store.unit() as uow:
        secret = await uow.session.get(InstallSecret, CTI_SECRET, with_for_update=True)
        if secret is None:
            uow.session.add(InstallSecret(name=CTI_SECRET, token_hash=hash_token(token), created_at=deps.clock.now()))
        else:
            secret.token_hash, secret.created_at = hash_token(token), deps.clock.now()
    return token


async def cti_token_valid(deps: Deps, token: str) -> bool:
    async with deps.store.session() as session:
        stored = await session.scalar(select(InstallSecret.token_hash).where(InstallSecret.name == CTI_SECRET))
    return stored is not None and secrets.compare_digest(stored, hash_token(token))


async def record_call_event(deps: Deps, event: CallEvent) -> CallChange:
    """Apply one event to its call's row (created by whichever event comes first: PBXs drop and reorder them)."""
    now = deps.clock.now()
    async with deps.store.unit() as uow:
        session = uow.session
        call = await session.scalar(select(LiveCall).where(LiveCall.call_id == event.call_id).with_for_update())
        if call is None:
            call = LiveCall(call_id=event.call_id, direction=Direction(event.direction), state=LiveCallState.ringing,
                            caller=event.caller, called=event.called, client_number=event.client_number,
                            queue=event.queue, source=event.source, ringing=[], started_at=now, updated_at=now)
            session.add(call)
            if event.client_number is not None:
                call.customer_id = await _card_of(session, event.client_number)
        named = await _agents(session, event.users, event.extensions, None)
        if event.kind == "ring" and call.state == LiveCallState.ringing:
            call.ringing = sorted({*call.ringing, *(a.id for a in named)})
            call.queue = call.queue or event.queue
        elif event.kind == "answer" and call.state != LiveCallState.ended:
            call.state, call.answered_at = LiveCallState.answered, call.answered_at or now
            taker = await _agents(session, (), (), event.answering) or named
            if taker:
                call.agent_id = taker[0].id
        elif event.kind == "hangup" and call.state != LiveCallState.ended:
            if event.answering and call.agent_id is None:
                taker = await _agents(session, (), (), event.answering)
                call.agent_id = taker[0].id if taker else None
            if (event.cause or "").lower() in ANSWERED_CAUSES and call.answered_at is None:
                call.answered_at = now
            call.state, call.ended_at, call.cause = LiveCallState.ended, now, (event.cause or "")[:32] or None
        if not call.ringing and named and call.direction == Direction.outbound:
            call.ringing = [a.id for a in named]
        call.updated_at = now
        await session.flush()
        return CallChange.of(call)


async def _agents(session: AsyncSession, names: Sequence[str], extensions: Sequence[str],
                  answering: str | None) -> list[Agent]:
    """The agents named: by name, by extension, or (answering) by id, email or extension."""
    conditions: list[ColumnElement[bool]] = []
    if names:
        conditions.append(func.lower(Agent.name).in_({n.strip().lower() for n in names if n.strip()}))
    if extensions:
        conditions.append(Agent.extension.in_(set(extensions)))
    if answering:
        conditions.append(Agent.extension == answering.strip())
        conditions.append(func.lower(Agent.email) == answering.strip().lower())
        if (agent_id := as_id(answering.strip())) is not None:
            conditions.append(Agent.id == agent_id)
    if not conditions:
        return []
    return list(await session.scalars(select(Agent).where(or_(*conditions)).order_by(Agent.id)))


def ended_call_inbound(call: LiveCall) -> Inbound:
    """The call log entry for a call that ended, as `POST /api/v1/calls` would build it."""
    assert call.ended_at is not None
    outbound = call.direction == Direction.outbound
    cause = (call.cause or "").lower()
    disposition: Disposition = "answered" if call.answered_at is not None else BUSY_CAUSES.get(cause, "missed")
    end = call.ended_at
    details = CallDetails(
        direction="out" if outbound else "in", disposition=disposition, started_at=call.started_at,
        caller=call.caller, called=call.called, answered_at=call.answered_at, ended_at=end,
        duration=max(0, int((end - call.started_at).total_seconds())),
        talk_time=max(0, int((end - call.answered_at).total_seconds())) if call.answered_at else 0,
        agent_id=call.agent_id, source="ami" if call.source == "ami" else "cti", ticket_number=call.ticket_id,
    )
    identities = (Identity("phone", call.client_number),) if call.client_number else ()
    return Inbound(channel="phone", identities=identities, body_text="", external_id=call.call_id, call=details)


async def unlogged_calls(deps: Deps, ended_before: datetime, limit: int = 200) -> list[CallChange]:
    """Calls that ended and were never logged (the process stopped between the two transactions): the sweep's."""
    async with deps.store.session() as session:
        calls = await session.scalars(select(LiveCall).where(
            LiveCall.state == LiveCallState.ended, LiveCall.logged_call_id.is_(None),
            LiveCall.ended_at < ended_before).order_by(LiveCall.id).limit(limit))
        return [CallChange.of(call) for call in calls]


async def mark_logged(deps: Deps, call_id: str, logged_call_id: int) -> None:
    async with deps.store.unit() as uow:
        call = await uow.session.scalar(select(LiveCall).where(LiveCall.call_id == call_id).with_for_update())
        if call is not None:
            call.logged_call_id = logged_call_id


async def put_call_on_ticket(deps: Deps, viewer: Agent, call_id: str, number: int) -> LiveCall:
    """The agent on the call chose the ticket it is about (one they may open, of this client, still open)."""
    async with deps.store.unit() as uow:
        session = uow.session
        call = await _own_call(session, viewer, call_id)
        ticket = await visible_ticket(session, viewer, number)
        if call.customer_id is not None and ticket.customer_id != call.customer_id:
            raise Conflict(f"ticket #{number} is another client's")
        if ticket.status not in ACTIVE_STATUSES:
            raise Conflict(f"ticket #{number} is closed: open a new one for this call")
        if call.logged_call_id is not None:
            raise Conflict("the call was logged already")
        call.ticket_id, call.updated_at = ticket.id, deps.clock.now()
        return call


async def open_ticket_for_call(deps: Deps, viewer: Agent, call_id: str, default_group: str) -> int:
    """A new ticket for what the caller is calling about, owed to the agent on the call (the dispatcher gives it and
    plans its regulation, as for any receipt); the call joins it when it is logged. An unknown number gets a card."""
    now = deps.clock.now()
    async with deps.store.unit() as uow:
        session = uow.session
        call = await _own_call(session, viewer, call_id)
        if call.logged_call_id is not None:
            raise Conflict("the call was logged already")
        if call.customer_id is None:
            if call.client_number is None:
                raise Conflict("the caller withheld their number: there is no card to open a ticket on")
            call.customer_id = (await _new_card(session, call.client_number, None, now)).id
        group = await group_for(session, None, default_group, now)
        number = call.client_number or "a withheld number"
        ticket = Ticket(subject=f"Call from {number}"[:300], status=TicketStatus.new, priority=Priority.normal,
                        channel="phone", customer_id=call.customer_id, group_id=group.id, created_at=now,
                        updated_at=now, route_to_id=viewer.id)
        session.add(ticket)
        await session.flush()
        audit.record(session, ticket.id, AuditKind.created, now, actor=viewer, reason="opened during a call",
                     channel="phone", call_id=call_id)
        owe(ticket, now, "opened during a call", route=True)
        call.ticket_id, call.updated_at = ticket.id, now
        number_opened = ticket.id
    await dispatch_after_receipt(deps, [number_opened])
    return number_opened


async def card_for_call(deps: Deps, viewer: Agent, call_id: str, *, name: str | None = None,
                        customer_id: int | None = None) -> int:
    """An unknown number on a card: a new one (with the name the caller gave) or one the agent found."""
    now = deps.clock.now()
    async with deps.store.unit() as uow:
        session = uow.session
        call = await _own_call(session, viewer, call_id)
        if call.client_number is None:
            raise Conflict("the caller withheld their number")
        if call.customer_id is not None:
            raise Conflict("the number is on a card already")
        known = await _card_of(session, call.client_number)
        if known is not None:
            call.customer_id = known
        elif customer_id is None:
            call.customer_id = (await _new_card(session, call.client_number, name, now)).id
        else:
            if not await customer_visible(session, viewer, customer_id, await visibility(session, viewer)):
                raise NotFound(f"no customer {customer_id}")
            session.add(CustomerIdentity(customer_id=customer_id, kind="phone", address=call.client_number,
                                         created_at=now))
            call.customer_id = customer_id
        call.updated_at = now
        return call.customer_id


async def _card_of(session: AsyncSession, number: str) -> int | None:
    """The card a phone number (E.164) is on, if any."""
    return await session.scalar(select(CustomerIdentity.customer_id).where(
        CustomerIdentity.kind == "phone", CustomerIdentity.address == number))


async def _new_card(session: AsyncSession, number: str, name: str | None, now: datetime) -> Customer:
    card = Customer(name=(name or "").strip()[:200] or None, created_at=now, updated_at=now)
    session.add(card)
    await session.flush()
    session.add(CustomerIdentity(customer_id=card.id, kind="phone", address=number, created_at=now))
    return card


async def _own_call(session: AsyncSession, viewer: Agent, call_id: str) -> LiveCall:
    """A call the viewer may act on: it rang for them, they took it, or they manage."""
    call = await session.scalar(select(LiveCall).where(LiveCall.call_id == call_id).with_for_update())
    if call is None or not may_see(viewer, call):
        raise NotFound(f"no call {call_id}")
    return call
