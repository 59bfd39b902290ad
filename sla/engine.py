"""Keeping a ticket's deadline rows true to its regulation and its clock, inside the transaction that changed it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from sla.plan import ClockState, Pause, Planned, plan
from sla.regulations import CALLBACK, Regulation, RegulationBook, TicketFacts
from tickets.models import (
    CLOSED_STATUSES,
    ClockEvent,
    Customer,
    Deadline,
    DeadlineStatus,
    Direction,
    Group,
    Message,
    Ticket,
    TicketStatus,
)
from tickets.ports import Timer

RUNNING = (TicketStatus.new, TicketStatus.open)
_STATE_OF_EVENT = {"started": "running", "resumed": "running", "replanned": None, "paused": "paused",
                   "stopped": "stopped"}
_EVENT_FOR_STATE = {"running": "resumed", "paused": "paused", "stopped": "stopped"}
_OPEN_ROWS = (DeadlineStatus.pending, DeadlineStatus.paused)


@dataclass(frozen=True)
class _Target:
    status: DeadlineStatus
    due_at: datetime
    met_at: datetime | None


class RegulationEngine:
    """`tickets.ports.Regulations` over a regulation book: plans, pauses and re-plans; `Escalations` fires."""

    def __init__(self, book: RegulationBook) -> None:
        self.book = book

    def callback_due(self, missed_at: datetime) -> datetime:
        regulation = self.book.named(CALLBACK)
        if regulation is None or not regulation.steps:
            raise LookupError("the regulations have no 'callback' regulation with a step")
        due = plan(regulation, ClockState(missed_at))[0].due_at
        assert due is not None
        return due

    async def facts(self, session: AsyncSession, ticket: Ticket) -> TicketFacts:
        group = await session.get_one(Group, ticket.group_id)
        customer = await session.get_one(Customer, ticket.customer_id)
        return TicketFacts(ticket.category, str(ticket.priority), ticket.channel, group.name, customer.tier)

    async def track(self, session: AsyncSession, ticket: Ticket, now: datetime, reason: str,
                    *, new: bool = False) -> list[Timer]:
        changed = await self._replan(session, ticket, now, reason, new=new)
        if isinstance(changed, list) and not changed:
            return []
        await session.flush()
        return changed() if callable(changed) else _timers(changed)

    async def plan_all(self, session: AsyncSession, received: Sequence[tuple[Ticket, datetime, str, bool]]
                       ) -> Callable[[], list[Timer]]:
        """`track` for a batch of (ticket, when received, why, new), without flushing: the caller's next flush writes
        every row at once; the returned function lists the timers to set once that flush gave the rows ids."""
        later: list[Callable[[], list[Timer]]] = []
        changed: list[Deadline] = []
        for ticket, at, reason, new in received:
            rows = await self._replan(session, ticket, at, reason, new=new)
            if callable(rows):
                later.append(rows)
            else:
                changed += rows
        return lambda: _timers(changed) + [timer for timers in later for timer in timers()]

    async def _replan(self, session: AsyncSession, ticket: Ticket, now: datetime, reason: str, *, new: bool
                      ) -> list[Deadline] | Callable[[], list[Timer]]:
        """Bring the rows in line without flushing; returns the deadline rows re-armed (their timers are set once
        flushed rows have ids), or, for a callback, what lists its timers after the flush."""
        regulation = self.book.for_ticket(await self.facts(session, ticket))
        name = regulation.name if regulation else ""  # "": checked, and none applies (None: never planned)
        rows = [] if new else list(await session.scalars(select(Deadline).where(Deadline.ticket_id == ticket.id)))
        events = [] if new else list(await session.scalars(
            select(ClockEvent).where(ClockEvent.ticket_id == ticket.id).order_by(ClockEvent.id)))
        if ticket.regulation != name:
            for stale in rows:
                if stale.regulation == ticket.regulation and stale.status in _OPEN_ROWS:
                    stale.status = DeadlineStatus.cancelled
            if ticket.regulation:
                events.append(_event(session, ticket, "replanned", now, regulation,
                                     f"{reason}: regulation {ticket.regulation} → {name or 'none'}"))
            ticket.regulation = name
        if regulation is None:
            return []
        if regulation.name == CALLBACK:
            # A callback's promise is planned by the phone log (tickets.calls), which knows the call times; its
            # timer is set again with the same plan, which the job id makes harmless.
            await session.flush()
            rows = rows or list(await session.scalars(select(Deadline).where(Deadline.ticket_id == ticket.id)))
            callback = [r for r in rows if r.regulation == CALLBACK and r.status == DeadlineStatus.pending]
            return lambda: _timers(callback)
        state = ("running" if ticket.status in RUNNING
                 else "paused" if ticket.status == TicketStatus.pending else "stopped")
        current = _current_state(events)
        if current is None:
            events.append(_event(session, ticket, "started", ticket.created_at if new else now, regulation, reason))
        elif current != state:
            events.append(_event(session, ticket, _EVENT_FOR_STATE[state], now, regulation, reason))
        elif events[-1].version != regulation.version and events[-1].regulation == regulation.name:
            events.append(_event(session, ticket, "replanned", now, regulation, f"{reason}: regulation changed"))
        awaiting = None
        if any(step.since == "client_message" for step in regulation.steps):
            awaiting = await _awaiting_reply_since(session, ticket.id)
        planned = plan(regulation, ClockState(ticket.created_at, _pauses(events), awaiting))
        by_step = {row.step: row for row in rows if row.regulation == regulation.name}
        changed: list[Deadline] = []
        ladder_open = True
        for item in planned:
            row = by_step.get(item.step.name)
            target = _target(item, row, ticket, state, now)
            if target is None:
                continue
            if item.step.kind == "step":
                # A ladder is climbed rung by rung: once a rung is met (or dropped), the rungs above it never fire.
                if not ladder_open and target.status in _OPEN_ROWS:
                    target = _Target(DeadlineStatus.cancelled, target.due_at, None)
                ladder_open = target.status in (*_OPEN_ROWS, DeadlineStatus.fired)
            if row is None:
                row = Deadline(ticket_id=ticket.id, regulation=regulation.name, step=item.step.name,
                               met_by=item.step.unless, plan=0, created_at=now, breach=False)
                session.add(row)
            elif (row.status, row.due_at, row.reference_at, row.met_at, row.version) == (
                    target.status, target.due_at, item.reference, target.met_at, regulation.version):
                continue
            rearmed = target.status == DeadlineStatus.pending and (
                row.status != DeadlineStatus.pending or row.due_at != target.due_at)
            row.status, row.due_at, row.met_at = target.status, target.due_at, target.met_at
            row.reference_at, row.position, row.kind, row.version = (
                item.reference, item.position, item.step.kind, regulation.version)
            if target.status == DeadlineStatus.pending and row.fired_at is not None:
                row.fired_at, row.breach = None, False  # a next-update target armed again by a new client message
            if rearmed:
                row.plan = (row.plan or 0) + 1
                changed.append(row)
        planned_steps = {item.step.name for item in planned}
        for row in by_step.values():
            if row.step not in planned_steps and row.status in _OPEN_ROWS:
                row.status, row.version = DeadlineStatus.cancelled, regulation.version  # the step left the file
        return changed


def _timers(rows: Sequence[Deadline]) -> list[Timer]:
    return [Timer(row.id, row.ticket_id, row.step, row.plan, row.due_at) for row in rows]


def _event(session: AsyncSession, ticket: Ticket, kind: str, at: datetime, regulation: Regulation | None,
           reason: str) -> ClockEvent:
    event = ClockEvent(ticket_id=ticket.id, kind=kind, reason=reason[:300], created_at=at,
                       regulation=regulation.name if regulation else None,
                       version=regulation.version if regulation else None,
                       calendar=(regulation.calendar_name if regulation.business_time else "clock time")
                       if regulation else None)
    session.add(event)
    return event


def _current_state(events: Sequence[ClockEvent]) -> str | None:
    for event in reversed(events):
        state = _STATE_OF_EVENT.get(event.kind)
        if state is not None:
            return state
    return None


def _pauses(events: Sequence[ClockEvent]) -> list[Pause]:
    """Stretches from a pause or stop to the next resume (a re-plan keeps the clock as it was)."""
    pauses: list[Pause] = []
    stood: datetime | None = None
    for event in events:
        state = _STATE_OF_EVENT.get(event.kind)
        if state in ("paused", "stopped") and stood is None:
            stood = event.created_at
        elif state == "running" and stood is not None:
            pauses.append((stood, event.created_at))
            stood = None
    if stood is not None:
        pauses.append((stood, None))
    return pauses


async def _awaiting_reply_since(session: AsyncSession, ticket_id: int) -> datetime | None:
    last_reply = (select(func.coalesce(func.max(Message.id), 0))
                  .where(Message.ticket_id == ticket_id, Message.direction == Direction.outbound)
                  .scalar_subquery())
    return await session.scalar(
        select(func.min(Message.created_at)).where(
            Message.ticket_id == ticket_id, Message.direction == Direction.inbound, Message.id > last_reply
        )
    )


def _target(item: Planned, row: Deadline | None, ticket: Ticket, state: str, now: datetime) -> _Target | None:
    """Where the step's row should stand now; None: no row is needed (nothing to answer yet).

    A fired step stays fired (it acted once); `met_at` then records when it was met after all, which takes the
    ticket off the overdue list. A next-update target fires again only for a newer client message.
    """
    step = item.step
    if step.unless == "processed":
        met_at = ticket.processed_at
    elif step.unless == "resolved":
        met_at = ticket.resolved_at if ticket.status in CLOSED_STATUSES else None
    else:
        if item.reference is None and row is None:
            return None
        met_at = None if item.reference is not None else (row.met_at if row and row.met_at else now)
    # a fired step stays fired, unless a new client message re-arms a next-update target
    if row is not None and row.status == DeadlineStatus.fired and not (
            step.since == "client_message" and item.reference not in (None, row.reference_at)):
        return _Target(DeadlineStatus.fired, row.due_at, row.met_at or met_at)
    due = item.due_at or (row.due_at if row is not None else item.reference or ticket.created_at)
    if met_at is not None:
        if row is not None and row.status == DeadlineStatus.met and row.met_at is not None:
            met_at = row.met_at
        return _Target(DeadlineStatus.met, due, met_at)
    if state == "stopped":
        return _Target(DeadlineStatus.cancelled, due, None)
    if item.due_at is None:
        return _Target(DeadlineStatus.paused, due, None)
    return _Target(DeadlineStatus.pending, item.due_at, None)
