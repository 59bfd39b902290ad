"""Routing under contention: 4 OS processes ingest and resolve at once over one group of 50 agents on PostgreSQL.

Usage: uv run python bench/routing_contention.py [--tickets 100000] [--processes 4] [--agents 50] [--capacity 20]
       [--ingesters 8] [--resolvers 4] [--runs 3] [--url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]

Each run creates a fresh database on the server `--url` (or BENCH_PG_URL) names, migrates it, adds the agents
(one group, equal capacity) and a manager, then starts the processes. Each process builds the service as a
production process would (Settings → build_engine → build_service) and runs two kinds of task at once:
- ingesters: `TicketService.ingest` of web-form messages, each from a new client (its share of --tickets);
- resolvers, the simulated agents: resolve the oldest open ticket of the agents this process speaks for
  (`update_ticket(..., {"status": "resolved"})`), which frees a seat and drains the queue in the same
  transaction. Fewer resolvers than ingesters, so the queue forms while tickets arrive and drains after.
A process stops when every ticket exists and none waits. Traffic stays on 127.0.0.1; the database is dropped.
When the server runs without autovacuum the parent VACUUM ANALYZEs the growing tables every minute, as it would.

Measured from the database afterwards: router assignments per second of wall time, and each ticket's wait
from its created_at (the ingest transaction's clock) to its first `assigned` event's created_at (the clock of
the transaction that assigned it; 0 when the ingest itself assigned it), over all tickets and over the ones
that were queued. `--worker` is the internal entry point of one process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.deployment import asyncpg_dsn, report
from switchboard.bootstrap import build_engine, build_service
from switchboard.settings import DatabaseSettings, Settings
from tickets import migrate
from tickets.clock import SystemClock
from tickets.inbound import Identity, Inbound
from tickets.models import Role, Ticket, TicketStatus
from tickets.service import TicketService

REPO = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
BODY = "The invoice for last month lists two licences; we have one. Please correct it and send a new one. " * 3


def service_for(url: str, data_dir: str, pool: int) -> tuple[Any, TicketService]:
    settings = Settings(data_dir=Path(data_dir), database=DatabaseSettings(url=url, pool_size=pool))
    engine = build_engine(settings)
    return engine, build_service(settings, engine, SystemClock())


# --- one process -----------------------------------------------------------------------------------------------


def time_the_lock(service: TicketService) -> list[float]:
    """Record how long each transaction holds the group's agent rows: from the router's first lock to commit.

    Every assignment in the group waits for that critical section, so it bounds the rate: 1 / mean hold.
    """
    held: list[float] = []
    router: Any = service.deps.router
    original = router.lock

    async def lock(session: Any, *args: Any, **kwargs: Any) -> Any:
        candidates = await original(session, *args, **kwargs)
        session.sync_session.info.setdefault("locked_at", time.perf_counter())
        return candidates

    router.lock = lock

    @event.listens_for(Session, "after_commit")
    def committed(session: Session) -> None:
        locked_at = session.info.pop("locked_at", None)
        if locked_at is not None:
            held.append(time.perf_counter() - locked_at)

    @event.listens_for(Session, "after_rollback")
    def rolled_back(session: Session) -> None:
        session.info.pop("locked_at", None)

    return held


async def worker(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="sb-bench-routing-") as data_dir:
        engine, service = service_for(args.url, data_dir, args.ingesters + args.resolvers + 2)
        held = time_the_lock(service)
        try:
            manager = await service.find_agent(str(args.manager))
            mine = [int(a) for a in args.agents.split(",")]
            print("ready", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            numbers = iter(range(args.first, args.first + args.count))
            errors: list[str] = []
            ingested = resolved = 0
            in_hand: set[int] = set()

            async def ingester() -> None:
                nonlocal ingested
                for n in numbers:
                    inbound = Inbound(channel="webform", identities=(Identity("email", f"client{n}@example.com"),),
                                      body_text=BODY, subject=f"Invoice {n}", external_id=f"bench-{n}",
                                      customer_name=f"Client {n}")
                    try:
                        await service.ingest(inbound)
                        ingested += 1
                    except Exception as exc:  # noqa: BLE001 - reported, the run fails on any
                        errors.append(f"ingest: {type(exc).__name__}: {str(exc)[:200]}")

            async def finished() -> bool:
                """Every process's tickets exist and none waits: nothing is left to assign."""
                async with engine.connect() as connection:
                    waiting = await connection.scalar(
                        select(Ticket.id).where(Ticket.status == TicketStatus.new).limit(1)
                    )
                    count = await connection.scalar(select(func.count()).select_from(Ticket))
                return waiting is None and (count or 0) >= args.total

            async def resolver() -> None:
                nonlocal resolved
                idle = 0.01
                while True:
                    async with engine.connect() as connection:
                        candidates = list(await connection.scalars(
                            select(Ticket.id)
                            .where(Ticket.assignee_id.in_(mine), Ticket.status == TicketStatus.open)
                            .order_by(Ticket.id).limit(len(in_hand) + 1)
                        ))
                    number = next((c for c in candidates if c not in in_hand), None)
                    if number is None:
                        if ingesting.done() and await finished():
                            return
                        # An agent with nothing open looks again a little later; polling flat out would spend
                        # the cores the ingests and the database need (and measure the poll, not the router).
                        idle = min(idle * 2, 0.25)
                        await asyncio.sleep(idle)
                        continue
                    idle = 0.01
                    in_hand.add(number)
                    try:
                        await service.update_ticket(manager, number, {"status": "resolved"})
                        resolved += 1
                    except Exception as exc:  # noqa: BLE001
                        errors.append(f"resolve: {type(exc).__name__}: {str(exc)[:200]}")
                    finally:
                        in_hand.discard(number)
                    if ingesting.done() and resolved % 50 == 0 and await finished():
                        return

            began = time.perf_counter()
            ingesting = asyncio.ensure_future(asyncio.gather(*(ingester() for _ in range(args.ingesters))))
            await asyncio.gather(ingesting, *(resolver() for _ in range(args.resolvers)))
            print(json.dumps({"ingested": ingested, "resolved": resolved, "errors": errors[:20],
                              "error_count": len(errors), "seconds": time.perf_counter() - began,
                              "held_ms": statistics.median(held) * 1000 if held else 0.0,
                              "held_total_s": sum(held), "cpu_s": time.process_time()}), flush=True)
        finally:
            await engine.dispose()


