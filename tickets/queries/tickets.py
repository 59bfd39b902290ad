"""Ticket lists, the console's queue lines and one ticket's whole view, each read in one unit of work."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, TypeVar, cast

from sqlalchemy import BigInteger, ColumnElement, Select, any_, bindparam, exists, func, or_, select, text, union
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from tickets import deadlines
from tickets.access import visibility, visible_ticket
from tickets.db import is_postgresql
from tickets.deps import Deps
from tickets.merging import linked_tickets, merged_from
from tickets.models import (
    Agent,
    Call,
    ClockEvent,
    Customer,
    CustomerIdentity,
    Deadline,
    DeadlineStatus,
    Direction,
    Event,
    Group,
    Message,
    Priority,
    Rating,
    SavedView,
    Ticket,
    TicketSeen,
    TicketStatus,
    TicketTag,
)
from tickets.numbers import as_id

S = TypeVar("S", bound=Select[Any])
TRIGRAM = re.compile(r"\w{3}")
"""Three letters or digits in a row: what pg_trgm's search indexes can look up."""


@dataclass(frozen=True)
class TicketView:
    ticket: Ticket
    customer: Customer
    identities: list[CustomerIdentity]
    group: Group
    assignee: Agent | None
    messages: list[Message]
    events: list[Event]
    calls: list[Call]
    deadlines: list[Deadline]
    clock: list[ClockEvent]
    """The regulation clock's timeline: started, paused, resumed, stopped, re-planned."""
    as_of: datetime
    """When this view was read: a pending deadline before it is late."""
    links: list[Ticket]
    """The client's tickets an agent linked to this one."""
    merged_from: list[int]
    """Tickets merged into this one (their history is in `messages` now)."""
    rating: Rating | None = None
    """The client's rating of the resolved ticket, with their comment."""
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class NextStep:
    step: str
    due_at: datetime


@dataclass(frozen=True)
class DeadlineSummary:
    next: NextStep | None
    """The pending step due soonest."""
    breached: bool
    """A step marked breach fired and was not met since."""


@dataclass(frozen=True)
class TicketPage:
    tickets: list[Ticket]
    next_cursor: int | None


class QueueTicket(NamedTuple):
    """The columns of a ticket a queue page shows: it lists hundreds, and ORM objects for them cost more than the
    query."""

    id: int
    subject: str
    channel: str
    priority: Priority
    status: TicketStatus
    created_at: datetime
    customer_id: int
    escalated_at: datetime | None
    assignee_id: int | None
    group_id: int


@dataclass(frozen=True)
class Activity:
    """Who wrote last, and whether the viewer has looked since: what makes a ticket rise in a queue."""

    client_wrote_at: datetime | None
    """The client's latest message."""
    answered_at: datetime | None
    """Our latest reply to the client (internal notes do not count)."""
    seen_at: datetime | None
    """When the viewer last opened the ticket."""

    @property
    def client_replied(self) -> bool:
        """The client wrote back after our last reply: the ticket waits on us again."""
        return self.answered_at is not None and self.client_wrote_at is not None and \
            self.client_wrote_at > self.answered_at

    @property
    def unread(self) -> bool:
        """The client wrote since the viewer last opened the ticket (or they never have)."""
        return self.client_wrote_at is not None and (self.seen_at is None or self.client_wrote_at > self.seen_at)


@dataclass(frozen=True)
class QueueLine:
    ticket: QueueTicket
    customer: str
    """The client's name, else their first address ('' if neither)."""
    deadlines: DeadlineSummary
    assignee: str
    """The assignee's name ('' when nobody has it)."""
    group: str
    activity: Activity
    tags: list[str] = field(default_factory=list)


_QUEUE_COLUMNS = (Ticket.id, Ticket.subject, Ticket.channel, Ticket.priority, Ticket.status, Ticket.created_at,
                  Ticket.customer_id, Ticket.escalated_at, Ticket.assignee_id, Ticket.group_id)


async def list_tickets(
    deps: Deps,
    viewer: Agent,
    *,
    status: list[TicketStatus] | None = None,
    assignee: int | None | str = "any",
    group: str | None = None,
    overdue: bool = False,
    limit: int = 50,
    before: int | None = None,
    search: str | None = None,
    channel: str | None = None,
    priority: list[Priority] | None = None,
    escalated: bool = False,
    tag: str | None = None,
) -> TicketPage:
    """Newest first, keyset-paginated by number so deep pages stay as fast as the first."""
    async with deps.store.session() as session:
        listing = _Listing(await visibility(session, viewer), status, assignee, group, channel, priority,
                           deps.clock.now() if overdue else None, before, escalated, tag=tag)
        tickets = list(await session.scalars(await _listed(session, listing, search, limit + 1, (Ticket,))))
        more = len(tickets) > limit
        tickets = tickets[:limit]
        return TicketPage(tickets, tickets[-1].id if more else None)


