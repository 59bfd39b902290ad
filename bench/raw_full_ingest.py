"""The ceiling of a hand-written hot path: every statement one web-form ingest ran (21, as traced from
`TicketService.ingest` on PostgreSQL at e142b60; since 68f0f9d the agent's stamp returns their row and the notice
no longer reads it: 20): card, routing rules, ticket, message, audit events, acknowledgement, regulation clock and
deadlines, the agent lock and load read, the assignment and its notice — sent through bare
asyncpg prepared statements in one transaction — no HTTP, no ORM, no Python logic beyond the parameters.

`bench/raw_limit.py` writes only 5 of those rows; the ratio between the two says how much of the issue-10 target
(≥ 0.5 of the raw limit) the database alone leaves to a path that keeps every feature.

Beside them, the same rows in four statements (card; ticket with everything registering it writes; the group lock;
one statement choosing, assigning and writing the notice), with the load counted over the members' open tickets as
today or read off a counter on the agent: the ceiling of a redesigned path. And "claimed": the counter's
least-loaded member taken `FOR NO KEY UPDATE SKIP LOCKED` without the group lock, the group lock only when every
member with room is being claimed — per-agent claims, whose parallelism is at most the number of agents.

Usage: uv run python bench/raw_full_ingest.py [--transactions 4000] [--concurrency 32] [--runs 3] [--agents 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.deployment import asyncpg_dsn, deployment, report  # noqa: E402
from bench.raw_limit import BODY, Prepared, transactions_per_second  # noqa: E402
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


# The assignment once an agent is chosen: its seat and stamp, the ticket, its event and the agent's notice.
CLAIM_TAIL = ("seat AS (UPDATE agents SET {seat}last_assigned_at = $3 FROM chosen WHERE agents.id = chosen.id "
              "  RETURNING agents.id, agents.email), "
              "t AS (UPDATE tickets SET status = 'open', assignee_id = seat.id FROM seat WHERE tickets.id = $2), "
              "e AS (INSERT INTO events (ticket_id, kind, actor_id, actor, reason, data, created_at) "
              "  SELECT $2, 'assigned', NULL, 'router', 'least-loaded', json_build_object('agent_id', seat.id), $3 "
              "  FROM seat), "
              "o AS (INSERT INTO outbox (kind, channel, recipient, subject, body_text, body_html, headers, ticket_id, "
              "  dedupe_key, status, attempts, next_attempt_at, created_at, updated_at) "
              "  SELECT 'assigned', 'email', seat.email, '#' || $2 || ' is yours', 'Web form', '<p>Web form</p>', "
              "  $4, $2, 'assigned:' || $2, 'queued', 0, $3, $3, $3 FROM seat) "
              "SELECT id FROM seat")


COMPACT = {
    # The card: the known identity's customer, or a new customer and identity, in one statement.
    "card": "WITH known AS (SELECT customer_id FROM customer_identities WHERE kind = 'email' AND address = $1), "
            "fresh AS (INSERT INTO customers (name, language, tier, created_at, updated_at) "
            "  SELECT $2, 'en', NULL, $3, $3 WHERE NOT EXISTS (SELECT 1 FROM known) RETURNING id), "
            "identity AS (INSERT INTO customer_identities (customer_id, kind, address, created_at) "
            "  SELECT id, 'email', $1, $3 FROM fresh) "
            "SELECT customer_id FROM known UNION ALL SELECT id FROM fresh",
    # The ticket and everything registering it writes: created event, message, acknowledgement, regulation clock
    # and deadlines.
    "ticket": "WITH t AS (INSERT INTO tickets (subject, status, priority, channel, skills, customer_id, group_id, "
              "  created_at, updated_at, portal_key, regulation) "
              "  VALUES ($1, 'new', 'normal', 'webform', '', $2, $3, $4, $4, $5, 'request') RETURNING id), "
              "e AS (INSERT INTO events (ticket_id, kind, actor_id, actor, reason, data, created_at) "
              "  SELECT id, 'created', NULL, 'customer', 'new webform message', '{\"channel\": \"webform\"}', $4 "
              "  FROM t), "
              "m AS (INSERT INTO messages (ticket_id, direction, channel, customer_id, body_text, attachments, "
              "  thread_reason, meta, problems, created_at) "
              "  SELECT id, 'in', 'webform', $2, $6, '[]', 'new webform message', '{}', '[]', $4 FROM t), "
              "o AS (INSERT INTO outbox (kind, channel, recipient, subject, body_text, body_html, headers, ticket_id, "
              "  dedupe_key, status, attempts, next_attempt_at, created_at, updated_at) "
              "  SELECT 'ack', 'email', $7, '[#' || id || '] Web form', 'We got it', '<p>We got it</p>', $8, id, "
              "  'ack:' || id, 'queued', 0, $4, $4, $4 FROM t), "
              "c AS (INSERT INTO sla_clock_events (ticket_id, kind, reason, regulation, version, calendar, "
              "  created_at) SELECT id, 'started', 'registered via webform', 'request', 'v1', 'c1', $4 FROM t), "
              "d AS (INSERT INTO deadlines (ticket_id, regulation, step, met_by, due_at, status, created_at, "
              "  position, kind, plan, reference_at, breach, version) "
              "  SELECT t.id, 'request', x.step, 'processed', x.due, 'pending', $4, x.position, 'elapsed', 1, $4, "
              "  x.breach, 'v1' FROM t CROSS JOIN (VALUES ('processed', $9::timestamptz, 0, false), "
              "  ('escalate', $10::timestamptz, 1, true)) AS x (step, due, position, breach)) "
              "SELECT id FROM t",
    # Routing: the group's agents locked as today, then one statement (its snapshot taken after the lock, so it sees
    # the previous holder's commit) reads their loads, chooses, and writes the assignment, its event, the agent's
    # stamp and the agent's notice. What runs under the lock is that statement and the commit.
    "lock": STATEMENTS["lock"],
    "claim": "WITH {loads}, "
             "chosen AS (SELECT id FROM loads WHERE open < capacity "
             "  ORDER BY open, last_assigned_at NULLS FIRST, id LIMIT 1), " + CLAIM_TAIL,
}
LOADS = {
    # Today's load: counted over the members' open tickets, so it costs what they hold.
    "counted": "loads AS (SELECT agents.id, agents.capacity, agents.last_assigned_at, count(tickets.id) AS open "
               "FROM agents JOIN agent_groups ON agent_groups.agent_id = agents.id AND agent_groups.group_id = $1 "
               "LEFT JOIN tickets ON tickets.assignee_id = agents.id AND tickets.status IN ('open', 'pending') "
               "WHERE agents.presence = 'available' GROUP BY agents.id)",
    # A counter kept on the agent (the schema has none; added to the throw-away database): one row per member.
    "counter": "loads AS (SELECT agents.id, agents.capacity, agents.last_assigned_at, agents.bench_open AS open "
               "FROM agents JOIN agent_groups ON agent_groups.agent_id = agents.id AND agent_groups.group_id = $1 "
               "WHERE agents.presence = 'available')",
}
SEAT = "bench_open = bench_open + 1, "
"""Taking a seat on the load counter (a column added to the throw-away database only)."""
# The counter's least-loaded available member with room that no other transaction is claiming right now, locked
# and taken at once: no group lock, so claims by different transactions proceed side by side.
CLAIM_UNLOCKED = ("WITH chosen AS (SELECT agents.id FROM agents JOIN agent_groups ON agent_groups.agent_id = agents.id "
                  "AND agent_groups.group_id = $1 WHERE agents.presence = 'available' "
                  "AND agents.bench_open < agents.capacity "
                  "ORDER BY agents.bench_open, agents.last_assigned_at NULLS FIRST, agents.id LIMIT 1 "
                  "FOR NO KEY UPDATE OF agents SKIP LOCKED), "
                  + CLAIM_TAIL.format(seat=SEAT))


HEADERS = json.dumps({"From": "support@example.com", "To": "client@example.com", "Message-ID": "<x@example.com>"})
"""The stored headers of both outbox rows."""


async def measure(database_url: str, transactions: int, concurrency: int, *, lock: bool = True) -> float:
    """Transactions per second, each one ingest's 21 statements; `lock=False` reads the agents without locking
    them (what the database could do if the choice did not serialise ingests)."""
    statements = STATEMENTS if lock else dict(STATEMENTS, lock=STATEMENTS["lock"].removesuffix(" FOR NO KEY UPDATE"))
    run = uuid.uuid4().hex[:8]

    async def ingest(s: Prepared, n: int) -> None:
        now = datetime.now(UTC)
        address = f"full-{run}-{n}@example.com"
        await s["known"].fetch("email", address)
        customer = await s["customer"].fetchval(f"Client {n}", "en", now)
        await s["identity"].fetchval(customer, address, now)
        group = await s["group"].fetchrow("Support")
        await s["rules"].fetch()
        ticket = await s["ticket"].fetchval("Web form", customer, group["id"], now, secrets.token_urlsafe(24))
        await s["event"].fetchval(ticket, "created", "customer", "new webform message", '{"channel": "webform"}', now)
        await s["message"].fetchval(ticket, customer, BODY, now)
        await s["addresses"].fetch(customer)
        await s["outbox"].fetchval("ack", address, f"[#{ticket}] Web form", "We got it", "<p>We got it</p>", HEADERS,
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
                                   HEADERS, ticket, f"assigned:{ticket}", now)

    return await transactions_per_second(database_url, transactions, concurrency, statements, ingest)


async def measure_compact(database_url: str, transactions: int, concurrency: int, loads: str) -> tuple[float, int]:
    """The same rows in four statements (card; ticket with all it registers; the group lock; the choice with the
    assignment and its notice): the ceiling of a redesigned path, with `loads` "counted" or read off a "counter",
    or "claimed": the counter's least-loaded member not being claimed right now taken without the group lock
    (`SKIP LOCKED`), the locked choice only when every member with room is being claimed.

    Returns the rate and the spread of the loads (most minus fewest tickets an agent got); checks that every ticket
    was assigned, and with the group locked that the loads are even, as the router's are."""
    counter = loads != "counted"
    statements = dict(COMPACT, claim=COMPACT["claim"].format(loads=LOADS["counter" if counter else "counted"],
                                                             seat=SEAT if counter else ""))
    if loads == "claimed":
        statements["skip"] = CLAIM_UNLOCKED
    name = f"Compact-{loads}"
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        group_id = await connection.fetchval("SELECT id FROM groups WHERE name = 'Support'")
        if counter:
            await connection.execute(
                "ALTER TABLE agents ADD COLUMN IF NOT EXISTS bench_open integer NOT NULL DEFAULT 0")
    finally:
        await connection.close()
    run = uuid.uuid4().hex[:8]

    async def ingest(s: Prepared, n: int) -> None:
        now = datetime.now(UTC)
        address = f"{name}-{run}-{n}@example.com"
        customer = await s["card"].fetchval(address, f"{name} {n}", now)
        ticket = await s["ticket"].fetchval("Web form", customer, group_id, now, secrets.token_urlsafe(24), BODY,
                                            address, HEADERS, now + timedelta(days=1), now + timedelta(days=2))
        if loads == "claimed" and await s["skip"].fetchval(group_id, ticket, now, HEADERS) is not None:
            return
        await s["lock"].fetch(group_id)
        await s["claim"].fetchval(group_id, ticket, now, HEADERS)

    rate = await transactions_per_second(database_url, transactions, concurrency, statements, ingest)
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        held = [r["open"] for r in await connection.fetch(
            "SELECT count(*) AS open FROM tickets JOIN customers ON customers.id = tickets.customer_id "
            "WHERE customers.name LIKE $1 GROUP BY assignee_id", f"{name} %")]
        unassigned = await connection.fetchval(
            "SELECT count(*) FROM tickets JOIN customers ON customers.id = tickets.customer_id "
            "WHERE customers.name LIKE $1 AND assignee_id IS NULL", f"{name} %")
    finally:
        await connection.close()
    spread = max(held) - min(held)
    assert unassigned == 0 and sum(held) == transactions and (loads == "claimed" or spread <= 1), (unassigned, held)
    return rate, spread


