"""The ticket services: each public method is one command or query in one transaction."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    any_,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    text,
    union,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tickets import audit, deadlines, receipt_new, receipt_pg, receipt_pg_call, receipt_sqlite
from tickets.calls import CallResult, finish_batch, log_call_in, start_batch
from tickets.clock import Clock
from tickets.db import is_postgresql, refresh_statistics, rows_changed
from tickets.dispatch import BATCH, Dispatched, dispatch_owed_in, owe, registered_via
from tickets.errors import Conflict, Forbidden, InvalidInput, NotFound, StoreUnavailable
from tickets.inbound import Identity, Inbound
from tickets.ingest import IngestResult, ingest_in
from tickets.loads import WEIGH, recount, unit_weight
from tickets.logins import LoginCommands
from tickets.merging import MergeCommands, linked_tickets, merged_from
from tickets.models import (
    CLOSED_STATUSES,
    LOAD_STATUSES,
    Agent,
    Call,
    ClockEvent,
    Customer,
    CustomerIdentity,
    Deadline,
    DeadlineStatus,
    DeliveryStatus,
    Direction,
    Event,
    EventKind,
    Group,
    Message,
    Priority,
    Role,
    Ticket,
    TicketStatus,
    skill_set,
)
from tickets.numbers import as_id
from tickets.portal import PortalCommands
from tickets.ports import Assigner, ChangeFeed, JobQueue, LockedAgent, Notifications, Regulations, Timer, Timers
from tickets.reports import ReportCommands
from tickets.staff import StaffCommands, group_ids_of, skill_names

log = logging.getLogger(__name__)
T = TypeVar("T")
S = TypeVar("S", bound=Select[Any])

MAX_BODY = 100_000
HISTORY_CALLS = 200
"""Calls shown on a customer card, newest first."""
TRIGRAM = re.compile(r"\w{3}")
"""Three letters or digits in a row: what pg_trgm's search indexes can look up."""


@dataclass(frozen=True)
class TicketView:
    ticket: Ticket
    customer: Customer
    identities: list[CustomerIdentity]
    group: Group
    assignee: Agent | None
    messages: list[Message]
    events: list[Event]
    calls: list[Call]
    deadlines: list[Deadline]
    clock: list[ClockEvent]
    """The regulation clock's timeline: started, paused, resumed, stopped, re-planned."""
    as_of: datetime
    """When this view was read: a pending deadline before it is late."""
    links: list[Ticket]
    """The client's tickets an agent linked to this one."""
    merged_from: list[int]
    """Tickets merged into this one (their history is in `messages` now)."""


@dataclass(frozen=True)
class CustomerView:
    customer: Customer
    identities: list[CustomerIdentity]
    tickets: list[Ticket]
    calls: list[Call]
    """The client's latest calls, newest first, whether or not they landed on a ticket."""


@dataclass(frozen=True)
class ChatHistory:
    """What a chat visitor sees when they come back: their tickets' public messages, oldest first."""

    messages: Sequence[tuple[Message, str | None]]
    """Each message with its author's name (agents' replies)."""
    latest: Ticket | None
    """The ticket they wrote on last, which their next message continues while it is open or recent."""


@dataclass(frozen=True)
class NextStep:
    step: str
    due_at: datetime


@dataclass(frozen=True)
class DeadlineSummary:
    next: NextStep | None
    """The pending step due soonest."""
    breached: bool
    """A step marked breach fired and was not met since."""


@dataclass(frozen=True)
class TicketPage:
    tickets: list[Ticket]
    next_cursor: int | None


class QueueTicket(NamedTuple):
    """The columns of a ticket a queue page shows: it lists hundreds, and ORM objects for them cost more than the
    query."""

    id: int
    subject: str
    channel: str
    priority: Priority
    status: TicketStatus
    created_at: datetime
    customer_id: int


@dataclass(frozen=True)
class QueueLine:
    ticket: QueueTicket
    customer: str
    """The client's name, else their first address ('' if neither)."""
    deadlines: DeadlineSummary


_QUEUE_COLUMNS = (Ticket.id, Ticket.subject, Ticket.channel, Ticket.priority, Ticket.status, Ticket.created_at,
                  Ticket.customer_id)


