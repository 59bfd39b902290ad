"""Profile `TicketService.ingest` without HTTP: sequential and concurrent rates, and a cProfile of 300 ingests.

Usage: uv run python bench/profile_ingest.py [--sort cumulative|tottime] [--top 40] [--agents 5] [--concurrency 8]
`--agents 0` leaves every ticket queued: the rates without routing's lock and assignment notice.
Needs PostgreSQL (BENCH_PG_URL, default the local server); uses a throw-away database.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import time
import uuid

import asyncpg
from sqlalchemy.engine import make_url

from switchboard.bootstrap import build_engine, build_service
from switchboard.settings import DatabaseSettings, Settings
from tickets import migrate
from tickets.clock import SystemClock
from tickets.inbound import Identity, Inbound

PG_URL = os.environ.get("BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")


async def main(sort: str, top: int, agents: int, concurrency: int) -> None:
    name = f"sb_profile_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False))
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        settings = Settings(database=DatabaseSettings(url=make_url(PG_URL).set(database=name).render_as_string(False),
                                                      pool_size=max(10, concurrency)))
        engine = build_engine(settings)
        await migrate.upgrade(engine)
        service = build_service(settings, engine, SystemClock())
        for n in range(agents):
            await service.add_agent(f"Agent {n}", f"agent{n}@example.com", capacity=1_000_000)

        async def ingest(count: int, offset: int) -> None:
            for n in range(count):
                await service.ingest(Inbound(channel="webform",
                                             identities=(Identity("email", f"c{offset + n}@example.com"),),
                                             body_text="x" * 2000))

        await ingest(50, 0)  # warm caches
        began = time.perf_counter()
        await ingest(300, 1_000)
        print(f"sequential: {300 / (time.perf_counter() - began):.1f} ingests/s")
        began, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(ingest(400 // concurrency, 10_000 + i * 1_000) for i in range(concurrency)))
        elapsed, done = time.perf_counter() - began, 400 // concurrency * concurrency
        cpu = time.process_time() - cpu
        print(f"{concurrency} concurrent: {done / elapsed:.1f} ingests/s, this process's CPU "
              f"{cpu * 1000 / done:.1f} ms per ingest, busy {cpu / elapsed:.0%} of the time")
        profile = cProfile.Profile()
        profile.enable()
        await ingest(300, 100_000)
        profile.disable()
        pstats.Stats(profile).sort_stats(sort).print_stats(top)
        await engine.dispose()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--agents", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.sort, args.top, args.agents, args.concurrency))
