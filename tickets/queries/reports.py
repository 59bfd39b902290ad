"""What the manager dashboard reads: aggregates over the store, each one query, bounded by a time window."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.db import is_postgresql
from tickets.deps import Deps
from tickets.models import (
    ACTIVE_STATUSES,
    CLOSED_STATUSES,
    Activity,
    ActivityType,
    Deadline,
    DeadlineStatus,
    PlannedContact,
    PlanStatus,
    Rating,
    Ticket,
    TicketStatus,
    TicketTag,
)

RESPONSE_BUCKETS = (timedelta(hours=1), timedelta(hours=4), timedelta(hours=8), timedelta(days=1),
                    timedelta(days=2))
"""Upper bounds of the time-to-answer histogram; the last bucket is everything longer."""


@dataclass(frozen=True)
class Compliance:
    regulation: str
    step: str
    met: int
    """Kept in time."""
    late: int
    """Met after the due time, or fired."""
    pending: int

    @property
    def share(self) -> float | None:
        done = self.met + self.late
        return self.met / done if done else None


@dataclass(frozen=True)
class Histogram:
    bounds: Sequence[timedelta]
    counts: list[int]
    """One per bound, and one more for longer."""


@dataclass(frozen=True)
class Report:
    since: datetime
    compliance: list[Compliance]
    first_response: Histogram
    resolution: Histogram
    by_channel: dict[str, dict[str, int]]
    """Day (ISO date) → channel → tickets created."""
    ratings: list[int]
    """How many clients answered 1, 2, 3, 4 and 5."""
    pending_by_agent: dict[int, int]
    """Tickets each agent holds that wait on the client (part of their load)."""
    comments: list[Rating]
    """The latest ratings that came with words, newest first."""
    tags: list[tuple[str, int]]
    """The most used tags on the window's tickets, with how many tickets carry each."""
    outcomes: list[tuple[str, str | None, int]] = field(default_factory=list)
    """How the tickets resolved in the window ended: (outcome, a refusal's reason, tickets), most first."""
    activities: list[tuple[str, int]] = field(default_factory=list)
    """The contacts with clients agents recorded in the window, by type."""

    @property
    def satisfaction(self) -> float | None:
        """The mean rating, or None before the first."""
        total = sum(self.ratings)
        return sum(score * count for score, count in enumerate(self.ratings, 1)) / total if total else None


async def _compliance(session: AsyncSession, since: datetime, scope: Scope) -> list[Compliance]:
    in_time = (Deadline.status == DeadlineStatus.met) & (Deadline.met_at <= Deadline.due_at)
    late = (Deadline.status == DeadlineStatus.fired) | ((Deadline.status == DeadlineStatus.met)
                                                        & (Deadline.met_at > Deadline.due_at))
    rows = await session.execute(
        select(Deadline.regulation, Deadline.step, func.count().filter(in_time), func.count().filter(late),
               func.count().filter(Deadline.status == DeadlineStatus.pending))
        .where(Deadline.created_at >= since, *scope.on_deadlines())
        .group_by(Deadline.regulation, Deadline.step)
        .order_by(Deadline.regulation, Deadline.step))
    return [Compliance(regulation, step, met, late_count, pending)
            for regulation, step, met, late_count, pending in rows]


def _seconds(session: AsyncSession, start: Any, end: Any) -> ColumnElement[float]:
    """How long from `start` to `end`, in the database (SQLite keeps datetimes as text)."""
    if is_postgresql(session):
        return cast(ColumnElement[float], func.extract("epoch", end - start))
    return (func.julianday(end) - func.julianday(start)) * 86400.0


