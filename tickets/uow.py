"""The unit of work: one transaction of the ticket store and what it owes the world once it commits.

Every command and every read goes through a `Store`: it opens the session, lets the transaction's audit events
write their notices before commit (an agent handed a ticket is told), commits, and only then hands the committed
outbox rows to the delivery queue, the deadlines to the timers and the changed tickets to the live feed. A lost
unique-key race or a deadlock is run again; a database that cannot be reached is `StoreUnavailable`, which the
HTTP layer answers 503 and the channels answer "try later". Nothing after commit can undo the commit: if Redis is
away the sweepers deliver and fire what was committed."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tickets import audit
from tickets.clock import Clock
from tickets.errors import StoreUnavailable
from tickets.ports import ChangeFeed, JobQueue, Notifications, Reminder, Timer, Timers

log = logging.getLogger(__name__)
T = TypeVar("T")
ATTEMPTS = 3


class UnitOfWork:
    """A transaction in progress: its session, and what to publish once it has committed."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.outbox: list[int] = []
        """Outbox rows written in this transaction, handed to the delivery queue after commit."""
        self.timers: list[Timer | Reminder] = []
        """Regulation deadlines (re)armed and contacts planned in this transaction, handed to the timers after
        commit."""

    def deliver(self, outbox_ids: Iterable[int]) -> None:
        self.outbox.extend(outbox_ids)

    def schedule(self, timers: Iterable[Timer | Reminder]) -> None:
        self.timers.extend(timers)


class Store:
    """Opens units of work on the store and publishes what each committed."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        notifications: Notifications | None = None,
        jobs: JobQueue | None = None,
        timers: Timers | None = None,
        changes: ChangeFeed | None = None,
    ) -> None:
        self.sessions = sessions
        self._clock = clock
        self._notifications = notifications
        self._jobs = jobs
        self._timers = timers
        self._changes = changes

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[UnitOfWork]:
        """One transaction: committed when the block ends, rolled back if it raises, published after commit."""
        changed: list[int] = []
        try:
            async with self.sessions() as session, session.begin():
                uow = UnitOfWork(session)
                yield uow
                events = session.info.pop(audit.RECORDED, [])
                changed = sorted({event.ticket_id for event in events})
                if events and self._notifications is not None:
                    uow.deliver(await self._notifications.events_recorded(session, events, self._clock.now()))
        except IntegrityError:
            raise
        except (DBAPIError, OSError, TimeoutError) as exc:
            if isinstance(exc, DBAPIError) and not _is_connection_problem(exc):
                raise
            raise StoreUnavailable(f"database unavailable: {exc.__class__.__name__}") from exc
        await self.publish(uow.outbox, uow.timers, changed)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """The session of a unit of work, for a query (one transaction: one consistent picture) or a command that
        owes nothing after commit but what its audit events call for."""
        async with self.unit() as uow:
            yield uow.session

    async def run(self, work: Callable[[UnitOfWork], Awaitable[T]], *, attempts: int = ATTEMPTS) -> T:
        """`work` in a unit of work, run again when a concurrent writer won a unique-key race (the retry sees its
        row) or PostgreSQL broke a deadlock by aborting this one (lock orders are kept; a retry is the safety net).
        `work` must be safe to run again: it starts from what it reads."""
        for attempt in range(1, attempts + 1):
            try:
                async with self.unit() as uow:
                    return await work(uow)
            except (IntegrityError, DBAPIError) as exc:
                if attempt == attempts or not (isinstance(exc, IntegrityError) or _lost_a_race(exc)):
                    raise
                log.info("%s, retrying (attempt %d)", "unique-key race" if isinstance(exc, IntegrityError)
                         else "deadlock or serialisation failure", attempt)
        raise AssertionError("unreachable")

    async def publish(self, outbox_ids: Sequence[int], timers: Sequence[Timer | Reminder] = (),
                      changed: Sequence[int] = ()) -> None:
        """Hand what a transaction committed to the queue, the timers and the live feed. Each is best effort: the
        rows are committed, and the sweepers deliver and fire what a missing Redis did not take."""
        if outbox_ids and self._jobs is not None:
            try:
                await self._jobs.deliver(list(outbox_ids))
            except Exception:  # noqa: BLE001 - the rows are committed; only the prompt start is lost
                log.warning("could not enqueue delivery of outbox %s; the sweeper will", list(outbox_ids),
                            exc_info=True)
        if timers and self._timers is not None:
            try:
                await self._timers.schedule(timers)
            except Exception:  # noqa: BLE001 - the deadline rows are committed; the sweeper fires them
                log.warning("could not set timers %s; the sweepers will fire them",
                            [t.job_id for t in timers], exc_info=True)
        if changed and self._changes is not None:
            try:
                await self._changes.changed(list(changed))
            except Exception:  # noqa: BLE001 - a console misses one live refresh; the store is committed
                log.warning("could not announce changes to tickets %s", list(changed), exc_info=True)


def _lost_a_race(exc: DBAPIError) -> bool:
    """PostgreSQL's deadlock_detected (40P01) or serialization_failure (40001): running it again is safe."""
    return getattr(exc.orig, "sqlstate", None) in ("40P01", "40001")


def _is_connection_problem(exc: DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    text = str(exc.orig).lower() if exc.orig is not None else ""
    markers = ("connect", "closed", "terminat", "shutdown", "database is locked", "unable to open", "timeout")
    return any(marker in text for marker in markers)
