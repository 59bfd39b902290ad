"""Least-loaded routing: the choice and the load change happen while the group's agent rows are locked.

Locking every available agent of the group in id order and choosing in Python serialises choices per
group: loads stay even under any concurrency (SKIP LOCKED alone left them uneven; see STACK-NOTES).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime

from sqlalchemy import case, select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets import audit
from tickets.load import open_loads
from tickets.models import (
    Agent,
    AgentGroup,
    Presence,
    Priority,
    Ticket,
    TicketStatus,
)

_PRIORITY_ORDER = case(
    {Priority.critical: 0, Priority.high: 1, Priority.normal: 2, Priority.low: 3},
    value=Ticket.priority,
    else_=4,
)


class LeastLoadedRouter:
    """Router v1: least-loaded available agent of the ticket's group, below capacity, idle longest on ties."""

    async def _lock_group(self, session: AsyncSession, group_id: int) -> list[Agent]:
        result = await session.execute(
            select(Agent)
            .join(AgentGroup, AgentGroup.agent_id == Agent.id)
            .where(AgentGroup.group_id == group_id, Agent.presence == Presence.available)
            .order_by(Agent.id)
            .with_for_update(of=Agent)
        )
        return list(result.scalars())

    @staticmethod
    def _choose(agents: list[Agent], loads: dict[int, int]) -> tuple[Agent | None, str]:
        eligible = [a for a in agents if loads[a.id] < a.capacity]
        if not eligible:
            why = "no agent available" if not agents else "every available agent is at capacity"
            return None, why
        ranked = sorted(
            eligible,
            key=lambda a: (loads[a.id], a.last_assigned_at is not None, a.last_assigned_at or 0, a.id),
        )
        chosen = ranked[0]
        reason = f"least-loaded: {loads[chosen.id]} open"
        if len(ranked) > 1:
            reason += f"; next best {loads[ranked[1].id]}"
        return chosen, reason

    @staticmethod
    def give(
        session: AsyncSession, ticket: Ticket, agent: Agent, now: datetime, reason: str, *, actor: str = "router"
    ) -> None:
        ticket.assignee_id = agent.id
        ticket.status = TicketStatus.open
        ticket.updated_at = now
        agent.last_assigned_at = now
        audit.record(session, ticket.id, "assigned", now, actor=actor, reason=reason, agent_id=agent.id)

    async def assign(
        self, session: AsyncSession, ticket: Ticket, now: datetime, exclude: Collection[int] = ()
    ) -> Agent | None:
        agents = await self._lock_group(session, ticket.group_id)
        loads = await open_loads(session, [a.id for a in agents])
        chosen, reason = self._choose([a for a in agents if a.id not in exclude], loads)
        if chosen is None:
            audit.record(session, ticket.id, "queued", now, actor="router", reason=reason, group_id=ticket.group_id)
            return None
        self.give(session, ticket, chosen, now, reason)
        return chosen

    async def drain(
        self, session: AsyncSession, group_ids: Iterable[int], now: datetime, hold: Collection[int] = ()
    ) -> int:
        assigned = 0
        for group_id in sorted(set(group_ids)):
            agents = await self._lock_group(session, group_id)
            if not agents:
                continue
            loads = await open_loads(session, [a.id for a in agents])
            room = sum(max(a.capacity - loads[a.id], 0) for a in agents)
            if room == 0:
                continue
            waiting = await session.execute(
                select(Ticket)
                .where(
                    Ticket.group_id == group_id,
                    Ticket.status == TicketStatus.new,
                    Ticket.assignee_id.is_(None),
                    Ticket.id.not_in(hold),
                )
                .order_by(_PRIORITY_ORDER, Ticket.created_at, Ticket.id)
                .limit(room)
                .with_for_update(skip_locked=True)
            )
            for ticket in waiting.scalars():
                chosen, reason = self._choose(agents, loads)
                if chosen is None:
                    break
                self.give(session, ticket, chosen, now, f"from the queue, {reason}")
                loads[chosen.id] += 1
                assigned += 1
        return assigned
