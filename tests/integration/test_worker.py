"""The arq worker on real Redis: the queue-draining job routes what waits once an agent has room."""

from __future__ import annotations

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