# --- one run ----------------------------------------------------------------------------------------------------


WAITS = """
WITH firsts AS (
    SELECT t.id,
           greatest(extract(epoch FROM min(e.created_at) FILTER (WHERE e.kind = 'assigned') - t.created_at), 0)
               AS wait,
           bool_or(e.kind = 'queued') AS queued
    FROM tickets t JOIN events e ON e.ticket_id = t.id
    GROUP BY t.id
)
SELECT count(*), count(*) FILTER (WHERE queued), count(wait),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY wait), percentile_cont(0.99) WITHIN GROUP (ORDER BY wait),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY wait) FILTER (WHERE queued),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY wait) FILTER (WHERE queued),
       max(wait)
FROM firsts
"""
CHECKS = """
SELECT (SELECT count(*) FROM events WHERE kind = 'assigned' AND actor = 'router'),
       (SELECT count(*) FROM events WHERE kind = 'assigned' AND (data->>'open')::int > (data->>'capacity')::int),
       (SELECT count(*) FROM (SELECT ticket_id FROM events WHERE kind = 'assigned' GROUP BY ticket_id
                              HAVING count(*) > 1) twice),
       (SELECT count(*) FROM tickets WHERE status = 'new'),
       (SELECT min(created_at) FROM tickets), (SELECT max(created_at) FROM events WHERE kind = 'assigned')
"""


