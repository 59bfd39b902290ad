"""Routing under concurrent ingest from several web processes: every ticket assigned once, loads even.

The processes answer once the receipt is stored; each dispatches its own receipts (SWITCHBOARD_DISPATCH_BY=receiver),
both at once, in batches, each ticket once."""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp
import pytest
from sqlalchemy import func, select

from switchboard.bootstrap import Runtime
from switchboard.settings import Settings
from tests.conftest import wait_dispatched, wait_healthy, web_processes
from tickets.models import Event, Ticket, TicketStatus

POSTS = 200
AGENTS = 5


@pytest.mark.postgresql_only
async def test_200_concurrent_posts_over_5_agents_from_two_processes(
    runtime: Runtime, settings: Settings, add_agent
) -> None:
    agents = [(await add_agent(f"Agent {n}", capacity=100))[0] for n in range(AGENTS)]

    with web_processes(settings, 2, SWITCHBOARD_DISPATCH_BY="receiver") as urls:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            for url in urls:
                await wait_healthy(session, url)

            async def post(n: int) -> int:
                payload = {"name": f"Client {n}", "email": f"client{n}@example.com", "message": f"request {n}"}
                async with session.post(f"{urls[n % len(urls)]}/api/v1/webform", json=payload) as response:
                    assert response.status == 201, await response.text()
                    return int((await response.json())["number"])

            numbers = await asyncio.gather(*(post(n) for n in range(POSTS)))
            await wait_dispatched(runtime)

    assert len(set(numbers)) == POSTS
    async with runtime.sessions() as db:
        tickets = list(await db.scalars(select(Ticket)))
        assigned_events = list(await db.scalars(select(Event).where(Event.kind == "assigned")))
        queued = await db.scalar(select(func.count()).select_from(Event).where(Event.kind == "queued"))

    assert len(tickets) == POSTS
    assert all(t.status == TicketStatus.open and t.assignee_id is not None for t in tickets)
    loads = Counter(t.assignee_id for t in tickets)
    assert set(loads) == {a.id for a in agents}
    assert max(loads.values()) - min(loads.values()) <= 1, loads

    # the audit trail agrees: exactly one assignment per ticket, to the agent that holds it
    assert queued == 0
    assert sorted(e.ticket_id for e in assigned_events) == sorted(t.id for t in tickets)
    holder = {t.id: t.assignee_id for t in tickets}
    assert all(e.data["agent_id"] == holder[e.ticket_id] for e in assigned_events)
    views = await runtime.service.list_agents()
    assert {v.agent.id: v.load.open for v in views} == dict(loads)
