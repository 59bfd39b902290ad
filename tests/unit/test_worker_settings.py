"""arq ignores unknown Worker arguments silently, so every one we pass must be a real parameter."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, cast

from arq.worker import Worker

from sla.jobs import FIRE_JOB, REMIND_JOB, TIMER_QUEUE
from switchboard.bootstrap import Runtime
from switchboard.settings import Settings
from switchboard.worker import timer_worker_settings, worker_settings


def test_every_worker_setting_is_a_worker_parameter() -> None:
    runtime = cast(Any, Runtime)(
        settings=Settings(data_dir=Path("/nonexistent")), engine=None, sessions=None, service=None,
        attachments=None, redis=None, redis_url="redis://127.0.0.1:1/0", clock=None,
    )
    parameters = set(inspect.signature(Worker.__init__).parameters) - {"self"}
    configured = worker_settings(runtime)
    assert set(configured) <= parameters, set(configured) - parameters
    assert {f.__name__ for f in configured["functions"]} == {
        "drain_queues", "deliver_outbox", "sweep_idle_agents", "sweep_unlogged_calls"}
    assert {c.name for c in configured["cron_jobs"]} == {
        "cron:drain_queues", "cron:sweep_outbox", "cron:sweep_idle_agents", "cron:sweep_unlogged_calls"
    }
    timers = timer_worker_settings(runtime)
    assert set(timers) <= parameters, set(timers) - parameters
    # FIRE_JOB: what ArqTimers enqueues
    assert {f.__name__ for f in timers["functions"]} == {FIRE_JOB, "sweep_deadlines", REMIND_JOB, "sweep_reminders"}
    assert [c.name for c in timers["cron_jobs"]] == ["cron:sweep_deadlines", "cron:sweep_reminders"]
    assert all(c.unique for c in timers["cron_jobs"])
    assert timers["queue_name"] == TIMER_QUEUE != configured.get("queue_name")
    assert configured["handle_signals"] is False
