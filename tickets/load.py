"""An agent's load: the open tickets they hold, across all channels."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.models import LOAD_STATUSES, Ticket


async def open_loads(session: AsyncSession, agent_ids: Sequence[int]) -> dict[int, int]:
    loads = dict.fromkeys(agent_ids, 0)
    if agent_ids:
        await session.flush()  # status changes made earlier in this transaction must count
        rows = await session.execute(
            select(Ticket.assignee_id, func.count())
            .where(Ticket.assignee_id.in_(agent_ids), Ticket.status.in_(LOAD_STATUSES))
            .group_by(Ticket.assignee_id)
        )
        loads.update({agent_id: count for agent_id, count in rows})
    return loads
