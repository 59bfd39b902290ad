"""An agent's own queue views: a name for a filtered, ordered queue, kept per agent."""

from __future__ import annotations

from sqlalchemy import delete, select

from tickets.deps import Deps
from tickets.errors import InvalidInput, NotFound
from tickets.models import Agent, SavedView
from tickets.uow import UnitOfWork

MAX_VIEWS = 30
"""Views one agent may keep: more would not fit the queue's navigation."""


async def save_view(deps: Deps, viewer: Agent, name: str, query: str) -> SavedView:
    """Keep the queue at `query` under `name` (the same name again: the view now shows this)."""
    name = " ".join(name.split())[:60]
    if not name:
        raise InvalidInput({"name": "give the view a name"})
    if len(query) > 1000:
        raise InvalidInput({"query": "too many filters"})

    async def work(uow: UnitOfWork) -> SavedView:
        session = uow.session
        found = await session.scalar(select(SavedView).where(SavedView.agent_id == viewer.id, SavedView.name == name))
        if found is not None:
            found.query = query
            return found
        count = len(list(await session.scalars(select(SavedView.id).where(SavedView.agent_id == viewer.id))))
        if count >= MAX_VIEWS:
            raise InvalidInput({"name": f"at most {MAX_VIEWS} views: remove one first"})
        view = SavedView(agent_id=viewer.id, name=name, query=query, created_at=deps.clock.now())
        session.add(view)
        await session.flush()
        return view

    return await deps.store.run(work)  # the same name saved twice at once: the second updates the first


async def remove_view(deps: Deps, viewer: Agent, view_id: int) -> None:
    """An agent removes only their own views."""
    async with deps.store.unit() as uow:
        removed = await uow.session.execute(
            delete(SavedView).where(SavedView.id == view_id, SavedView.agent_id == viewer.id))
        if not removed.rowcount:  # type: ignore[attr-defined]
            raise NotFound(f"no view {view_id} of yours")

