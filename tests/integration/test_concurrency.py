"""Routing under concurrent ingest from several web processes: every ticket assigned once, loads even."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
import pytest
from sqlalchemy import func, select

from switchboard.bootstrap import Runtime
from switchboard.settings import Settings
from tests.conftest import REPO, free_port
from tickets.models import Event, Ticket, TicketStatus

POSTS = 200
AGENTS = 5


@contextmanager
def web_processes(settings: Settings, count: int) -> Iterator[list[str]]:
    """`switchboard web` processes on the test database and Redis, as production would run them."""
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


@pytest.mark.postgresql_only
async def test_200_concurrent_posts_over_5_agents_from_two_processes(
    runtime: Runtime, settings: Settings, add_agent
) -> None:
    agents = [(await add_agent(f"Agent {n}", capacity=100))[0] for n in range(AGENTS)]

    with web_processes(settings, 2) as urls:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            for url in urls:
                await wait_healthy(session, url)

            async def post(n: int) -> int:
                payload = {"name": f"Client {n}", "email": f"client{n}@example.com", "message": f"request {n}"}
                async with session.post(f"{urls[n % len(urls)]}/api/v1/webform", json=payload) as response:
                    assert response.status == 201, await response.text()
                    return int((await response.json())["number"])

            numbers = await asyncio.gather(*(post(n) for n in range(POSTS)))

    assert len(set(numbers)) == POSTS
    async with runtime.sessions() as db:
        tickets = list(await db.scalars(select(Ticket)))
        assigned_events = list(await db.scalars(select(Event).where(Event.kind == "assigned")))
        queued = await db.scalar(select(func.count()).select_from(Event).where(Event.kind == "queued"))

    assert len(tickets) == POSTS
    assert all(t.status == TicketStatus.open and t.assignee_id is not None for t in tickets)
    loads = Counter(t.assignee_id for t in tickets)
    assert set(loads) == {a.id for a in agents}
    assert max(loads.values()) - min(loads.values()) <= 1, loads

    # the audit trail agrees: exactly one assignment per ticket, to the agent that holds it
    assert queued == 0
    assert sorted(e.ticket_id for e in assigned_events) == sorted(t.id for t in tickets)
    holder = {t.id: t.assignee_id for t in tickets}
    assert all(e.data["agent_id"] == holder[e.ticket_id] for e in assigned_events)
    views = await runtime.service.list_agents()
    assert {v.agent.id: v.load for v in views} == dict(loads)
