"""The regulation clock on a real arq worker and Redis, with second-scale regulations and the wall clock: each
pending step's deferred job fires it on time; a flushed Redis only delays a step until the sweeper; two workers
at once still act once per step; a worker killed mid-escalation loses nothing and doubles nothing.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from arq import cron
from arq.worker import Worker
from sqlalchemy import func, select

from sla.jobs import sweep_deadlines
from switchboard.bootstrap import Runtime
from switchboard.settings import Settings
from switchboard.worker import timer_worker_settings
from tests.conftest import running_workers, with_regulations
from tickets.inbound import Identity, Inbound
from tickets.models import Deadline, Event, Outbox, Role

REGULATIONS = """\
contacts:
  production_manager: {email: pm@example.com, phone: "+447700900001"}
regulations:
  - name: critical_defect
    match: {category: defect, priority: critical}
    steps:
      - {name: day_one, after: 2s, unless: processed, notify: [{to: production_manager, by: [email, sms]}]}
      - {name: breach, after: 2s, since: previous, unless: resolved, breach: true,
         notify: [{to: [production_manager, group_head], by: [email, sms]}]}
  - name: request
    steps:
      - {name: reassign, after: 2s, unless: processed, reassign: true,
         notify: [{to: [assignee, previous_assignee], by: email}]}
      - {name: head, after: 2s, since: previous, unless: resolved, breach: true,
         notify: [{to: group_head, by: [email, sms]}]}