async def _histograms(session: AsyncSession, columns: Sequence[Any], since: datetime,
                      scope: Scope) -> list[Histogram]:
    """For each column, the time from creation to it of the tickets created in the window that got there: counted
    in the database in one pass over the window (at a busy desk's volumes it holds hundreds of thousands)."""
    bounds = [bound.total_seconds() for bound in RESPONSE_BUCKETS]
    buckets: list[ColumnElement[int]] = []
    for column in columns:
        took = _seconds(session, Ticket.created_at, column)
        reached = column.isnot(None)
        buckets.append(func.count().filter(reached, took <= bounds[0]))
        buckets += [func.count().filter(reached, took > low, took <= high) for low, high in itertools.pairwise(bounds)]
        buckets.append(func.count().filter(reached, took > bounds[-1]))
    row = [int(count) for count in (await session.execute(
        select(*buckets).where(Ticket.created_at >= since, *scope.on_tickets()))).one()]
    size = len(bounds) + 1
    return [Histogram(RESPONSE_BUCKETS, row[i * size:(i + 1) * size]) for i in range(len(columns))]


async def _ratings(session: AsyncSession, since: datetime, scope: Scope) -> list[int]:
    counts = dict(list(await session.execute(select(Rating.score, func.count()).where(
        Rating.created_at >= since, *scope.on_rated()).group_by(Rating.score))))
    return [counts.get(score, 0) for score in range(1, 6)]


async def _comments(session: AsyncSession, since: datetime, scope: Scope, limit: int = 20) -> list[Rating]:
    return list(await session.scalars(
        select(Rating).where(Rating.created_at >= since, Rating.comment.isnot(None), Rating.comment != "",
                             *scope.on_rated())
        .order_by(Rating.created_at.desc(), Rating.id.desc()).limit(limit)))


async def _tags(session: AsyncSession, since: datetime, scope: Scope, limit: int = 15) -> list[tuple[str, int]]:
    count = func.count()
    rows = await session.execute(
        select(TicketTag.tag, count).join(Ticket, Ticket.id == TicketTag.ticket_id)
        .where(Ticket.created_at >= since, *scope.on_tickets())
        .group_by(TicketTag.tag).order_by(count.desc(), TicketTag.tag).limit(limit))
    return [(tag, int(n)) for tag, n in rows]


async def _outcomes(session: AsyncSession, since: datetime, scope: Scope) -> list[tuple[str, str | None, int]]:
    count = func.count()
    rows = await session.execute(
        select(Ticket.outcome, Ticket.outcome_reason, count)
        .where(Ticket.resolved_at >= since, Ticket.outcome.isnot(None), Ticket.status.in_(CLOSED_STATUSES),
               *scope.on_tickets())
        .group_by(Ticket.outcome, Ticket.outcome_reason).order_by(count.desc(), Ticket.outcome))
    return [(str(outcome), reason, int(n)) for outcome, reason, n in rows]


async def _activities(session: AsyncSession, since: datetime, scope: Scope) -> list[tuple[str, int]]:
    count = func.count()
    query = select(ActivityType.name, count).select_from(Activity) \
        .join(ActivityType, ActivityType.id == Activity.type_id).where(Activity.created_at >= since) \
        .group_by(ActivityType.name).order_by(count.desc(), ActivityType.name)
    if scope.agent_id is not None:
        query = query.where(Activity.agent_id == scope.agent_id)
    if scope.group_id is not None:
        query = query.where(Activity.ticket_id.in_(select(Ticket.id).where(Ticket.group_id == scope.group_id)))
    return [(name, int(n)) for name, n in await session.execute(query)]


async def _by_channel(session: AsyncSession, since: datetime, scope: Scope) -> dict[str, dict[str, int]]:
    day = func.date(func.timezone("UTC", Ticket.created_at)) if is_postgresql(session) else func.date(Ticket.created_at)
    rows = await session.execute(select(day, Ticket.channel, func.count()).where(
        Ticket.created_at >= since, *scope.on_tickets()).group_by(day, Ticket.channel))
    days: dict[str, dict[str, int]] = {}
    for created_on, channel, count in rows:
        days.setdefault(str(created_on), {})[channel] = count
    return dict(sorted(days.items()))


