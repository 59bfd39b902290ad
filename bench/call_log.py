"""Phone-log ingest end to end: the PBX posts each call to `POST /api/v1/calls` → the call on the client's card, a
missed call → a callback ticket, committed, assigned, its callback deadline set; against one `switchboard web`
process or several. Each run also measures the raw limit (bench/raw_limit.py) on the same server and reports the
ratio. (`bench/cdr_import.py` measures the other way calls come in, the CDR file import.)

Usage: uv run python bench/call_log.py [--calls 2000] [--concurrency 32] [--runs 3] [--web 1] [--missed 0.5]
Needs PostgreSQL (BENCH_PG_URL, default the local server) and Redis (BENCH_REDIS_URL). Each run gets a fresh
database with 5 agents on extensions 201–205; a share `--missed` of the calls are missed calls from distinct
numbers (each a callback ticket), the rest answered calls with notes from an agent's extension (a ticket given to
that agent). Traffic goes only to 127.0.0.1 and stops after --calls requests; afterwards the `calls` table must
hold every call and every missed call a ticket.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.deployment import REPO, Deployment, deployment, drive, report  # noqa: E402
from bench.raw_limit import raw_limit  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.integration.test_concurrency import wait_healthy  # noqa: E402

AGENTS = 5


def call(n: int, missed: bool) -> dict[str, object]:
    """Call n: a distinct London number; a missed one rings nobody, an answered one is taken by an extension."""
    started = datetime(2026, 3, 2, 10, tzinfo=UTC) + timedelta(seconds=n)
    body: dict[str, object] = {
        "call_id": f"bench.{n}", "caller": f"+44 20 7{n:07d}", "called": "+44 20 7946 0000", "direction": "in",
        "started_at": started.isoformat(), "ended_at": (started + timedelta(seconds=95)).isoformat(),
    }
    if missed:
        body["disposition"] = "missed"
    else:
        body.update(disposition="answered", agent=str(201 + n % AGENTS),
                    notes="Asked about the invoice; will send a copy by email.")
    return body


def token_for(setup: Deployment) -> str:
    """The PBX's API token: a manager account of its own, so each call names its agent by extension (README);
    offline, so the router gives it nothing."""
    out = subprocess.run([sys.executable, "-m", "switchboard.cli", "agent", "add", "PBX", "--email", "pbx@example.com",
                          "--role", "manager"], env=setup.env, cwd=REPO, check=True, capture_output=True, text=True)
    setup.cli("agent", "set", "pbx@example.com", "--presence", "offline")
    return out.stdout.strip().splitlines()[-1]


async def one_run(calls: int, concurrency: int, web_processes: int, missed_share: float) -> dict[str, float]:
    raw = await raw_limit(max(calls, 3000), concurrency)
    result = await _log(calls, concurrency, web_processes, missed_share)
    return {**result, "raw_txn_per_s": raw, "ratio": result["calls_per_s"] / raw}


async def _log(calls: int, concurrency: int, web_processes: int, missed_share: float) -> dict[str, float]:
    async with deployment(agents=0, capacity=calls) as setup:
        for n in range(AGENTS):
            setup.cli("agent", "add", f"Agent {n}", "--email", f"agent{n}@example.com", "--extension", str(201 + n),
                      "--capacity", str(calls))
        headers = {"Authorization": f"Bearer {token_for(setup)}"}
        urls = []
        for _ in range(web_processes):
            port = free_port()
            setup.start("web", SWITCHBOARD_HTTP_PORT=str(port))
            urls.append(f"http://127.0.0.1:{port}")
        every = max(1, round(1 / missed_share)) if missed_share > 0 else 0
        missed = {n for n in range(calls) if every and n % every == 0}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), headers=headers) as session:
            for url in urls:
                await wait_healthy(session, url)

            async def post(n: int) -> None:
                async with session.post(f"{urls[n % len(urls)]}/api/v1/calls", json=call(n, n in missed)) as r:
                    assert r.status == 201, (r.status, await r.text())
                    await r.read()

            driven = await drive(calls, concurrency, post)
        stored = await setup.count("SELECT count(*) FROM calls")
        assert stored == calls, (stored, calls)
        callbacks = await setup.count("SELECT count(*) FROM tickets WHERE category = 'callback'")
        assert callbacks == len(missed), (callbacks, len(missed))
        return {"calls_per_s": driven["per_s"], "p50_ms": driven["p50_ms"], "p99_ms": driven["p99_ms"]}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--web", type=int, default=1)
    parser.add_argument("--missed", type=float, default=0.5, help="share of missed calls (callback tickets)")
    args = parser.parse_args()
    results = [await one_run(args.calls, args.concurrency, args.web, args.missed) for _ in range(args.runs)]
    report(results, f"{args.calls} calls ({args.missed:.0%} missed), {args.concurrency} clients, "
                    f"{args.web} web process(es)",
           keys=("calls_per_s", "p50_ms", "p99_ms", "raw_txn_per_s", "ratio"), digits=3)


if __name__ == "__main__":
    asyncio.run(main())
