"""The regulation clock on PostgreSQL: how late steps fire with many pending, and what the sweeper costs.

Usage: uv run python bench/sla_firing.py [--pending 100000] [--sample 2000] [--window 60] [--runs 3]
       [--sweep-tickets 1000000] [--skip-lateness] [--skip-sweep]

Lateness: a fresh database (migrated, two agents) gets `--pending` open tickets, each with one pending step of a
clock-time regulation (breach, and an email to the assignee). `--sample` of them come due evenly over `--window`
seconds a little after start; the rest are due days later. Every step gets its arq timer (what `ingest` sets),
then one `switchboard worker` process runs. Lateness = fired_at − due_at of the sampled steps, from the database.

Sweeper: `--sweep-tickets` tickets with their steps (most kept or fired long ago, 10% pending in the future) —
the cost of one `Escalations.sweep()` when nothing is due (what runs every minute), of a process's first sweep
(which also looks for tickets planned by other regulation versions), and per step when 500 are due.
Traffic stays on 127.0.0.1; each database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.deployment import REDIS_URL, asyncpg_dsn, deployment, report  # noqa: E402
from switchboard.settings import Settings  # noqa: E402
from tickets.ports import Timer  # noqa: E402

REGULATIONS = """\
regulations:
  - name: bench
    steps:
      - {name: alert, after: 7 days, unless: processed, breach: true, notify: [{to: assignee, by: email}]}
