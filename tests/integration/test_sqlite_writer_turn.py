"""SQLite's writer turn (tickets/db.py): a process's transactions queue for the write lock among themselves, on
any event loop the engine serves, so SQLite's busy handler (polling, sleeping up to 100 ms a try) is left to
wait only for other processes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import BACKENDS
from tickets.db import create_engine

pytestmark = pytest.mark.skipif("sqlite" not in BACKENDS, reason="the writer turn is SQLite's")

WRITERS = 10  # below the pool's size: every writer holds its own connection at once


def _impatient_engine(path: Path) -> AsyncEngine:
    """An engine whose connections do not wait in SQLite at all (busy timeout 0): a writer that reached SQLite
    while another held the write lock would fail at once with "database is locked"."""
    engine = create_engine(f"sqlite+aiosqlite:///{path}")

    @event.listens_for(engine.sync_engine, "connect")
    def _no_busy_wait(dbapi_connection: Any, _record: Any) -> None:  # runs after create_engine's own settings
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=0")
        cursor.close()

    return engine


async def _writers(engine: AsyncEngine) -> int:
    """Ten transactions at once, each holding the write lock across an await; returns how many rows were stored."""

    async def writer(n: int) -> None:
        async with engine.begin() as connection:
            await connection.exec_driver_sql(f"INSERT INTO scratch (n) VALUES ({n})")
            await asyncio.sleep(0.01)

    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS scratch (n INTEGER)")
            await connection.exec_driver_sql("DELETE FROM scratch")
        await asyncio.gather(*(writer(n) for n in range(WRITERS)))
        async with engine.connect() as connection:
            return int((await connection.exec_driver_sql("SELECT count(*) FROM scratch")).scalar_one())
    finally:
        await engine.dispose()  # its connections belong to this loop; another loop opens its own


async def test_writers_of_one_process_queue_for_their_turn_not_in_sqlite(tmp_path: Path) -> None:
    assert await _writers(_impatient_engine(tmp_path / "turn.db")) == WRITERS


def test_one_engine_takes_turns_on_each_event_loop_it_serves(tmp_path: Path) -> None:
    engine = _impatient_engine(tmp_path / "turn.db")
    assert asyncio.run(_writers(engine)) == WRITERS
    assert asyncio.run(_writers(engine)) == WRITERS  # a lock bound to the first loop would fail in this one
