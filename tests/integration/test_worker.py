"""The arq worker on real Redis: the queue-draining job routes what waits once an agent has room."""

from __future__ import annotations

from datetime import UTC

from sqlalchemy import update

from switchboard.bootstrap import Runtime
from switchboard.worker import build_worker
from tickets.inbound import Identity, Inbound
from tickets.models import Agent, Presence, TicketStatus


async def test_drain_job_assigns_waiting_tickets(runtime: Runtime, add_agent) -> None:
    agent, _ = await add_agent("Returning", presence=Presence.away)
    waiting = await runtime.service.ingest(
        Inbound(channel="webform", identities=(Identity("email", "w@example.com"),), body_text="anyone?")
    )
    assert waiting.ticket.status == TicketStatus.new
    # presence changed behind the service's back (as an idle-timeout job or a direct SQL fix would)
    async with runtime.sessions.begin() as session:
        await session.execute(update(Agent).where(Agent.id == agent.id).values(presence=Presence.available))

    job = await runtime.redis.enqueue_job("drain_queues", _job_id="test:drain")
    assert job is not None
    worker = build_worker(runtime, burst=True, cron_jobs=[])
    try:
        await worker.main()
    finally:
        await worker.close()

    assert await job.result(timeout=5) == 1
    view = await runtime.service.get_ticket(agent, waiting.ticket.id)
    assert view.ticket.assignee_id == agent.id and view.ticket.status == TicketStatus.open
    assert view.events[-1].reason is not None and view.events[-1].reason.startswith("from the queue")


async def test_jobs_enqueued_together_run_on_arq_and_an_id_is_taken_once(runtime: Runtime, add_agent) -> None:
    """`enqueue_all` writes what arq's own `enqueue_job` writes, in one round trip: a real worker runs the jobs,
    an id already queued (by either) is refused, and a deferred job waits in the queue's sorted set."""
    from datetime import datetime, timedelta

    from arq.jobs import Job, JobStatus

    from tickets.enqueue import JobSpec, enqueue_all

    agent, _ = await add_agent("Returning", presence=Presence.away)
    waiting = await runtime.service.ingest(
        Inbound(channel="webform", identities=(Identity("email", "w2@example.com"),), body_text="anyone?"))
    async with runtime.sessions.begin() as session:
        await session.execute(update(Agent).where(Agent.id == agent.id).values(presence=Presence.available))
    assert await runtime.redis.enqueue_job("drain_queues", _job_id="test:taken") is not None
    later = datetime.now(UTC) + timedelta(hours=1)
    added = await enqueue_all(runtime.redis, [
        JobSpec("drain_queues", "test:together"), JobSpec("drain_queues", "test:taken"),
        JobSpec("drain_queues", "test:together"),
        JobSpec("drain_queues", "test:later", defer_until=later, queue="arq:test-later")])
    assert added == [True, False, False, True]
    assert await runtime.redis.enqueue_job("drain_queues", _job_id="test:together") is None  # arq sees it too
    score = await runtime.redis.zscore("arq:test-later", "test:later")  # (a queue of its own: a burst worker
    # waits for every deferred job of its queue)
    assert score is not None and abs(score - later.timestamp() * 1000) < 1000

    worker = build_worker(runtime, burst=True, cron_jobs=[])
    try:
        await worker.main()
    finally:
        await worker.close()
    together = Job("test:together", runtime.redis)
    assert await together.status() == JobStatus.complete and await together.result(timeout=5) in (0, 1)
    assert await Job("test:later", runtime.redis, _queue_name="arq:test-later").status() == JobStatus.deferred
    view = await runtime.service.get_ticket(agent, waiting.ticket.id)
    assert view.ticket.assignee_id == agent.id
