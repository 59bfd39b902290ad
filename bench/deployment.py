"""A throw-away scaled deployment for benchmarks: a fresh PostgreSQL database, migrated, with agents, and roles as
processes."""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class Deployment:
    database_url: str
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def cli(self, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "switchboard.cli", *args], env=self.env, cwd=REPO, check=True,
                       capture_output=True)

    def start(self, role: str, **env: str) -> None:
        """Run one role (`web`, `smtp`, `worker`) as its own process, as production would."""
        self.processes.append(subprocess.Popen([sys.executable, "-m", "switchboard.cli", role], cwd=REPO,
                                               env={**self.env, **env}, stdout=subprocess.DEVNULL,
                                               stderr=None if os.environ.get("BENCH_VERBOSE") else subprocess.DEVNULL))

    def cpu_seconds(self) -> dict[int, float]:
        """CPU time (user + system) each started process has used so far, by pid: read before and after a blast,
        it says what each role spends per request, which a 2-core machine shared with the client makes the limit."""
        return {process.pid: cpu_seconds(process.pid) for process in self.processes}

    async def count(self, sql: str) -> int:
        connection = await asyncpg.connect(asyncpg_dsn(self.database_url))
        try:
            return int(await connection.fetchval(sql))
        finally:
            await connection.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@asynccontextmanager
async def deployment(*, agents: int, capacity: int, worker: bool = True, **env: str) -> AsyncIterator[Deployment]:
    name = f"sb_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(asyncpg_dsn(PG_URL))
    await admin.execute(f'CREATE DATABASE "{name}"')
    database_url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    with tempfile.TemporaryDirectory(prefix=name) as data_dir:
        setup = Deployment(database_url, {**os.environ, "SWITCHBOARD_DATABASE_URL": database_url,
                                          "SWITCHBOARD_REDIS_URL": REDIS_URL, "SWITCHBOARD_DATA_DIR": data_dir, **env})
        try:
            setup.cli("migrate")
            for n in range(agents):
                setup.cli("agent", "add", f"Agent {n}", "--email", f"agent{n}@example.com", "--capacity", str(capacity))
            if worker:
                setup.start("worker")  # it dispatches what the measured role receives, and delivers, as in production
            yield setup
        finally:
            for process in setup.processes:
                process.terminate()
                process.wait(10)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


async def drive(count: int, concurrency: int, send: Callable[[int], Awaitable[None]]) -> dict[str, float]:
    """`send(n)` for n in 0..count-1 from `concurrency` closed-loop clients: requests/s and client-side p50/p99."""
    numbers = iter(range(count))
    latencies: list[float] = []

    async def client() -> None:
        for n in numbers:
            started = time.perf_counter()
            await send(n)
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {"per_s": count / elapsed, "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000}


def report(results: list[dict[str, float]], description: str, *, keys: Sequence[str] | None = None,
           digits: int = 2) -> None:
    """Print each run, the machine, and the median over the runs of each key (all keys by default)."""
    for result in results:
        print("run:", {k: round(v, digits) for k, v in result.items()})
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"median of {len(results)} runs, {description}:")
    for key in keys if keys is not None else results[0]:
        print(f"  {key}: {statistics.median(r[key] for r in results):.{digits}f}")