@dataclass(frozen=True)
class Scope:
    """Which tickets a report counts: all, one group's, or those one agent holds."""

    group_id: int | None = None
    agent_id: int | None = None

    def on_tickets(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.group_id is not None:
            found.append(Ticket.group_id == self.group_id)
        if self.agent_id is not None:
            found.append(Ticket.assignee_id == self.agent_id)
        return found

    def _of(self, column: Any) -> list[ColumnElement[bool]]:
        conditions = self.on_tickets()
        return [column.in_(select(Ticket.id).where(*conditions))] if conditions else []

    def on_deadlines(self) -> list[ColumnElement[bool]]:
        return self._of(Deadline.ticket_id)

    def on_rated(self) -> list[ColumnElement[bool]]:
        return self._of(Rating.ticket_id)


async def report(deps: Deps, days: int = 14, scope: Scope | None = None) -> Report:
    since = deps.clock.now() - timedelta(days=days)
    scope = scope or Scope()
    async with deps.store.session() as session:
        first_response, resolution = await _histograms(session, [Ticket.first_response_at, Ticket.resolved_at],
                                                       since, scope)
        return Report(since, await _compliance(session, since, scope), first_response, resolution,
                      await _by_channel(session, since, scope), await _ratings(session, since, scope),
                      dict(list(await session.execute(
                          select(Ticket.assignee_id, func.count())
                          .where(Ticket.status == TicketStatus.pending, Ticket.assignee_id.isnot(None),
                                 *scope.on_tickets())
                          .group_by(Ticket.assignee_id)))), await _comments(session, since, scope),
                      await _tags(session, since, scope), await _outcomes(session, since, scope),
                      await _activities(session, since, scope))


@dataclass(frozen=True)
class AgentIndicators:
    """What a head watches per agent: too little work is low activity, too much is spread too thin."""

    agent_id: int
    in_work: int
    """Active tickets they hold (new, open, waiting for the client)."""
    planned: int
    """Contacts they planned and have not made yet."""
    overdue_planned: int
    first_response: float | None
    """Mean seconds to the first answer, over the tickets they hold that were created in the window."""
    handling: float | None
    """Mean seconds from creation to resolution, over the tickets they resolved in the window."""
    protracted: int
    """Active tickets they hold that nothing happened on for the stale period."""


async def indicators(deps: Deps, days: int, scope: Scope, stale: timedelta) -> list[AgentIndicators]:
    """Each agent's indicators (every agent with any, in id order; one agent's with `scope.agent_id`)."""
    now = deps.clock.now()
    since = now - timedelta(days=days)
    active = Ticket.status.in_(ACTIVE_STATUSES)
    async with deps.store.session() as session:
        tickets = select(
            Ticket.assignee_id, func.count().filter(active),
            func.count().filter(active, Ticket.updated_at < now - stale),
            func.avg(_seconds(session, Ticket.created_at, Ticket.first_response_at)).filter(
                Ticket.created_at >= since, Ticket.first_response_at.isnot(None)),
            func.avg(_seconds(session, Ticket.created_at, Ticket.resolved_at)).filter(
                Ticket.resolved_at >= since, Ticket.status.in_(CLOSED_STATUSES)),
        ).where(Ticket.assignee_id.isnot(None), *scope.on_tickets()).group_by(Ticket.assignee_id)
        held = {row[0]: row[1:] for row in await session.execute(tickets)}
        plans = select(PlannedContact.agent_id, func.count(), func.count().filter(PlannedContact.due_at <= now)) \
            .where(PlannedContact.status == PlanStatus.pending).group_by(PlannedContact.agent_id)
        if scope.agent_id is not None:
            plans = plans.where(PlannedContact.agent_id == scope.agent_id)
        planned = {agent: (int(count), int(overdue)) for agent, count, overdue in await session.execute(plans)}
    found = []
    for agent_id in sorted(held.keys() | planned.keys()):
        in_work, protracted, first, handling = held.get(agent_id, (0, 0, None, None))
        count, overdue = planned.get(agent_id, (0, 0))
        found.append(AgentIndicators(agent_id, int(in_work), count, overdue,
                                     float(first) if first is not None else None,
                                     float(handling) if handling is not None else None, int(protracted)))
    return found