"""
EVERY_SECOND = set(range(60))


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return with_regulations(settings, tmp_path, REGULATIONS)


@pytest.fixture
async def team(runtime: Runtime, add_agent: Any) -> list[Any]:
    await runtime.service.add_group("Support", head_email="head@example.com")
    await add_agent("Hanna Head", email="head@example.com", phone="+447700900002", role=Role.manager,
                    presence="offline")
    return [(await add_agent(name, capacity=50))[0] for name in ("Anna", "Boris")]


def timer_workers(runtime: Runtime, count: int = 1, **overrides: Any) -> Any:
    """`count` real timer workers beside the test, as `switchboard worker` runs them (crons off unless given)."""
    return running_workers([Worker(**timer_worker_settings(runtime, **{"cron_jobs": [], **overrides}))
                            for _ in range(count)])


def form(n: int = 0, **kwargs: Any) -> Inbound:
    return Inbound(channel="webform", identities=(Identity("email", f"client{n}@example.com"),), body_text="Broken",
                   subject=f"Broken {n}", **kwargs)


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.1)


async def steps(runtime: Runtime, *numbers: int) -> list[Deadline]:
    async with runtime.sessions() as session:
        return list(await session.scalars(
            select(Deadline).where(Deadline.ticket_id.in_(numbers)).order_by(Deadline.ticket_id, Deadline.position)))


async def all_fired(runtime: Runtime, *numbers: int) -> bool:
    return all(str(d.status) == "fired" for d in await steps(runtime, *numbers))


async def fired_events(runtime: Runtime, *numbers: int) -> list[Event]:
    async with runtime.sessions() as session:
        return list(await session.scalars(select(Event).where(
            Event.ticket_id.in_(numbers), Event.kind.in_(("sla_step_fired", "sla_breached"))).order_by(Event.id)))


async def test_both_ladders_fire_in_order_from_their_timers_with_the_right_alerts(
    runtime: Runtime, team: list[Any]
) -> None:
    request = (await runtime.service.ingest(form(1))).ticket
    defect = (await runtime.service.ingest(form(2, category="defect", priority="critical"))).ticket
    async with timer_workers(runtime):
        await until(lambda: all_fired(runtime, request.id, defect.id))
    fired = await steps(runtime, request.id, defect.id)
    assert [(d.ticket_id, d.step) for d in fired] == [
        (request.id, "reassign"), (request.id, "head"), (defect.id, "day_one"), (defect.id, "breach")]
    for row in fired:
        assert row.fired_at is not None and timedelta(0) <= row.fired_at - row.due_at < timedelta(seconds=1.5), row.step
    assert fired[0].fired_at < fired[1].fired_at and fired[2].fired_at < fired[3].fired_at
    async with runtime.sessions() as session:
        sent = [(o.ticket_id, o.channel, o.recipient) for o in await session.scalars(
            select(Outbox).where(Outbox.kind == "sla_alert").order_by(Outbox.id))]
    emails = {a.email for a in team}
    request_alerts = [(c, r) for t, c, r in sent if t == request.id]
    assert {r for c, r in request_alerts[:2]} == emails  # both agents of the reassignment
    assert request_alerts[2:] == [("email", "head@example.com"), ("sms", "+447700900002")]
    assert [(c, r) for t, c, r in sent if t == defect.id] == [
        ("email", "pm@example.com"), ("sms", "+447700900001"),
        ("email", "pm@example.com"), ("sms", "+447700900001"), ("email", "head@example.com"), ("sms", "+447700900002")]
    assert len(await fired_events(runtime, request.id, defect.id)) == 4


async def test_a_flushed_redis_only_delays_the_steps_until_the_sweeper(
    runtime: Runtime, team: list[Any], settings: Settings
) -> None:
    tickets = [(await runtime.service.ingest(form(n))).ticket for n in range(3)]
    client = aioredis.from_url(settings.redis.url)
    try:
        await client.flushdb()  # every timer is gone; the deadline rows are not
    finally:
        await client.aclose()
    # The real sweeper cron, every second instead of every minute so the test need not wait a minute.
    sweeper = cron(sweep_deadlines, second=EVERY_SECOND, unique=True, name="cron:sweep_deadlines")
    async with timer_workers(runtime, cron_jobs=[sweeper]):
        await until(lambda: all_fired(runtime, *(t.id for t in tickets)))
    for row in await steps(runtime, *(t.id for t in tickets)):
        assert row.fired_at - row.due_at < timedelta(seconds=2.5)
    assert len(await fired_events(runtime, *(t.id for t in tickets))) == 6


async def test_two_workers_and_the_sweeper_at_once_act_once_per_step(runtime: Runtime, team: list[Any]) -> None:
    tickets = [(await runtime.service.ingest(form(n))).ticket for n in range(20)]
    sweeper = cron(sweep_deadlines, second=EVERY_SECOND, unique=False, name="cron:sweep_deadlines")
    async with timer_workers(runtime, 2, cron_jobs=[sweeper]):
        await until(lambda: all_fired(runtime, *(t.id for t in tickets)), timeout=30)
    numbers = [t.id for t in tickets]
    events = await fired_events(runtime, *numbers)
    assert sorted((e.ticket_id, e.data["step"]) for e in events) == sorted(
        (n, s) for n in numbers for s in ("reassign", "head"))
    async with runtime.sessions() as session:
        assigned = await session.scalar(select(func.count()).select_from(Event).where(
            Event.ticket_id.in_(numbers), Event.kind == "assigned"))
        alerts = await session.scalar(select(func.count()).select_from(Outbox).where(Outbox.kind == "sla_alert"))
    assert assigned == 2 * len(numbers)  # routed once, reassigned once
    assert alerts == 4 * len(numbers)  # two agents told, then the head by email and SMS


@pytest.mark.postgresql_only  # it holds the ticket's row lock from outside
async def test_a_worker_killed_during_an_escalation_loses_nothing_and_doubles_nothing(
    runtime: Runtime, team: list[Any], settings: Settings, database_url: str
) -> None:
    ticket = (await runtime.service.ingest(form(1))).ticket
    dsn = database_url.replace("postgresql+asyncpg", "postgresql")
    holder, watcher = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    env = {**os.environ, "SWITCHBOARD_DATABASE_URL": settings.database_url, "SWITCHBOARD_REDIS_URL": settings.redis.url,
           "SWITCHBOARD_DATA_DIR": str(settings.data_dir), "SWITCHBOARD_REGULATIONS": str(settings.regulations)}
    worker = None
    try:
        # Hold the ticket's lock so the worker's escalation is caught half-way, inside its transaction.
        await holder.execute("BEGIN")
        await holder.execute("SELECT 1 FROM tickets WHERE id = $1 FOR UPDATE", ticket.id)
        worker = subprocess.Popen([sys.executable, "-m", "switchboard.cli", "worker"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        async def escalation_waits() -> bool:
            # From another connection: inside a transaction PostgreSQL shows one snapshot of pg_stat_activity.
            return bool(await watcher.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
                "AND query ILIKE '%tickets%'"))

        await until(escalation_waits, timeout=30)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        await holder.execute("ROLLBACK")
        assert str((await steps(runtime, ticket.id))[0].status) == "pending"  # the killed attempt left nothing

        # Another worker: its sweeper (first run at start) fires what the dead one held.
        worker = subprocess.Popen([sys.executable, "-m", "switchboard.cli", "worker"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await until(lambda: all_fired(runtime, ticket.id), timeout=90)
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            # In a thread: a worker finishing a delivery to a fake served by this loop needs the loop to answer.
            await asyncio.to_thread(worker.wait, 20)
        await holder.close()
        await watcher.close()
    events = await fired_events(runtime, ticket.id)
    assert [e.data["step"] for e in events] == ["reassign", "head"]
    assert datetime.now(UTC) > (await steps(runtime, ticket.id))[1].fired_at
