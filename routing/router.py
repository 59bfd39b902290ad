"""Least-loaded routing: the choice and the load change happen while the agents who could be chosen are locked.

Every member of the groups involved is locked in id order, in one statement, before choosing in Python:
choices are serialised per group, so loads stay even under any concurrency and nobody passes their
capacity (SKIP LOCKED alone left loads uneven; see STACK-NOTES). One statement, in id order, is what
keeps two transactions locking overlapping groups from deadlocking.

That lock serialises every assignment of a group, so what runs under it is kept to the least: callers take
it after writing everything else, it is FOR NO KEY UPDATE (rows that merely name an agent, like an event by
them, neither wait for it nor deadlock with it), the locked agents are read as plain rows in one pre-built
statement, and drains read the queue from its head instead of sorting it.
"""

from __future__ import annotations

import typing
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import BindParameter, Select, String, bindparam, cast, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from routing import rules
from routing.weights import Load, LoadWeights, counted
from tickets import audit
from tickets.loads import settled
from tickets.models import (
    Agent,
    AgentGroup,
    AgentSkill,
    Event,
    EventKind,
    Presence,
    Priority,
    Skill,
    Ticket,
    TicketStatus,
    skill_set,
)
from tickets.ports import LockedAgent

_URGENCY = (Priority.critical, Priority.high, Priority.normal, Priority.low)
"""The order queues drain in; within a priority, oldest first."""
_PAGE_MOST = 200
"""Waiting tickets one drain query reads at most (pages grow from the free seats while tickets are passed over)."""
_HANDOVERS = ("assigned", "taken", "transferred")
"""Events that give a ticket to an agent; only the router's own (`assigned` by the router) is undone on offline."""


class RoutedAgent(Protocol):
    """What choosing reads of an agent: an `AgentState` read under the lock, or an `Agent` (tests, the phone)."""

    id: int
    presence: Presence
    capacity: int
    last_assigned_at: datetime | None


@dataclass
class AgentState:
    """An agent's row as the router's lock read it: plain columns, not an ORM object (50 of those per lock cost
    more than the whole choice)."""

    id: int
    presence: Presence
    capacity: int
    last_assigned_at: datetime | None


@dataclass
class Candidate:
    """A locked agent as the router sees them while choosing."""

    agent: RoutedAgent
    groups: frozenset[int]
    skills: frozenset[str]
    load: Load

    @property
    def has_room(self) -> bool:
        return self.agent.presence == Presence.available and self.load.open < self.agent.capacity

    def can_take(self, ticket_skills: frozenset[str]) -> bool:
        return self.has_room and ticket_skills <= self.skills


