"""arq shells for the regulation clock: a deferred job per pending step, and the sweeper behind them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from arq.connections import ArqRedis

from tickets.enqueue import JobSpec, enqueue_all
from tickets.ports import Timer

if TYPE_CHECKING:
    from sla.firing import Escalations

FIRE_JOB = "fire_deadline"
TIMER_QUEUE = "arq:sla-timers"
"""A queue of its own: a burst worker (tests, a drain) waits for every deferred job of its queue, and these wait
days."""


class ArqTimers:
    """`tickets.ports.Timers` on arq: `_defer_until` the due time, the job id names the plan it was set for."""

    def __init__(self, redis: ArqRedis) -> None:
        self._redis = redis

    async def schedule(self, timers: Sequence[Timer]) -> None:
        now = datetime.now(UTC)  # arq defers by the wall clock, whatever clock the services run on
        await enqueue_all(self._redis, [
            JobSpec(FIRE_JOB, timer.job_id, (timer.deadline_id, timer.plan), queue=TIMER_QUEUE,
                    defer_until=timer.due_at if timer.due_at > now else None) for timer in timers])


async def fire_deadline(ctx: dict[str, Any], deadline_id: int, plan: int) -> str:
    """Acts only if this plan of the step is still pending and due; running twice acts once."""
    escalations: Escalations = ctx["runtime"].escalations
    return await escalations.fire(deadline_id, plan)


async def sweep_deadlines(ctx: dict[str, Any]) -> int:
    """Every minute: fire what is past due and not fired (a flushed Redis, a job lost with a killed worker)."""
    escalations: Escalations = ctx["runtime"].escalations
    return await escalations.sweep()
