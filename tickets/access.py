"""Who may see which tickets: agents their groups' tickets and those assigned to them; managers and admins all."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.errors import Forbidden, NotFound
from tickets.models import Agent, AgentGroup, Role, Ticket


def sees_everything(agent: Agent) -> bool:
    return agent.role in (Role.manager, Role.admin)


async def group_ids_of(session: AsyncSession, agent_id: int) -> list[int]:
    return list(await session.scalars(select(AgentGroup.group_id).where(AgentGroup.agent_id == agent_id)))


async def visibility(session: AsyncSession, viewer: Agent) -> ColumnElement[bool] | None:
    """The condition on tickets the viewer may see; None for a manager or admin, who sees all."""
    if sees_everything(viewer):
        return None
    return or_(Ticket.assignee_id == viewer.id, Ticket.group_id.in_(await group_ids_of(session, viewer.id)))


async def visible_to(session: AsyncSession, viewer: Agent, query: Select[Ticket]) -> Select[Ticket]:
    visible = await visibility(session, viewer)
    return query if visible is None else query.where(visible)


async def visible_ticket(session: AsyncSession, viewer: Agent, number: int, lock: bool = False) -> Ticket:
    """The ticket, if the viewer may open it: NotFound or Forbidden otherwise."""
    ticket = await session.get(Ticket, number, with_for_update=lock)
    if ticket is None:
        raise NotFound(f"no ticket #{number}")
    if (not sees_everything(viewer) and ticket.assignee_id != viewer.id
            and ticket.group_id not in await group_ids_of(session, viewer.id)):
        raise Forbidden(f"ticket #{number} is not in your groups")
    return ticket
