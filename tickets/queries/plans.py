"""An agent's plan (the contacts they planned that are due today or overdue) and the activity types on offer."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select

from tickets.deps import Deps
from tickets.models import ActivityType, Agent, Customer, PlannedContact, PlanStatus


@dataclass(frozen=True)
class PlanLine:
    planned: PlannedContact
    customer: str

    def overdue(self, now: datetime) -> bool:
        return self.planned.due_at <= now


async def plan_of(deps: Deps, viewer: Agent, until: datetime | None = None, *, customer_id: int | None = None,
                  limit: int = 100) -> list[PlanLine]:
    """The viewer's pending planned contacts due before `until` (the end of their day) or with one client, the most
    overdue first."""
    return await _pending(deps, [viewer.id], until, customer_id, limit)


async def overdue_plans(deps: Deps, agent_ids: Collection[int], limit: int = 50) -> list[PlanLine]:
    """The planned contacts these agents let pass without recording the next contact, the most overdue first: what
    their head sees."""
    return await _pending(deps, agent_ids, deps.clock.now(), None, limit)


async def _pending(deps: Deps, agent_ids: Collection[int], until: datetime | None, customer_id: int | None,
                   limit: int) -> list[PlanLine]:
    query = select(PlannedContact, Customer.name).join(Customer, Customer.id == PlannedContact.customer_id).where(
        PlannedContact.agent_id.in_(agent_ids), PlannedContact.status == PlanStatus.pending)
    if until is not None:
        query = query.where(PlannedContact.due_at < until)
    if customer_id is not None:
        query = query.where(PlannedContact.customer_id == customer_id)
    async with deps.store.session() as session:
        rows = await session.execute(query.order_by(PlannedContact.due_at).limit(limit))
        return [PlanLine(planned, name or f"#{planned.customer_id}") for planned, name in rows]


async def todays_plan(deps: Deps, viewer: Agent) -> list[PlanLine]:
    """What the viewer planned for today (UTC) and has not done, the overdue first: what signing in shows them."""
    now = deps.clock.now()
    return await plan_of(deps, viewer, datetime.combine(now.date() + timedelta(days=1), time(), tzinfo=UTC))


async def activity_types(deps: Deps) -> list[ActivityType]:
    async with deps.store.session() as session:
        return list(await session.scalars(select(ActivityType).order_by(ActivityType.id)))
