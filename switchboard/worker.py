"""The arq worker: jobs are one-line shells around services; one function lists every Worker parameter."""

from __future__ import annotations

from typing import Any

from arq import cron
from arq.worker import Worker

from notifier.jobs import deliver_outbox, sweep_outbox
from switchboard.bootstrap import Runtime, redis_settings


async def drain_queues(ctx: dict[str, Any]) -> int:
    """Safety net: assign waiting tickets when capacity was freed by a path that did not route."""
    runtime: Runtime = ctx["runtime"]
    return await runtime.service.drain_queues()


def worker_settings(runtime: Runtime, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for `arq.worker.Worker`; a test checks each is a real parameter."""
    settings: dict[str, Any] = {
        "functions": [drain_queues, deliver_outbox],
        "cron_jobs": [
            cron(drain_queues, second=0, unique=True, run_at_startup=True, name="cron:drain_queues"),
            cron(sweep_outbox, second=30, unique=True, run_at_startup=True, name="cron:sweep_outbox"),
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


def build_worker(runtime: Runtime, **overrides: Any) -> Worker:
    return Worker(**worker_settings(runtime, **overrides))
