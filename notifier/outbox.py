"""Writing an outbox row: every channel's notification is queued the same way."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.models import Outbox, OutboxStatus
from tickets.ports import Notice


def notice_values(now: datetime, *, due_at: datetime | None = None, **fields: Any) -> dict[str, Any]:
    """A queued row's columns, due now or at `due_at`."""
    return {"status": OutboxStatus.queued, "attempts": 0, "next_attempt_at": due_at or now, "created_at": now,
            "updated_at": now, "body_text": "", "headers": {}, "subject": None, "body_html": None, "message_id": None,
            "template": None, "params": None, **fields}


async def insert_all(session: AsyncSession, rows: list[dict[str, Any]]) -> list[int]:
    """Many rows in one statement, as plain columns (a dispatch batch writes hundreds: ORM objects cost more than the
    insert); returns their ids, in order."""
    if not rows:
        return []
    return list(await session.scalars(insert(Outbox).returning(Outbox.id, sort_by_parameter_order=True), rows))


async def queue(session: AsyncSession, now: datetime, *, due_at: datetime | None = None, **fields: Any) -> int:
    """Add a queued row inside the caller's transaction (due now, or at `due_at`); returns its id for delivery
    after commit."""
    row = Outbox(**notice_values(now, due_at=due_at, **fields))
    session.add(row)
    await session.flush()
    return row.id


async def write_notice(session: AsyncSession, notice: Notice, ticket_id: int, now: datetime) -> int:
    """A templated row (rendered when delivered) for this ticket; returns its id for delivery after commit."""
    return await queue(session, now, kind=notice.kind, channel=notice.channel, recipient=notice.recipient,
                       template=notice.template, params=dict(notice.params), headers=dict(notice.headers),
                       ticket_id=ticket_id, dedupe_key=f"{notice.dedupe_prefix}{ticket_id}", body_text="")
