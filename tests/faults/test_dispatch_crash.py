"""Receipts and their dispatch across crashes and concurrent dispatchers, with real processes on a private PostgreSQL.

A receipt commits the ticket and answers the client; routing, the regulation plan and the agent's notice follow
from the database. Whatever dies in between, each ticket ends up assigned once, planned once and announced once,
and every agent's load counter equals the tickets they hold."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from switchboard.bootstrap import build
from switchboard.settings import DatabaseSettings, HttpSettings, RedisSettings, Settings
from tests.conftest import free_port, wait_healthy
from tests.faults.services import PrivatePostgres, Roles, private_postgres, private_redis, roles
from tickets.inbound import Identity, Inbound

AGENTS = 5
TIME_LIMIT = 90.0


async def _post(base: str, numbers: range, in_flight: int = 32) -> list[int]:
    gate = asyncio.Semaphore(in_flight)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(n: int) -> int:
            body = {"name": f"Client {n}", "email": f"client{n}@example.com", "message": f"Problem number {n}"}
            async with gate, session.post(f"{base}/api/v1/webform", json=body) as response:
                assert response.status == 201, await response.text()
                return int((await response.json())["number"])

        return list(await asyncio.gather(*(one(n) for n in numbers)))


def _agents(deployment: Roles) -> None:
    for n in range(AGENTS):
        added = deployment.cli("agent", "add", f"Agent {n}", "--email", f"agent{n}@example.com", "--capacity", "1000")
        assert added.returncode == 0, added.stderr


async def _settled(pg: PrivatePostgres) -> None:
    deadline = time.monotonic() + TIME_LIMIT
    while (await pg.fetch("SELECT count(*) FROM tickets WHERE dispatch_owed_at IS NOT NULL"))[0][0]:
        assert time.monotonic() < deadline, "tickets still owed their dispatch"
        await asyncio.sleep(0.1)


async def _each_once(pg: PrivatePostgres, tickets: int) -> dict[int, int]:
    """Every ticket dispatched exactly once; returns each agent's tickets."""
    rows = await pg.fetch("SELECT id, assignee_id, status FROM tickets ORDER BY id")
    assert len(rows) == tickets
    assert all(r["assignee_id"] is not None and r["status"] == "open" for r in rows)
    for sql, what in (("SELECT ticket_id FROM events WHERE kind = 'assigned'", "assigned event"),
                      ("SELECT ticket_id FROM outbox WHERE kind = 'assigned'", "assignment notice"),
                      ("SELECT ticket_id FROM outbox WHERE kind = 'ack'", "acknowledgement"),
                      ("SELECT ticket_id FROM sla_clock_events WHERE kind = 'started'", "clock start")):
        per_ticket = Counter(r["ticket_id"] for r in await pg.fetch(sql))
        assert per_ticket == Counter({r["id"]: 1 for r in rows}), what
    steps = Counter(r["ticket_id"] for r in await pg.fetch("SELECT ticket_id FROM deadlines"))
    assert len(set(steps.values())) == 1 and set(steps) == {r["id"] for r in rows}, "one set of deadlines each"
    # Deadlines count from the ticket's creation, whenever it was dispatched.
    late = await pg.fetch("SELECT t.id FROM tickets t JOIN sla_clock_events c ON c.ticket_id = t.id "
                          "WHERE c.kind = 'started' AND c.created_at <> t.created_at")
    assert late == []
    held = Counter(r["assignee_id"] for r in rows)
    counters = {r["id"]: (r["load_open"], r["load_weight"])
                for r in await pg.fetch("SELECT id, load_open, load_weight FROM agents")}
    assert counters == {agent: (held.get(agent, 0), 1000 * held.get(agent, 0)) for agent in counters}
    return dict(held)


async def test_tickets_received_by_a_process_killed_before_dispatch_are_dispatched_once_after_restart(
    tmp_path: Path,
) -> None:
    with private_postgres() as pg, private_redis() as redis, roles(pg.url, redis.url) as deployment:
        _agents(deployment)
        # Receipts whose process died before dispatching any of them: a dispatcher "runs elsewhere", and none does.
        settings = Settings(data_dir=tmp_path / "data", database=DatabaseSettings(url=pg.url),
                            redis=RedisSettings(url=redis.url), http=HttpSettings(port=free_port()))
        runtime = await build(settings)
        try:
            runtime.service.wake_dispatcher = lambda: None
            for n in range(40):
                await runtime.service.ingest(Inbound(channel="webform", body_text=f"Problem {n}",
                                                     identities=(Identity("email", f"early{n}@example.com"),)))
        finally:
            await runtime.close()
        assert (await pg.fetch("SELECT count(*) FROM tickets WHERE dispatch_owed_at IS NOT NULL"))[0][0] == 40

        # A web process takes forms under load; the worker dispatching them is SIGKILLed in the middle of it, and
        # the web process after the last answer.
        port = free_port()
        deployment.env.update(SWITCHBOARD_HTTP_PORT=str(port), SWITCHBOARD_HTTP_FORM_RATE_LIMIT="0")
        deployment.start("web", "web1")
        deployment.start("worker", "worker1")
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            await wait_healthy(session, base)
        posted = await _post(base, range(100))
        deployment.kill("worker1", signal.SIGKILL)
        posted += await _post(base, range(100, 200))
        deployment.kill("web1", signal.SIGKILL)
        owed = (await pg.fetch("SELECT count(*) FROM tickets WHERE dispatch_owed_at IS NOT NULL"))[0][0]
        assert owed >= 100  # nothing dispatched what came after the worker died

        # What is owed is dispatched by the next worker's first sweep, once.
        deployment.start("worker", "worker2")
        await _settled(pg)
        held = await _each_once(pg, 240)
        assert len(set(posted)) == 200
        assert max(held.values()) - min(held.values()) <= 1, held


@pytest.mark.parametrize("by", ["receiver", "worker"])
async def test_dispatchers_in_several_processes_at_once_assign_each_ticket_once_with_even_loads(by: str) -> None:
    """`receiver`: both web processes dispatch their own receipts, and the worker what they leave; `worker`: both web
    processes only receive, and two workers dispatch."""
    with private_postgres() as pg, private_redis() as redis, \
            roles(pg.url, redis.url, SWITCHBOARD_DISPATCH_BY=by) as deployment:
        _agents(deployment)
        bases: list[str] = []
        for name in ("web1", "web2"):
            port = free_port()
            deployment.env.update(SWITCHBOARD_HTTP_PORT=str(port), SWITCHBOARD_HTTP_FORM_RATE_LIMIT="0")
            deployment.start("web", name)
            bases.append(f"http://127.0.0.1:{port}")
        workers = ["worker1"] if by == "receiver" else ["worker1", "worker2"]
        for name in workers:
            deployment.start("worker", name)
        async with aiohttp.ClientSession() as session:
            for base in bases:
                await wait_healthy(session, base)
        posted: list[Any] = await asyncio.gather(*(_post(base, range(i * 150, (i + 1) * 150), 16)
                                                   for i, base in enumerate(bases)))
        await _settled(pg)
        held = await _each_once(pg, 300)
        assert sum(len(p) for p in posted) == 300
        assert max(held.values()) - min(held.values()) <= 1, held
        for name in ("web1", "web2", *workers):
            assert deployment.alive(name), deployment.log(name)
