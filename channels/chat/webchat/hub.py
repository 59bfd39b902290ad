"""The sockets this web process holds, by visitor, fed from the one Redis pub/sub channel all processes share.

A reply is published once (by the worker); whichever process holds the visitor's socket passes it on.
If the subscription drops, events published meanwhile are lost to it: after resubscribing every socket
is told to resync, and the browser asks for its history again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from notifier.webchat import EVENTS, envelope

log = logging.getLogger(__name__)

RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0)


class ChatHub:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._sockets: dict[str, set[web.WebSocketResponse]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()
        """Set while the subscription is live (tests and health wait on it)."""

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="webchat-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for sockets in list(self._sockets.values()):
            for ws in list(sockets):
                await ws.close(code=1001, message=b"server shutting down")

    def join(self, visitor: str, ws: web.WebSocketResponse) -> None:
        self._sockets[visitor].add(ws)

    def leave(self, visitor: str, ws: web.WebSocketResponse) -> None:
        sockets = self._sockets.get(visitor)
        if sockets is not None:
            sockets.discard(ws)
            if not sockets:
                del self._sockets[visitor]

    @property
    def connections(self) -> int:
        return sum(len(s) for s in self._sockets.values())

    async def publish(self, visitor: str, event: Mapping[str, Any]) -> None:
        """Tell every socket of this visitor, in any process (their other tabs see what they sent)."""
        try:
            await self._redis.publish(EVENTS, envelope(visitor, event))
        except (RedisError, OSError) as exc:
            # Only the other tabs miss it live; they get it with the history on their next resync.
            log.warning("web chat: could not publish to %s's other tabs: %r", visitor, exc)

    async def _listen(self) -> None:
        failures = 0
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(EVENTS)
                self.subscribed.set()
                if failures:
                    log.info("web chat: subscription back; asking %d sockets to resync", self.connections)
                    await self._broadcast({"type": "resync"})
                failures = 0
                while True:
                    message = await pubsub.get_message(timeout=30.0)
                    if message is not None and message.get("type") == "message":
                        await self._dispatch(message["data"])
            except (RedisError, OSError) as exc:
                self.subscribed.clear()
                delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                failures += 1
                log.warning("web chat: Redis subscription lost (%r); again in %s s", exc, delay)
                await asyncio.sleep(delay)
            finally:
                try:
                    await pubsub.aclose()
                except (RedisError, OSError):
                    pass

    async def _dispatch(self, data: bytes | str) -> None:
        try:
            parsed = json.loads(data)
            visitor, event = parsed["visitor"], parsed["event"]
        except (ValueError, KeyError, TypeError):
            log.warning("web chat: ignoring a malformed event %r", data[:200])
            return
        for ws in list(self._sockets.get(visitor, ())):
            await _send(ws, event)

    async def _broadcast(self, event: Mapping[str, Any]) -> None:
        for sockets in list(self._sockets.values()):
            for ws in list(sockets):
                await _send(ws, event)


async def _send(ws: web.WebSocketResponse, event: Mapping[str, Any]) -> None:
    if ws.closed:
        return
    try:
        await ws.send_json(event)
    except (ConnectionResetError, RuntimeError) as exc:  # the socket closed under us
        log.debug("web chat: socket gone while sending: %r", exc)
