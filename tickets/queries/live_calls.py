"""What an agent sees of a call while it rings (the pop: the caller's card, open work, last contacts) and the
caller log (calls ringing and in progress, and today's)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.access import visibility
from tickets.deps import Deps
from tickets.errors import NotFound
from tickets.models import (
    ACTIVE_STATUSES,
    Agent,
    Call,
    Customer,
    CustomerIdentity,
    Direction,
    LiveCall,
    LiveCallState,
    Message,
    Role,
    Ticket,
)

CONTACTS = 8


@dataclass(frozen=True)
class Contact:
    """One earlier contact with the client: a message on any channel or a call."""

    at: datetime
    kind: str
    """`message` or `call`."""
    channel: str
    direction: str
    text: str
    ticket_id: int | None


@dataclass(frozen=True)
class CallPop:
    call: LiveCall
    customer: Customer | None
    identities: list[CustomerIdentity]
    open_tickets: list[Ticket]
    """The client's active tickets the viewer may open, most recently active first."""
    hidden_open: int
    """Their active tickets in queues the viewer does not see."""
    contacts: list[Contact]
    names: dict[int, str]
    """Agents on the call (ringing, taking it) by id."""


async def call_pop(deps: Deps, viewer: Agent, call_id: str) -> CallPop:
    """The pop for a call that rings for the viewer (or that they took, or any call for a manager)."""
    async with deps.store.session() as session:
        call = await session.scalar(select(LiveCall).where(LiveCall.call_id == call_id))
        if call is None or not may_see(viewer, call):
            raise NotFound(f"no call {call_id}")
        names = await _names(session, call.people)
        if call.customer_id is None:
            return CallPop(call, None, [], [], 0, [], names)
        customer = await session.get_one(Customer, call.customer_id)
        identities = list(await session.scalars(select(CustomerIdentity).where(
            CustomerIdentity.customer_id == customer.id).order_by(CustomerIdentity.id)))
        visible = await visibility(session, viewer)
        active = list(await session.scalars(select(Ticket).where(
            Ticket.customer_id == customer.id, Ticket.status.in_(ACTIVE_STATUSES))
            .order_by(Ticket.updated_at.desc(), Ticket.id.desc())))
        shown = active if visible is None else list(await session.scalars(select(Ticket).where(
            Ticket.id.in_([t.id for t in active]), visible).order_by(Ticket.updated_at.desc(), Ticket.id.desc())))
        return CallPop(call, customer, identities, shown, len(active) - len(shown),
                       await _contacts(session, customer.id, visible), names)


async def current_call(deps: Deps, viewer: Agent) -> str | None:
    """The newest call ringing for the viewer or in progress with them (a page they open pops it again)."""
    async with deps.store.session() as session:
        live = await session.scalars(select(LiveCall).where(LiveCall.state != LiveCallState.ended)
                                     .order_by(LiveCall.started_at.desc(), LiveCall.id.desc()).limit(200))
        return next((c.call_id for c in live if viewer.id in c.ringing and c.agent_id in (None, viewer.id)
                     or c.agent_id == viewer.id), None)


def may_see(viewer: Agent, call: LiveCall) -> bool:
    """The call rang for them, they took it, or they manage."""
    return viewer.id in call.people or viewer.role in (Role.manager, Role.admin)


async def _contacts(session: AsyncSession, customer_id: int, visible: object) -> list[Contact]:
    """The newest messages (of tickets the viewer may open) and calls with the client, newest first."""
    messages = select(Message.created_at, Message.channel, Message.direction, Message.body_text, Message.ticket_id) \
        .join(Ticket, Ticket.id == Message.ticket_id) \
        .where(Ticket.customer_id == customer_id, Message.direction.in_((Direction.inbound, Direction.outbound)),
               Message.channel != "phone")
    if visible is not None:
        messages = messages.where(visible)  # type: ignore[arg-type]
    found = [Contact(at, "message", channel, str(direction), " ".join((text or "").split())[:140], ticket)
             for at, channel, direction, text, ticket in
             await session.execute(messages.order_by(Message.id.desc()).limit(CONTACTS))]
    found += [Contact(at, "call", "phone", str(direction), str(disposition), ticket)
              for at, direction, disposition, ticket in await session.execute(
                  select(Call.started_at, Call.direction, Call.disposition, Call.ticket_id)
                  .where(Call.customer_id == customer_id).order_by(Call.started_at.desc()).limit(CONTACTS))]
    return sorted(found, key=lambda c: c.at, reverse=True)[:CONTACTS]


async def _names(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {agent_id: name for agent_id, name in await session.execute(
        select(Agent.id, Agent.name).where(Agent.id.in_(ids)))}


@dataclass(frozen=True)
class CallerLog:
    live: list[LiveCall]
    """Ringing and in progress, oldest first."""
    ended: list[LiveCall]
    """Ended since the start of the log's day, newest first."""
    names: dict[int, str]
    customers: dict[int, str]


async def caller_log(deps: Deps, since: datetime, limit: int = 100) -> CallerLog:
    async with deps.store.session() as session:
        live = list(await session.scalars(select(LiveCall).where(LiveCall.state != LiveCallState.ended)
                                          .order_by(LiveCall.started_at).limit(limit)))
        ended = list(await session.scalars(select(LiveCall).where(
            LiveCall.state == LiveCallState.ended, LiveCall.started_at >= since)
            .order_by(LiveCall.started_at.desc()).limit(limit)))
        calls = live + ended
        names = await _names(session, {i for c in calls for i in c.people})
        cards = {c.customer_id for c in calls if c.customer_id}
        customers = {cid: name for cid, name in await session.execute(
            select(Customer.id, Customer.name).where(Customer.id.in_(cards)))} if cards else {}
        return CallerLog(live, ended, names, {k: v for k, v in customers.items() if v})
