"""What the ticket services need from routing, as a small interface, so tickets/ imports no router."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from tickets.alerts import AlertFacts, Person
from tickets.models import Agent, Event, Message, Ticket


class AgentLoad(Protocol):
    @property
    def open(self) -> int:
        """Open and pending tickets held: what capacity limits."""

    @property
    def weighted(self) -> float:
        """Their summed weights (channel x priority): what the router compares."""


class LockedAgentRow(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def capacity(self) -> int: ...


class LockedAgent(Protocol):
    """An agent as the router read them under its lock: what a take or transfer is checked against."""

    @property
    def agent(self) -> LockedAgentRow: ...

    @property
    def skills(self) -> frozenset[str]: ...

    @property
    def load(self) -> AgentLoad: ...


class Placed(Protocol):
    """What the routing rules did to a new ticket beyond its columns."""

    @property
    def tags(self) -> tuple[str, ...]:
        """Tags the matching rules give it (stored once the ticket has its number)."""

    def describe(self) -> str | None:
        """Which rules matched, for the ticket's `created` event (None: none)."""


class Assigner(Protocol):
    """Routing as the ticket services see it; every method works inside the caller's transaction."""

    async def lock(
        self, session: AsyncSession, group_ids: Iterable[int], agent_ids: Iterable[int] = ()
    ) -> Sequence[LockedAgent]:
        """Lock these groups' members and these agents before a change that moves load between them."""

    async def loads(self, session: AsyncSession, agent_ids: Collection[int]) -> Mapping[int, AgentLoad]: ...

    async def place(self, session: AsyncSession, ticket: Ticket, language: str | None) -> Placed:
        """Set a new ticket's group, skills and priority by the routing rules; says which matched and their tags."""

    def place_using(self, rows: Sequence[Sequence[Any]], ticket: Ticket, language: str | None) -> Placed:
        """`place` over routing-rule rows read by the caller, in the order they are checked (id, channel, category,
        language, from_group_id, group_id, skills, priority, tags)."""

    async def assign(
        self, session: AsyncSession, ticket: Ticket, now: datetime, exclude: Collection[int] = ()
    ) -> LockedAgentRow | None:
        """Give the ticket to an agent (not one of `exclude`), or leave it queued."""

    async def assign_all(self, session: AsyncSession, tickets: Sequence[Ticket], now: datetime) -> int:
        """Route a batch of waiting tickets under one lock of their groups; returns how many got an agent."""

    def give(
        self, session: AsyncSession, ticket: Ticket, agent: Agent, now: datetime, reason: str, *, actor: str = "router"
    ) -> None:
        """Give the ticket to this agent, whatever their load, and audit why (an agent who already took the work)."""

    async def stamp(self, session: AsyncSession, agent_ids: Collection[int], now: datetime) -> None:
        """Record that these agents were just given a ticket (routing's tie-break: idle longest first)."""

    async def drain(
        self, session: AsyncSession, group_ids: Iterable[int], now: datetime, hold: Collection[int] = (),
        locked: Sequence[LockedAgent] | None = None,
    ) -> int:
        """Assign waiting tickets of these groups (except those in `hold`) while agents have room; returns how many.

        `locked`: what `lock` of these groups returned in this transaction, if no load has moved since."""

    async def release(self, session: AsyncSession, agent: Agent, now: datetime, reason: str) -> Sequence[Ticket]:
        """Return the agent's untouched assignments to the queue (they went offline); drain re-routes them."""


@dataclass(frozen=True)
class ReceivedFacts:
    """What acknowledging a new ticket depends on, as the receipt knows it (no reads, no rendering)."""

    channel: str
    group_name: str
    group_acknowledges: bool
    customer_name: str | None
    customer_language: str | None
    client_address: str | None
    """The client's first email address on the card (the fallback recipient)."""
    meta: Mapping[str, object]
    """The message's channel details (email: from, recipient, references, auto_reply)."""
    external_id: str | None
    subject: str
    portal_key: str | None