async def clear_loads(database_url: str) -> None:
    """Close the tickets an earlier measurement assigned, so each one starts with agents holding nothing (a load
    counted over open tickets costs what they hold)."""
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await connection.execute("UPDATE tickets SET status = 'closed' WHERE status IN ('open', 'pending')")
    finally:
        await connection.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transactions", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--agents", type=int, default=5, help="members of the one group every ticket goes to")
    args = parser.parse_args()
    results = []
    for _ in range(args.runs):
        async with deployment(agents=args.agents, capacity=1_000_000) as setup:
            url = setup.database_url
            limit = await raw_limit(url, args.transactions, args.concurrency)
            await clear_loads(url)
            full = await measure(url, args.transactions, args.concurrency)
            await clear_loads(url)
            unlocked = await measure(url, args.transactions, args.concurrency, lock=False)
            await clear_loads(url)
            counted, _ = await measure_compact(url, args.transactions, args.concurrency, "counted")
            counter, _ = await measure_compact(url, args.transactions, args.concurrency, "counter")
            claimed, spread = await measure_compact(url, args.transactions, args.concurrency, "claimed")
            results.append({"all_21_statements_txn_per_s": full, "unlocked_txn_per_s": unlocked,
                            "four_statements_counted_txn_per_s": counted, "four_statements_counter_txn_per_s": counter,
                            "claimed_txn_per_s": claimed, "claimed_load_spread": spread,
                            "raw_limit_txn_per_s": limit, "ratio": full / limit, "counted_ratio": counted / limit,
                            "counter_ratio": counter / limit, "claimed_ratio": claimed / limit})
    report(results, f"{args.transactions} transactions, {args.concurrency} connections, {args.agents} agents")


if __name__ == "__main__":
    asyncio.run(main())
