"""The live feed of ticket changes for the consoles: a Redis pub/sub channel, told after each commit.

Best effort by design: a console that misses a message still shows the truth on its next refresh, and the
store never waits for a browser.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

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
        async for event in _events(self._redis, self.channel):
            try:
                yield [int(n) for n in event["tickets"]]
            except (ValueError, KeyError, TypeError):
                continue


async def _events(redis: Redis, channel: str) -> AsyncIterator[Any]:
    """Each JSON message published on the channel, until the caller stops (what is not JSON is skipped)."""
    pubsub = redis.pubsub()
    await pubsub.subscribe(channel)
    try:
        async for message in pubsub.listen():
            if message.get("type") != "message":
                continue
            try:
                yield json.loads(message["data"])
            except ValueError:
                continue
    finally:
        await pubsub.unsubscribe(channel)
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped


CALLS = "switchboard:{db}:calls"


class RedisCallFeed:
    """Calls as they ring, are answered and end: each message names the call and the agents to tell (empty: only
    the caller log cares). Each console stream listens, and pops the call for its agent."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self.channel = CALLS.format(db=redis.connection_pool.connection_kwargs.get("db", 0))

    async def changed(self, call_id: str, state: str, agents: Sequence[int]) -> None:
        await self._redis.publish(self.channel, json.dumps({"call": call_id, "state": state, "agents": list(agents)}))

    async def watch(self) -> AsyncIterator[tuple[str, str, list[int]]]:
        """(call id, state, agents) for each change, until the caller stops."""
        async for event in _events(self._redis, self.channel):
            try:
                yield str(event["call"]), str(event["state"]), [int(a) for a in event["agents"]]
            except (ValueError, KeyError, TypeError):
                continue


NOTICES = "switchboard:{db}:notices"


class RedisNoticeFeed:
    """Notices for one agent's console (a planned contact came due): `{"agent", "text", "link"}`."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self.channel = NOTICES.format(db=redis.connection_pool.connection_kwargs.get("db", 0))

    async def notice(self, agent_id: int, text: str, link: str) -> None:
        await self._redis.publish(self.channel, json.dumps({"agent": agent_id, "text": text, "link": link},
                                                           ensure_ascii=False))

    async def watch(self) -> AsyncIterator[tuple[int, dict[str, str]]]:
        """(agent id, {text, link}) for each notice, until the caller stops."""
        async for event in _events(self._redis, self.channel):
            try:
                yield int(event["agent"]), {"text": str(event["text"]), "link": str(event["link"])}
            except (ValueError, KeyError, TypeError):
                continue
