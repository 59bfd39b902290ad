"""Server-sent events for the console: one `tickets` event per committed change, so an open queue refreshes
itself. The event says only that something changed — not which tickets, since an agent may not see them all;
the page fetches its own view again, with its own permissions."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from desk.console.auth import require
from notifier.live import RedisChangeFeed
from web.runtime import runtime

KEEPALIVE_SECONDS = 15.0


async def events(request: web.Request) -> web.StreamResponse:
    await require(request)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    changes: asyncio.Queue[None] = asyncio.Queue(maxsize=100)

    async def listen() -> None:
        async for _numbers in RedisChangeFeed(runtime(request).redis).watch():
            with contextlib.suppress(asyncio.QueueFull):  # a console far behind just refreshes once
                changes.put_nowait(None)

    reader = asyncio.create_task(listen())
    try:
        await response.write(b"retry: 3000\n: connected\n\n")
        while not reader.done():
            try:
                await asyncio.wait_for(changes.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            await response.write(b"event: tickets\ndata: changed\n\n")
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
    return response
