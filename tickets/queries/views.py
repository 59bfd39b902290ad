"""An agent's own queue views, by name."""

from __future__ import annotations

from sqlalchemy import select

from tickets.deps import Deps
from tickets.models import Agent, SavedView


async def list_views(deps: Deps, viewer: Agent) -> list[SavedView]:
    async with deps.store.session() as session:
        return list(await session.scalars(
            select(SavedView).where(SavedView.agent_id == viewer.id).order_by(SavedView.name)))
