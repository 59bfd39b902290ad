"""Enqueuing several arq jobs in one Redis round trip. arq's `enqueue_job` makes three per job (WATCH and
EXISTS, then MULTI/PSETEX/ZADD/EXEC); an ingest enqueues two or three jobs after its commit (the
acknowledgement, the agent's notice, the regulation timer), ~6 ms of one core per ticket (bench, issue 10).
Here each job is one small Lua script — the same check-then-write arq does, atomic in Redis — and all of them
go in one pipeline. The keys, payload and score are exactly arq's, so its workers cannot tell the difference."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from arq.connections import ArqRedis
from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms, to_unix_ms

# KEYS: job key, result key, queue. ARGV: expiry (ms), serialized job, score, job id.
_ENQUEUE = """
if redis.call('exists', KEYS[1], KEYS[2]) > 0 then return 0 end
redis.call('psetex', KEYS[1], ARGV[1], ARGV[2])
redis.call('zadd', KEYS[3], ARGV[3], ARGV[4])
return 1
"""


@dataclass(frozen=True)
class JobSpec:
    function: str
    job_id: str
    args: tuple[Any, ...] = ()
    queue: str | None = None
    defer_until: datetime | None = None
    defer_by: timedelta | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


async def enqueue_all(redis: ArqRedis, jobs: Sequence[JobSpec]) -> list[bool]:
    """Each job unless one with its id is queued or its result kept (as arq's `enqueue_job`); True where new."""
    if not jobs:
        return []
    now_ms = timestamp_ms()
    async with redis.pipeline(transaction=False) as pipe:
        for job in jobs:
            if job.defer_until is not None:
                score = to_unix_ms(job.defer_until)
            elif job.defer_by is not None and job.defer_by > timedelta(0):
                score = now_ms + int(job.defer_by.total_seconds() * 1000)
            else:
                score = now_ms
            expires_ms = max(score - now_ms, 0) + redis.expires_extra_ms
            payload = serialize_job(job.function, job.args, job.kwargs, None, now_ms, serializer=redis.job_serializer)
            # redis-py types a script's arguments as text; Redis takes any bulk string (the payload is bytes)
            arguments: list[Any] = [expires_ms, payload, score, job.job_id]
            pipe.eval(_ENQUEUE, 3, job_key_prefix + job.job_id, result_key_prefix + job.job_id,
                      job.queue or redis.default_queue_name, *arguments)
        answers = await pipe.execute()
    return [bool(answer) for answer in answers]