async def stand_in_for_autovacuum(url: str, every: float = 60.0) -> None:
    """VACUUM ANALYZE the growing tables every minute when the server's autovacuum is off (it is on this
    machine's PostgreSQL). Without it the planner kept its empty-table statistics while the queue grew to
    25,000, and drains filtered the whole queue through the wrong index (15 ms a page instead of 0.3 ms)."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        if await connection.fetchval("SHOW autovacuum") == "on":
            return
        while True:
            await asyncio.sleep(every)
            await connection.execute("VACUUM (ANALYZE) tickets, events, messages, customers, customer_identities, "
                                     "agents")
    finally:
        await connection.close()


async def one_run(args: argparse.Namespace) -> dict[str, float]:
    name = f"sb_bench_routing_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(asyncpg_dsn(args.url))
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(args.url).set(database=name).render_as_string(hide_password=False)
    processes: list[asyncio.subprocess.Process] = []
    try:
        with tempfile.TemporaryDirectory(prefix=name) as data_dir:
            engine, service = service_for(url, data_dir, 4)
            try:
                await migrate.upgrade(engine)
                await service.add_group("Managers")
                manager, _ = await service.add_agent("Manager", "manager@example.com", role=Role.manager,
                                                     groups=["Managers"])
                agents = [(await service.add_agent(f"Agent {n}", f"agent{n}@example.com", capacity=args.capacity))[0].id
                          for n in range(args.agents)]
            finally:
                await engine.dispose()
        share = -(-args.tickets // args.processes)
        for p in range(args.processes):
            first, count = p * share, max(0, min(share, args.tickets - p * share))
            processes.append(await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--worker", "--url", url, "--manager", str(manager.id),
                "--agents", ",".join(map(str, agents[p::args.processes])), "--first", str(first),
                "--count", str(count), "--total", str(args.tickets), "--ingesters", str(args.ingesters),
                "--resolvers", str(args.resolvers),
                cwd=REPO, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            ))
        for process in processes:
            line = await process.stdout.readline()  # type: ignore[union-attr]
            assert line.strip() == b"ready", line
        began = time.perf_counter()
        for process in processes:
            process.stdin.write(b"go\n")  # type: ignore[union-attr]
            await process.stdin.drain()  # type: ignore[union-attr]
        upkeep = asyncio.create_task(stand_in_for_autovacuum(url))
        try:
            outputs = await asyncio.gather(*(process.communicate() for process in processes))
        finally:
            upkeep.cancel()
        elapsed = time.perf_counter() - began
        tallies = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]
        errors = [e for t in tallies for e in t["errors"]]
        assert not errors, errors
        connection = await asyncpg.connect(asyncpg_dsn(url))
        try:
            assigned, over, twice, waiting, _, _ = await connection.fetchrow(CHECKS)
            tickets, queued, with_wait, *waits = await connection.fetchrow(WAITS)
            p50, p99, q50, q99, longest = (float(w or 0) for w in waits)
        finally:
            await connection.close()
        assert tickets == with_wait == args.tickets and waiting == 0, (tickets, with_wait, waiting)
        assert over == 0 and twice == 0 and assigned == args.tickets, (over, twice, assigned)
        resolved = sum(t["resolved"] for t in tallies)
        return {
            "lock_held_p50_ms": statistics.median(t["held_ms"] for t in tallies),
            "lock_held_share": sum(t["held_total_s"] for t in tallies) / elapsed,
            "worker_cpu_share": sum(t["cpu_s"] for t in tallies) / elapsed,
            "assignments_per_s": assigned / elapsed, "transactions_per_s": (args.tickets + resolved) / elapsed,
            "seconds": elapsed, "queued_share": queued / tickets, "wait_p50_ms": p50 * 1000,
            "wait_p99_ms": p99 * 1000, "queued_wait_p50_ms": q50 * 1000,
            "queued_wait_p99_ms": q99 * 1000, "max_wait_ms": longest * 1000,
        }
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default=PG_URL, help="server to create the throw-away database on")
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--agents", default="50", help="(workers: the agent ids this process resolves for)")
    parser.add_argument("--capacity", type=int, default=20)
    parser.add_argument("--ingesters", type=int, default=8, help="concurrent ingests per process")
    parser.add_argument("--resolvers", type=int, default=4, help="concurrent resolving agents per process")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--manager", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--total", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        await worker(args)
        return
    args.agents = int(args.agents)
    results = []
    for _ in range(args.runs):
        results.append(await one_run(args))
        print("run:", {k: round(v, 3) for k, v in results[-1].items()}, flush=True)
    report(results, f"{args.tickets} tickets, {args.processes} processes × ({args.ingesters} ingesting + "
                    f"{args.resolvers} resolving), {args.agents} agents of capacity {args.capacity}", digits=1)


if __name__ == "__main__":
    asyncio.run(main())
