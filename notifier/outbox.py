"""Writing an outbox row: every channel's notification is queued the same way."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tickets.models import Outbox, OutboxStatus


async def queue(session: AsyncSession, now: datetime, *, due_at: datetime | None = None, **fields: Any) -> int:
    """Add a queued row inside the caller's transaction (due now, or at `due_at`); returns its id for delivery after commit."""
    row = Outbox(status=OutboxStatus.queued, attempts=0, next_attempt_at=due_at or now, created_at=now, updated_at=now, **fields)
    session.add(row)
    await session.flush()
    return row.id
