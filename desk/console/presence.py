"""Who has a ticket open, and who is typing a reply on it, across every web process: a Redis hash per ticket
(agent → their name, when last confirmed, until when typing) and a pub/sub channel that says "ticket N's
company changed". An entry older than `STALE_SECONDS` is ignored, so a process that died leaves no ghost."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from redis.asyncio import Redis

HEARTBEAT_SECONDS = 10.0
STALE_SECONDS = 30.0
TYPING_SECONDS = 6.0
T = TypeVar("T")


@dataclass(frozen=True)
class Company:
    """Another agent on the ticket."""

    agent_id: int
    name: str
    typing: bool


class TicketPresence:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        db = redis.connection_pool.connection_kwargs.get("db", 0)
        self._key = f"switchboard:{db}:viewing:{{}}"
        self.channel = f"switchboard:{db}:viewing"

    async def here(self, ticket: int, agent_id: int, name: str, *, typing: bool = False) -> None:
        """The agent has the ticket open (typing, if so) as of now; the others hear of it."""
        key = self._key.format(ticket)
        now = time.time()
        old = await _awaited(self._redis.hget(key, str(agent_id)))
        until = now + TYPING_SECONDS if typing else _typing_until(old)
        await _awaited(self._redis.hset(key, str(agent_id), json.dumps({"name": name, "at": now, "typing": until})))
        await self._redis.expire(key, int(STALE_SECONDS * 2))
        if old is None or typing != (_typing_until(old) > now):
            await self._redis.publish(self.channel, str(ticket))

    async def gone(self, ticket: int, agent_id: int) -> None:
        await _awaited(self._redis.hdel(self._key.format(ticket), str(agent_id)))
        await self._redis.publish(self.channel, str(ticket))

    async def company(self, ticket: int, agent_id: int) -> list[Company]:
        """The other agents on the ticket now, by name."""
        now = time.time()
        found = []
        entries: dict[Any, Any] = await _awaited(self._redis.hgetall(self._key.format(ticket)))
        for field, raw in entries.items():
            try:
                entry = json.loads(raw)
                other = int(field)
            except (ValueError, TypeError):
                continue
            if other != agent_id and now - float(entry.get("at", 0)) < STALE_SECONDS:
                found.append(Company(other, str(entry.get("name", "")), float(entry.get("typing", 0)) > now))
        return sorted(found, key=lambda c: c.name)

    async def watch(self) -> AsyncIterator[int]:
        """The numbers of tickets whose company changed, as it happens."""
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(self.channel)
        try:
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    try:
                        yield int(message["data"])
                    except (ValueError, TypeError):
                        continue
        finally:
            await pubsub.unsubscribe(self.channel)
            await pubsub.aclose()


async def _awaited(answer: Awaitable[T] | T) -> T:
    """redis-py types its hash commands for both of its clients; the asyncio one always answers an awaitable."""
    return await cast(Awaitable[T], answer)


def _typing_until(raw: bytes | str | None) -> float:
    if raw is None:
        return 0.0
    try:
        return float(json.loads(raw).get("typing", 0))
    except (ValueError, TypeError, AttributeError):
        return 0.0
