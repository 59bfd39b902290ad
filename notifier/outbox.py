"""Writing an outbox row: every channel's notification is queued the same way, due at once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tickets.models import Outbox, OutboxStatus


async def queue(session: AsyncSession, now: datetime, **fields: Any) -> int:
    """Add a queued row inside the caller's transaction; returns its id for delivery after commit."""
    row = Outbox(status=OutboxStatus.queued, attempts=0, next_attempt_at=now, created_at=now, updated_at=now, **fields)
    session.add(row)
    await session.flush()
    return row.id
