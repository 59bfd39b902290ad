"""What one statement costs our process in CPU, by the way it is sent: the ORM, SQLAlchemy Core, or bare asyncpg.

The ingest is CPU-bound in Python with no hotspot (BENCHMARKS, issue 10): its time is its statements' overhead.
This says how much of that a rewrite of the hot path in Core, or in asyncpg, would save per statement: an audit
event inserted (ORM: `session.add` + flush; Core: `insert().returning(id)`; asyncpg: the same SQL on the
session's own connection) and a ticket read by its number (ORM entity; Core row, the statement built at each call
as our code does or once with a bound parameter; asyncpg row), each many times
in one transaction, one at a time. CPU is this process's (`time.process_time`): PostgreSQL's share is not in it.

Usage: uv run python bench/statement_cost.py [--statements 400] [--runs 3]
Needs PostgreSQL (BENCH_PG_URL, default the local server); uses a throw-away database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bench.deployment import deployment, report
from switchboard.bootstrap import build_engine, build_service
from switchboard.settings import DatabaseSettings, Settings
from tickets.clock import SystemClock
from tickets.db import create_session_factory
from tickets.inbound import Identity, Inbound
from tickets.models import Event, Ticket

Statement = Callable[[AsyncSession, int], Awaitable[object]]
EVENTS, TICKETS = Event.__table__, Ticket.__table__
CORE_INSERT = insert(EVENTS).returning(EVENTS.c.id)
CORE_SELECT = select(TICKETS).where(TICKETS.c.id == bindparam("ticket"))
RAW_INSERT = ("INSERT INTO events (ticket_id, kind, actor_id, actor, reason, data, created_at) "
              "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id")


async def driver(session: AsyncSession) -> Any:
    """The asyncpg connection under the session's transaction."""
    return (await (await session.connection()).get_raw_connection()).driver_connection


def statements(now: datetime) -> dict[str, Statement]:
    async def orm_insert(session: AsyncSession, ticket: int) -> object:
        session.add(Event(ticket_id=ticket, kind="note", actor="bench", reason="r", data={"a": 1}, created_at=now))
        await session.flush()
        return None

    async def core_insert(session: AsyncSession, ticket: int) -> object:
        return await session.scalar(CORE_INSERT, {"ticket_id": ticket, "kind": "note", "actor_id": None,
                                                  "actor": "bench", "reason": "r", "data": {"a": 1}, "created_at": now})

    async def asyncpg_insert(session: AsyncSession, ticket: int) -> object:
        return await (await driver(session)).fetchval(RAW_INSERT, ticket, "note", None, "bench", "r",
                                                      json.dumps({"a": 1}), now)

    async def orm_select(session: AsyncSession, ticket: int) -> object:
        return await session.scalar(select(Ticket).where(Ticket.id == ticket).execution_options(populate_existing=True))

    async def core_select(session: AsyncSession, ticket: int) -> object:
        return (await session.execute(select(TICKETS).where(TICKETS.c.id == ticket))).first()

    async def core_select_prebuilt(session: AsyncSession, ticket: int) -> object:
        return (await session.execute(CORE_SELECT, {"ticket": ticket})).first()

    async def asyncpg_select(session: AsyncSession, ticket: int) -> object:
        return await (await driver(session)).fetchrow("SELECT * FROM tickets WHERE id = $1", ticket)

    return {"orm_insert_ms": orm_insert, "core_insert_ms": core_insert, "asyncpg_insert_ms": asyncpg_insert,
            "orm_select_ms": orm_select, "core_select_ms": core_select, "core_select_prebuilt_ms": core_select_prebuilt,
            "asyncpg_select_ms": asyncpg_select}


async def one_run(count: int) -> dict[str, float]:
    """CPU milliseconds per statement for each way, after a warm-up of 50."""
    async with deployment(agents=0, capacity=1) as setup:
        settings = Settings(database=DatabaseSettings(url=setup.database_url))
        engine = build_engine(settings)
        try:
            service = build_service(settings, engine, SystemClock())
            ticket = (await service.ingest(Inbound(channel="webform", identities=(Identity("email", "c@example.com"),),
                                                   body_text="x"))).ticket.id
            sessions = create_session_factory(engine)
            result = {}
            for name, statement in statements(datetime.now(UTC)).items():
                async with sessions() as session, session.begin():
                    for _ in range(50):
                        await statement(session, ticket)
                    began = time.process_time()
                    for _ in range(count):
                        await statement(session, ticket)
                    result[name] = (time.process_time() - began) * 1000 / count
            return result
        finally:
            await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--statements", type=int, default=400)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = [await one_run(args.statements) for _ in range(args.runs)]
    report(results, f"{args.statements} statements of each kind, one at a time, CPU ms of this process each",
           digits=3)


if __name__ == "__main__":
    asyncio.run(main())
