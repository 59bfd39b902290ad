"""The live feed of ticket changes for the consoles: a Redis pub/sub channel, told after each commit.

Best effort by design: a console that misses a message still shows the truth on its next refresh, and the
store never waits for a browser.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence

from redis.asyncio import Redis

CHANNEL = "switchboard:{db}:tickets:changed"
"""Pub/sub channels ignore Redis's database number: naming it keeps two deployments on one server apart."""


class RedisChangeFeed:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self.channel = CHANNEL.format(db=redis.connection_pool.connection_kwargs.get("db", 0))

    async def changed(self, numbers: Sequence[int]) -> None:
        await self._redis.publish(self.channel, json.dumps({"tickets": list(numbers)}))

    async def watch(self) -> AsyncIterator[list[int]]:
        """The ticket numbers of each change, as they are committed, until the caller stops."""
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(self.channel)
        try:
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                try:
                    yield [int(n) for n in json.loads(message["data"])["tickets"]]
                except (ValueError, KeyError, TypeError):
                    continue
        finally:
            await pubsub.unsubscribe(self.channel)
            await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
