"""The arq worker: jobs are one-line shells around services; one function lists every Worker parameter."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from arq import cron
from arq.worker import Worker
from redis.exceptions import RedisError

from notifier.jobs import deliver_outbox, remind_contact, sweep_outbox, sweep_reminders
from sla.jobs import TIMER_QUEUE, fire_deadline, sweep_deadlines
from switchboard.bootstrap import Runtime, redis_settings

log = logging.getLogger(__name__)

DELIVERY_WAIT = 1.0
"""The longest a delivery waits for the dispatcher to catch up (then it goes, so a long burst never stops them)."""


async def drain_queues(ctx: dict[str, Any]) -> int:
    """Safety net: assign waiting tickets when capacity was freed by a path that did not route."""
    runtime: Runtime = ctx["runtime"]
    return await runtime.service.drain_queues()


async def sweep_idle_agents(ctx: dict[str, Any]) -> int:
    """Agents idle past SWITCHBOARD_ROUTING_IDLE_OFFLINE_MINUTES go offline; their untouched tickets re-route."""
    runtime: Runtime = ctx["runtime"]
    minutes = runtime.settings.routing.idle_offline_minutes
    return len(await runtime.service.sweep_idle_agents(timedelta(minutes=minutes))) if minutes > 0 else 0


async def sweep_unlogged_calls(ctx: dict[str, Any]) -> int:
    """Calls a CTI hang-up ended but no process logged (it stopped between the two steps): logged now, once."""
    from channels.phone.call_events import log_ended

    runtime: Runtime = ctx["runtime"]
    ended = await runtime.service.unlogged_calls(runtime.clock.now() - timedelta(minutes=1))
    for change in ended:
        await log_ended(runtime, change)
    return len(ended)


async def yield_to_dispatch(ctx: dict[str, Any]) -> None:
    """Before each delivery: while this process's dispatcher is behind (a burst of receipts), wait for it, up to
    `DELIVERY_WAIT` s. Both share one event loop; a delivery is a notice a moment later, a dispatch is the ticket
    reaching an agent and its deadlines being set."""
    dispatcher = ctx["runtime"].dispatcher
    if dispatcher is not None:
        await dispatcher.caught_up(DELIVERY_WAIT)


def worker_settings(runtime: Runtime, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for `arq.worker.Worker`; a test checks each is a real parameter."""
    settings: dict[str, Any] = {
        "functions": [drain_queues, deliver_outbox, sweep_idle_agents, sweep_unlogged_calls],
        "on_job_start": yield_to_dispatch,
        "cron_jobs": [
            cron(drain_queues, second=0, unique=True, run_at_startup=True, name="cron:drain_queues"),
            cron(sweep_outbox, second=30, unique=True, run_at_startup=True, name="cron:sweep_outbox"),
            cron(sweep_idle_agents, second=15, unique=True, name="cron:sweep_idle_agents"),
            cron(sweep_unlogged_calls, second=40, unique=True, run_at_startup=True, name="cron:sweep_unlogged_calls"),
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
        "functions": [fire_deadline, sweep_deadlines, remind_contact, sweep_reminders],
        "cron_jobs": [cron(sweep_deadlines, second=45, unique=True, run_at_startup=True, name="cron:sweep_deadlines"),
                      cron(sweep_reminders, second=50, unique=True, run_at_startup=True,
                           name="cron:sweep_reminders")],
        "queue_name": TIMER_QUEUE,
        "on_job_start": None,  # a deadline fires on time, whatever the dispatcher's backlog
        "max_jobs": 10,
        "keep_result": 10,
    })
    settings.update(overrides)
    return settings


def build_worker(runtime: Runtime, **overrides: Any) -> Worker:
    return Worker(**worker_settings(runtime, **overrides))


class Supervised:
    """An arq worker that outlives a Redis outage. arq's loop ends with an error when Redis goes away (restarted,
    failed over, unreachable for a moment); a process that stopped then would stop the deliveries and the
    regulation clock until someone restarted it. Here a fresh worker starts once Redis answers again: its start-up
    sweeps fire the steps and send the notifications whose jobs a flushed or emptied Redis lost (the rows are in
    the database), and a job cut off mid-way runs again, as after any worker restart."""

    def __init__(self, make: Callable[[], Worker], *, first_wait: float = 1.0, longest_wait: float = 30.0) -> None:
        self._make = make
        self._first_wait = first_wait
        self._longest_wait = longest_wait
        self.worker = make()
        self.restarts = 0

    async def async_run(self) -> None:
        wait = self._first_wait
        while True:
            started = time.monotonic()
            try:
                await self.worker.async_run()
                return  # closed on purpose
            except (TimeoutError, RedisError, OSError) as exc:
                if time.monotonic() - started > 60:
                    wait = self._first_wait  # it ran a while: a new outage, not the same one going on
                log.warning("arq worker %s lost Redis (%s: %s); a new one starts in %.0f s",
                            self.worker.queue_name, type(exc).__name__, exc, wait)
            with contextlib.suppress(RedisError, OSError, asyncio.TimeoutError):
                await self.worker.close()  # its pool; Redis may still be away
            await asyncio.sleep(wait)
            wait = min(wait * 2, self._longest_wait)
            self.worker = self._make()
            self.restarts += 1

    async def close(self) -> None:
        try:
            await self.worker.close()
        except (TimeoutError, RedisError, OSError):
            log.info("closing arq worker %s without Redis", self.worker.queue_name)


def build_workers(runtime: Runtime) -> list[Supervised]:
    """What `switchboard worker` runs: deliveries and routing sweeps, and the regulation timers, each kept
    running through Redis outages."""
    return [Supervised(lambda: build_worker(runtime)), Supervised(lambda: Worker(**timer_worker_settings(runtime)))]
