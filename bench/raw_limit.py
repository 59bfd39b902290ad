"""The raw limit every ingest benchmark is measured against, in the same run on the same PostgreSQL: asyncpg
transactions that write the rows an ingest writes — the customer card (upserted by its identity), the ticket,
the message, and the assigned agent's load stamp — with nothing else: no HTTP, no parsing, no ORM, no routing
choice, no audit or deadlines. Our figure divided by this one is how close the whole path comes to the
database's own cost.

Usage (alone): uv run python bench/raw_limit.py [--transactions 5000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.deployment import asyncpg_dsn, deployment  # noqa: E402

BODY = "x" * 2000
"""The message text the limit writes (the size of the web-form benches' posts), and raw_full_ingest with it."""

TRANSACTION = {
    "customer": """INSERT INTO customers (name, language, created_at, updated_at) VALUES ($1, 'en', $2, $2)
       RETURNING id""",
    "identity": """INSERT INTO customer_identities (customer_id, kind, address, created_at) VALUES ($1, 'email', $2, $3)
       ON CONFLICT (kind, address) DO UPDATE SET customer_id = customer_identities.customer_id RETURNING customer_id""",
    "ticket": """INSERT INTO tickets (subject, status, priority, channel, skills, customer_id, group_id, assignee_id,
                           created_at, updated_at, portal_key, regulation)
       VALUES ('Web form', 'open', 'normal', 'webform', '', $1, $2, $3, $4, $4, $5, 'request') RETURNING id""",
    "message": """INSERT INTO messages (ticket_id, direction, channel, external_id, customer_id, body_text, attachments,
                            meta, problems, thread_reason, created_at)
       VALUES ($1, 'in', 'webform', $2, $3, $4, '[]', '{}', '[]', 'new webform message', $5)""",
    "stamp": """UPDATE agents SET last_assigned_at = $2 WHERE id = $1""",
}


Prepared = dict[str, asyncpg.prepared_stmt.PreparedStatement]


async def transactions_per_second(database_url: str, transactions: int, concurrency: int, statements: dict[str, str],
                                  one: Callable[[Prepared, int], Awaitable[None]]) -> float:
    """`one(prepared, n)` in a transaction of its own for n in 0..transactions-1, from `concurrency` connections
    each with `statements` prepared."""
    pool = await asyncpg.create_pool(asyncpg_dsn(database_url), min_size=concurrency, max_size=concurrency)
    counter = iter(range(transactions))

    async def client() -> None:
        async with pool.acquire() as connection:
            prepared = {name: await connection.prepare(sql) for name, sql in statements.items()}
            for n in counter:
                async with connection.transaction():
                    await one(prepared, n)

    try:
        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return transactions / (time.perf_counter() - began)
    finally:
        await pool.close()


async def measure(database_url: str, transactions: int = 5000, concurrency: int = 32) -> float:
    """Transactions per second; `transactions` of them from `concurrency` connections."""
    probe = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        group_id = await probe.fetchval("SELECT id FROM groups ORDER BY id LIMIT 1")
        agent_ids = [r["id"] for r in await probe.fetch("SELECT id FROM agents ORDER BY id")]
    finally:
        await probe.close()
    assert group_id is not None and agent_ids, "the database needs a group and agents (bench.deployment adds them)"
    run = uuid.uuid4().hex[:8]

    async def one(s: Prepared, n: int) -> None:
        now = datetime.now(UTC)
        customer = await s["customer"].fetchval(f"Client {n}", now)
        customer = await s["identity"].fetchval(customer, f"raw-{run}-{n}@example.com", now)
        agent = agent_ids[n % len(agent_ids)]
        ticket = await s["ticket"].fetchval(customer, group_id, agent, now, secrets.token_urlsafe(24))
        await s["message"].fetch(ticket, f"raw:{run}:{n}", customer, BODY, now)
        await s["stamp"].fetch(agent, now)

    return await transactions_per_second(database_url, transactions, concurrency, TRANSACTION, one)


async def raw_limit(transactions: int = 5000, concurrency: int = 32) -> float:
    """`measure` on a throw-away database of its own (migrated, with agents) on the benchmarks' server."""
    async with deployment(agents=5, capacity=10) as setup:
        return await measure(setup.database_url, transactions, concurrency)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transactions", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    rate = await raw_limit(args.transactions, args.concurrency)
    print(f"raw ingest transactions: {rate:.0f}/s ({args.transactions} at {args.concurrency} connections)")


if __name__ == "__main__":
    asyncio.run(main())
