"""GET /metrics in Prometheus' text format: this process (memory, CPU, open files — what a soak test watches
for growth — and its HTTP requests by route and status, with latency), and the store as every process sees it
(tickets by status, waiting per group, pending and overdue deadlines, notifications by status, agents by
presence). Counts only: no names, addresses or subjects. The store's figures are read at each scrape."""

from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import func, select

from tickets.models import Agent, Deadline, DeadlineStatus, Group, Outbox, Ticket, TicketStatus
from web.endpoints import Endpoint
from web.http import Handler
from web.runtime import Runtime, runtime

REQUESTS = Counter("switchboard_http_requests", "HTTP requests answered by this process",
                   ("method", "route", "status"))
LATENCY = Histogram("switchboard_http_request_seconds", "Time to answer an HTTP request", ("route",),
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


@web.middleware
async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Per route pattern (`/api/v1/tickets/{number}`), never the raw path: ticket numbers would be labels."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        info = request.match_info.route.resource
        route = info.canonical if info is not None else "unmatched"
        REQUESTS.labels(request.method, route, str(status)).inc()
        LATENCY.labels(route).observe(time.perf_counter() - started)


async def metrics(request: web.Request) -> web.Response:
    rt = runtime(request)
    store = CollectorRegistry()
    families = await _store_families(rt)

    class _Store:
        def collect(self) -> list[GaugeMetricFamily]:
            return families

    store.register(_Store())
    body = generate_latest(REGISTRY) + generate_latest(store)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _store_families(rt: Runtime) -> list[GaugeMetricFamily]:
    now = rt.clock.now()
    async with rt.store.session() as session:
        tickets = await session.execute(select(Ticket.status, func.count()).group_by(Ticket.status))
        waiting = await session.execute(
            select(Group.name, func.count(Ticket.id)).join(Ticket, (Ticket.group_id == Group.id)
                                                           & (Ticket.status == TicketStatus.new), isouter=True)
            .group_by(Group.name))
        pending = await session.scalar(select(func.count()).select_from(Deadline)
                                       .where(Deadline.status == DeadlineStatus.pending))
        overdue = await session.scalar(select(func.count()).select_from(Deadline)
                                       .where(Deadline.status == DeadlineStatus.pending, Deadline.due_at < now))
        outbox = await session.execute(select(Outbox.channel, Outbox.status, func.count())
                                       .group_by(Outbox.channel, Outbox.status))
        agents = await session.execute(select(Agent.presence, func.count()).group_by(Agent.presence))
    by_status = GaugeMetricFamily("switchboard_tickets", "Tickets by status", labels=["status"])
    for status, count in tickets:
        by_status.add_metric([str(status)], count)
    queue = GaugeMetricFamily("switchboard_queue_waiting", "New tickets no agent has yet, per group", labels=["group"])
    for name, count in waiting:
        queue.add_metric([name], count)
    deadlines = GaugeMetricFamily("switchboard_deadlines_pending", "Regulation steps pending", labels=["state"])
    deadlines.add_metric(["due_later"], (pending or 0) - (overdue or 0))
    deadlines.add_metric(["overdue"], overdue or 0)
    notices = GaugeMetricFamily("switchboard_notifications", "Outbox rows by channel and status",
                                labels=["channel", "status"])
    for channel, delivery, count in outbox:
        notices.add_metric([channel, str(delivery)], count)
    presence = GaugeMetricFamily("switchboard_agents", "Agents by presence", labels=["presence"])
    for state, count in agents:
        presence.add_metric([str(state)], count)
    return [by_status, queue, deadlines, notices, presence]


ENDPOINTS = [
    Endpoint("GET", "/metrics", metrics, "Prometheus metrics: this process, and the store's counts", "operations",
             auth=False, response_media="text/plain"),
]
