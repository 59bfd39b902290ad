"""The two halves of an ingest, apart: receipts alone (32 at once), then dispatching what they left owed, in batches.

Prints each half's rate and this process's CPU per ticket, and with --profile a cProfile of one half.
Usage: uv run python bench/dispatch_batch.py [--tickets 2000] [--agents 5] [--batch 200] [--profile receipt|dispatch]
       [--sort cumulative|tottime]
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
BODY = "x" * 2048


async def main(tickets: int, agents: int, batch: int, profile: str | None, sort: str) -> None:
    name = f"sb_dispatch_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False))
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        settings = Settings(database=DatabaseSettings(
            url=make_url(PG_URL).set(database=name).render_as_string(False), pool_size=32))
        engine = build_engine(settings)
        await migrate.upgrade(engine)
        service = build_service(settings, engine, SystemClock())
        service.wake_dispatcher = lambda: None  # receipts only: dispatching is measured on its own below
        for n in range(agents):
            await service.add_agent(f"Agent {n}", f"agent{n}@example.com", capacity=1_000_000)
        counter = iter(range(10**9))

        async def receipts(count: int) -> None:
            for _ in range(count):
                await service.ingest(Inbound(channel="webform", body_text=BODY, subject="Printer on fire",
                                             identities=(Identity("email", f"c{next(counter)}@example.com"),)))

        await receipts(50)
        await service.dispatch_owed(limit=batch)
        profiler = cProfile.Profile()
        began, cpu = time.perf_counter(), time.process_time()
        if profile == "receipt":
            profiler.enable()
        await asyncio.gather(*(receipts(tickets // 32) for _ in range(32)))
        profiler.disable()
        done = tickets // 32 * 32
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
        print(f"receipts: {done / elapsed:.1f}/s, {cpu * 1000 / done:.2f} ms CPU each")
        began, cpu = time.perf_counter(), time.process_time()
        if profile == "dispatch":
            profiler.enable()
        dispatched = 0
        while batch_done := len((await service.dispatch_owed(limit=batch)).tickets):
            dispatched += batch_done
        profiler.disable()
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
        print(f"dispatch in batches of {batch}: {dispatched / elapsed:.1f} tickets/s, "
              f"{cpu * 1000 / dispatched:.2f} ms CPU each")
        if profile:
            pstats.Stats(profiler).sort_stats(sort).print_stats(45)
        await engine.dispose()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--agents", type=int, default=5)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--profile", choices=("receipt", "dispatch"))
    parser.add_argument("--sort", choices=("cumulative", "tottime"), default="cumulative")
    args = parser.parse_args()
    asyncio.run(main(args.tickets, args.agents, args.batch, args.profile, args.sort))