class TicketService(StaffCommands, LoginCommands, ReportCommands, PortalCommands, MergeCommands):
    """Composes the store, the router and the clock; the only way desk/ and channels change tickets."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        router: Assigner,
        clock: Clock,
        default_group: str,
        *,
        notifications: Notifications | None = None,
        jobs: JobQueue | None = None,
        timers: Timers | None = None,
        regulations: Regulations | None = None,
        changes: ChangeFeed | None = None,
    ) -> None:
        self.wake_dispatcher: Callable[[], None] | None = None
        """Set when a dispatcher completes this process's receipts (its own loop, or the worker's through Redis):
        receipts wake it instead of dispatching themselves."""
        self._sessions = sessions
        self._timers = timers
        self._changes = changes
        self._regulations = regulations
        self._router = router
        self._clock = clock
        self._default_group = default_group
        self._notifications = notifications
        self._jobs = jobs

    async def _after_commit(self, outbox_ids: list[int], timers: Sequence[Timer] = ()) -> None:
        """Hand committed outbox rows and deadlines to the queue; if Redis is away the sweepers catch up."""
        if outbox_ids and self._jobs is not None:
            try:
                await self._jobs.deliver(outbox_ids)
            except Exception:  # noqa: BLE001 - the rows are committed; only the prompt start is lost
                log.warning("could not enqueue delivery of outbox %s; the sweeper will", outbox_ids, exc_info=True)
        if timers and self._timers is not None:
            try:
                await self._timers.schedule(timers)
            except Exception:  # noqa: BLE001 - the deadline rows are committed; the sweeper fires them
                log.warning("could not set timers for deadlines %s; the sweeper will fire them",
                            [t.deadline_id for t in timers], exc_info=True)

    async def _track(self, session: AsyncSession, ticket: Ticket, now: datetime, reason: str,
                     *, new: bool = False) -> list[Timer]:
        if self._regulations is None:
            return []
        return await self._regulations.track(session, ticket, now, reason, new=new)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        notices: list[int] = []
        changed: set[int] = set()
        try:
            async with self._sessions() as session, session.begin():
                yield session
                events = session.info.pop(audit.RECORDED, [])
                changed = {event.ticket_id for event in events}
                notices = await self._react(session, events)
        except IntegrityError:
            raise
        except (DBAPIError, OSError, TimeoutError) as exc:
            if isinstance(exc, DBAPIError) and not _is_connection_problem(exc):
                raise
            raise StoreUnavailable(f"database unavailable: {exc.__class__.__name__}") from exc
        await self._after_commit(notices)
        if changed and self._changes is not None:
            try:
                await self._changes.changed(sorted(changed))
            except Exception:  # noqa: BLE001 - a console misses one live refresh; the store is committed
                log.warning("could not announce changes to tickets %s", sorted(changed), exc_info=True)

    async def _react(self, session: AsyncSession, events: Sequence[Event]) -> list[int]:
        """Before commit: the notices the transaction's events call for, written in it (an agent handed a ticket)."""
        if not events or self._notifications is None:
            return []
        return await self._notifications.events_recorded(session, events, self._clock.now())

    async def _retrying(self, work: Callable[[AsyncSession], Awaitable[T]], attempts: int = 3) -> T:
        """Run a transaction again when a concurrent writer won a unique-key race (the retry sees its row) or
        PostgreSQL broke a deadlock by aborting this one (lock orders are kept, but a retry is the safety net)."""
        for attempt in range(1, attempts + 1):
            try:
                async with self._transaction() as session:
                    return await work(session)
            except (IntegrityError, DBAPIError) as exc:
                if attempt == attempts or not (isinstance(exc, IntegrityError) or _lost_a_race(exc)):
                    raise
                log.info("%s, retrying (attempt %d)", "unique-key race" if isinstance(exc, IntegrityError)
                         else "deadlock or serialisation failure", attempt)
        raise AssertionError("unreachable")

    # --- channels ---------------------------------------------------------------------------

    async def ingest(self, inbound: Inbound) -> IngestResult:
        """IngestMessage: the receipt (store and thread one inbound message, acknowledge it), then its dispatch.

        Redelivery returns the same ticket. The receipt is one short transaction that locks no agent; routing and
        the regulation plan follow from what it committed (`dispatch_owed`): in this call when no dispatcher runs in
        the process, else by the dispatcher it wakes."""

        async def work(session: AsyncSession) -> IngestResult:
            now = self._clock.now()
            if receipt_new.applies(inbound):
                receipt = receipt_pg if is_postgresql(session) else receipt_sqlite
                fast = await receipt.receive_new(session, inbound, now, self._router, self._notifications,
                                                 self._default_group)
                if fast is not None:
                    ticket, message = fast
                    return IngestResult(ticket, message, created=True, duplicate=False, needs_routing=True)
            result = await ingest_in(session, inbound, now, self._router, self._default_group)
            if result.created and self._notifications is not None:
                # Sent once dispatched: the dispatcher hands its batch's waiting rows to the worker.
                await self._notifications.ticket_created(session, result.ticket, result.message, now)
            if not result.duplicate:
                owe(result.ticket, now, registered_via(inbound.channel) if result.created
                    else f"the client wrote via {inbound.channel}", route=result.needs_routing)
            return result

        result = await self._retrying(work)
        if result.duplicate:
            return result
        dispatched = await self._dispatch_after_receipt([result.ticket.id])
        return replace(result, ticket=dispatched.get(result.ticket.id, result.ticket))

    async def dispatch_owed(self, *, limit: int = BATCH, numbers: Sequence[int] | None = None,
                            owed_for: timedelta | None = None) -> Dispatched:
        """DispatchOwed: one batch of what receipts left owed (routing, regulation plans, notices), in one
        transaction; the dispatcher loop runs it until nothing is owed, and every sweep runs it again. `owed_for`
        takes only tickets owed at least that long (what the process that received them did not get to)."""
        timers: list[Timer] = []

        async def work(session: AsyncSession) -> Dispatched:
            now = self._clock.now()
            done = await dispatch_owed_in(session, self._router, self._regulations, now, limit=limit,
                                          numbers=numbers, owed_before=now - owed_for if owed_for else None)
            timers[:] = done.timers
            return done

        done = await self._retrying(work)
        await self._after_commit(done.outbox, timers)
        return done

    async def recount_loads(self) -> int:
        """Set every agent's load counters from their tickets; returns how many agents' counters were wrong."""
        async with self._transaction() as session:
            return await recount(session, session.info.get(WEIGH) or unit_weight)

    async def _dispatch_after_receipt(self, numbers: Sequence[int]) -> dict[int, Ticket]:
        """Wake the dispatcher, or dispatch these tickets now when none is set (a command, a test); returns the
        tickets as dispatched here. A failure leaves them owed for the sweep: the receipt stands."""
        if self.wake_dispatcher is not None:
            self.wake_dispatcher()
            return {}
        try:
            done = await self.dispatch_owed(numbers=numbers)
        except Exception:  # noqa: BLE001 - the receipt is committed; the next sweep dispatches what is owed
            log.warning("could not dispatch tickets %s now; the sweep will", list(numbers), exc_info=True)
            return {}
        return {ticket.id: ticket for ticket in done.tickets}

    async def log_calls(self, inbounds: Sequence[Inbound]) -> list[CallResult]:
        """LogCall for each phone call, all in one transaction (a batch of a CDR import, or one API entry).

        Calls logged before come back as duplicates, so a batch can be sent again after any failure. Like any
        receipt, it leaves routing and the regulation plans owed to the dispatcher.
        """

        async def work(session: AsyncSession) -> list[CallResult]:
            now = self._clock.now()
            if is_postgresql(session) and receipt_pg_call.applies(inbounds):
                fast = await receipt_pg_call.receive_call(session, inbounds[0], now, self._router, self._regulations,
                                                          self._default_group)
                if fast is not None:
                    return [fast]
            batch = await start_batch(session, inbounds)
            results = [
                await log_call_in(session, inbound, now, self._router, self._default_group, self._regulations, batch)
                for inbound in inbounds
            ]
            results = await finish_batch(session, batch, results)
            for result in results:
                if result.ticket is not None and not result.duplicate:
                    owe(result.ticket, now, "a call was logged",
                        route=result.created and result.ticket.assignee_id is None)
            return results

        results = await self._retrying(work)
        touched = sorted({r.ticket.id for r in results if r.ticket is not None and not r.duplicate})
        if touched:
            dispatched = await self._dispatch_after_receipt(touched)
            results = [replace(r, ticket=dispatched.get(r.ticket.id, r.ticket)) if r.ticket is not None else r
                       for r in results]
        return results

    async def refresh_call_statistics(self) -> None:
        """After a large import step: keep the planner's picture of the tables calls grow true (PostgreSQL)."""
        async with self._transaction() as session:
            await refresh_statistics(session, ["calls", "customers", "customer_identities", "tickets", "messages"])

    # --- agent queries -----------------------------------------------------------------------

    async def list_tickets(
        self,
        viewer: Agent,
        *,
        status: list[TicketStatus] | None = None,
        assignee: int | None | str = "any",
        group: str | None = None,
        overdue: bool = False,
        limit: int = 50,
        before: int | None = None,
        search: str | None = None,
        channel: str | None = None,
        priority: list[Priority] | None = None,
    ) -> TicketPage:
        """Newest first, keyset-paginated by number so deep pages stay as fast as the first."""
        async with self._transaction() as session:
            listing = _Listing(await _visibility(session, viewer), status, assignee, group, channel, priority,
                               self._clock.now() if overdue else None, before)
            tickets = list(await session.scalars(await _listed(session, listing, search, limit + 1, (Ticket,))))
            more = len(tickets) > limit
            tickets = tickets[:limit]
            return TicketPage(tickets, tickets[-1].id if more else None)

    async def queue_lines(
        self,
        viewer: Agent,
        *,
        status: list[TicketStatus] | None = None,
        assignee: int | None | str = "any",
        overdue: bool = False,
        limit: int = 200,
        search: str | None = None,
        channel: str | None = None,
        priority: list[Priority] | None = None,
    ) -> list[QueueLine]:
        """What a console queue shows, newest first: the tickets `list_tickets` would list, each with its client's name
        and its deadlines, read in one transaction (one pooled connection, one ping) and as columns, not objects."""
        async with self._transaction() as session:
            listing = _Listing(await _visibility(session, viewer), status, assignee, None, channel, priority,
                               self._clock.now() if overdue else None, None)
            tickets = [QueueTicket(*row) for row in
                       await session.execute(await _listed(session, listing, search, limit, _QUEUE_COLUMNS))]
            summaries = await _deadline_summary_in(session, [t.id for t in tickets])
            names = await _customer_names_in(session, [t.customer_id for t in tickets])
        none = DeadlineSummary(None, False)
        return [QueueLine(t, names.get(t.customer_id, ""), summaries.get(t.id, none)) for t in tickets]

    async def get_ticket(self, viewer: Agent, number: int) -> TicketView:
        async with self._transaction() as session:
            ticket = await self._visible_ticket(session, viewer, number)
            return await _ticket_view(session, ticket, self._clock.now())

    async def get_customer(self, viewer: Agent, customer_id: int) -> CustomerView:
        async with self._transaction() as session:
            return await _customer_view(session, viewer, customer_id)

    async def set_customer_tier(self, viewer: Agent, customer_id: int, tier: str | None) -> CustomerView:
        """A client's service level changed: their open tickets move to the regulation that now matches."""
        now = self._clock.now()
        timers: list[Timer] = []
        async with self._transaction() as session:
            customer = await session.get(Customer, customer_id, with_for_update=True)
            if customer is None:
                raise NotFound(f"no customer {customer_id}")
            if customer.tier != tier:
                customer.tier, customer.updated_at = tier, now
                open_tickets = await session.scalars(
                    select(Ticket).where(Ticket.customer_id == customer_id,
                                         Ticket.status.not_in(CLOSED_STATUSES))
                    .order_by(Ticket.id).with_for_update())
                for ticket in open_tickets:
                    timers.extend(await self._track(session, ticket, now, f"{viewer.name} set the tier to {tier}"))
            view = await _customer_view(session, viewer, customer_id)
        await self._after_commit([], timers)
        return view

    async def add_identity(
        self, viewer: Agent, customer_id: int, identity: Identity, *, merge: bool = False
    ) -> CustomerView:
        """An address the client gave an agent (on a call, say) joins their card, so what they send from it lands there.

        An address on another card is refused unless `merge`: then that card, with its tickets and calls, joins this
        one.
        """
        now = self._clock.now()
        async with self._transaction() as session:
            customer = await session.get(Customer, customer_id, with_for_update=True)
            if customer is None:
                raise NotFound(f"no customer {customer_id}")
            owner = await session.scalar(
                select(CustomerIdentity.customer_id).where(
                    CustomerIdentity.kind == identity.kind, CustomerIdentity.address == identity.address
                )
            )
            if owner is None:
                session.add(CustomerIdentity(customer_id=customer.id, kind=identity.kind, address=identity.address,
                                             created_at=now))
            elif owner != customer.id:
                if not merge:
                    raise Conflict(f"{identity.address} is on customer {owner}'s card; send merge: true to merge "
                                   f"that card into this one")
                await merge_customers(session, await session.get_one(Customer, owner, with_for_update=True), customer,
                                      viewer, now)
            customer.updated_at = now
            await session.flush()
            return await _customer_view(session, viewer, customer_id)

    async def customer_tickets_by_identity(self, kind: str, address: str, limit: int = 20) -> list[Ticket]:
        """The tickets of whoever owns this identity, newest first (a client asking a chat bot for their status)."""
        async with self._transaction() as session:
            customer_id = await session.scalar(
                select(CustomerIdentity.customer_id).where(
                    CustomerIdentity.kind == kind, CustomerIdentity.address == address
                )
            )
            if customer_id is None:
                return []
            query = select(Ticket).where(Ticket.customer_id == customer_id).order_by(Ticket.id.desc()).limit(limit)
            return list(await session.scalars(query))

    async def chat_history(self, channel: str, sender_prefix: str, limit: int = 200) -> ChatHistory:
        """The tickets a chat visitor wrote on, found by the prefix of their messages' external ids.

        By visitor, not by customer card: a visitor who typed someone's email must not see that card's history.
        """
        async with self._transaction() as session:
            tickets = _chat_tickets(channel, sender_prefix)
            rows = await session.execute(
                select(Message, Agent.name)
                .outerjoin(Agent, Agent.id == Message.author_id)
                .where(Message.ticket_id.in_(tickets), Message.direction.in_((Direction.inbound, Direction.outbound)))
                .order_by(Message.id.desc())
                .limit(limit)
            )
            messages = [(message, author) for message, author in rows][::-1]
            latest_id = await session.scalar(select(func.max(Message.ticket_id)).where(Message.ticket_id.in_(tickets)))
            latest = await session.get(Ticket, latest_id) if latest_id is not None else None
            return ChatHistory(messages, latest)

    async def mark_seen(self, channel: str, sender_prefix: str, message_ids: list[int]) -> int:
        """The client's screen showed these replies: they are delivered, and fallback copies are not sent."""
        if not message_ids:
            return 0
        async with self._transaction() as session:
            return await rows_changed(
                session,
                update(Message)
                .where(
                    Message.id.in_(message_ids),
                    Message.direction == Direction.outbound,
                    Message.ticket_id.in_(_chat_tickets(channel, sender_prefix)),
                    Message.delivery_open(),
                )
                .values(delivery_status=DeliveryStatus.delivered, delivery_error=None)
                .execution_options(synchronize_session=False),
            )

    # --- agent commands ----------------------------------------------------------------------

    async def add_message(self, viewer: Agent, number: int, body: str, *, internal: bool) -> Message:
        """A public reply is queued for its channel to send; an internal note is only for agents."""
        if not body.strip():
            raise InvalidInput({"body": "must not be empty"})
        if len(body) > MAX_BODY:
            raise InvalidInput({"body": f"longer than {MAX_BODY} characters"})
        now = self._clock.now()
        async with self._transaction() as session:
            ticket = await self._visible_ticket(session, viewer, number, lock=True)
            message = Message(
                ticket_id=ticket.id,
                direction=Direction.internal if internal else Direction.outbound,
                channel=ticket.channel,
                author_id=viewer.id,
                body_text=body,
                delivery_status=None if internal else DeliveryStatus.queued,
                attachments=[],
                created_at=now,
            )
            session.add(message)
            ticket.updated_at = now
            if not internal:
                if ticket.first_response_at is None:
                    ticket.first_response_at = now
                ticket.processed_at = ticket.processed_at or now
                await deadlines.fulfil(session, ticket.id, deadlines.FIRST_RESPONSE, now)
            await session.flush()
            audit.record(
                session, ticket.id, EventKind.note_added if internal else EventKind.replied, now, actor=viewer,
                message_id=message.id,
            )
            outbox: list[int] = []
            timers: list[Timer] = []
            if not internal:
                timers = await self._track(session, ticket, now, f"{viewer.name} replied")
                if self._notifications is not None:
                    outbox = await self._notifications.reply_added(session, ticket, message, now)
        await self._after_commit(outbox, timers)
        return message

    async def update_ticket(self, viewer: Agent, number: int, changes: dict[str, Any]) -> TicketView:
        """Apply status/priority/category/skills/group/assignee changes; each is audited, freed capacity re-routes.

        A ticket moved to another group, returned to the queue or given other skills while waiting is routed
        again at once; the agent who returned it is not handed it straight back. The changes that need no
        agent's load are written first, so the agents are locked only for the reassignment and the re-routing;
        the view is read after commit, outside the lock.
        """
        now = self._clock.now()
        async with self._transaction() as session:
            ticket = await self._visible_ticket(session, viewer, number, lock=True)
            ticket.updated_at = now  # first, so the changes below go out in one UPDATE whatever flushes between
            old_group = ticket.group_id
            target_group = await self._target_group(session, viewer, ticket, changes)
            if target_group is not None and "assignee" not in changes and ticket.assignee_id is not None:
                changes = {**changes, "assignee": None}  # a ticket sent to another group joins its queue
            target_id = changes.get("assignee")
            reroute = False
            if target_group is not None:
                audit.record(session, ticket.id, EventKind.group_changed, now, actor=viewer,
                             old=old_group, new=target_group.id, reason=f"moved to {target_group.name}")
                ticket.group_id = target_group.id
                reroute = True
            if "skills" in changes:
                key = await skill_names(session, changes["skills"] or [])
                if key != ticket.skills:
                    audit.record(session, ticket.id, EventKind.skills_changed, now, actor=viewer,
                                 old=ticket.skills, new=key)
                    ticket.skills = key
                    reroute = True
            frees_capacity = False
            outbox: list[int] = []
            if "status" in changes:
                was_resolved = ticket.status == TicketStatus.resolved
                assignee_after = target_id if "assignee" in changes else ticket.assignee_id
                frees_capacity = self._set_status(session, viewer, ticket, TicketStatus(changes["status"]), now,
                                                  assignee_after)
                if ticket.status in CLOSED_STATUSES:
                    await deadlines.cancel(session, ticket.id)
                if ticket.status == TicketStatus.resolved and not was_resolved and self._notifications is not None:
                    outbox = await self._notifications.ticket_resolved(session, ticket, now)
            if "priority" in changes and changes["priority"] != ticket.priority:
                audit.record(
                    session, ticket.id, EventKind.priority_changed, now, actor=viewer,
                    old=str(ticket.priority), new=str(changes["priority"]),
                )
                ticket.priority = Priority(changes["priority"])
            if "category" in changes and changes["category"] != ticket.category:
                audit.record(
                    session, ticket.id, EventKind.category_changed, now, actor=viewer,
                    old=ticket.category, new=changes["category"],
                )
                ticket.category = changes["category"]
            if "assignee" in changes and target_id == viewer.id and ticket.assignee_id != viewer.id:
                ticket.processed_at = ticket.processed_at or now  # an explicit take-over processes the ticket
            timers = await self._track(session, ticket, now, f"{viewer.name} changed {', '.join(sorted(changes))}")
            # Everyone whose load or queue this may move is locked, in the router's order; what was written above
            # commits while they are locked, so every choice made under the lock sees all of it or none of it.
            held = await self._router.lock(
                session, {old_group, ticket.group_id}, [a for a in (ticket.assignee_id, target_id) if a is not None]
            )
            locked: Sequence[LockedAgent] | None = held
            returned_by: int | None = None
            if "assignee" in changes:
                if target_id is None:
                    returned_by = ticket.assignee_id
                    reroute = True
                target = next((c for c in held if c.agent.id == target_id), None)
                if await self._reassign(session, viewer, ticket, target_id, target, now):
                    frees_capacity = True
                locked = None  # loads moved: the router reads them again
            hold: list[int] = []
            if reroute and ticket.status == TicketStatus.new and ticket.assignee_id is None:
                await self._router.assign(session, ticket, now, exclude=[returned_by] if returned_by else [])
                hold.append(ticket.id)
                locked = None
            if frees_capacity or ticket.group_id != old_group:
                await self._router.drain(session, {old_group, ticket.group_id}, now, hold=hold, locked=locked)
        await self._after_commit(outbox, timers)
        async with self._transaction() as session:
            return await _ticket_view(session, await session.get_one(Ticket, number), now)

    async def _target_group(
        self, session: AsyncSession, viewer: Agent, ticket: Ticket, changes: dict[str, Any]
    ) -> Group | None:
        """The group a manager moves the ticket to, or None when it stays."""
        name = changes.get("group")
        if name is None:
            return None
        if not _sees_everything(viewer):
            raise Forbidden("only a manager may move a ticket to another group")
        group = await session.scalar(select(Group).where(Group.name == name))
        if group is None:
            raise InvalidInput({"group": f"no group named {name!r}"})
        return None if group.id == ticket.group_id else group

    def _set_status(
        self, session: AsyncSession, viewer: Agent, ticket: Ticket, status: TicketStatus, now: datetime,
        assignee_after: int | None,
    ) -> bool:
        """`assignee_after` is who holds the ticket once the same update's reassignment is applied."""
        if status == ticket.status:
            return False
        if status == TicketStatus.new:
            raise InvalidInput({"status": "a ticket becomes new only by returning it to the queue (assignee: null)"})
        if status in LOAD_STATUSES and assignee_after is None:
            raise InvalidInput({"status": f"assign the ticket before setting it {status}"})
        old = ticket.status
        ticket.status = status
        if status == TicketStatus.resolved:
            ticket.resolved_at = now
        elif status == TicketStatus.closed:
            ticket.closed_at = now
            ticket.resolved_at = ticket.resolved_at or now
        else:
            ticket.resolved_at = None
            ticket.closed_at = None
        audit.record(session, ticket.id, EventKind.status_changed, now, actor=viewer, old=str(old), new=str(status))
        return old in LOAD_STATUSES and status not in LOAD_STATUSES

    async def _reassign(
        self, session: AsyncSession, viewer: Agent, ticket: Ticket, target_id: int | None,
        locked_target: LockedAgent | None, now: datetime,
    ) -> bool:
        """`locked_target` is the new assignee as the router's lock read them (None: no such agent)."""
        if target_id == ticket.assignee_id:
            return False
        manager = viewer.role in (Role.manager, Role.admin)
        if target_id is None:
            if not manager and ticket.assignee_id != viewer.id:
                raise Forbidden("only the assignee or a manager may return a ticket to the queue")
            audit.record(session, ticket.id, EventKind.unassigned, now, actor=viewer, agent_id=ticket.assignee_id)
            ticket.assignee_id = None
            if ticket.status in LOAD_STATUSES:
                ticket.status = TicketStatus.new
            return True
        if not manager and target_id != viewer.id:
            raise Forbidden("only a manager may assign a ticket to someone else")
        if locked_target is None:
            raise InvalidInput({"assignee": f"no agent {target_id}"})
        target = locked_target.agent
        if not manager:
            # Managers may overrule capacity and skills; an agent taking work may not.
            load = locked_target.load
            if load.open >= target.capacity:
                raise Conflict(f"you are at capacity ({load.open} of {target.capacity} open tickets)")
            missing = skill_set(ticket.skills) - locked_target.skills
            if missing:
                raise Conflict(f"ticket #{ticket.id} needs the skills {', '.join(sorted(missing))}, which you lack")
        previous = ticket.assignee_id
        ticket.assignee_id = target.id
        if ticket.status == TicketStatus.new:
            ticket.status = TicketStatus.open
        await self._router.stamp(session, [target.id], now)
        kind = EventKind.taken if target.id == viewer.id else EventKind.transferred
        audit.record(session, ticket.id, kind, now, actor=viewer, agent_id=target.id, previous_agent_id=previous)
        return previous is not None

    async def _visible_ticket(self, session: AsyncSession, viewer: Agent, number: int, lock: bool = False) -> Ticket:
        ticket = await session.get(Ticket, number, with_for_update=lock)
        if ticket is None:
            raise NotFound(f"no ticket #{number}")
        if (not _sees_everything(viewer) and ticket.assignee_id != viewer.id
                and ticket.group_id not in await group_ids_of(session, viewer.id)):
            raise Forbidden(f"ticket #{number} is not in your groups")
        return ticket


