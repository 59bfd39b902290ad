"""Server-sent events for the console: one `tickets` event per committed change, so an open queue refreshes
itself. The event says only that something changed — not which tickets, since an agent may not see them all;
the page fetches its own view again, with its own permissions.

Every stream also hears `call` (JSON: the call id and its state) when a call rings for its agent, is taken or
ends, `calls` when any call changes (the caller log refreshes), and `notice` (JSON: text, link) when a contact
the agent planned comes due; `?only=calls` is a stream of those alone, for
pages that show no tickets. A ticket page asks for its ticket (`?ticket=N`, one the agent may open): it hears
`ticket` when that ticket changed, and `company` (JSON: the other agents who have it open, and whether each is
typing) when that changes or every heartbeat. While the stream is open the agent counts as on the ticket, in
every web process."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import web

from desk.console.auth import form_of, require
from desk.console.presence import HEARTBEAT_SECONDS, TicketPresence
from notifier.live import RedisCallFeed, RedisChangeFeed, RedisNoticeFeed
from tickets.numbers import as_id
from web.http import path_id
from web.runtime import runtime

KEEPALIVE_SECONDS = 15.0
STREAMS: web.AppKey[set[asyncio.Task[Any]]] = web.AppKey("console_streams", set)
"""The event streams this process is serving: stopped at shutdown, or each would hold it for the grace period."""


def setup(app: web.Application) -> None:
    app[STREAMS] = set()

    async def stop_streams(app: web.Application) -> None:
        streams: set[asyncio.Task[Any]] = app[STREAMS]
        for task in [*streams]:
            task.cancel()

    app.on_shutdown.append(stop_streams)


async def events(request: web.Request) -> web.StreamResponse:
    signed = await require(request)
    rt = runtime(request)
    ticket = as_id(request.query.get("ticket", ""))
    if ticket is not None:
        await rt.service.get_ticket(signed.agent, ticket)  # 404 unless the agent may open it
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    streams = request.app.get(STREAMS)
    current = asyncio.current_task()
    if streams is not None and current is not None:
        streams.add(current)
        current.add_done_callback(streams.discard)
    sends: asyncio.Queue[tuple[str, str]] = asyncio.Queue(maxsize=100)
    presence = TicketPresence(rt.redis)

    def send(kind: str, data: str = "changed") -> None:
        with contextlib.suppress(asyncio.QueueFull):  # a console far behind just refreshes once
            sends.put_nowait((kind, data))

    async def changes() -> None:
        async for numbers in RedisChangeFeed(rt.redis).watch():
            if ticket is None:
                send("tickets")
            elif ticket in numbers:
                send("ticket")

    async def company() -> None:
        async for number in presence.watch():
            if number == ticket:
                send("company")

    async def heartbeat() -> None:
        assert ticket is not None
        while True:
            await presence.here(ticket, signed.agent.id, signed.agent.name)
            send("company")
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def calls() -> None:
        async for call_id, state, agents in RedisCallFeed(rt.redis).watch():
            if signed.agent.id in agents:
                send("call", json.dumps({"call": call_id, "state": state}))
            send("calls")

    async def notices() -> None:
        async for agent_id, notice in RedisNoticeFeed(rt.redis).watch():
            if agent_id == signed.agent.id:
                send("notice", json.dumps(notice, ensure_ascii=False))

    readers = [asyncio.create_task(calls()), asyncio.create_task(notices())]
    if request.query.get("only") != "calls":
        readers.append(asyncio.create_task(changes()))
    if ticket is not None:
        readers += [asyncio.create_task(company()), asyncio.create_task(heartbeat())]
    try:
        await response.write(b"retry: 3000\n: connected\n\n")
        while not any(reader.done() for reader in readers):
            try:
                kind, data = await asyncio.wait_for(sends.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            if kind == "company" and ticket is not None:
                others = await presence.company(ticket, signed.agent.id)
                data = json.dumps([{"name": o.name, "typing": o.typing} for o in others], ensure_ascii=False)
            await response.write(f"event: {kind}\ndata: {data}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        for reader in readers:
            reader.cancel()
        for reader in readers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        if ticket is not None:
            with contextlib.suppress(Exception):  # Redis may be away; the entry goes stale by itself
                await asyncio.shield(presence.gone(ticket, signed.agent.id))
    return response


async def typing(request: web.Request) -> web.Response:
    """The agent is typing a reply on the ticket (the page says so every few seconds while they type)."""
    signed = await require(request)
    await form_of(request, signed)
    rt = runtime(request)
    number = path_id(request, "number")
    await rt.service.get_ticket(signed.agent, number)
    await TicketPresence(rt.redis).here(number, signed.agent.id, signed.agent.name, typing=True)
    return web.Response(status=204)
