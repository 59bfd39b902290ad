"""The customer card as an agent sees it: identities, the tickets the agent may open, the latest calls."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.access import customer_visible, readable_calls, visibility
from tickets.deps import Deps
from tickets.errors import NotFound
from tickets.models import Activity, ActivityType, Agent, Call, Customer, CustomerIdentity, Ticket

HISTORY_CALLS = 200
"""Calls shown on a customer card, newest first."""


@dataclass(frozen=True)
class CustomerView:
    customer: Customer
    identities: list[CustomerIdentity]
    tickets: list[Ticket]
    calls: list[Call]
    """The client's latest calls, newest first, whether or not they landed on a ticket."""
    activities: list[tuple[Activity, str]] = field(default_factory=list)
    """The contacts agents recorded with the client (each with its type's name), newest first."""


async def get_customer(deps: Deps, viewer: Agent, customer_id: int) -> CustomerView:
    async with deps.store.session() as session:
        return await customer_view(session, viewer, customer_id)


async def customer_tickets_by_identity(deps: Deps, kind: str, address: str, limit: int = 20) -> list[Ticket]:
    """The tickets of whoever owns this identity, newest first (a client asking a chat bot for their status)."""
    async with deps.store.session() as session:
        customer_id = await session.scalar(
            select(CustomerIdentity.customer_id).where(
                CustomerIdentity.kind == kind, CustomerIdentity.address == address
            )
        )
        if customer_id is None:
            return []
        query = select(Ticket).where(Ticket.customer_id == customer_id).order_by(Ticket.id.desc()).limit(limit)
        return list(await session.scalars(query))


async def customer_view(session: AsyncSession, viewer: Agent, customer_id: int) -> CustomerView:
    customer = await session.get(Customer, customer_id)
    visible = await visibility(session, viewer)
    if customer is None or not await customer_visible(session, viewer, customer_id, visible):
        raise NotFound(f"no customer {customer_id}")
    identities = list(
        await session.scalars(
            select(CustomerIdentity).where(CustomerIdentity.customer_id == customer_id).order_by(CustomerIdentity.id)
        )
    )
    # An agent opens the cards of their clients (`customer_visible`), and sees on them only the tickets they may
    # open and the calls on those tickets or taken by them (a call's notes and recording are the ticket's).
    query = select(Ticket).where(Ticket.customer_id == customer_id)
    if visible is not None:
        query = query.where(visible)
    tickets: list[Ticket] = list(await session.scalars(query.order_by(Ticket.id.desc())))
    calls_query = select(Call).where(Call.customer_id == customer_id)
    if (readable := readable_calls(viewer, visible)) is not None:
        calls_query = calls_query.where(readable)
    calls = list(await session.scalars(
        calls_query.order_by(Call.started_at.desc(), Call.id.desc()).limit(HISTORY_CALLS)))
    activities_query = select(Activity, ActivityType.name).join(ActivityType, ActivityType.id == Activity.type_id) \
        .where(Activity.customer_id == customer_id)
    if visible is not None:  # as with calls: those about tickets they may open, their own, and the card's own
        activities_query = activities_query.where(or_(
            Activity.ticket_id.is_(None), Activity.agent_id == viewer.id,
            Activity.ticket_id.in_(select(Ticket.id).where(visible))))
    activities = [(activity, name) for activity, name in await session.execute(
        activities_query.order_by(Activity.id.desc()).limit(HISTORY_CALLS))]
    return CustomerView(customer, identities, tickets, calls, activities)
