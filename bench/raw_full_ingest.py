"""The ceiling of a hand-written hot path: every statement one web-form ingest runs today (21, as traced from
`TicketService.ingest` on PostgreSQL: card, routing rules, ticket, message, audit events, acknowledgement,
regulation clock and deadlines, the agent lock and load read, the assignment and its notice), sent through bare
asyncpg prepared statements in one transaction — no HTTP, no ORM, no Python logic beyond the parameters.

`bench/raw_limit.py` writes only 5 of those rows; the ratio between the two says how much of the issue-10 target
(≥ 0.5 of the raw limit) the database alone leaves to a path that keeps every feature.

Usage: uv run python bench/raw_full_ingest.py [--transactions 4000] [--concurrency 32] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.deployment import deployment, report  # noqa: E402
from bench.raw_limit import Prepared, transactions_per_second  # noqa: E402
from bench.raw_limit import measure as raw_limit  # noqa: E402


STATEMENTS = {
    "known": "SELECT id, customer_id, kind, address, created_at FROM customer_identities "
             "WHERE kind = $1 AND address = $2",
    "customer": "INSERT INTO customers (name, language, tier, created_at, updated_at) VALUES ($1, $2, NULL, $3, $3) "
                "RETURNING id",
    "identity": "INSERT INTO customer_identities (customer_id, kind, address, created_at) "
                "VALUES ($1, 'email', $2, $3) RETURNING id",
    "group": "SELECT id, name, head_email, acknowledge, created_at FROM groups WHERE name = $1",
    "rules": "SELECT id, position, channel, category, language, from_group_id, group_id, skills, priority, created_at "
             "FROM routing_rules ORDER BY position, id",
    "ticket": "INSERT INTO tickets (subject, status, priority, channel, skills, customer_id, group_id, created_at, "
              "updated_at, portal_key) VALUES ($1, 'new', 'normal', 'webform', '', $2, $3, $4, $4, $5) RETURNING id",
    "event": "INSERT INTO events (ticket_id, kind, actor_id, actor, reason, data, created_at) "
             "VALUES ($1, $2, NULL, $3, $4, $5, $6) RETURNING id",
    "message": "INSERT INTO messages (ticket_id, direction, channel, customer_id, body_text, attachments, "
               "thread_reason, meta, problems, created_at) "
               "VALUES ($1, 'in', 'webform', $2, $3, '[]', 'new webform message', '{}', '[]', $4) RETURNING id",
    "addresses": "SELECT address FROM customer_identities WHERE customer_id = $1 AND kind = 'email' ORDER BY id",
    "outbox": "INSERT INTO outbox (kind, channel, recipient, subject, body_text, body_html, headers, ticket_id, "
              "dedupe_key, status, attempts, next_attempt_at, created_at, updated_at) "
              "VALUES ($1, 'email', $2, $3, $4, $5, $6, $7, $8, 'queued', 0, $9, $9, $9) RETURNING id",
    "clock": "INSERT INTO sla_clock_events (ticket_id, kind, reason, regulation, version, calendar, created_at) "
             "VALUES ($1, 'started', 'registered via webform', 'request', 'v1', 'c1', $2) RETURNING id",
    "deadlines": "INSERT INTO deadlines (ticket_id, regulation, step, met_by, due_at, status, created_at, position, "
                 "kind, plan, reference_at, breach, version) "
                 "VALUES ($1, 'request', 'processed', 'processed', $2, 'pending', $3, 0, 'elapsed', 1, $3, false, "
                 "'v1'), "
                 "($1, 'request', 'escalate', 'processed', $4, 'pending', $3, 1, 'elapsed', 1, $3, true, 'v1') "
                 "RETURNING id",
    "regulation": "UPDATE tickets SET regulation = 'request' WHERE id = $1",
    "lock": "SELECT agents.id FROM agents WHERE agents.id IN (SELECT agent_id FROM agent_groups WHERE group_id = $1) "
            "ORDER BY agents.id FOR NO KEY UPDATE",
    "loads": "SELECT agents.id, agents.presence, agents.capacity, agents.last_assigned_at, "
             "(SELECT string_agg(CAST(agent_groups.group_id AS VARCHAR), ',') FROM agent_groups "
             " WHERE agent_groups.agent_id = agents.id), "
             "(SELECT string_agg(skills.name, ',') FROM agent_skills JOIN skills ON skills.id = agent_skills.skill_id "
             " WHERE agent_skills.agent_id = agents.id), coalesce(l.open, 0), coalesce(l.weighted, 0.0) "
             "FROM agents LEFT OUTER JOIN (SELECT assignee_id AS agent_id, count(*) AS open, sum(1.0) AS weighted "
             " FROM tickets WHERE assignee_id = ANY($1::bigint[]) AND status IN ('open', 'pending') "
             " GROUP BY assignee_id) AS l ON l.agent_id = agents.id WHERE agents.id = ANY($1::bigint[]) "
             "ORDER BY agents.id",
    "assign": "UPDATE tickets SET status = 'open', assignee_id = $1 WHERE id = $2",
    "stamp": "UPDATE agents SET last_assigned_at = $1 WHERE id = $2",
    "agent": "SELECT id, name, email, phone, extension, role, presence, capacity, token_hash, last_assigned_at, "
             "last_seen_at, presence_since, language, telegram_chat_id, password_hash, created_at FROM agents "
             "WHERE id = $1",
    "client": "SELECT address FROM customer_identities WHERE customer_id = $1 ORDER BY id LIMIT 1",
}


async def measure(database_url: str, transactions: int, concurrency: int, *, lock: bool = True) -> float:
    """Transactions per second, each one ingest's 21 statements; `lock=False` reads the agents without locking
    them (what the database could do if the choice did not serialise ingests)."""
    statements = STATEMENTS if lock else dict(STATEMENTS, lock=STATEMENTS["lock"].removesuffix(" FOR NO KEY UPDATE"))
    run = uuid.uuid4().hex[:8]
    body = "x" * 2000
    headers = json.dumps({"From": "support@example.com", "To": "client@example.com", "Message-ID": "<x@example.com>"})

    async def ingest(s: Prepared, n: int) -> None:
        now = datetime.now(timezone.utc)
        address = f"full-{run}-{n}@example.com"
        await s["known"].fetch("email", address)
        customer = await s["customer"].fetchval(f"Client {n}", "en", now)
        await s["identity"].fetchval(customer, address, now)
        group = await s["group"].fetchrow("Support")
        await s["rules"].fetch()
        ticket = await s["ticket"].fetchval("Web form", customer, group["id"], now, secrets.token_urlsafe(24))
        await s["event"].fetchval(ticket, "created", "customer", "new webform message", '{"channel": "webform"}', now)
        await s["message"].fetchval(ticket, customer, body, now)
        await s["addresses"].fetch(customer)
        await s["outbox"].fetchval("ack", address, f"[#{ticket}] Web form", "We got it", "<p>We got it</p>", headers,
                                   ticket, f"ack:{ticket}", now)
        await s["clock"].fetchval(ticket, now)
        await s["deadlines"].fetch(ticket, now + timedelta(days=1), now, now + timedelta(days=2))
        await s["regulation"].fetch(ticket)
        agents = [r["id"] for r in await s["lock"].fetch(group["id"])]
        loads = await s["loads"].fetch(agents)
        chosen = loads[n % len(loads)]["id"]
        await s["event"].fetchval(ticket, "assigned", "router", "least-loaded", json.dumps({"agent_id": chosen}), now)
        await s["assign"].fetch(chosen, ticket)
        await s["stamp"].fetch(now, chosen)
        agent = await s["agent"].fetchrow(chosen)
        await s["client"].fetchval(customer)
        await s["outbox"].fetchval("assigned", agent["email"], f"#{ticket} is yours", "Web form", "<p>Web form</p>",
                                   headers, ticket, f"assigned:{ticket}", now)

    return await transactions_per_second(database_url, transactions, concurrency, statements, ingest)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transactions", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = []
    for _ in range(args.runs):
        async with deployment(agents=5, capacity=1_000_000) as setup:
            limit = await raw_limit(setup.database_url, args.transactions, args.concurrency)
            full = await measure(setup.database_url, args.transactions, args.concurrency)
            unlocked = await measure(setup.database_url, args.transactions, args.concurrency, lock=False)
            results.append({"all_21_statements_txn_per_s": full, "unlocked_txn_per_s": unlocked,
                            "raw_limit_txn_per_s": limit, "ratio": full / limit})
    report(results, f"{args.transactions} transactions, {args.concurrency} connections")


if __name__ == "__main__":
    asyncio.run(main())
