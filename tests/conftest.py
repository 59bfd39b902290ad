"""Shared fixtures: every database test runs on SQLite and PostgreSQL, each in a throw-away database.

Environment (all optional):
- SWITCHBOARD_TEST_DATABASES: which backends, comma-separated (default "sqlite,postgresql").
- SWITCHBOARD_TEST_DATABASE_URL: PostgreSQL server to create test databases on
  (default postgresql+asyncpg://postgres@127.0.0.1:5432/postgres).
- SWITCHBOARD_TEST_REDIS_URL: Redis for tests (default redis://127.0.0.1:6379/9; pytest-xdist's worker N uses
  the database N after it), or "embedded" for a valkey-server started for each worker's session.
- SWITCHBOARD_TEST_STRICT=1: a backend that cannot be reached fails the run instead of being skipped (CI).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.engine import make_url

from switchboard.bootstrap import Runtime, build
from switchboard.embedded_redis import EmbeddedRedis
from switchboard.settings import DatabaseSettings, HttpSettings, RedisSettings, Settings
from tickets import migrate
from tickets.clock import Clock, SystemClock
from tickets.db import create_engine
from tickets.models import Role

PG_URL = os.environ.get("SWITCHBOARD_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
"""This pytest-xdist worker's name (gw0, gw1, …), or empty when the suite runs in one process."""


def _worker_redis(url: str) -> str:
    """Each xdist worker its own Redis database, counting up from the one given (every test flushes its own);
    `embedded` starts a server per worker anyway."""
    if url == "embedded" or not WORKER:
        return url
    parsed = urlsplit(url)
    database = int(parsed.path.strip("/") or 0) + int(WORKER.removeprefix("gw"))
    if database > 15:
        raise pytest.UsageError(f"{url}: worker {WORKER} would need Redis database {database}; use fewer workers")
    return urlunsplit(parsed._replace(path=f"/{database}"))


REDIS_URL = _worker_redis(os.environ.get("SWITCHBOARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/9"))
BACKENDS = [b.strip() for b in os.environ.get("SWITCHBOARD_TEST_DATABASES", "sqlite,postgresql").split(",")
            if b.strip()]
STRICT = os.environ.get("SWITCHBOARD_TEST_STRICT") == "1"
REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`serve`-based tests ignore the chosen backends (they run the embedded default): a PostgreSQL-only pass skips
    them, so CI runs them once, in its embedded pass."""
    if "sqlite" in BACKENDS:
        return
    skip = pytest.mark.skip(reason="runs `switchboard serve` on the embedded default: in the pass naming sqlite")
    for item in items:
        if item.get_closest_marker("embedded_default"):
            item.add_marker(skip)


def unavailable(what: str) -> None:
    """Skip on a developer machine without the service; fail loudly in CI."""
    if STRICT:
        pytest.fail(f"{what} is not reachable and SWITCHBOARD_TEST_STRICT=1", pytrace=False)
    pytest.skip(f"{what} is not reachable")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


# --- databases --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is much faster)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await migrate.upgrade(engine)
    await engine.dispose()
    return path


@pytest.fixture(scope="session")
async def postgres_template() -> AsyncIterator[str]:
    """A migrated PostgreSQL database that each test's database is created from."""
    name = f"sb_template_{uuid.uuid4().hex[:10]}"
    try:
        admin = await asyncpg.connect(_asyncpg_dsn(PG_URL), timeout=5)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        if STRICT:
            raise
        yield f"unreachable: {exc}"
        return
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        engine = create_engine(str(make_url(PG_URL).set(database=name).render_as_string(hide_password=False)))
        await migrate.upgrade(engine)
        await engine.dispose()
        yield name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(params=BACKENDS)
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path, postgres_template: str
) -> AsyncIterator[str]:
    """A fresh, migrated database for one test: a copied SQLite file or a PostgreSQL database from the template."""
    if request.param == "sqlite":
        if request.node.get_closest_marker("postgresql_only"):
            pytest.skip("a PostgreSQL-only test")
        path = tmp_path / "switchboard.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    if postgres_template.startswith("unreachable"):
        unavailable(f"PostgreSQL at {PG_URL} ({postgres_template})")
    name = f"sb_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_asyncpg_dsn(PG_URL))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"')
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


# --- redis ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def redis_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    if REDIS_URL != "embedded":
        yield REDIS_URL
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("embedded-redis"))
    url = await server.start()
    try:
        yield url
    finally:
        await server.stop()


@pytest.fixture
async def redis_url(redis_server: str) -> str:
    """The test Redis, emptied: arq queues and rate-limit counters never leak between tests."""
    client = aioredis.from_url(redis_server)
    try:
        await client.flushdb()
    except (OSError, aioredis.ConnectionError) as exc:
        unavailable(f"Redis at {redis_server} ({exc})")
    finally:
        await client.aclose()
    return redis_server


