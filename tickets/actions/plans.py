"""The CRM practice: an agent records each contact with a client as a typed activity and plans the next one; the
plan reminds them at its time (an exact timer, as regulations have) and stays overdue until they contact the
client again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.access import customer_visible, visibility, visible_ticket
from tickets.actions.catalogues import add_entry
from tickets.deps import Deps
from tickets.errors import Conflict, InvalidInput, NotFound
from tickets.models import Activity, ActivityType, Agent, Customer, PlannedContact, PlanStatus
from tickets.ports import Reminder
from tickets.text import clean_text

MAX_NOTE = 20_000
LATEST_PLAN = timedelta(days=3 * 366)
"""How far ahead a next contact may be planned."""
SWEEP_BATCH = 500


@dataclass(frozen=True)
class NextContact:
    at: datetime
    what: str


@dataclass(frozen=True)
class Recorded:
    activity: Activity
    planned: PlannedContact | None
    kept: int
    """Planned contacts with this client this activity kept (they were the agent's, pending)."""


async def record_activity(deps: Deps, viewer: Agent, customer_id: int, type_name: str, *, outcome: str | None = None,
                          note: str | None = None, ticket: int | None = None, call_id: str | None = None,
                          next_contact: NextContact | None = None) -> Recorded:
    """One contact with the client: kept on their card (and the ticket), keeping the viewer's pending plans with
    them; with `next_contact`, the next one planned and its reminder set."""
    now = deps.clock.now()
    errors: dict[str, str] = {}
    outcome = clean_text(outcome or "")[0].strip()[:200] or None
    note = clean_text(note or "")[0].strip() or None
    if note is not None and len(note) > MAX_NOTE:
        errors["note"] = f"at most {MAX_NOTE} characters"
    if next_contact is not None:
        what = clean_text(next_contact.what)[0].strip()
        if not what:
            errors["next_what"] = "say what the next contact is for"
        elif len(what) > 300:
            errors["next_what"] = "at most 300 characters"
        if next_contact.at.tzinfo is None:
            errors["next_at"] = "give a time zone"
        elif next_contact.at < now - timedelta(minutes=1):
            errors["next_at"] = "is in the past"
        elif next_contact.at > now + LATEST_PLAN:
            errors["next_at"] = "is more than three years ahead"
        next_contact = NextContact(next_contact.at, what[:300])
    async with deps.store.unit() as uow:
        session = uow.session
        kind = await session.scalar(select(ActivityType).where(ActivityType.name == type_name.strip().lower()))
        if kind is None:
            errors["type"] = f"no activity type {type_name!r}; the admin adds it with `switchboard activity-type add`"
        if errors:
            raise InvalidInput(errors)
        assert kind is not None
        if await session.get(Customer, customer_id) is None or not await customer_visible(
                session, viewer, customer_id, await visibility(session, viewer)):
            raise NotFound(f"no customer {customer_id}")
        if ticket is not None and (await visible_ticket(session, viewer, ticket)).customer_id != customer_id:
            raise Conflict(f"ticket #{ticket} is another client's")
        activity = Activity(customer_id=customer_id, ticket_id=ticket, agent_id=viewer.id, type_id=kind.id,
                            outcome=outcome, note=note, call_id=call_id, created_at=now)
        session.add(activity)
        await session.flush()
        kept = await _keep(session, viewer.id, customer_id, now)
        planned = None
        if next_contact is not None:
            planned = PlannedContact(customer_id=customer_id, agent_id=viewer.id, ticket_id=ticket,
                                     activity_id=activity.id, due_at=next_contact.at, what=next_contact.what,
                                     status=PlanStatus.pending, created_at=now)
            session.add(planned)
            await session.flush()
            uow.schedule([Reminder(planned.id, planned.due_at)])
        return Recorded(activity, planned, kept)


async def _keep(session: AsyncSession, agent_id: int, customer_id: int, now: datetime) -> int:
    kept = await session.execute(update(PlannedContact).where(
        PlannedContact.agent_id == agent_id, PlannedContact.customer_id == customer_id,
        PlannedContact.status == PlanStatus.pending).values(status=PlanStatus.done, done_at=now))
    return int(kept.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Reminded:
    planned: PlannedContact
    customer: str
    lateness: timedelta
    language: str | None = None
    """The agent's: their console notice is in it."""


Notify = Callable[[AsyncSession, PlannedContact, Agent, str], Awaitable[list[int]]]
"""Queues the reminder's email or Telegram message in the reminding transaction (the notifier's part)."""


async def remind(deps: Deps, planned_id: int, notify: Notify | None = None) -> Reminded | None:
    """Remind the agent of a planned contact that came due; once (None when not due, kept or reminded)."""
    now = deps.clock.now()
    async with deps.store.unit() as uow:
        session = uow.session
        planned = await session.get(PlannedContact, planned_id, with_for_update=True)
        if planned is None or planned.status != PlanStatus.pending or planned.reminded_at is not None \
                or planned.due_at > now:
            return None
        planned.reminded_at = now
        agent = await session.get_one(Agent, planned.agent_id)
        card = await session.get_one(Customer, planned.customer_id)
        name = card.name or f"#{card.id}"
        if notify is not None:
            uow.deliver(await notify(session, planned, agent, name))
        return Reminded(planned, name, now - planned.due_at, agent.language)


async def due_reminders(deps: Deps) -> list[int]:
    """Planned contacts due and never reminded (a timer lost with Redis or a killed worker): the sweeper's list."""
    async with deps.store.session() as session:
        return list(await session.scalars(select(PlannedContact.id).where(
            PlannedContact.status == PlanStatus.pending, PlannedContact.reminded_at.is_(None),
            PlannedContact.due_at <= deps.clock.now()).order_by(PlannedContact.due_at).limit(SWEEP_BATCH)))


async def add_activity_type(deps: Deps, name: str) -> ActivityType:
    return await add_entry(deps, ActivityType, name, longest=40, noun="activity type")
