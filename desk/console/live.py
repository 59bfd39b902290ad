"""Server-sent events for the console: one `tickets` event per committed change, so an open queue refreshes
itself. The event carries ticket numbers only; the page fetches its own view again, with its own permissions."""

from __future__ import annotations

import asyncio
import contextlib
import json

from aiohttp import web

from desk.console.auth import require
from desk.http import runtime
from notifier.live import RedisChangeFeed

KEEPALIVE_SECONDS = 15.0


async def events(request: web.Request) -> web.StreamResponse:
    await require(request)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    changes: asyncio.Queue[list[int]] = asyncio.Queue(maxsize=100)

    async def listen() -> None:
        async for numbers in RedisChangeFeed(runtime(request).redis).watch():
            with contextlib.suppress(asyncio.QueueFull):  # a console far behind just refreshes once
                changes.put_nowait(numbers)

    reader = asyncio.create_task(listen())
    try:
        await response.write(b"retry: 3000\n: connected\n\n")
        while not reader.done():
            try:
                numbers = await asyncio.wait_for(changes.get(), KEEPALIVE_SECONDS)
            except asyncio.TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            await response.write(f"event: tickets\ndata: {json.dumps(numbers)}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
    return response
