"""Engine and session factory: the SQLite specifics (WAL, BEGIN IMMEDIATE, busy timeout) live here."""

from __future__ import annotations

import asyncio
import sqlite3
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import CursorResult, Executable, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, PendingRollbackError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.util import await_only

from tickets.loads import WEIGH, Weigh, forget, note_flushed_loads, settle

T = TypeVar("T")


def create_engine(url: str, *, pool_size: int = 10, sqlite_busy_timeout_ms: int = 30_000) -> AsyncEngine:
    """Build the async engine; SQLite gets the settings that let several processes write safely."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(url, connect_args={"timeout": sqlite_busy_timeout_ms / 1000})
        _configure_sqlite(engine, sqlite_busy_timeout_ms)
        return engine
    # No JIT: our statements are short OLTP reads and writes, and PostgreSQL's cost model JIT-compiled the generic plan
    # of a search at 1M tickets, 0.6–0.9 s per request (bench/queue_listing.py, issue 10).
    # No pre-ping: on asyncpg it is three round trips per checkout (BEGIN, ";", ROLLBACK), a third of a receipt's.
    # A connection the server dropped fails its first statement instead; SQLAlchemy then discards the pool's older
    # connections, and the caller answers 503 (the sender retries), as for any outage.
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size,
                               connect_args={"server_settings": {"jit": "off"}})


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so BEGIN IMMEDIATE below is what runs.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        # SQLite's own lower() knows only ASCII: "Иван" would not find "иван". Python's knows every script.
        dbapi_connection.create_function("lower", 1, _lower, deterministic=True)

    turn = _TURNS[engine.sync_engine] = _WriterTurn(busy_timeout_ms / 1000)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers queue on the lock at BEGIN instead of failing with "database is locked" mid-way; this process's
        # transactions queue in turn first, so SQLite's busy wait only ever waits for another process.
        held = connection.connection.info  # the pooled connection's own dict, as the checkin event sees it
        turn.take(held)
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            turn.give_back(held)
            raise

    # SQLAlchemy announces a commit before it asks the driver for it: the COMMIT is sent here, so the turn passes on
    # only once the write lock is free (the driver's own call then finds no transaction, a no-op). A rollback passes
    # it on at once, awaiting nothing: a task cancelled inside a transaction must not keep the turn.
    @event.listens_for(engine.sync_engine, "commit")
    def _on_commit(connection: Any) -> None:
        held = connection.connection.info
        if turn.holds(held):
            try:
                connection.exec_driver_sql("COMMIT")
            finally:
                turn.give_back(held)

    @event.listens_for(engine.sync_engine, "rollback")
    def _on_rollback(connection: Any) -> None:
        try:
            held = connection.connection.info
        except PendingRollbackError:  # invalidated mid-transaction (a task cancelled there): checkin gives it back
            return
        turn.give_back(held)

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        turn.give_back(record.info)  # a connection returned without its transaction ending (invalidated, say)


class _WriterTurn:
    """One SQLite transaction at a time in this process, in arrival order.

    Every transaction begins IMMEDIATE (it takes the database's write lock), and SQLite's busy handler makes the
    others poll for it, sleeping up to 100 ms between tries: under 32 concurrent requests `serve` spent most of
    its time asleep (py-spy: the process idle while p99 reached 4 s). An asyncio lock hands the turn over the
    moment the holder commits."""

    _HELD = "switchboard.writer_turn"

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()

    def take(self, held: dict[Any, Any]) -> None:
        """Wait for the turn inside SQLAlchemy's begin event (a sync call under its greenlet)."""
        held[self._HELD] = await_only(self._acquire())

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """The turn for a transaction run outside SQLAlchemy's events (`in_one_call`)."""
        lock = await self._acquire()
        try:
            yield
        finally:
            lock.release()

    async def _acquire(self) -> asyncio.Lock:
        """Wait for this event loop's turn (an engine may serve more than one loop, a test's after another's)."""
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop) or self._locks.setdefault(loop, asyncio.Lock())
        try:
            await asyncio.wait_for(lock.acquire(), self._timeout)
        except TimeoutError as exc:
            raise sqlite3.OperationalError("database is locked (waited for this process's other writers)") from exc
        return lock

    def holds(self, held: dict[Any, Any]) -> bool:
        return self._HELD in held

    def give_back(self, held: dict[Any, Any]) -> None:
        lock = held.pop(self._HELD, None)
        if lock is not None:
            lock.release()


