"""Reminder lateness: how late a planned contact's reminder comes, with 100k other planned contacts pending.

Usage: uv run python bench/reminder_lateness.py [--pending 100000] [--due 100] [--spread 30] [--runs 3]
A fresh PostgreSQL database (BENCH_PG_URL) and Redis (BENCH_REDIS_URL, emptied first). `--pending` planned contacts
due in the next 1–30 days are written with COPY and their timers set in the timer queue (as recording them would);
then `--due` more, due over the next `--spread` seconds, are recorded through the service (each sets its own
timer), and one `switchboard worker` process runs. Lateness = the reminder's `reminded_at` − its `due_at`, as the
store recorded it. Everything stays on 127.0.0.1 and stops when the last due reminder is recorded (or after
`--spread` + 60 s).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.deployment import REDIS_URL, asyncpg_dsn, deployment, report  # noqa: E402


async def prepare(env: dict[str, str], database_url: str, pending: int) -> tuple[int, int]:
    """One agent, one client, `pending` planned contacts far ahead with their timers set; (agent id, card id)."""
    from arq import create_pool

    from sla.jobs import ArqTimers
    from switchboard.bootstrap import build, redis_settings
    from switchboard.settings import Settings
    from tickets.inbound import Identity, Inbound
    from tickets.ports import Reminder

    os.environ.update({k: v for k, v in env.items() if k.startswith("SWITCHBOARD_")})
    runtime = await build(Settings())
    try:
        agent, _ = await runtime.service.add_agent("Alice", "alice@example.com")
        card = (await runtime.service.ingest(Inbound(channel="webform", identities=(Identity("email", "c@x.com"),),
                                                     body_text="hi", customer_name="Carl"))).ticket.customer_id
    finally:
        await runtime.close()
    now = datetime.now(UTC)
    rows = [(card, agent.id, now + timedelta(days=1, seconds=random.randrange(29 * 86400)), f"plan {n}", "pending",
             now) for n in range(pending)]
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await connection.copy_records_to_table(
            "planned_contacts", records=rows, columns=["customer_id", "agent_id", "due_at", "what", "status",
                                                       "created_at"])
        ids = await connection.fetch("SELECT id, due_at FROM planned_contacts ORDER BY id")
    finally:
        await connection.close()
    redis = await create_pool(redis_settings(REDIS_URL))
    try:
        timers = ArqTimers(redis)
        for start in range(0, len(ids), 5000):
            await timers.schedule([Reminder(row["id"], row["due_at"]) for row in ids[start:start + 5000]])
    finally:
        await redis.aclose()
    return agent.id, card


async def record_due(env: dict[str, str], agent_id: int, due: int, spread: float) -> None:
    """`due` planned contacts over the next `spread` seconds, recorded as an agent records them."""
    from switchboard.bootstrap import build
    from switchboard.settings import Settings
    from tickets.actions.plans import NextContact
    from tickets.inbound import Identity, Inbound

    runtime = await build(Settings())
    try:
        agent = await runtime.service.find_agent(str(agent_id))
        cards = [(await runtime.service.ingest(Inbound(  # one client each: a contact keeps the plans before it
            channel="webform", identities=(Identity("email", f"due{n}@x.com"),), body_text="hi"))).ticket.customer_id
            for n in range(due)]
        start = datetime.now(UTC) + timedelta(seconds=5)
        for n in range(due):
            await runtime.service.record_activity(agent, cards[n], "call", next_contact=NextContact(
                start + timedelta(seconds=spread * n / due), f"due {n}"))
    finally:
        await runtime.close()


async def one_run(pending: int, due: int, spread: float) -> dict[str, float]:
    redis = aioredis.from_url(REDIS_URL)
    await redis.flushdb()
    await redis.aclose()
    async with deployment(agents=0, capacity=10, worker=False) as setup:
        agent_id, _ = await prepare(setup.env, setup.database_url, pending)
        setup.start("worker")
        await record_due(setup.env, agent_id, due, spread)
        connection = await asyncpg.connect(asyncpg_dsn(setup.database_url))
        try:
            deadline = time.monotonic() + spread + 60
            query = "SELECT extract(epoch FROM reminded_at - due_at) FROM planned_contacts WHERE what LIKE 'due %'"
            while time.monotonic() < deadline:
                late = [float(r[0]) for r in await connection.fetch(query + " AND reminded_at IS NOT NULL")]
                if len(late) == due:
                    break
                await asyncio.sleep(1)
            early_wrong = await connection.fetchval(
                "SELECT count(*) FROM planned_contacts WHERE what LIKE 'plan %' AND reminded_at IS NOT NULL")
        finally:
            await connection.close()
    late.sort()
    return {"reminded": len(late), "lateness_p50_ms": late[len(late) // 2] * 1000 if late else -1,
            "lateness_p95_ms": late[min(len(late) - 1, int(len(late) * 0.95))] * 1000 if late else -1,
            "lateness_max_ms": late[-1] * 1000 if late else -1, "far_ones_reminded": float(early_wrong)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=100)
    parser.add_argument("--spread", type=float, default=30)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: list[dict[str, Any]] = [await one_run(args.pending, args.due, args.spread) for _ in range(args.runs)]
    report(results, f"{args.due} reminders due over {args.spread:.0f} s with {args.pending} planned contacts pending")


if __name__ == "__main__":
    asyncio.run(main())
