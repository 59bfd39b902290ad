"""Deadline rows: written with the change that starts them, fulfilled or cancelled with the change that ends them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.models import Deadline, DeadlineStatus, Ticket

FIRST_RESPONSE = "first_response"


def start(session: AsyncSession, ticket: Ticket, regulation: str, step: str, due_at: datetime, now: datetime,
          *, met_by: str = FIRST_RESPONSE) -> Deadline:
    deadline = Deadline(ticket_id=ticket.id, regulation=regulation, step=step, met_by=met_by, due_at=due_at,
                        status=DeadlineStatus.pending, created_at=now)
    session.add(deadline)
    return deadline


async def fulfil(session: AsyncSession, ticket_id: int, condition: str, at: datetime) -> int:
    """Mark the ticket's pending deadlines that `condition` meets as met at `at` (late ones stay visible as late)."""
    result = await session.execute(
        update(Deadline)
        .where(Deadline.ticket_id == ticket_id, Deadline.status == DeadlineStatus.pending, Deadline.met_by == condition)
        .values(status=DeadlineStatus.met, met_at=at)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


async def restart(session: AsyncSession, ticket_id: int, regulation: str, step: str, due_at: datetime) -> int:
    """A promise already kept or dropped is made again (a client who called back is missed again)."""
    result = await session.execute(
        update(Deadline)
        .where(Deadline.ticket_id == ticket_id, Deadline.regulation == regulation, Deadline.step == step,
               Deadline.status != DeadlineStatus.pending)
        .values(status=DeadlineStatus.pending, due_at=due_at, met_at=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


async def cancel(session: AsyncSession, ticket_id: int) -> int:
    """A resolved or closed ticket owes nothing more."""
    result = await session.execute(
        update(Deadline)
        .where(Deadline.ticket_id == ticket_id, Deadline.status == DeadlineStatus.pending)
        .values(status=DeadlineStatus.cancelled)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def overdue(now: datetime) -> ColumnElement[bool]:
    """Tickets with a promise still pending past its due time."""
    return exists(
        select(Deadline.id).where(
            Deadline.ticket_id == Ticket.id, Deadline.status == DeadlineStatus.pending, Deadline.due_at < now
        )
    )