_TURNS: weakref.WeakKeyDictionary[Engine, _WriterTurn] = weakref.WeakKeyDictionary()


async def in_one_call(engine: AsyncEngine, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run `work` in one SQLite transaction, in one call to the thread aiosqlite keeps for the connection.

    Through SQLAlchemy every statement is a trip to that thread and back through the event loop, and the write
    lock is held across all of them: under 32 concurrent requests a twenty-statement receipt held it for ~13 ms,
    most of it waiting for the loop to come round. Here BEGIN IMMEDIATE, the statements and COMMIT run in one go,
    in this process's writer turn. aiosqlite offers no public way to run a function on its thread: this uses
    `Connection._execute`, which every one of its own methods goes through (the version is locked in uv.lock, and
    `tests/integration/test_receipt_paths.py` runs this path on every pass). sqlite3's errors come out as
    SQLAlchemy's, as from any statement."""
    async with engine.connect() as connection:
        driver: Any = (await connection.get_raw_connection()).driver_connection
        async with _TURNS[engine.sync_engine].held():
            try:
                done: T = await driver._execute(_in_transaction, driver, work)  # noqa: SLF001 - see above
                return done
            except sqlite3.Error as exc:
                raise DBAPIError.instance(None, None, exc, sqlite3.Error) from exc


def _in_transaction(driver: Any, work: Callable[[sqlite3.Connection], T]) -> T:
    connection: sqlite3.Connection = driver._conn  # noqa: SLF001 - on aiosqlite's thread, where it may be used
    connection.execute("BEGIN IMMEDIATE")
    try:
        result = work(connection)
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    return result


class KeepingSession(Session):
    """A session that holds on to what it loaded until it closes. SQLAlchemy's identity map is weak: an object
    nobody references any more is forgotten, and the next `session.get` of it is another SELECT. One ingest
    read the same customer and group three times that way (the card, the regulation's match, the
    acknowledgement); our sessions last one transaction, so keeping everything costs nothing."""


KEPT = "switchboard.kept"


@event.listens_for(KeepingSession, "loaded_as_persistent")
@event.listens_for(KeepingSession, "pending_to_persistent")
@event.listens_for(KeepingSession, "detached_to_persistent")
def _keep(session: Session, instance: object) -> None:
    session.info.setdefault(KEPT, {})[id(instance)] = instance


@event.listens_for(KeepingSession, "persistent_to_detached")
@event.listens_for(KeepingSession, "persistent_to_deleted")
@event.listens_for(KeepingSession, "persistent_to_transient")
def _let_go(session: Session, instance: object) -> None:
    session.info.get(KEPT, {}).pop(id(instance), None)


event.listen(KeepingSession, "after_flush", note_flushed_loads)
event.listen(KeepingSession, "before_commit", settle)
event.listen(KeepingSession, "after_rollback", forget)


async def rows_changed(session: AsyncSession, statement: Executable) -> int:
    """How many rows an UPDATE or DELETE changed (0 where the driver cannot tell)."""
    result = await session.execute(statement)
    return (result.rowcount or 0) if isinstance(result, CursorResult) else 0


def create_session_factory(engine: AsyncEngine, weigh: Weigh | None = None) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep what they load and keep agents' load counters; `weigh` is the router's ticket weight."""
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=KeepingSession,
                              info={WEIGH: weigh} if weigh is not None else None)


def is_postgresql(engine_or_session: Any) -> bool:
    bind = getattr(engine_or_session, "bind", engine_or_session)
    return bool(bind.dialect.name == "postgresql")


async def refresh_statistics(session: AsyncSession, tables: list[str]) -> None:
    """ANALYZE tables a bulk load grew: until autovacuum gets round to it, the planner takes them for small
    and scans them whole (measured: a 500-id lookup on `calls` read the whole table at every batch)."""
    if is_postgresql(session):
        for table in tables:
            await session.execute(text(f'ANALYZE "{table}"'))