def _chat_tickets(channel: str, sender_prefix: str) -> Select[int]:
    return select(Message.ticket_id).where(
        Message.channel == channel,
        Message.direction == Direction.inbound,
        Message.external_id.startswith(sender_prefix, autoescape=True),
    )


def _sees_everything(agent: Agent) -> bool:
    return agent.role in (Role.manager, Role.admin)


def _lost_a_race(exc: DBAPIError) -> bool:
    """PostgreSQL's deadlock_detected (40P01) or serialization_failure (40001): running it again is safe."""
    return getattr(exc.orig, "sqlstate", None) in ("40P01", "40001")


def _is_connection_problem(exc: DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    text = str(exc.orig).lower() if exc.orig is not None else ""
    markers = ("connect", "closed", "terminat", "shutdown", "database is locked", "unable to open", "timeout")
    return any(marker in text for marker in markers)


async def _visibility(session: AsyncSession, viewer: Agent) -> ColumnElement[bool] | None:
    """Agents see their groups' tickets and those assigned to them; managers and admins see all (None)."""
    if _sees_everything(viewer):
        return None
    return or_(Ticket.assignee_id == viewer.id, Ticket.group_id.in_(await group_ids_of(session, viewer.id)))


async def _visible_to(session: AsyncSession, viewer: Agent, query: Select[Ticket]) -> Select[Ticket]:
    visible = await _visibility(session, viewer)
    return query if visible is None else query.where(visible)


@dataclass(frozen=True)
class _Listing:
    """The filters of a ticket list, applied alike to the list and to each branch of a PostgreSQL search."""

    visible: ColumnElement[bool] | None
    status: list[TicketStatus] | None
    assignee: int | None | str
    group: str | None
    channel: str | None
    priority: list[Priority] | None
    overdue_at: datetime | None
    before: int | None

    def narrow(self, query: S) -> S:
        if self.visible is not None:
            query = query.where(self.visible)
        if self.status:
            query = query.where(Ticket.status.in_(self.status))
        if self.assignee is None:
            query = query.where(Ticket.assignee_id.is_(None))
        elif self.assignee != "any":
            query = query.where(Ticket.assignee_id == self.assignee)
        if self.group is not None:
            query = query.join(Group, Group.id == Ticket.group_id).where(Group.name == self.group)
        if self.channel is not None:
            query = query.where(Ticket.channel == self.channel)
        if self.priority:
            query = query.where(Ticket.priority.in_(self.priority))
        if self.overdue_at is not None:
            query = query.where(deadlines.overdue(self.overdue_at))
        if self.before is not None:
            query = query.where(Ticket.id < self.before)
        return query


async def _listed(session: AsyncSession, listing: _Listing, search: str | None, rows: int,
                  columns: Sequence[Any]) -> Select[Any]:
    """The newest `rows` tickets of a list (as `columns`: the entity, or the columns a page shows)."""
    if search and is_postgresql(session) and _trigram_searchable(search):
        # The plan for these very values: a generic one (asyncpg's prepared statements get one after five runs)
        # cannot tell a rare word, for which the trigram indexes pay, from a common one.
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        return _searched(listing, search, rows, columns)
    query = listing.narrow(select(*columns)).order_by(Ticket.id.desc()).limit(rows)
    return query.where(_matching(search)) if search else query


def _among(session: AsyncSession, column: Any, ids: Collection[int]) -> ColumnElement[bool]:
    """`column IN ids`; on PostgreSQL as `= ANY(one array)`: an IN of a page's 200 ids costs SQLAlchemy a few ms to
    render each time, and each count of ids is another statement for asyncpg to prepare."""
    if is_postgresql(session):
        ids_array = bindparam("ids", list(ids), type_=ARRAY(BigInteger), unique=True)
        return cast(ColumnElement[bool], column == any_(ids_array))
    return cast(ColumnElement[bool], column.in_(ids))


async def _customer_names_in(session: AsyncSession, customer_ids: Sequence[int]) -> dict[int, str]:
    """Each client's name, else their first address; addresses are read only for clients without a name."""
    if not customer_ids:
        return {}
    names = dict(list(await session.execute(
        select(Customer.id, Customer.name).where(_among(session, Customer.id, set(customer_ids))))))
    nameless = {customer_id for customer_id, name in names.items() if not name}
    if nameless:
        for customer_id, address in await session.execute(
                select(CustomerIdentity.customer_id, CustomerIdentity.address)
                .where(_among(session, CustomerIdentity.customer_id, nameless)).order_by(CustomerIdentity.id)):
            if not names.get(customer_id):
                names[customer_id] = address
    return {k: v for k, v in names.items() if v}


async def _deadline_summary_in(session: AsyncSession, numbers: Sequence[int]) -> dict[int, DeadlineSummary]:
    """Per ticket: its next pending step, and whether a step was breached — what a queue shows as a countdown."""
    if not numbers:
        return {}
    rows = await session.execute(
        select(Deadline.ticket_id, Deadline.step, Deadline.due_at, Deadline.status, Deadline.breach, Deadline.met_at)
        .where(_among(session, Deadline.ticket_id, numbers),
               Deadline.status.in_((DeadlineStatus.pending, DeadlineStatus.fired)))
        .order_by(Deadline.due_at))
    found: dict[int, DeadlineSummary] = {}
    # Columns, not objects: a console page summarises a few hundred steps, and loading each as an ORM object cost
    # more than the query.
    for ticket_id, step, due_at, status, breach, met_at in rows:
        seen = found.get(ticket_id, DeadlineSummary(None, False))
        found[ticket_id] = DeadlineSummary(
            seen.next or (NextStep(step, due_at) if status == DeadlineStatus.pending else None),
            seen.breached or (status == DeadlineStatus.fired and breach and met_at is None))
    return found


def _search_terms(search: str) -> list[ColumnElement[bool]]:
    """Each way a ticket matches: the text in its subject, its (not internal) messages, or its customer's name or
    addresses, or its number (`%` and `_` are dropped from the text, not taken as wildcards)."""
    lowered = search.strip().lower()
    number = lowered.lstrip("#")
    like = f"%{_search_text(lowered)}%"
    terms: list[ColumnElement[bool]] = [
        func.lower(Ticket.subject).like(like),
        exists(select(Message.id).where(Message.ticket_id == Ticket.id, Message.direction != Direction.internal,
                                        func.lower(Message.body_text).like(like))),
        exists(select(Customer.id).where(Customer.id == Ticket.customer_id, func.lower(Customer.name).like(like))),
        exists(select(CustomerIdentity.id).where(CustomerIdentity.customer_id == Ticket.customer_id,
                                                 func.lower(CustomerIdentity.address).like(like))),
    ]
    if (as_number := as_id(number)) is not None:
        terms.append(Ticket.id == as_number)
    return terms


def _search_text(text: str) -> str:
    return text.replace("%", "").replace("_", "")


def _matching(search: str) -> ColumnElement[bool]:
    """The ticket's number, or the text in its subject, its messages, or its customer's name or addresses."""
    return or_(*_search_terms(search))


def _trigram_searchable(search: str) -> bool:
    """pg_trgm's indexes narrow `LIKE '%text%'` only by the text's runs of three letters or digits; without one
    they would hand back every row, and the newest-first walk of tickets checking the whole OR is the better plan."""
    return TRIGRAM.search(_search_text(search.strip().lower())) is not None


def _searched(listing: _Listing, search: str, rows: int, columns: Sequence[Any] = (Ticket,)) -> Select[Any]:
    """A search as a UNION of newest-first branches, one per way of matching, each with the list's filters and its own
    LIMIT: each can use its trigram index (or walk the newest tickets, if its text is common), where the OR of them all
    can only be checked ticket by ticket. The newest `rows` of each branch hold the newest `rows` of all."""
    branches = [listing.narrow(select(Ticket.id).where(term)).order_by(Ticket.id.desc()).limit(rows)
                for term in _search_terms(search)]
    found = union(*branches).subquery("found")
    newest = select(found.c.id).order_by(found.c.id.desc()).limit(rows)
    return select(*columns).where(Ticket.id.in_(newest)).order_by(Ticket.id.desc())


async def _customer_view(session: AsyncSession, viewer: Agent, customer_id: int) -> CustomerView:
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"no customer {customer_id}")
    identities = list(
        await session.scalars(
            select(CustomerIdentity).where(CustomerIdentity.customer_id == customer_id).order_by(CustomerIdentity.id)
        )
    )
    # Every agent may look a client up; only tickets they may open are listed on the card.
    query = await _visible_to(session, viewer, select(Ticket).where(Ticket.customer_id == customer_id))
    tickets: list[Ticket] = list(await session.scalars(query.order_by(Ticket.id.desc())))
    calls = list(
        await session.scalars(
            select(Call)
            .where(Call.customer_id == customer_id)
            .order_by(Call.started_at.desc(), Call.id.desc())
            .limit(HISTORY_CALLS)
        )
    )
    return CustomerView(customer, identities, tickets, calls)