class LeastLoadedRouter:
    """Least-loaded available agent of the ticket's group who has its skills and room; idle longest on ties."""

    def __init__(self, weights: LoadWeights | None = None, *, return_on_offline: bool = True) -> None:
        self.weights = weights or LoadWeights()
        self.return_on_offline = return_on_offline
        # Built once: the lock is the critical section of every assignment, and building these costs as much
        # as running them.
        members = select(AgentGroup.agent_id).where(AgentGroup.group_id.in_(bindparam("group_ids", expanding=True)))
        self._lock_rows = (
            select(Agent.id)
            .where(Agent.id.in_(members) | Agent.id.in_(bindparam("agent_ids", expanding=True)))
            .order_by(Agent.id)
            # FOR NO KEY UPDATE: serialises routers just as FOR UPDATE does, but not the foreign-key checks
            # (FOR KEY SHARE) of rows that name an agent, which a transaction may write before it locks.
            .with_for_update(key_share=True)
        )
        groups = select(func.aggregate_strings(cast(AgentGroup.group_id, String), ",")).where(
            AgentGroup.agent_id == Agent.id
        )
        skills = (
            select(func.aggregate_strings(Skill.name, ","))
            .select_from(AgentSkill)
            .join(Skill, Skill.id == AgentSkill.skill_id)
            .where(AgentSkill.agent_id == Agent.id)
        )
        ids: BindParameter[list[int]] = bindparam("ids", expanding=True)
        self._read_locked = (
            select(Agent.id, Agent.presence, Agent.capacity, Agent.last_assigned_at, groups.scalar_subquery(),
                   skills.scalar_subquery(), Agent.load_open, Agent.load_weight)
            .where(Agent.id.in_(ids))
            .order_by(Agent.id)
        )

    # --- locking and looking -----------------------------------------------------------------

    async def lock(
        self, session: AsyncSession, group_ids: Iterable[int], agent_ids: Iterable[int] = ()
    ) -> list[Candidate]:
        """Lock the members of these groups and these agents, in id order, and read their groups, skills and loads.

        Everything the transaction wrote so far is flushed first, so the lock is held only for the choice and its
        writes. The read is a statement of its own after the lock: under READ COMMITTED it sees what the previous
        holder committed, which a subquery of the locking statement (its snapshot older than the wait) would not.
        """
        await session.flush()
        ids = list(await session.scalars(
            self._lock_rows, {"group_ids": sorted(set(group_ids)), "agent_ids": sorted(set(agent_ids))}
        ))
        if not ids:
            return []
        await settled(session)  # loads this transaction moved count, now that their agents are locked
        return [
            Candidate(AgentState(agent_id, presence, capacity, last_assigned_at),
                      frozenset(int(g) for g in (group_list or "").split(",") if g), skill_set(skill_list),
                      counted(open_count, weight))
            for agent_id, presence, capacity, last_assigned_at, group_list, skill_list, open_count, weight
            in await session.execute(self._read_locked, {"ids": ids})
        ]

    async def loads(self, session: AsyncSession, agent_ids: Collection[int]) -> dict[int, Load]:
        return await self.weights.loads(session, list(agent_ids))

    async def place(self, session: AsyncSession, ticket: Ticket, language: str | None) -> rules.Placement:
        """Apply the routing rules to a new ticket; says which matched (for its audit event) and their tags."""
        return await rules.place(session, ticket, language)

    def place_using(self, rows: Sequence[Sequence[Any]], ticket: Ticket, language: str | None) -> rules.Placement:
        """`place` over rule rows the caller read (as `rules.RuleRow`, in order): no statement of its own."""
        return rules.apply([rules.RuleRow(*row) for row in rows], ticket, language)

    # --- choosing ----------------------------------------------------------------------------

    @staticmethod
    def choose(
        candidates: list[Candidate], ticket: Ticket, exclude: Collection[int] = ()
    ) -> tuple[Candidate | None, str]:
        needed = skill_set(ticket.skills)
        members = [c for c in candidates if ticket.group_id in c.groups and c.agent.id not in exclude]
        available = [c for c in members if c.agent.presence == Presence.available]
        skilled = [c for c in available if needed <= c.skills]
        eligible = [c for c in skilled if c.has_room]
        if not eligible:
            skills = ", ".join(sorted(needed))
            if not available:
                return None, "no agent available"
            if not skilled:
                return None, f"no available agent has the skills {skills}"
            return None, "every available agent " + (f"with the skills {skills} " if needed else "") + "is at capacity"
        ranked = sorted(
            eligible,
            key=lambda c: (
                c.load.weighted, c.agent.last_assigned_at is not None, c.agent.last_assigned_at or 0, c.agent.id
            ),
        )
        chosen = ranked[0]
        reason = f"least-loaded: {chosen.load.describe()}"
        if len(ranked) > 1:
            reason += f"; next best {ranked[1].load.describe()}"
        else:
            reason += "; the only agent who could take it"
        return chosen, reason

    def _hand_over(self, session: AsyncSession, ticket: Ticket, chosen: Candidate, now: datetime, reason: str) -> None:
        # What the counters will say once this flushes (`tickets.loads` adds the same thousandths).
        weight = self.weights.milli(ticket.channel, str(ticket.priority)) / 1000
        chosen.load = Load(chosen.load.open + 1, round(chosen.load.weighted + weight, 6))
        self.give(session, ticket, chosen.agent, now, reason, open=chosen.load.open,
                  load=chosen.load.weighted, capacity=chosen.agent.capacity)

    @staticmethod
    def give(
        session: AsyncSession, ticket: Ticket, agent: RoutedAgent, now: datetime, reason: str, *,
        actor: str = "router", **data: object,
    ) -> None:
        """Hand the ticket over; an `AgentState`'s new last assignment is written by `stamp`, an `Agent`'s by flush."""
        ticket.assignee_id = agent.id
        ticket.status = TicketStatus.open
        ticket.updated_at = now
        agent.last_assigned_at = now
        audit.record(session, ticket.id, EventKind.assigned, now, actor=actor, reason=reason, agent_id=agent.id, **data)

    @staticmethod
    async def stamp(session: AsyncSession, agent_ids: Collection[int], now: datetime) -> None:
        """Record when these agents were last given a ticket (the tie-break), in one statement.

        The statement returns the agents' rows into the session: their assignment notices, written next with the
        group still locked, find them there instead of reading each one again (a round trip inside the lock)."""
        if agent_ids:
            (await session.scalars(
                update(Agent).where(Agent.id.in_(sorted(agent_ids))).values(last_assigned_at=now).returning(Agent),
                execution_options={"populate_existing": True},
            )).all()

    async def assign(
        self, session: AsyncSession, ticket: Ticket, now: datetime, exclude: Collection[int] = ()
    ) -> RoutedAgent | None:
        """Give the ticket to the least-loaded eligible agent not in `exclude`, or say why nobody.

        A waiting ticket stays in its group's queue (`queued`). A ticket being reassigned (it has an agent, whom
        `exclude` names) stays with that agent when nobody else can take it: `not_reassigned`, not a `queued`
        event that would claim it waits in a queue it is not in.
        """
        candidates = await self.lock(session, [ticket.group_id])
        chosen, reason = self.choose(candidates, ticket, exclude)
        if chosen is None:
            if ticket.assignee_id is not None:
                audit.record(session, ticket.id, EventKind.not_reassigned, now, actor="router",
                             reason=f"nobody else could take it: {reason}", agent_id=ticket.assignee_id)
            else:
                audit.record(session, ticket.id, EventKind.queued, now, actor="router", reason=reason,
                             group_id=ticket.group_id)
            return None
        self._hand_over(session, ticket, chosen, now, reason)
        await self.stamp(session, [chosen.agent.id], now)
        return chosen.agent

    async def assign_all(self, session: AsyncSession, tickets: Sequence[Ticket], now: datetime) -> int:
        """Give each of these waiting tickets, in the order given, to its group's least-loaded eligible agent: the
        groups are locked and their agents read once for the whole batch, and each choice sees the ones before it.
        Returns how many were assigned; the others stay queued, saying why."""
        if not tickets:
            return 0
        candidates = await self.lock(session, {t.group_id for t in tickets})
        stamped: set[int] = set()
        for ticket in tickets:
            chosen, reason = self.choose(candidates, ticket)
            if chosen is None:
                audit.record(session, ticket.id, EventKind.queued, now, actor="router", reason=reason,
                             group_id=ticket.group_id)
                continue
            self._hand_over(session, ticket, chosen, now, reason)
            stamped.add(chosen.agent.id)
        with session.no_autoflush:  # the tickets are written by the caller's next flush, with what else it changes
            await self.stamp(session, stamped, now)
        return sum(1 for t in tickets if t.assignee_id is not None)

    async def drain(
        self, session: AsyncSession, group_ids: Iterable[int], now: datetime, hold: Collection[int] = (),
        locked: Sequence[LockedAgent] | None = None,
    ) -> int:
        """Give waiting tickets to agents with room: highest priority first, then oldest.

        Tickets that need skills no agent with room has are passed over, not waited for. The order runs across
        all the groups at once: an agent of two groups takes the most urgent ticket of either queue, not first
        everything of the group with the lower id. `locked` is what this transaction's `lock` of these groups
        returned, when no load has moved since: it spares locking and reading them again.

        Each priority is read from the head of its queue in pages (the queue index is ordered by group, status,
        priority and age), so a drain costs the tickets it looks at, not the depth of the queue: sorting or
        grouping the whole queue took 40 ms under the lock at 30,000 waiting.
        """
        group_ids = sorted(set(group_ids))
        if not group_ids:
            return 0
        # `locked` is what this router's own `lock` returned in this transaction: its Candidates
        candidates = (typing.cast(list[Candidate], list(locked)) if locked is not None
                      else await self.lock(session, group_ids))
        if not any(c.has_room for c in candidates):
            return 0

        def waiting(priority: Priority) -> Select[Ticket]:
            return select(Ticket).where(
                Ticket.group_id.in_(group_ids),
                Ticket.status == TicketStatus.new,
                Ticket.priority == priority,
                Ticket.assignee_id.is_(None),
                Ticket.id.not_in(hold),
            )

        # One probe says which priorities have anyone waiting, so empty ones cost no query of their own.
        found = (await session.execute(select(*(waiting(p).exists() for p in _URGENCY)))).one()
        assigned = 0
        stamped: set[int] = set()
        for priority in (p for p, anyone in zip(_URGENCY, found, strict=True) if anyone):
            after: tuple[datetime, int] | None = None
            size = 0
            while room := sum(c.agent.capacity - c.load.open for c in candidates if c.has_room):
                size = min(max(room, size * 2), _PAGE_MOST)
                query = waiting(priority)
                if after is not None:  # past the tickets this drain looked at (it holds their locks itself)
                    query = query.where(Ticket.created_at >= after[0],
                                        or_(Ticket.created_at > after[0], Ticket.id > after[1]))
                tickets = list(await session.scalars(
                    query.order_by(Ticket.created_at, Ticket.id).limit(size).with_for_update(skip_locked=True)
                ))
                for ticket in tickets:
                    chosen, reason = self.choose(candidates, ticket)
                    if chosen is not None:
                        self._hand_over(session, ticket, chosen, now, f"from the queue, {reason}")
                        stamped.add(chosen.agent.id)
                        assigned += 1
                if len(tickets) < size:
                    break
                after = (tickets[-1].created_at, tickets[-1].id)
        await self.stamp(session, stamped, now)
        return assigned

    # --- presence ------------------------------------------------------------------------------

    async def release(self, session: AsyncSession, agent: Agent, now: datetime, reason: str) -> list[Ticket]:
        """Return the router's assignments this agent has not touched yet to their queues (they went offline).

        Touched means any event of theirs on it, a reply or a first response, or that it came by hand (taken or
        transferred), not from the router.
        """
        if not self.return_on_offline:
            return []
        held = list(
            await session.scalars(
                select(Ticket)
                .where(Ticket.assignee_id == agent.id, Ticket.status == TicketStatus.open,
                       Ticket.first_response_at.is_(None))
                .order_by(Ticket.id)
                # A ticket someone is changing right now is being worked; waiting for it here, with the
                # agents locked, could deadlock against that change (ticket first, then agents).
                .with_for_update(skip_locked=True)
            )
        )
        if not held:
            return []
        events = await session.execute(
            select(Event.ticket_id, Event.kind, Event.actor, Event.actor_id)
            .where(Event.ticket_id.in_([t.id for t in held]))
            .order_by(Event.id)
        )
        touched: set[int] = set()
        last_handover: dict[int, tuple[str, str]] = {}
        for ticket_id, kind, actor, actor_id in events:
            if actor_id == agent.id:
                touched.add(ticket_id)
            if kind in _HANDOVERS:
                last_handover[ticket_id] = (kind, actor)
        returned = [t for t in held if t.id not in touched and last_handover.get(t.id) == ("assigned", "router")]
        for ticket in returned:
            ticket.assignee_id = None
            ticket.status = TicketStatus.new
            ticket.updated_at = now
            audit.record(session, ticket.id, EventKind.returned, now, actor="router", reason=reason, agent_id=agent.id)
        return returned