# --- the application --------------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return SystemClock()


@pytest.fixture
def settings(database_url: str, redis_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database=DatabaseSettings(url=database_url, pool_size=20),
        redis=RedisSettings(url=redis_url),
        http=HttpSettings(port=free_port(), form_rate_limit=0),
        phone_region="GB",
    )


@pytest.fixture
async def runtime(settings: Settings, clock: Clock) -> AsyncIterator[Runtime]:
    rt = await build(settings, clock=clock)
    try:
        yield rt
    finally:
        await rt.close()


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[TestClient[Any, Any]]:
    """A real HTTP server on 127.0.0.1 running the web process's application."""
    from switchboard.webapp import create_app

    async with TestClient(TestServer(create_app(runtime), host="127.0.0.1")) as test_client:
        yield test_client


AddAgent = Callable[..., Awaitable[tuple[Any, dict[str, str]]]]


@pytest.fixture
def add_agent(runtime: Runtime) -> AddAgent:
    """Create an agent through the service; returns the agent and ready-made auth headers."""
    counter = iter(range(1, 10_000))

    async def make(name: str | None = None, *, role: Role = Role.agent, **kwargs: Any) -> tuple[Any, dict[str, str]]:
        n = next(counter)
        name = name or f"Agent {n}"
        email = kwargs.pop("email", f"{name.lower().replace(' ', '.')}.{n}@example.com")
        agent, token = await runtime.service.add_agent(name, email, role=role, **kwargs)
        return agent, {"Authorization": f"Bearer {token}"}

    return make


@asynccontextmanager
async def running_workers(workers: list[Any]) -> AsyncIterator[list[Any]]:
    """Real arq workers running beside the test until the block ends."""
    tasks = [asyncio.create_task(worker.async_run()) for worker in workers]
    try:
        yield workers
    finally:
        # Every worker is stopped even when closing one fails (arq's close() raises CancelledError when it stops a
        # job mid-way): a survivor would run the next tests' jobs against this test's dropped database, since the
        # event loop lives for the whole session.
        for worker, task in zip(workers, tasks, strict=True):
            try:
                await worker.close()
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - arq's close re-raises a cancelled job's
                logging.getLogger(__name__).info("closing an arq worker interrupted a job", exc_info=True)
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - only stopping it
                pass


@asynccontextmanager
async def background_worker(runtime: Runtime) -> AsyncIterator[None]:
    """A real arq worker running beside the test, as `switchboard worker` would (no crons)."""
    from switchboard.worker import build_worker

    async with running_workers([build_worker(runtime, cron_jobs=[])]):
        yield


def with_regulations(settings: Settings, directory: Path, text: str) -> Settings:
    """These settings with a regulations file of `text` (YAML)."""
    path = directory / "regulations.yaml"
    path.write_text(text)
    return Settings(**{**settings.model_dump(), "regulations": path})


@contextmanager
def web_processes(settings: Settings, count: int, **extra: str) -> Iterator[list[str]]:
    """`switchboard web` processes on the test database and Redis, as production would run them (`extra`: more
    settings, e.g. SWITCHBOARD_DISPATCH_BY=receiver for processes that dispatch their own receipts)."""
    processes: list[tuple[subprocess.Popen[bytes], str]] = []
    try:
        for _ in range(count):
            port = free_port()
            env = {
                **os.environ,
                "SWITCHBOARD_DATABASE_URL": settings.database_url,
                "SWITCHBOARD_REDIS_URL": settings.redis.url or "",
                "SWITCHBOARD_HTTP_PORT": str(port),
                "SWITCHBOARD_HTTP_FORM_RATE_LIMIT": "0",
                "SWITCHBOARD_DATA_DIR": str(settings.data_dir),
                **extra,
            }
            process = subprocess.Popen(
                [sys.executable, "-m", "switchboard.cli", "web"], cwd=REPO, env=env,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )
            processes.append((process, f"http://127.0.0.1:{port}"))
        yield [url for _, url in processes]
    finally:
        for process, _ in processes:
            process.terminate()
        for process, _ in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


async def wait_dispatched(runtime: Runtime, timeout: float = 30) -> None:
    """Until no ticket is owed its dispatch: the web processes answer after the receipt, and dispatch follows."""
    from sqlalchemy import func, select

    from tickets.models import Ticket

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with runtime.sessions() as session:
            owed = await session.scalar(select(func.count()).select_from(Ticket)
                                        .where(Ticket.dispatch_owed_at.is_not(None)))
        if not owed:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{owed} tickets still owed their dispatch after {timeout} s")
        await asyncio.sleep(0.05)


async def wait_healthy(session: aiohttp.ClientSession, url: str, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            async with session.get(f"{url}/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{url} did not become healthy")
        await asyncio.sleep(0.1)