@dataclass(frozen=True)
class Notice:
    """An outbox row to write: a template and its parameters, rendered by the worker when it delivers the row."""

    kind: str
    channel: str
    recipient: str
    template: str
    params: Mapping[str, object]
    headers: Mapping[str, object]
    dedupe_prefix: str
    """The dedupe key before the ticket's number (`ack:`): the row goes out once per ticket."""


class Notifications(Protocol):
    """Writes outbox rows inside the transaction of the change that causes them (replies, acknowledgements)."""

    def acknowledgement(self, facts: ReceivedFacts) -> Notice | None:
        """The client's acknowledgement of a new ticket, if one is due, written by the receipt itself."""

    async def ticket_created(self, session: AsyncSession, ticket: Ticket, message: Message, now: datetime) -> list[int]:
        """Outbox ids to deliver once the new ticket is committed (e.g. the client's acknowledgement)."""

    async def reply_added(self, session: AsyncSession, ticket: Ticket, message: Message, now: datetime) -> list[int]:
        """Outbox ids that carry an agent's public reply out through the ticket's channel."""

    async def ticket_resolved(self, session: AsyncSession, ticket: Ticket, now: datetime) -> list[int]:
        """Outbox ids that tell the client their ticket was resolved."""

    async def events_recorded(self, session: AsyncSession, events: Sequence[Event], now: datetime) -> list[int]:
        """Outbox ids for what the transaction's events call for (an agent told of a ticket handed to them)."""


class Alerts(Protocol):
    """Staff alerts of a firing regulation step, queued in the firing's transaction (notifier.alerts)."""

    async def queue(self, session: AsyncSession, ticket: Ticket, person: Person, medium: str, facts: AlertFacts, *,
                    dedupe_key: str, now: datetime) -> int:
        """The outbox row's id for one alert to `person` by `medium` (email, sms or telegram)."""
        ...


class JobQueue(Protocol):
    """The timer and worker queue (arq): told after commit; the sweeper covers anything it loses."""

    async def deliver(self, outbox_ids: Sequence[int]) -> None: ...


@dataclass(frozen=True)
class Timer:
    """A deadline to fire at `due_at`: the job id carries `plan`, so a timer of an older plan finds nothing to do."""

    deadline_id: int
    ticket_id: int
    step: str
    plan: int
    due_at: datetime

    @property
    def job_id(self) -> str:
        return f"sla:{self.ticket_id}:{self.step}:{self.plan}"


@dataclass(frozen=True)
class Reminder:
    """A planned contact to remind its agent of at `due_at` (the same exact timers as regulations)."""

    planned_id: int
    due_at: datetime

    @property
    def job_id(self) -> str:
        return f"remind:{self.planned_id}:{int(self.due_at.timestamp())}"


class Timers(Protocol):
    """The job queue as the regulation clock's alarm (arq deferred jobs); told after commit, swept if lost."""

    async def schedule(self, timers: Sequence[Timer | Reminder]) -> None: ...


class ChangeFeed(Protocol):
    """Who is watching tickets change (the consoles' live queues): told after commit, best effort."""

    async def changed(self, numbers: Sequence[int]) -> None: ...


class Regulations(Protocol):
    """The deadlines regulations set (sla/ owns the calendars, the ladders and their clocks)."""

    def callback_due(self, missed_at: datetime) -> datetime:
        """When a client whose call was missed at `missed_at` must have been called back."""

    async def track(self, session: AsyncSession, ticket: Ticket, now: datetime, reason: str,
                    *, new: bool = False) -> list[Timer]:
        """Bring the ticket's regulation, clock and deadline rows in line with its state, inside the caller's
        transaction; returns the timers to set once it commits. Call it after every change a regulation may
        care about (created, status, priority, category, group, processed, a client's message, a reply)."""

    async def plan_all(self, session: AsyncSession, received: Sequence[tuple[Ticket, datetime, str, bool]]
                       ) -> Callable[[], list[Timer]]:
        """`track` for a batch of (ticket, when received, why, new), without flushing; call the result after the
        caller's next flush for the timers to set."""
