"""The short lists the admin keeps (activity types, outcomes, refusal reasons): one way to name and add an entry."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select

from tickets.deps import Deps
from tickets.errors import Conflict, InvalidInput
from tickets.models import Base

E = TypeVar("E", bound=Base)


def entry_name(raw: str, longest: int) -> str:
    """As entries are kept: lower-case, spaces as - ("Trade show" → trade-show)."""
    clean = "-".join(raw.strip().lower().split())
    if not clean or len(clean) > longest:
        raise InvalidInput({"name": f"1 to {longest} characters"})
    return clean


async def add_entry(deps: Deps, model: type[E], raw: str, *, longest: int, noun: str, **fields: Any) -> E:
    """A new entry of the list `model` keeps (its `name` unique); Conflict when it is there already."""
    name = entry_name(raw, longest)
    async with deps.store.unit() as uow:
        named = getattr(model, "name")  # noqa: B009 - every list's entries have a unique name column
        if await uow.session.scalar(select(named).where(named == name)) is not None:
            raise Conflict(f"{noun} {name!r} exists")
        entry = model(name=name, created_at=deps.clock.now(), **fields)
        uow.session.add(entry)
        await uow.session.flush()
        return entry