"""


AFTER = timedelta(days=7)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def fill(dsn: str, count: int, due: list[datetime], status: str, version: str) -> list[tuple[int, datetime]]:
    """`count` open tickets of agent 1, each with one step of regulation `bench`; returns (deadline id, due).

    Each ticket is created seven days (the step's `after`) before its step is due, so the plan firing re-checks
    agrees with the row."""
    connection = await asyncpg.connect(dsn)
    try:
        now = datetime.now(UTC)
        group = await connection.fetchval("SELECT id FROM groups ORDER BY id LIMIT 1")
        agent = await connection.fetchval("SELECT id FROM agents ORDER BY id LIMIT 1")
        customer = await connection.fetchval(
            "INSERT INTO customers (name, created_at, updated_at) VALUES ('Bench', $1, $1) RETURNING id", now)
        first = await connection.fetchval("SELECT coalesce(max(id), 0) + 1 FROM tickets")
        await connection.copy_records_to_table(
            "tickets", columns=["id", "subject", "status", "priority", "channel", "skills", "customer_id", "group_id",
                                "assignee_id", "regulation", "created_at", "updated_at"],
            records=[(first + i, f"Bench {i}", "open", "normal", "webform", "", customer, group, agent, "bench",
                      due[i] - AFTER, now) for i in range(count)])
        await connection.execute(f"SELECT setval('tickets_id_seq', {first + count})")
        await connection.copy_records_to_table(
            "deadlines", columns=["ticket_id", "regulation", "step", "met_by", "due_at", "status", "met_at",
                                  "created_at", "position", "kind", "plan", "reference_at", "breach", "version"],
            records=[(first + i, "bench", "alert", "processed", due[i], status,
                      due[i] if status == "met" else None, now, 0, "step", 1, due[i] - AFTER, False, version)
                     for i in range(count)])
        await connection.execute("VACUUM ANALYZE tickets")
        await connection.execute("VACUUM ANALYZE deadlines")
        rows = await connection.fetch("SELECT id, due_at FROM deadlines WHERE ticket_id >= $1 ORDER BY id", first)
        return [(r["id"], r["due_at"]) for r in rows]
    finally:
        await connection.close()


async def lateness_run(args: argparse.Namespace, regulations: Path) -> dict[str, float]:
    async with deployment(agents=2, capacity=1_000_000, SWITCHBOARD_REGULATIONS=str(regulations)) as dep:
        settings = Settings(regulations=regulations)
        version = settings.regulation_book().named("bench").version
        dsn = asyncpg_dsn(dep.database_url)
        lead = 30 + args.pending / 2500  # enqueueing the timers first (~2,500/s)
        start = datetime.now(UTC) + timedelta(seconds=lead)
        step = args.window / args.sample
        due = [start + timedelta(seconds=i * step) for i in range(args.sample)]
        due += [start + timedelta(days=1 + random.random() * 6) for _ in range(args.pending - args.sample)]
        random.shuffle(due)
        rows = await fill(dsn, args.pending, due, "pending", version)
        sample = {deadline_id for deadline_id, at in rows if at < start + timedelta(seconds=args.window + 1)}
        from arq import create_pool

        from sla.jobs import ArqTimers
        from switchboard.bootstrap import redis_settings

        redis = await create_pool(redis_settings(REDIS_URL))
        await redis.flushdb()
        timers = ArqTimers(redis)
        began = time.perf_counter()
        connection = await asyncpg.connect(dsn)
        tickets = dict(await connection.fetch("SELECT id, ticket_id FROM deadlines"))
        await connection.close()
        batch = [Timer(d, tickets[d], "alert", 1, at) for d, at in rows]
        for i in range(0, len(batch), 200):
            await asyncio.gather(*(timers.schedule([t]) for t in batch[i:i + 200]))
        enqueued = time.perf_counter() - began
        if datetime.now(UTC) > start:
            print(f"warning: enqueueing took {enqueued:.0f} s, past the first due time", file=sys.stderr)
        dep.start("worker")
        worker_started = datetime.now(UTC)
        end = start + timedelta(seconds=args.window + 90)
        connection = await asyncpg.connect(dsn)
        try:
            while datetime.now(UTC) < end:
                fired = await connection.fetchval(
                    "SELECT count(*) FROM deadlines WHERE id = ANY($1::bigint[]) AND status = 'fired'", list(sample))
                if fired == len(sample):
                    break
                await asyncio.sleep(1)
            fired_rows = await connection.fetch(
                "SELECT due_at, fired_at FROM deadlines WHERE id = ANY($1::bigint[]) AND status = 'fired'",
                list(sample))
            late = [(r["fired_at"] - r["due_at"]).total_seconds() * 1000 for r in fired_rows]
            # where the late ones fall: seconds after the worker started, and the wall clock's second of the minute
            # (the worker's cron jobs run at fixed seconds)
            slow = sorted((r["due_at"] - worker_started).total_seconds() for r in fired_rows
                          if (r["fired_at"] - r["due_at"]).total_seconds() > 0.3)
            if slow:
                print(f"{len(slow)} steps fired > 300 ms late, due at seconds after the worker started:",
                      sorted({round(t) for t in slow}), "; seconds of the minute:",
                      sorted({r["due_at"].second for r in fired_rows
                              if (r["fired_at"] - r["due_at"]).total_seconds() > 0.3}), flush=True)
            others = await connection.fetchval(
                "SELECT count(*) FROM deadlines WHERE status = 'fired' AND NOT id = ANY($1::bigint[])", list(sample))
        finally:
            await connection.close()
        await redis.flushdb()
        await redis.aclose()
        return {"pending": float(args.pending), "sampled": float(len(sample)), "fired": float(len(late)),
                "fired_early_or_other": float(others), "enqueue_per_s": len(batch) / enqueued,
                "late_p50_ms": statistics.median(late), "late_p99_ms": percentile(late, 0.99), "late_max_ms": max(late)}


async def sweep_cost(args: argparse.Namespace, regulations: Path) -> dict[str, float]:
    from switchboard.bootstrap import build

    async with deployment(agents=2, capacity=1_000_000, SWITCHBOARD_REGULATIONS=str(regulations)) as dep:
        with tempfile.TemporaryDirectory() as data_dir:
            settings = Settings(regulations=regulations, data_dir=Path(data_dir),
                                database={"url": dep.database_url}, redis={"url": REDIS_URL})
            version = settings.regulation_book().named("bench").version
            dsn = asyncpg_dsn(dep.database_url)
            now = datetime.now(UTC)
            count = args.sweep_tickets
            kept = int(count * 0.9)
            began = time.perf_counter()
            await fill(dsn, kept, [now - timedelta(days=random.random() * 30) for _ in range(kept)], "met", version)
            await fill(dsn, count - kept, [now + timedelta(days=1 + random.random() * 6) for _ in range(count - kept)],
                       "pending", version)
            loaded = time.perf_counter() - began
            rt = await build(settings)
            try:
                assert rt.escalations is not None
                t0 = time.perf_counter()
                await rt.escalations.sweep()  # the first: also looks for outdated plans
                first = time.perf_counter() - t0
                idle = []
                for _ in range(20):
                    t0 = time.perf_counter()
                    fired = await rt.escalations.sweep()
                    idle.append(time.perf_counter() - t0)
                    assert fired == 0
                connection = await asyncpg.connect(dsn)
                due = await connection.fetch("SELECT id, ticket_id FROM deadlines WHERE status = 'pending' "
                                             "ORDER BY id LIMIT 500")
                await connection.execute("UPDATE deadlines SET due_at = now() - interval '1 second', "
                                         "reference_at = now() - interval '7 days 1 second' "
                                         "WHERE id = ANY($1::bigint[])",
                                         [r["id"] for r in due])
                await connection.execute("UPDATE tickets SET created_at = now() - interval '7 days 1 second' "
                                         "WHERE id = ANY($1::bigint[])", [r["ticket_id"] for r in due])
                await connection.close()
                t0 = time.perf_counter()
                fired = await rt.escalations.sweep()
                busy = time.perf_counter() - t0
            finally:
                await rt.close()
            return {"tickets": float(count), "load_s": loaded, "first_sweep_ms": first * 1000,
                    "idle_sweep_ms": statistics.median(idle) * 1000, "fired": float(fired),
                    "sweep_500_due_s": busy, "per_step_ms": busy * 1000 / max(fired, 1)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=2_000)
    parser.add_argument("--window", type=float, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sweep-tickets", type=int, default=1_000_000)
    parser.add_argument("--skip-lateness", action="store_true")
    parser.add_argument("--skip-sweep", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        regulations = Path(directory) / "regulations.yaml"
        regulations.write_text(REGULATIONS)
        if not args.skip_lateness:
            results: list[dict[str, Any]] = []
            for _ in range(args.runs):
                results.append(await lateness_run(args, regulations))
            report(results, f"firing lateness, {args.pending} pending steps, {args.sample} coming due over "
                            f"{args.window:.0f} s, one worker")
        if not args.skip_sweep:
            report([await sweep_cost(args, regulations)], f"sweeper cost with {args.sweep_tickets} tickets")


if __name__ == "__main__":
    asyncio.run(main())
