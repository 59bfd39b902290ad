"""The arq worker: jobs are one-line shells around services; one function lists every Worker parameter."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from arq import cron
from arq.worker import Worker

from notifier.jobs import deliver_outbox, sweep_outbox
from sla.jobs import TIMER_QUEUE, fire_deadline, sweep_deadlines
from switchboard.bootstrap import Runtime, redis_settings


async def drain_queues(ctx: dict[str, Any]) -> int:
    """Safety net: assign waiting tickets when capacity was freed by a path that did not route."""
    runtime: Runtime = ctx["runtime"]
    return await runtime.service.drain_queues()


async def sweep_idle_agents(ctx: dict[str, Any]) -> int:
    """Agents idle past SWITCHBOARD_ROUTING_IDLE_OFFLINE_MINUTES go offline; their untouched tickets re-route."""
    runtime: Runtime = ctx["runtime"]
    minutes = runtime.settings.routing.idle_offline_minutes
    return len(await runtime.service.sweep_idle_agents(timedelta(minutes=minutes))) if minutes > 0 else 0


def worker_settings(runtime: Runtime, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for `arq.worker.Worker`; a test checks each is a real parameter."""
    settings: dict[str, Any] = {
        "functions": [drain_queues, deliver_outbox, sweep_idle_agents],
        "cron_jobs": [
            cron(drain_queues, second=0, unique=True, run_at_startup=True, name="cron:drain_queues"),
            cron(sweep_outbox, second=30, unique=True, run_at_startup=True, name="cron:sweep_outbox"),
            cron(sweep_idle_agents, second=15, unique=True, name="cron:sweep_idle_agents"),
        ],
        # Its own connection pool: Worker.close() closes the pool it runs on, and the web side keeps using ours.
        "redis_settings": redis_settings(runtime.redis_url),
        "ctx": {"runtime": runtime},
        "poll_delay": 0.1,
        "keep_result": 60,
        "max_jobs": 20,
        "handle_signals": False,
    }
    settings.update(overrides)
    return settings


def timer_worker_settings(runtime: Runtime, **overrides: Any) -> dict[str, Any]:
    """The regulation clock's own queue: its deferred jobs wait days, and must not hold up a burst of deliveries."""
    settings = worker_settings(runtime, **{
        "functions": [fire_deadline, sweep_deadlines],
        "cron_jobs": [cron(sweep_deadlines, second=45, unique=True, run_at_startup=True, name="cron:sweep_deadlines")],
        "queue_name": TIMER_QUEUE,
        "max_jobs": 10,
        "keep_result": 10,
    })
    settings.update(overrides)
    return settings


def build_worker(runtime: Runtime, **overrides: Any) -> Worker:
    return Worker(**worker_settings(runtime, **overrides))


def build_workers(runtime: Runtime) -> list[Worker]:
    """What `switchboard worker` runs: deliveries and routing sweeps, and the regulation timers."""
    return [build_worker(runtime), Worker(**timer_worker_settings(runtime))]
