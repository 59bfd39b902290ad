"""Agents' load counters, kept by the flush that moves a ticket: routing reads two columns instead of counting.

Every flush that creates, changes or deletes a ticket notes what it moved, and the transaction adds it to
`agents.load_open` and `agents.load_weight` before it commits (or when the router is about to read them),
whatever code path made the change (the router, an agent's update, a merge, a regulation's reassignment, a call).
The weight of a ticket is the router's (channel x priority), handed to the session factory as `WEIGH`; `recount`
puts every counter right again, which each dispatcher does at start, so a changed weight or a write made outside
the ORM heals there.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import NEVER_SET, NO_VALUE, instance_state

from tickets.models import LOAD_STATUSES, Agent, Ticket

Weigh = Callable[[str, str], int]
"""A ticket's weight in thousandths, from its channel and priority."""
WEIGH = "switchboard.weigh"
"""`session.info` key of the `Weigh` in force (set by the session factory); unit weights when absent."""

_AGENTS = cast(Table, Agent.__table__)
# Core statements, run as one executemany: no ORM bookkeeping inside the flush.
_BUMP = (update(_AGENTS).where(_AGENTS.c.id == bindparam("agent"))
         .values(load_open=_AGENTS.c.load_open + bindparam("open"),
                 load_weight=_AGENTS.c.load_weight + bindparam("weight")))
_SET = (update(_AGENTS).where(_AGENTS.c.id == bindparam("agent"))
        .values(load_open=bindparam("open"), load_weight=bindparam("weight")))


def unit_weight(channel: str, priority: str) -> int:
    return 1000


def _before(ticket: Ticket, name: str) -> Any:
    """The value the database holds (what the last flush wrote): the state keeps it for each attribute changed
    since (all four are `active_history`, so it is loaded even when the change came first)."""
    value = instance_state(ticket).committed_state.get(name, NO_VALUE)
    return getattr(ticket, name) if value is NO_VALUE or value is NEVER_SET else value


def _share(weigh: Weigh, assignee: int | None, status: Any, channel: str, priority: Any) -> tuple[int, int, int] | None:
    if assignee is None or status not in LOAD_STATUSES:
        return None
    return assignee, 1, weigh(channel, str(priority))


def _stored_share(weigh: Weigh, ticket: Ticket) -> tuple[int, int, int] | None:
    """The ticket's share of a load as the database holds it."""
    return _share(weigh, _before(ticket, "assignee_id"), _before(ticket, "status"), _before(ticket, "channel"),
                  _before(ticket, "priority"))


def moved(session: Session) -> dict[int, tuple[int, int]]:
    """What this flush moves, per agent: (open tickets, weight) to add."""
    weigh: Weigh = session.info.get(WEIGH) or unit_weight
    deltas: dict[int, list[int]] = defaultdict(lambda: [0, 0])

    def add(share: tuple[int, int, int] | None, sign: int) -> None:
        if share is not None:
            agent, count, weight = share
            deltas[agent][0] += sign * count
            deltas[agent][1] += sign * weight

    for ticket in session.new:
        if isinstance(ticket, Ticket):
            add(_share(weigh, ticket.assignee_id, ticket.status, ticket.channel, ticket.priority), +1)
    for ticket in session.dirty:
        if isinstance(ticket, Ticket) and ticket not in session.deleted:
            old = _stored_share(weigh, ticket)
            new = _share(weigh, ticket.assignee_id, ticket.status, ticket.channel, ticket.priority)
            if old != new:
                add(old, -1)
                add(new, +1)
    for ticket in session.deleted:
        if isinstance(ticket, Ticket):
            add(_stored_share(weigh, ticket), -1)
    return {agent: (count, weight) for agent, (count, weight) in deltas.items() if count or weight}


PENDING = "switchboard.load_moves"
"""`session.info` key: what this transaction's flushes moved and the counters do not hold yet."""


def note_flushed_loads(session: Session, _flush_context: Any) -> None:
    """`after_flush`: remember what the flush moved. The counters are written once, at `settle`: an agent's row is
    then locked only from there to the commit, and in agent id order, as the router locks."""
    changes = moved(session)
    if changes:
        pending: dict[int, list[int]] = session.info.setdefault(PENDING, {})
        for agent, (count, weight) in changes.items():
            total = pending.setdefault(agent, [0, 0])
            total[0] += count
            total[1] += weight


def settle(session: Session) -> None:
    """Write what the transaction's flushes moved into the counters (before commit, and before the router reads)."""
    session.flush()
    pending: dict[int, list[int]] = session.info.pop(PENDING, {})
    changes = [{"agent": agent, "open": count, "weight": weight}
               for agent, (count, weight) in sorted(pending.items()) if count or weight]
    if changes:
        session.execute(_BUMP, changes)


def forget(session: Session, *_: Any) -> None:
    """After a rollback nothing the flushes moved happened."""
    session.info.pop(PENDING, None)


async def settled(session: AsyncSession) -> None:
    """`settle` from async code: the router calls it once it holds its lock, before reading loads."""
    await session.run_sync(settle)


async def recount(session: AsyncSession, weigh: Weigh) -> int:
    """Set every agent's counters from their tickets; returns how many were wrong.

    The agents are locked first (in id order, as the router does), so no flush moves a counter between the count and
    the write: a change waiting on the lock adds its share to the recounted value, which did not include it."""
    await settled(session)
    query = select(Agent.id, Agent.load_open, Agent.load_weight).order_by(Agent.id).with_for_update(key_share=True)
    stored = {agent: (count, weight) for agent, count, weight in await session.execute(query)}
    if not stored:
        return 0
    counted: dict[int, list[int]] = {agent: [0, 0] for agent in stored}
    rows = await session.execute(
        select(Ticket.assignee_id, Ticket.channel, Ticket.priority, func.count())
        .where(Ticket.assignee_id.in_(list(stored)), Ticket.status.in_(LOAD_STATUSES))
        .group_by(Ticket.assignee_id, Ticket.channel, Ticket.priority))
    for agent, channel, priority, count in rows:
        assert agent is not None  # the query counts assigned tickets only
        counted[agent][0] += count
        counted[agent][1] += count * weigh(channel, str(priority))
    wrong = {agent: tuple(value) for agent, value in counted.items() if tuple(value) != stored[agent]}
    if wrong:
        await session.execute(
            _SET,
            [{"agent": agent, "open": count, "weight": weight} for agent, (count, weight) in sorted(wrong.items())])
    return len(wrong)
