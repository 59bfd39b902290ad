"""Who may see which tickets: agents their groups' tickets and those assigned to them; managers and admins all."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.errors import Forbidden, NotFound
from tickets.models import Agent, AgentGroup, Call, Role, Ticket


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


async def customer_visible(session: AsyncSession, viewer: Agent, customer_id: int,
                           visible: ColumnElement[bool] | None) -> bool:
    """Whether the viewer may open this customer card: a manager or admin any; an agent a card with a ticket they
    may open or a call they took. Ids are sequential: every other card is answered as not found. `visible`: the
    viewer's `visibility`, read once by the caller."""
    if visible is None:
        return True
    tickets = select(Ticket.id).where(Ticket.customer_id == customer_id, visible)
    calls = select(Call.id).where(Call.customer_id == customer_id, Call.agent_id == viewer.id)
    return bool(await session.scalar(select(exists(tickets) | exists(calls))))


def readable_calls(viewer: Agent, visible: ColumnElement[bool] | None) -> ColumnElement[bool] | None:
    """The condition on calls the viewer may read (notes, recordings): those on tickets they may open (`visible`,
    their `visibility`), and those they took; None for a manager or admin."""
    if visible is None:
        return None
    return or_(Call.ticket_id.in_(select(Ticket.id).where(visible)), Call.agent_id == viewer.id)
