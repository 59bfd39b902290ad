"""Deadline rows: written with the change that starts them, fulfilled or cancelled with the change that ends them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.models import CLOSED_STATUSES, Deadline, DeadlineStatus, Ticket

FIRST_RESPONSE = "first_response"


def start(session: AsyncSession, ticket: Ticket, regulation: str, step: str, due_at: datetime, now: datetime,
          *, met_by: str = FIRST_RESPONSE) -> Deadline:
    deadline = Deadline(ticket_id=ticket.id, regulation=regulation, step=step, met_by=met_by, due_at=due_at,
                        status=DeadlineStatus.pending, created_at=now, plan=1, reference_at=now, breach=False)
    session.add(deadline)
    return deadline


async def _of_ticket(session: AsyncSession, ticket_id: int) -> list[Deadline]:
    # By ticket alone, filtered here: with the status in the WHERE clause PostgreSQL's generic plan also
    # walked the (status, due_at) index over every pending deadline, which grew with each one (measured).
    return list(await session.scalars(select(Deadline).where(Deadline.ticket_id == ticket_id)))


async def fulfil(session: AsyncSession, ticket_id: int, condition: str, at: datetime) -> int:
    """Mark the ticket's pending deadlines that `condition` meets as met at `at` (late ones stay visible as late)."""
    met = [d for d in await _of_ticket(session, ticket_id)
           if d.status == DeadlineStatus.pending and d.met_by == condition]
    for deadline in met:
        deadline.status, deadline.met_at = DeadlineStatus.met, at
    return len(met)


async def restart(session: AsyncSession, ticket_id: int, regulation: str, step: str, due_at: datetime) -> int:
    """A promise already kept or dropped is made again (a client who called back is missed again)."""
    again = [d for d in await _of_ticket(session, ticket_id)
             if d.regulation == regulation and d.step == step and d.status != DeadlineStatus.pending]
    for deadline in again:
        deadline.status, deadline.due_at, deadline.met_at = DeadlineStatus.pending, due_at, None
        deadline.plan, deadline.fired_at, deadline.breach = (deadline.plan or 0) + 1, None, False
    return len(again)


async def cancel(session: AsyncSession, ticket_id: int) -> int:
    """A resolved or closed ticket owes nothing more."""
    pending = [d for d in await _of_ticket(session, ticket_id) if d.status == DeadlineStatus.pending]
    for deadline in pending:
        deadline.status = DeadlineStatus.cancelled
    return len(pending)


def overdue(now: datetime) -> ColumnElement[bool]:
    """Open tickets with a promise past its due time and not kept: still pending, or fired and not met since."""
    late = or_(
        and_(Deadline.status == DeadlineStatus.pending, Deadline.due_at < now),
        and_(Deadline.status == DeadlineStatus.fired, Deadline.met_at.is_(None)),
    )
    return and_(Ticket.status.not_in(CLOSED_STATUSES),
                exists(select(Deadline.id).where(Deadline.ticket_id == Ticket.id, late)))