async def queue_lines(
    deps: Deps,
    viewer: Agent,
    *,
    status: list[TicketStatus] | None = None,
    assignee: int | None | str = "any",
    overdue: bool = False,
    limit: int = 200,
    search: str | None = None,
    channel: str | None = None,
    priority: list[Priority] | None = None,
    escalated: bool = False,
    group: str | None = None,
    created_since: datetime | None = None,
    created_before: datetime | None = None,
    tag: str | None = None,
    before: int | None = None,
) -> list[QueueLine]:
    """What a console queue shows, newest first (numbers below `before`: the next page): the tickets `list_tickets`
    would list, each with its client's name, its deadlines, its assignee and group, and who wrote last, read in one
    transaction (one pooled connection, one ping) and as columns, not objects."""
    async with deps.store.session() as session:
        listing = _Listing(await visibility(session, viewer), status, assignee, group, channel, priority,
                           deps.clock.now() if overdue else None, before, escalated, created_since, created_before,
                           tag)
        tickets = [QueueTicket(*row) for row in
                   await session.execute(await _listed(session, listing, search, limit, _QUEUE_COLUMNS))]
        numbers = [t.id for t in tickets]
        summaries = await _deadline_summary_in(session, numbers)
        names = await _customer_names_in(session, [t.customer_id for t in tickets])
        activity = await _activity_in(session, viewer.id, numbers)
        agents = dict(list(await session.execute(select(Agent.id, Agent.name).where(
            _among(session, Agent.id, {t.assignee_id for t in tickets if t.assignee_id is not None}))))) \
            if tickets else {}
        groups = dict(list(await session.execute(select(Group.id, Group.name)))) if tickets else {}
        tags: dict[int, list[str]] = {}
        if tickets:
            for number, label in await session.execute(select(TicketTag.ticket_id, TicketTag.tag).where(
                    _among(session, TicketTag.ticket_id, numbers)).order_by(TicketTag.tag)):
                tags.setdefault(number, []).append(label)
    none, nothing = DeadlineSummary(None, False), Activity(None, None, None)
    return [QueueLine(t, names.get(t.customer_id, ""), summaries.get(t.id, none),
                      agents.get(t.assignee_id, "") if t.assignee_id is not None else "", groups.get(t.group_id, ""),
                      activity.get(t.id, nothing), tags.get(t.id, [])) for t in tickets]


@dataclass(frozen=True)
class QueueContext:
    """What a queue page offers around its rows: groups and tags to filter by, the viewer's saved views, and (for a
    manager) the agents to filter by and give tickets to."""

    groups: list[str]
    tags: list[str]
    views: list[SavedView]
    agents: list[tuple[int, str]]


async def queue_context(deps: Deps, viewer: Agent, *, with_agents: bool) -> QueueContext:
    """One transaction for all of it: each a small read, and a queue page is opened all day."""
    async with deps.store.session() as session:
        groups = list(await session.scalars(select(Group.name).order_by(Group.name)))
        tags = await _tags_in_use(session)
        views = list(await session.scalars(
            select(SavedView).where(SavedView.agent_id == viewer.id).order_by(SavedView.name)))
        agents = [(agent_id, name) for agent_id, name in await session.execute(
            select(Agent.id, Agent.name).order_by(Agent.name))] if with_agents else []
    return QueueContext(groups, tags, views, agents)


async def all_tags(deps: Deps) -> list[str]:
    """Every tag in use, for autocomplete and the queue's filter."""
    async with deps.store.session() as session:
        return await _tags_in_use(session)


async def _tags_in_use(session: AsyncSession, limit: int = 500) -> list[str]:
    return list(await session.scalars(select(TicketTag.tag).distinct().order_by(TicketTag.tag).limit(limit)))


async def _activity_in(session: AsyncSession, viewer_id: int, numbers: Sequence[int]) -> dict[int, Activity]:
    if not numbers:
        return {}
    last: dict[tuple[int, Direction], datetime] = {
        (ticket_id, direction): at for ticket_id, direction, at in await session.execute(
            select(Message.ticket_id, Message.direction, func.max(Message.created_at))
            .where(_among(session, Message.ticket_id, numbers), Message.direction != Direction.internal)
            .group_by(Message.ticket_id, Message.direction))}
    seen = dict(list(await session.execute(select(TicketSeen.ticket_id, TicketSeen.seen_at).where(
        TicketSeen.agent_id == viewer_id, _among(session, TicketSeen.ticket_id, numbers)))))
    return {n: Activity(last.get((n, Direction.inbound)), last.get((n, Direction.outbound)), seen.get(n))
            for n in numbers}


