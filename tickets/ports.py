"""What the ticket services need from routing, as a small interface, so tickets/ imports no router."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from tickets.models import Agent, Ticket


class Assigner(Protocol):
    async def assign(
        self, session: AsyncSession, ticket: Ticket, now: datetime, exclude: Collection[int] = ()
    ) -> Agent | None:
        """Give the ticket to an agent (not one of `exclude`) inside the caller's transaction, or leave it queued."""

    async def drain(
        self, session: AsyncSession, group_ids: Iterable[int], now: datetime, hold: Collection[int] = ()
    ) -> int:
        """Assign waiting tickets of these groups (except those in `hold`) while agents have room; returns how many."""
