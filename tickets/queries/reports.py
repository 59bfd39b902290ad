"""What the manager dashboard reads: aggregates over the store, each one query, bounded by a time window."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.db import is_postgresql
from tickets.deps import Deps
from tickets.models import Deadline, DeadlineStatus, Rating, Ticket, TicketStatus

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

    @property
    def satisfaction(self) -> float | None:
        """The mean rating, or None before the first."""
        total = sum(self.ratings)
        return sum(score * count for score, count in enumerate(self.ratings, 1)) / total if total else None


async def _compliance(session: AsyncSession, since: datetime) -> list[Compliance]:
    in_time = (Deadline.status == DeadlineStatus.met) & (Deadline.met_at <= Deadline.due_at)
    late = (Deadline.status == DeadlineStatus.fired) | ((Deadline.status == DeadlineStatus.met)
                                                        & (Deadline.met_at > Deadline.due_at))
    rows = await session.execute(
        select(Deadline.regulation, Deadline.step, func.count().filter(in_time), func.count().filter(late),
               func.count().filter(Deadline.status == DeadlineStatus.pending))
        .where(Deadline.created_at >= since)
        .group_by(Deadline.regulation, Deadline.step)
        .order_by(Deadline.regulation, Deadline.step))
    return [Compliance(regulation, step, met, late_count, pending)
            for regulation, step, met, late_count, pending in rows]


def _seconds(session: AsyncSession, start: Any, end: Any) -> ColumnElement[float]:
    """How long from `start` to `end`, in the database (SQLite keeps datetimes as text)."""
    if is_postgresql(session):
        return cast(ColumnElement[float], func.extract("epoch", end - start))
    return (func.julianday(end) - func.julianday(start)) * 86400.0


async def _histograms(session: AsyncSession, columns: Sequence[Any], since: datetime) -> list[Histogram]:
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
    row = [int(count) for count in (await session.execute(select(*buckets).where(Ticket.created_at >= since))).one()]
    size = len(bounds) + 1
    return [Histogram(RESPONSE_BUCKETS, row[i * size:(i + 1) * size]) for i in range(len(columns))]


async def _ratings(session: AsyncSession, since: datetime) -> list[int]:
    counts = dict(list(await session.execute(select(Rating.score, func.count()).where(Rating.created_at >= since)
                                             .group_by(Rating.score))))
    return [counts.get(score, 0) for score in range(1, 6)]


async def _comments(session: AsyncSession, since: datetime, limit: int = 20) -> list[Rating]:
    return list(await session.scalars(
        select(Rating).where(Rating.created_at >= since, Rating.comment.isnot(None), Rating.comment != "")
        .order_by(Rating.created_at.desc(), Rating.id.desc()).limit(limit)))


async def _by_channel(session: AsyncSession, since: datetime) -> dict[str, dict[str, int]]:
    day = func.date(func.timezone("UTC", Ticket.created_at)) if is_postgresql(session) else func.date(Ticket.created_at)
    rows = await session.execute(select(day, Ticket.channel, func.count()).where(Ticket.created_at >= since)
                                 .group_by(day, Ticket.channel))
    days: dict[str, dict[str, int]] = {}
    for created_on, channel, count in rows:
        days.setdefault(str(created_on), {})[channel] = count
    return dict(sorted(days.items()))


async def report(deps: Deps, days: int = 14) -> Report:
    since = deps.clock.now() - timedelta(days=days)
    async with deps.store.session() as session:
        first_response, resolution = await _histograms(session, [Ticket.first_response_at, Ticket.resolved_at],
                                                       since)
        return Report(since, await _compliance(session, since), first_response, resolution,
                      await _by_channel(session, since), await _ratings(session, since),
                      dict(list(await session.execute(
                          select(Ticket.assignee_id, func.count())
                          .where(Ticket.status == TicketStatus.pending, Ticket.assignee_id.isnot(None))
                          .group_by(Ticket.assignee_id)))), await _comments(session, since))
