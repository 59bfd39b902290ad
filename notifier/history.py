"""What managers see of the outbox: each notification with every attempt and receipt, newest first."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.models import Outbox, OutboxAttempt, OutboxStatus


@dataclass(frozen=True)
class Notification:
    row: Outbox
    attempts: list[OutboxAttempt]


async def notifications(session: AsyncSession, *, ticket: int | None = None, channel: str | None = None,
                        status: OutboxStatus | None = None, limit: int = 50,
                        before: int | None = None) -> list[Notification]:
    """Newest first; `before` (an outbox id) pages on from an earlier page's last row."""
    query = select(Outbox).order_by(Outbox.id.desc()).limit(limit)
    if before is not None:
        query = query.where(Outbox.id < before)
    if ticket is not None:
        query = query.where(Outbox.ticket_id == ticket)
    if channel is not None:
        query = query.where(Outbox.channel == channel)
    if status is not None:
        query = query.where(Outbox.status == status)
    rows = list(await session.scalars(query))
    attempts: dict[int, list[OutboxAttempt]] = {row.id: [] for row in rows}
    if rows:
        for attempt in await session.scalars(select(OutboxAttempt).where(OutboxAttempt.outbox_id.in_(attempts))
                                             .order_by(OutboxAttempt.id)):
            attempts[attempt.outbox_id].append(attempt)
    return [Notification(row, attempts[row.id]) for row in rows]