async def get_ticket(deps: Deps, viewer: Agent, number: int) -> TicketView:
    async with deps.store.session() as session:
        ticket = await visible_ticket(session, viewer, number)
        return await ticket_view(session, ticket, deps.clock.now())


@dataclass(frozen=True)
class _Listing:
    """The filters of a ticket list, applied alike to the list and to each branch of a PostgreSQL search."""

    visible: ColumnElement[bool] | None
    status: list[TicketStatus] | None
    assignee: int | None | str
    group: str | None
    channel: str | None
    priority: list[Priority] | None
    overdue_at: datetime | None
    before: int | None
    escalated: bool = False
    created_since: datetime | None = None
    created_before: datetime | None = None
    tag: str | None = None

    def narrow(self, query: S) -> S:
        if self.visible is not None:
            query = query.where(self.visible)
        if self.status:
            query = query.where(Ticket.status.in_(self.status))
        if self.assignee is None:
            query = query.where(Ticket.assignee_id.is_(None))
        elif self.assignee != "any":
            query = query.where(Ticket.assignee_id == self.assignee)
        if self.group is not None:
            query = query.join(Group, Group.id == Ticket.group_id).where(Group.name == self.group)
        if self.channel is not None:
            query = query.where(Ticket.channel == self.channel)
        if self.priority:
            query = query.where(Ticket.priority.in_(self.priority))
        if self.overdue_at is not None:
            query = query.where(deadlines.overdue(self.overdue_at))
        if self.before is not None:
            query = query.where(Ticket.id < self.before)
        if self.escalated:
            query = query.where(Ticket.escalated_at.is_not(None))
        if self.created_since is not None:
            query = query.where(Ticket.created_at >= self.created_since)
        if self.created_before is not None:
            query = query.where(Ticket.created_at < self.created_before)
        if self.tag is not None:
            query = query.where(Ticket.id.in_(select(TicketTag.ticket_id).where(TicketTag.tag == self.tag)))
        return query


async def _listed(session: AsyncSession, listing: _Listing, search: str | None, rows: int,
                  columns: Sequence[Any]) -> Select[Any]:
    """The newest `rows` tickets of a list (as `columns`: the entity, or the columns a page shows)."""
    if search and is_postgresql(session) and _trigram_searchable(search):
        # The plan for these very values: a generic one (asyncpg's prepared statements get one after five runs)
        # cannot tell a rare word, for which the trigram indexes pay, from a common one.
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        return _searched(listing, search, rows, columns)
    query = listing.narrow(select(*columns)).order_by(Ticket.id.desc()).limit(rows)
    return query.where(_matching(search)) if search else query


def _among(session: AsyncSession, column: Any, ids: Collection[int]) -> ColumnElement[bool]:
    """`column IN ids`; on PostgreSQL as `= ANY(one array)`: an IN of a page's 200 ids costs SQLAlchemy a few ms to
    render each time, and each count of ids is another statement for asyncpg to prepare."""
    if is_postgresql(session):
        ids_array = bindparam("ids", list(ids), type_=ARRAY(BigInteger), unique=True)
        return cast(ColumnElement[bool], column == any_(ids_array))
    return cast(ColumnElement[bool], column.in_(ids))


async def _customer_names_in(session: AsyncSession, customer_ids: Sequence[int]) -> dict[int, str]:
    """Each client's name, else their first address; addresses are read only for clients without a name."""
    if not customer_ids:
        return {}
    names = dict(list(await session.execute(
        select(Customer.id, Customer.name).where(_among(session, Customer.id, set(customer_ids))))))
    nameless = {customer_id for customer_id, name in names.items() if not name}
    if nameless:
        for customer_id, address in await session.execute(
                select(CustomerIdentity.customer_id, CustomerIdentity.address)
                .where(_among(session, CustomerIdentity.customer_id, nameless)).order_by(CustomerIdentity.id)):
            if not names.get(customer_id):
                names[customer_id] = address
    return {k: v for k, v in names.items() if v}


