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
    Customer,
    CustomerIdentity,
    LiveCall,
    LiveCallState,
    Role,
    Ticket,
)
from tickets.queries.customers import Contact, history_in

CONTACTS = 8
POP_CONTACTS = frozenset({"message", "call"})
"""The pop lists the last messages and calls (the recorded contacts are a click away, on the card)."""


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
        contacts = await history_in(session, viewer, visible, customer.id, POP_CONTACTS, CONTACTS)
        return CallPop(call, customer, identities, shown, len(active) - len(shown), contacts, names)


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


async def calls_in_progress(deps: Deps, source: str, limit: int = 10_000) -> list[LiveCall]:
    """The calls a source reported ringing or in progress and not yet ended: what it takes up again on a restart."""
    async with deps.store.session() as session:
        return list(await session.scalars(select(LiveCall).where(
            LiveCall.state != LiveCallState.ended, LiveCall.source == source)
            .order_by(LiveCall.started_at).limit(limit)))


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
