"""Writing the audit trail: every change to a ticket leaves an event saying who and why."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tickets.models import Agent, Event, EventKind

RECORDED = "switchboard.recorded_events"
"""`session.info` key: the events this transaction recorded, for what reacts to them before commit (notices)."""


def record(
    session: AsyncSession,
    ticket_id: int,
    kind: EventKind,
    now: datetime,
    *,
    actor: Agent | str,
    reason: str | None = None,
    **data: Any,
) -> Event:
    if isinstance(actor, Agent):
        actor_id, actor_name = actor.id, f"agent:{actor.id}"
    else:
        actor_id, actor_name = None, actor
    event = Event(
        ticket_id=ticket_id,
        kind=kind,
        actor_id=actor_id,
        actor=actor_name,
        reason=reason,
        data=data,
        created_at=now,
    )
    session.add(event)
    session.info.setdefault(RECORDED, []).append(event)
    return event