async def _deadline_summary_in(session: AsyncSession, numbers: Sequence[int]) -> dict[int, DeadlineSummary]:
    """Per ticket: its next pending step, and whether a step was breached — what a queue shows as a countdown."""
    if not numbers:
        return {}
    rows = await session.execute(
        select(Deadline.ticket_id, Deadline.step, Deadline.due_at, Deadline.status, Deadline.breach, Deadline.met_at)
        .where(_among(session, Deadline.ticket_id, numbers),
               Deadline.status.in_((DeadlineStatus.pending, DeadlineStatus.fired)))
        .order_by(Deadline.due_at))
    found: dict[int, DeadlineSummary] = {}
    # Columns, not objects: a console page summarises a few hundred steps, and loading each as an ORM object cost
    # more than the query.
    for ticket_id, step, due_at, status, breach, met_at in rows:
        seen = found.get(ticket_id, DeadlineSummary(None, False))
        found[ticket_id] = DeadlineSummary(
            seen.next or (NextStep(step, due_at) if status == DeadlineStatus.pending else None),
            seen.breached or (status == DeadlineStatus.fired and breach and met_at is None))
    return found


def _search_terms(search: str) -> list[ColumnElement[bool]]:
    """Each way a ticket matches: the text in its subject, its (not internal) messages, or its customer's name or
    addresses, or its number (`%` and `_` are dropped from the text, not taken as wildcards)."""
    lowered = search.strip().lower()
    number = lowered.lstrip("#")
    like = f"%{_search_text(lowered)}%"
    terms: list[ColumnElement[bool]] = [
        func.lower(Ticket.subject).like(like),
        exists(select(Message.id).where(Message.ticket_id == Ticket.id, Message.direction != Direction.internal,
                                        func.lower(Message.body_text).like(like))),
        exists(select(Customer.id).where(Customer.id == Ticket.customer_id, func.lower(Customer.name).like(like))),
        exists(select(CustomerIdentity.id).where(CustomerIdentity.customer_id == Ticket.customer_id,
                                                 func.lower(CustomerIdentity.address).like(like))),
    ]
    if (as_number := as_id(number)) is not None:
        terms.append(Ticket.id == as_number)
    return terms


def _search_text(text: str) -> str:
    return text.replace("%", "").replace("_", "")


def _matching(search: str) -> ColumnElement[bool]:
    """The ticket's number, or the text in its subject, its messages, or its customer's name or addresses."""
    return or_(*_search_terms(search))


def _trigram_searchable(search: str) -> bool:
    """pg_trgm's indexes narrow `LIKE '%text%'` only by the text's runs of three letters or digits; without one
    they would hand back every row, and the newest-first walk of tickets checking the whole OR is the better plan."""
    return TRIGRAM.search(_search_text(search.strip().lower())) is not None


def _searched(listing: _Listing, search: str, rows: int, columns: Sequence[Any] = (Ticket,)) -> Select[Any]:
    """A search as a UNION of newest-first branches, one per way of matching, each with the list's filters and its own
    LIMIT: each can use its trigram index (or walk the newest tickets, if its text is common), where the OR of them all
    can only be checked ticket by ticket. The newest `rows` of each branch hold the newest `rows` of all."""
    branches = [listing.narrow(select(Ticket.id).where(term)).order_by(Ticket.id.desc()).limit(rows)
                for term in _search_terms(search)]
    found = union(*branches).subquery("found")
    newest = select(found.c.id).order_by(found.c.id.desc()).limit(rows)
    return select(*columns).where(Ticket.id.in_(newest)).order_by(Ticket.id.desc())


async def ticket_view(session: AsyncSession, ticket: Ticket, now: datetime) -> TicketView:
    await session.flush()
    customer = await session.get_one(Customer, ticket.customer_id)
    identities = list(
        await session.scalars(
            select(CustomerIdentity).where(CustomerIdentity.customer_id == customer.id).order_by(CustomerIdentity.id)
        )
    )
    group = await session.get_one(Group, ticket.group_id)
    assignee = await session.get(Agent, ticket.assignee_id) if ticket.assignee_id else None
    messages = list(await session.scalars(select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id)))
    events = list(await session.scalars(select(Event).where(Event.ticket_id == ticket.id).order_by(Event.id)))
    calls = list(await session.scalars(
        select(Call).where(Call.ticket_id == ticket.id).order_by(Call.started_at, Call.id)))
    promises = list(await session.scalars(
        select(Deadline).where(Deadline.ticket_id == ticket.id).order_by(Deadline.id)))
    clock = list(await session.scalars(
        select(ClockEvent).where(ClockEvent.ticket_id == ticket.id).order_by(ClockEvent.id)))
    rating = await session.scalar(select(Rating).where(Rating.ticket_id == ticket.id))
    tags = list(await session.scalars(select(TicketTag.tag).where(TicketTag.ticket_id == ticket.id)
                                      .order_by(TicketTag.tag)))
    return TicketView(ticket, customer, identities, group, assignee, messages, events, calls, promises, clock, now,
                      await linked_tickets(session, ticket.id), await merged_from(session, ticket.id), rating, tags)
