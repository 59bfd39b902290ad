"""What the channels parked (the dead-letter table), newest first."""

from __future__ import annotations

from sqlalchemy import select

from tickets.deps import Deps
from tickets.errors import NotFound
from tickets.models import Parked


async def parked(deps: Deps, limit: int = 100, channel: str | None = None) -> list[Parked]:
    async with deps.store.session() as session:
        query = select(Parked).order_by(Parked.id.desc()).limit(limit)
        if channel:
            query = query.where(Parked.channel == channel)
        return list(await session.scalars(query))


async def parked_item(deps: Deps, number: int) -> Parked:
    async with deps.store.session() as session:
        item = await session.get(Parked, number)
        if item is None:
            raise NotFound(f"no parked item {number}")
        return item