async def merge_customers(
    session: AsyncSession, source: Customer, target: Customer, actor: Agent, now: datetime
) -> None:
    """Everything of `source` (identities, tickets, calls, messages) moves to `target`; `source` is deleted."""
    moved = list(await session.scalars(select(Ticket.id).where(Ticket.customer_id == source.id)))
    for model in (CustomerIdentity, Ticket, Call, Message):
        await session.execute(
            update(model).where(model.customer_id == source.id).values(customer_id=target.id)
            .execution_options(synchronize_session=False)
        )
    target.name = target.name or source.name
    target.language = target.language or source.language
    for ticket_id in moved:
        audit.record(session, ticket_id, EventKind.customer_merged, now, actor=actor,
                     reason=f"customer {source.id} merged into customer {target.id}",
                     from_customer_id=source.id, to_customer_id=target.id)
    await session.flush()
    await session.execute(delete(Customer).where(Customer.id == source.id))


async def _ticket_view(session: AsyncSession, ticket: Ticket, now: datetime) -> TicketView:
    await session.flush()
    customer = await session.get_one(Customer, ticket.customer_id)
    identities = list(
        await session.scalars(
            select(CustomerIdentity).where(CustomerIdentity.customer_id == customer.id).order_by(CustomerIdentity.id)
        )
    )
    group = await session.get_one(Group, ticket.group_id)
    assignee = await session.get(Agent, ticket.assignee_id) if ticket.assignee_id else None
    messages = list(await session.scalars(select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id)))
    events = list(await session.scalars(select(Event).where(Event.ticket_id == ticket.id).order_by(Event.id)))
    calls = list(await session.scalars(
        select(Call).where(Call.ticket_id == ticket.id).order_by(Call.started_at, Call.id)))
    promises = list(await session.scalars(
        select(Deadline).where(Deadline.ticket_id == ticket.id).order_by(Deadline.id)))
    clock = list(await session.scalars(
        select(ClockEvent).where(ClockEvent.ticket_id == ticket.id).order_by(ClockEvent.id)))
    return TicketView(ticket, customer, identities, group, assignee, messages, events, calls, promises, clock, now,
                      await linked_tickets(session, ticket.id), await merged_from(session, ticket.id))
