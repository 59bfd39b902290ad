"""arq shells for the regulation clock: a deferred job per pending step, and the sweeper behind them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from arq.connections import ArqRedis

from tickets.enqueue import JobSpec, enqueue_all
from tickets.ports import Reminder, Timer

if TYPE_CHECKING:
    from sla.firing import Escalations

FIRE_JOB = "fire_deadline"
REMIND_JOB = "remind_contact"
"""The planned-contact reminder's job (`notifier.jobs.remind_contact`): it shares this queue's exact timers."""
TIMER_QUEUE = "arq:sla-timers"
"""A queue of its own: a burst worker (tests, a drain) waits for every deferred job of its queue, and these wait
days."""


class ArqTimers:
    """`tickets.ports.Timers` on arq: `_defer_until` the due time, the job id names the plan it was set for."""

    def __init__(self, redis: ArqRedis) -> None:
        self._redis = redis

    async def schedule(self, timers: Sequence[Timer | Reminder]) -> None:
        now = datetime.now(UTC)  # arq defers by the wall clock, whatever clock the services run on
        await enqueue_all(self._redis, [
            JobSpec(*_job(timer), queue=TIMER_QUEUE, defer_until=timer.due_at if timer.due_at > now else None)
            for timer in timers])


def _job(timer: Timer | Reminder) -> tuple[str, str, tuple[int, ...]]:
    """(function, job id, arguments) of a timer's job."""
    if isinstance(timer, Reminder):
        return REMIND_JOB, timer.job_id, (timer.planned_id,)
    return FIRE_JOB, timer.job_id, (timer.deadline_id, timer.plan)


async def fire_deadline(ctx: dict[str, Any], deadline_id: int, plan: int) -> str:
    """Acts only if this plan of the step is still pending and due; running twice acts once."""
    escalations: Escalations = ctx["runtime"].escalations
    return await escalations.fire(deadline_id, plan)


async def sweep_deadlines(ctx: dict[str, Any]) -> int:
    """Every minute: fire what is past due and not fired (a flushed Redis, a job lost with a killed worker)."""
    escalations: Escalations = ctx["runtime"].escalations
    return await escalations.sweep()
