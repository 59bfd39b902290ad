"""arq jobs for delivery, as one-line shells, and the job queue the ticket services tell after commit.

Job ids are `notify:{outbox_id}:{attempts so far}`: deterministic, so enqueuing twice is harmless, and
versioned, because arq refuses an id again while the earlier job's result is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from arq.connections import ArqRedis

from notifier.delivery import Deliverer
from notifier.live import RedisNoticeFeed
from notifier.reminders import plan_link, reminder_words
from tickets.enqueue import JobSpec, enqueue_all

log = logging.getLogger(__name__)

DELIVER_JOB = "deliver_outbox"


def job_id(outbox_id: int, attempt: int, due_at: datetime | None = None, swept_at: datetime | None = None) -> str:
    """`due_at` names a job that waits for a row queued for later (its id differs from the job that found it early);
    `swept_at` one the sweeper adds beside a job that should have run long ago (see `sweep`)."""
    suffix = f":due{int(due_at.timestamp())}" if due_at is not None else ""
    suffix += f":swept{int(swept_at.timestamp())}" if swept_at is not None else ""
    return f"notify:{outbox_id}:{attempt}{suffix}"


class ArqJobQueue:
    """`tickets.ports.JobQueue` on arq: one delivery job per outbox row and attempt."""

    def __init__(self, redis: ArqRedis) -> None:
        self._redis = redis

    async def deliver(self, outbox_ids: Sequence[int]) -> None:
        """The first attempt of each, in one round trip (what a committed transaction hands over)."""
        await enqueue_all(self._redis, [JobSpec(DELIVER_JOB, job_id(outbox_id, 0), (outbox_id,))
                                        for outbox_id in outbox_ids])

    async def enqueue(
        self, outbox_id: int, attempt: int, *, defer_by: timedelta | None = None, due_at: datetime | None = None,
        swept_at: datetime | None = None,
    ) -> bool:
        """Queue the delivery attempt after `attempt` earlier ones; False when that job exists already."""
        job = await self._redis.enqueue_job(
            DELIVER_JOB,
            outbox_id,
            _job_id=job_id(outbox_id, attempt, due_at, swept_at),
            _defer_by=defer_by if defer_by and defer_by > timedelta(0) else None,
        )
        return job is not None


async def deliver_then_reschedule(deliverer: Deliverer, queue: ArqJobQueue, outbox_id: int) -> str:
    """One attempt; after a temporary failure the next attempt is queued for when the backoff ends."""
    attempt = await deliverer.attempt(outbox_id)
    if attempt.retry_in is not None:
        await queue.enqueue(outbox_id, attempt.attempts, defer_by=attempt.retry_in, due_at=attempt.due_at)
    return attempt.status


async def sweep(deliverer: Deliverer, queue: ArqJobQueue) -> int:
    """Queue a job for every row that is due or was abandoned mid-send; returns how many were new to Redis.

    A late row whose job exists gets one more job, named by this sweep: a worker killed after arq handed it the job
    and before it claimed the row leaves that job marked in progress, and arq neither runs it nor takes its id
    again until the job timeout (minutes) ends. A second job for a row that was only slow is harmless: the claim
    lets one run send."""
    enqueued = 0
    now = datetime.now(UTC)
    for outbox_id, attempts, late in await deliverer.due():
        enqueued += await queue.enqueue(outbox_id, attempts) or (
            late and await queue.enqueue(outbox_id, attempts, swept_at=now))
    if enqueued:
        log.info("outbox sweep queued %d deliveries Redis did not have", enqueued)
    return enqueued


async def deliver_outbox(ctx: dict[str, Any], outbox_id: int) -> str:
    """Deliver one outbox row (idempotent: it runs twice sometimes)."""
    return await deliver_then_reschedule(ctx["runtime"].deliverer, ArqJobQueue(ctx["redis"]), outbox_id)


async def sweep_outbox(ctx: dict[str, Any]) -> int:
    """Every minute: deliveries whose job Redis lost, or whose worker died, get a job again."""
    return await sweep(ctx["runtime"].deliverer, ArqJobQueue(ctx["redis"]))


async def remind_contact(ctx: dict[str, Any], planned_id: int) -> str:
    """A planned contact's timer: remind its agent once (console notice, and the medium they chose)."""
    runtime = ctx["runtime"]
    done = await runtime.service.remind(planned_id, runtime.reminders.queue if runtime.reminders else None)
    if done is None:
        return "nothing to remind"
    await _tell_console(runtime, done)
    log.info("reminded agent %s of planned contact %s, %.3f s after it was due", done.planned.agent_id, planned_id,
             done.lateness.total_seconds())
    return f"reminded {done.lateness.total_seconds():.3f} s late"


async def sweep_reminders(ctx: dict[str, Any]) -> int:
    """Every minute: remind what came due and was not (a timer lost with Redis, a worker killed mid-job)."""
    return sum([await remind_contact(ctx, planned_id) != "nothing to remind"
                for planned_id in await ctx["runtime"].service.due_reminders()])


async def _tell_console(runtime: Any, done: Any) -> None:
    subject, _ = reminder_words(done.planned, done.customer, done.language, "")
    try:
        await RedisNoticeFeed(runtime.redis).notice(done.planned.agent_id, subject, plan_link(done.planned))
    except Exception:  # noqa: BLE001 - the console shows the plan as due anyway; the mail or Telegram still goes
        log.warning("could not tell agent %s's console of planned contact %s", done.planned.agent_id,
                    done.planned.id, exc_info=True)
