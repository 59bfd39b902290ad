"""Web-form ingest end to end: HTTP post → committed → assigned, against one `switchboard web` process or
several; each run also measures the raw limit (bench/raw_limit.py: the same rows written by bare asyncpg
transactions at the same concurrency, on the same server) and reports the ratio.

Usage: uv run python bench/webform_ingest.py [--posts 2000] [--concurrency 32] [--runs 3] [--web 1]
Needs PostgreSQL (BENCH_PG_URL, default the local server) and Redis (BENCH_REDIS_URL). Each run gets a
fresh database; traffic goes only to 127.0.0.1 and stops after --posts requests.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.deployment import deployment, drive, report  # noqa: E402
from bench.raw_limit import raw_limit  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.integration.test_concurrency import wait_healthy  # noqa: E402


async def one_run(posts: int, concurrency: int, web_processes: int) -> dict[str, float]:
    raw = await raw_limit(max(posts, 3000), concurrency)
    result = await _ingest(posts, concurrency, web_processes)
    return {**result, "raw_txn_per_s": raw, "ratio": result["tickets_per_s"] / raw}


async def _ingest(posts: int, concurrency: int, web_processes: int) -> dict[str, float]:
    async with deployment(agents=5, capacity=posts, SWITCHBOARD_HTTP_FORM_RATE_LIMIT="0") as setup:
        urls = []
        for _ in range(web_processes):
            port = free_port()
            setup.start("web", SWITCHBOARD_HTTP_PORT=str(port))
            urls.append(f"http://127.0.0.1:{port}")
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            for url in urls:
                await wait_healthy(session, url)

            async def post(n: int) -> None:
                payload = {"name": f"Client {n}", "email": f"c{n}@example.com", "message": "x" * 2000}
                async with session.post(f"{urls[n % len(urls)]}/api/v1/webform", json=payload) as r:
                    assert r.status == 201, await r.text()
                    await r.read()

            driven = await drive(posts, concurrency, post)
        assigned = await setup.count("SELECT count(*) FROM tickets WHERE assignee_id IS NOT NULL")
        assert assigned == posts, (assigned, posts)
        return {"tickets_per_s": driven["per_s"], "p50_ms": driven["p50_ms"], "p99_ms": driven["p99_ms"]}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--web", type=int, default=1)
    args = parser.parse_args()
    results = [await one_run(args.posts, args.concurrency, args.web) for _ in range(args.runs)]
    report(results, f"{args.posts} posts, {args.concurrency} clients, {args.web} web process(es)",
           keys=("tickets_per_s", "p50_ms", "p99_ms", "raw_txn_per_s", "ratio"), digits=3)


if __name__ == "__main__":
    asyncio.run(main())
