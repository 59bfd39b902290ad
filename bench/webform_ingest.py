"""Web-form ingest end to end: HTTP post → committed → assigned, against one `switchboard web` process.

Usage: uv run python bench/webform_ingest.py [--posts 2000] [--concurrency 32] [--runs 3] [--web 1]
Needs PostgreSQL (BENCH_PG_URL, default the local server) and Redis (BENCH_REDIS_URL). Each run gets a
fresh database; traffic goes only to 127.0.0.1 and stops after --posts requests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import free_port  # noqa: E402

PG_URL = os.environ.get("BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")


async def one_run(posts: int, concurrency: int, web_processes: int) -> dict[str, float]:
    name = f"sb_bench_{uuid.uuid4().hex[:8]}"
    admin_dsn = make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    db_url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    env = {**os.environ, "SWITCHBOARD_DATABASE_URL": db_url, "SWITCHBOARD_REDIS_URL": REDIS_URL,
           "SWITCHBOARD_HTTP_FORM_RATE_LIMIT": "0"}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        subprocess.run([sys.executable, "-m", "switchboard.cli", "migrate"], env=env, cwd=REPO, check=True,
                       capture_output=True)
        for n in range(5):
            subprocess.run([sys.executable, "-m", "switchboard.cli", "agent", "add", f"Agent {n}", "--email",
                            f"agent{n}@example.com", "--capacity", str(posts)], env=env, cwd=REPO, check=True,
                           capture_output=True)
        urls = []
        for _ in range(web_processes):
            port = free_port()
            processes.append(subprocess.Popen([sys.executable, "-m", "switchboard.cli", "web"], cwd=REPO,
                                              env={**env, "SWITCHBOARD_HTTP_PORT": str(port)},
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            urls.append(f"http://127.0.0.1:{port}")
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            for url in urls:
                for _ in range(300):
                    try:
                        async with session.get(f"{url}/healthz") as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.1)
            latencies: list[float] = []
            counter = iter(range(posts))

            async def client() -> None:
                for n in counter:
                    payload = {"name": f"Client {n}", "email": f"c{n}@example.com", "message": "x" * 2000}
                    started = time.perf_counter()
                    async with session.post(f"{urls[n % len(urls)]}/api/v1/webform", json=payload) as r:
                        assert r.status == 201, await r.text()
                        await r.read()
                    latencies.append(time.perf_counter() - started)

            began = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(concurrency)))
            elapsed = time.perf_counter() - began
        db = await asyncpg.connect(make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False))
        assigned = await db.fetchval("SELECT count(*) FROM tickets WHERE assignee_id IS NOT NULL")
        await db.close()
        assert assigned == posts, (assigned, posts)
        latencies.sort()
        return {"tickets_per_s": posts / elapsed, "p50_ms": latencies[len(latencies) // 2] * 1000,
                "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000}
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--web", type=int, default=1)
    args = parser.parse_args()
    results = [await one_run(args.posts, args.concurrency, args.web) for _ in range(args.runs)]
    for result in results:
        print("run:", {k: round(v, 1) for k, v in result.items()})
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"median of {args.runs} runs, {args.posts} posts, {args.concurrency} clients, {args.web} web process(es):")
    for key in ("tickets_per_s", "p50_ms", "p99_ms"):
        print(f"  {key}: {statistics.median(r[key] for r in results):.1f}")


if __name__ == "__main__":
    asyncio.run(main())
