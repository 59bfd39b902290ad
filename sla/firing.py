"""FireDeadline: a due step acts once — re-checked against the database, acted on and marked in one transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sla.engine import RegulationEngine
from sla.regulations import Regulation, Step
from tickets import audit
from tickets.alerts import CONDITIONS, AlertFacts, Person
from tickets.clock import Clock
from tickets.models import (
    CLOSED_STATUSES,
    PRIORITY_RANK,
    Agent,
    Deadline,
    DeadlineStatus,
    EventKind,
    Group,
    Priority,
    Role,
    Ticket,
)
from tickets.ports import Alerts, Assigner, Timer
from tickets.uow import Store

log = logging.getLogger(__name__)
SWEEP_BATCH = 500


@dataclass(frozen=True)
class Forecast:
    """A step that will come due within the window at the current pace (its clock running)."""

    ticket: Ticket
    deadline: Deadline
    breach: bool
    """Firing it breaches the regulation (a target, or a step marked breach)."""


@dataclass
class _Fired:
    outbox: list[int] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
    outcome: str = "fired"


class Escalations:
    """Fires due deadline rows (from their arq timer or the sweeper) and carries out the steps' actions."""

    def __init__(self, store: Store, engine: RegulationEngine, router: Assigner, alerts: Alerts, clock: Clock) -> None:
        self._store = store
        self._engine = engine
        self._router = router
        self._alerts = alerts
        self._clock = clock
        self._replanned = False

    async def fire(self, deadline_id: int, plan: int | None = None) -> str:
        """What became of the step: fired, met, paused, early (set again), stale (re-planned or done) or gone."""
        async with self._store.unit() as uow:
            result = await self._fire_in(uow.session, deadline_id, plan)
            uow.deliver(result.outbox)
            uow.schedule(result.timers)
        return result.outcome

    async def sweep(self, limit: int = SWEEP_BATCH) -> int:
        """Fire every step past due and not fired: what a flushed Redis or a killed worker lost is late, not lost.

        A process's first sweep also re-plans the open tickets planned by another version of the regulations (the
        file changed, or they predate the engine): the book is read once at start, so later sweeps need not look.
        """
        if not self._replanned:
            while await self.replan_outdated(limit) >= limit:
                pass
            self._replanned = True
        async with self._store.session() as session:
            due = list(await session.scalars(
                select(Deadline.id)
                .where(Deadline.status == DeadlineStatus.pending, Deadline.due_at <= self._clock.now())
                .order_by(Deadline.due_at).limit(limit)))
        fired = 0
        for deadline_id in due:
            fired += await self.fire(deadline_id) == "fired"
        return fired

    async def forecast(self, within: timedelta, *, breaches_only: bool = True) -> list[Forecast]:
        """Open tickets whose pending steps come due before now + `within` (paused clocks excluded), soonest first."""
        until = self._clock.now() + within
        async with self._store.session() as session:
            rows = await session.execute(
                select(Deadline, Ticket).join(Ticket, Ticket.id == Deadline.ticket_id)
                .where(Deadline.status == DeadlineStatus.pending, Deadline.due_at <= until,
                       Ticket.status.not_in(CLOSED_STATUSES))
                .order_by(Deadline.due_at, Deadline.id).limit(1000))
            found = []
            for deadline, ticket in rows:
                regulation = self._engine.book.named(deadline.regulation)
                step = regulation.step(deadline.step) if regulation else None
                breach = step is not None and step.breach
                if breach or not breaches_only:
                    found.append(Forecast(ticket, deadline, breach))
            return found

    async def replan_outdated(self, limit: int = SWEEP_BATCH) -> int:
        """Re-plan open tickets whose deadlines a different regulation version planned; returns how many looked at."""
        current = [r.version for r in self._engine.book.regulations]
        async with self._store.session() as session:
            outdated = select(Deadline.ticket_id).where(
                Deadline.status.in_((DeadlineStatus.pending, DeadlineStatus.paused)), Deadline.version.is_not(None),
                Deadline.version.not_in(current))
            # A ticket still owed its dispatch is planned by the dispatcher, from the time it was received.
            unplanned = select(Ticket.id).where(Ticket.regulation.is_(None), Ticket.dispatch_owed_at.is_(None),
                                                Ticket.status.not_in(CLOSED_STATUSES))
            numbers = sorted(set(await session.scalars(outdated.distinct().limit(limit)))
                             | set(await session.scalars(unplanned.limit(limit))))
        for number in numbers:
            async with self._store.unit() as uow:
                ticket = await uow.session.get(Ticket, number, with_for_update=True)
                if ticket is not None:
                    uow.schedule(await self._engine.track(uow.session, ticket, self._clock.now(),
                                                          "the regulations changed"))
        return len(numbers)

    async def _fire_in(self, session: AsyncSession, deadline_id: int, plan: int | None) -> _Fired:
        ticket_id = await session.scalar(select(Deadline.ticket_id).where(Deadline.id == deadline_id))
        if ticket_id is None:
            return _Fired(outcome="gone")
        # The ticket first, as every command that changes it does; then the row, read again under that lock.
        ticket = await session.get_one(Ticket, ticket_id, with_for_update=True)
        row = await session.get_one(Deadline, deadline_id, with_for_update=True, populate_existing=True)
        if row.status != DeadlineStatus.pending or (plan is not None and row.plan != plan):
            return _Fired(outcome="stale")
        now = self._clock.now()
        result = _Fired()
        # What the database says now decides, not what the timer was told when it was set.
        result.timers = await self._engine.track(session, ticket, now, "checked when due")
        if row.status != DeadlineStatus.pending:
            result.outcome = str(row.status)
            return result
        if row.due_at > now:
            result.outcome = "early"
            result.timers = [*result.timers, Timer(row.id, ticket.id, row.step, row.plan, row.due_at)]
            return result
        below = await self._rung_below(session, row)
        if below is not None and below.status != DeadlineStatus.fired:
            # The rung below has not fired yet (it comes due later): this one waits for it.
            result.outcome = "waiting"
            result.timers = [*result.timers, Timer(row.id, ticket.id, row.step, row.plan, max(below.due_at, now))]
            return result
        regulation = self._engine.book.named(row.regulation)
        step = regulation.step(row.step) if regulation else None
        if regulation is None or step is None:
            row.status = DeadlineStatus.cancelled
            audit.record(session, ticket.id, EventKind.sla_step_dropped, now, actor="regulations",
                         reason=f"{row.regulation}/{row.step} is no longer in the regulations", deadline_id=row.id)
            result.outcome = "cancelled"
            return result
        await self._act(session, ticket, row, regulation, step, now, result)
        return result

    async def _rung_below(self, session: AsyncSession, row: Deadline) -> Deadline | None:
        if row.kind != "step":
            return None
        return await session.scalar(
            select(Deadline).where(Deadline.ticket_id == row.ticket_id, Deadline.regulation == row.regulation,
                                   Deadline.kind == "step", Deadline.position < row.position)
            .order_by(Deadline.position.desc()).limit(1))

    async def _act(self, session: AsyncSession, ticket: Ticket, row: Deadline, regulation: Regulation, step: Step,
                   now: datetime, result: _Fired) -> None:
        done: list[str] = []
        previous: Agent | None = None
        if step.reassign:
            previous, line = await self._reassign(session, ticket, now)
            done.append(line)
        if step.raise_priority is not None:
            done.append(self._raise(session, ticket, step.raise_priority, now))
        row.status, row.fired_at = DeadlineStatus.fired, now
        if step.breach:
            row.breach = True
            done.append("breached")
        summary = (f"{regulation.name}/{step.name}: not {CONDITIONS['en'][step.unless]} by "
                   f"{row.due_at:%Y-%m-%d %H:%M:%S} UTC")
        if any("group_head" in notify.to for notify in step.notify):
            await self._escalate(session, ticket, now, done)
        notified, skipped = await self._notify(session, ticket, row, regulation, step, previous, now, done,
                                               result)
        kind = EventKind.sla_breached if step.breach else EventKind.sla_step_fired
        audit.record(session, ticket.id, kind, now, actor="regulations",
                     reason=f"{summary}; {', '.join(done) or 'alerted'}", deadline_id=row.id,
                     regulation=regulation.name,
                     step=step.name, due_at=row.due_at.isoformat(), actions=done, notified=notified, skipped=skipped)
        if step.raise_priority is not None:
            # The new priority may put the ticket under another regulation: its remaining steps are planned again.
            result.timers = [*result.timers, *await self._engine.track(session, ticket, now, "priority raised")]

    async def _reassign(self, session: AsyncSession, ticket: Ticket, now: datetime) -> tuple[Agent | None, str]:
        if ticket.assignee_id is None:
            return None, "not reassigned: the ticket is still waiting in its queue"
        previous = await session.get_one(Agent, ticket.assignee_id)
        chosen = await self._router.assign(session, ticket, now, exclude=[previous.id])
        if chosen is None:
            return None, f"not reassigned: nobody else could take it from {previous.name}"
        await self._router.drain(session, [ticket.group_id], now, hold=[ticket.id])
        return previous, f"reassigned from {previous.name} to {(await session.get_one(Agent, chosen.id)).name}"

    def _raise(self, session: AsyncSession, ticket: Ticket, to: str, now: datetime) -> str:
        order = sorted(PRIORITY_RANK, key=PRIORITY_RANK.__getitem__)
        old = ticket.priority
        new = order[min(PRIORITY_RANK[old] + 1, len(order) - 1)] if to == "up" else Priority(to)
        if PRIORITY_RANK[new] <= PRIORITY_RANK[old]:
            return f"priority stays {old}"
        ticket.priority = new
        audit.record(session, ticket.id, EventKind.priority_changed, now, actor="regulations",
                     old=str(old), new=str(new))
        return f"priority raised from {old} to {new}"

    async def _escalate(self, session: AsyncSession, ticket: Ticket, now: datetime, done: list[str]) -> None:
        """The ticket goes to the head of its department: marked so (their queue's Escalated view shows it), the
        head named when they are an agent here."""
        group, head = await _group_head(session, ticket)
        first = ticket.escalated_at is None
        ticket.escalated_at = ticket.escalated_at or now
        ticket.escalated_to_id = head.id if head is not None else ticket.escalated_to_id
        who = head.name if head is not None else (group.head_email or f"the head of {group.name} (none is set)")
        done.append(f"escalated to {who}")
        if first:
            audit.record(session, ticket.id, EventKind.escalated, now, actor="regulations",
                         reason=f"escalated to {who}", agent_id=head.id if head is not None else None)

    async def _notify(self, session: AsyncSession, ticket: Ticket, row: Deadline, regulation: Regulation, step: Step,
                      previous: Agent | None, now: datetime, done: list[str],
                      result: _Fired) -> tuple[list[str], list[str]]:
        notified: list[str] = []
        skipped: list[str] = []
        facts = AlertFacts(kind="breach" if step.breach else "warning" if step.kind == "warning" else "escalation",
                           regulation=regulation.name, step=step.name, condition=step.unless, due_at=row.due_at,
                           actions=tuple(done))
        for notify in step.notify:
            for who in notify.to:
                people = await self._recipients(session, ticket, who, previous)
                if not people:
                    skipped.append(f"{who}: nobody to notify")
                for person in people:
                    for medium in notify.by:
                        address = person.address(medium)
                        if not address:
                            missing = {"email": "address", "sms": "phone", "telegram": "linked Telegram"}[medium]
                            skipped.append(f"{medium} to {person.name}: no {missing}")
                            continue
                        key = f"sla:{row.id}:{row.plan}:{medium}:{address}"[:200]
                        result.outbox.append(await self._alerts.queue(session, ticket, person, medium, facts,
                                                                      dedupe_key=key, now=now))
                        notified.append(f"{medium} to {person.name} <{address}>")
        return notified, skipped

    async def _recipients(self, session: AsyncSession, ticket: Ticket, who: str,
                          previous: Agent | None) -> list[Person]:
        def agent(a: Agent) -> Person:
            return Person(a.name, a.email, a.phone, a.language, a.telegram_chat_id)

        if who == "assignee":
            found = await session.get(Agent, ticket.assignee_id) if ticket.assignee_id else None
            return [agent(found)] if found else []
        if who == "previous_assignee":
            return [agent(previous)] if previous else []
        if who == "group_head":
            group, head = await _group_head(session, ticket)
            if not group.head_email:
                return []
            return [agent(head) if head else Person(f"head of {group.name}", group.head_email)]
        contact = self._engine.book.contacts.get(who)
        if contact is not None:
            return [Person(who.replace("_", " "), contact.email, contact.phone, contact.language)]
        if who == "production_manager":  # no contact of that name in the file: the managers are told
            managers = await session.scalars(select(Agent).where(Agent.role == Role.manager).order_by(Agent.id))
            return [agent(m) for m in managers]
        if who.startswith("agent:"):
            found = await session.scalar(select(Agent).where(Agent.email == who.removeprefix("agent:")))
            return [agent(found)] if found else []
        if "@" in who:
            return [Person(who, email=who)]
        return [Person(who, phone=who)]


async def _group_head(session: AsyncSession, ticket: Ticket) -> tuple[Group, Agent | None]:
    """The ticket's group, and its head when the head is an agent here: whom escalation marks and alerts."""
    group = await session.get_one(Group, ticket.group_id)
    if not group.head_email:
        return group, None
    return group, await session.scalar(select(Agent).where(Agent.email == group.head_email))
