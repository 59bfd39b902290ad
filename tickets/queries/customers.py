"""The customer card as an agent sees it: identities, the tickets the agent may open, the latest calls, and the
whole typed history of contacts across channels."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.access import customer_visible, readable_calls, visibility
from tickets.deps import Deps
from tickets.errors import InvalidInput, NotFound
from tickets.models import Activity, ActivityType, Agent, Call, Customer, CustomerIdentity, Direction, Message, Ticket

HISTORY_CALLS = 200
"""Calls shown on a customer card, newest first."""
HISTORY_PAGE = 100
"""Contacts on one page of a client's history."""
CHANNELS = ("email", "webform", "webchat", "telegram", "portal")
"""The channels a client's messages come and go by (calls are `call`)."""
KINDS = ("message", "call", "activity")


@dataclass(frozen=True)
class Contact:
    """One contact in a client's history: a message on any channel, a call, or a contact an agent recorded."""

    at: datetime
    kind: Literal["message", "call", "activity"]
    type: str
    """What a filter names: a message's channel, `call` for a call, a recorded contact's type (`call`, `meeting`,
    `demonstration`, …); `?type=call` shows the calls and the recorded calls alike."""
    channel: str
    """A message's channel, `phone` for a call, empty for a recorded contact."""
    direction: str
    """`in` or `out`; empty for a recorded contact."""
    text: str
    """A message's first words, a call's disposition, a recorded contact's outcome and note."""
    ticket_id: int | None
    agent_id: int | None


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
    if (readable := readable_activities(viewer, visible)) is not None:
        activities_query = activities_query.where(readable)
    activities = [(activity, name) for activity, name in await session.execute(
        activities_query.order_by(Activity.id.desc()).limit(HISTORY_CALLS))]
    return CustomerView(customer, identities, tickets, calls, activities)


def readable_activities(viewer: Agent, visible: ColumnElement[bool] | None) -> ColumnElement[bool] | None:
    """As with calls: the recorded contacts about tickets they may open, their own, and the card's own (no ticket);
    None for a manager or admin."""
    if visible is None:
        return None
    return or_(Activity.ticket_id.is_(None), Activity.agent_id == viewer.id,
               Activity.ticket_id.in_(select(Ticket.id).where(visible)))


@dataclass(frozen=True)
class HistoryPage:
    contacts: list[Contact]
    next_before: datetime | None
    """Where the next page starts (at or before it); None on the last page."""


async def customer_history(deps: Deps, viewer: Agent, customer_id: int, types: Collection[str] = (),
                           limit: int = HISTORY_PAGE, before: datetime | None = None) -> HistoryPage:
    """A page of the client's history, newest first: every type, or those named (a kind, a channel, an activity
    type); `before` (a page's `next_before`) pages back. A page ends before the contacts sharing its last instant,
    which all start the next one, so none is skipped or shown twice."""
    async with deps.store.session() as session:
        visible = await visibility(session, viewer)
        if await session.get(Customer, customer_id) is None or not await customer_visible(
                session, viewer, customer_id, visible):
            raise NotFound(f"no customer {customer_id}")
        named = frozenset(types)
        if unknown := named - {*KINDS, *CHANNELS, *await session.scalars(select(ActivityType.name))}:
            known = ", ".join([*KINDS, *CHANNELS])
            raise InvalidInput({"type": f"no such type: {', '.join(sorted(unknown))} (one of {known}, or an "
                                        "activity type: GET /api/v1/activity-types)"})
        found = await history_in(session, viewer, visible, customer_id, named, limit + 1, before)
    if len(found) <= limit:
        return HistoryPage(found, None)
    edge = found[limit - 1].at
    page = [c for c in found[:limit] if c.at != edge]
    if not page:  # more than a page in one instant: show them and step past it
        return HistoryPage(found[:limit], edge - timedelta(microseconds=1))
    return HistoryPage(page, edge)


async def history_in(session: AsyncSession, viewer: Agent, visible: ColumnElement[bool] | None, customer_id: int,
                     types: frozenset[str], limit: int, before: datetime | None = None) -> list[Contact]:
    """The history's newest `limit` contacts of the types named (all when none): messages of tickets the viewer may
    open, every call (its time, direction and disposition; notes and recordings stay on the card's calls), and
    the recorded contacts they may read."""
    found: list[Contact] = []
    channels = set(types) & set(CHANNELS)
    if not types or "message" in types or channels:
        messages = select(Message.created_at, Message.channel, Message.direction, Message.body_text,
                          Message.ticket_id, Message.author_id).join(Ticket, Ticket.id == Message.ticket_id) \
            .where(Ticket.customer_id == customer_id, Message.channel != "phone",
                   Message.direction.in_((Direction.inbound, Direction.outbound)))
        if types and "message" not in types:
            messages = messages.where(Message.channel.in_(channels))
        if visible is not None:
            messages = messages.where(visible)
        if before is not None:
            messages = messages.where(Message.created_at <= before)
        found += [Contact(at, "message", channel, channel, str(direction), " ".join((text or "").split())[:300],
                          ticket, author)
                  for at, channel, direction, text, ticket, author in
                  await session.execute(messages.order_by(Message.created_at.desc(), Message.id.desc()).limit(limit))]
    if not types or "call" in types:
        calls = select(Call.started_at, Call.direction, Call.disposition, Call.ticket_id, Call.agent_id) \
            .where(Call.customer_id == customer_id)
        if before is not None:
            calls = calls.where(Call.started_at <= before)
        found += [Contact(at, "call", "call", "phone", str(direction), str(disposition), ticket, agent)
                  for at, direction, disposition, ticket, agent in await session.execute(
                      calls.order_by(Call.started_at.desc(), Call.id.desc()).limit(limit))]
    if not types or "activity" in types or types - {"message", *CHANNELS}:
        activities = select(Activity.created_at, ActivityType.name, Activity.outcome, Activity.note,
                            Activity.ticket_id, Activity.agent_id) \
            .join(ActivityType, ActivityType.id == Activity.type_id).where(Activity.customer_id == customer_id)
        if types and "activity" not in types:
            activities = activities.where(ActivityType.name.in_(types))
        if (readable := readable_activities(viewer, visible)) is not None:
            activities = activities.where(readable)
        if before is not None:
            activities = activities.where(Activity.created_at <= before)
        found += [Contact(at, "activity", name, "", "", " — ".join(filter(None, (outcome, (note or "")[:300]))),
                          ticket, agent)
                  for at, name, outcome, note, ticket, agent in await session.execute(
                      activities.order_by(Activity.created_at.desc(), Activity.id.desc()).limit(limit))]
    return sorted(found, key=lambda c: c.at, reverse=True)[:limit]
