"""Fixed-window limits in Redis (per client IP for forms, per sender for mail), shared by every process."""

from __future__ import annotations

import logging
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

class RateLimiter:
    def __init__(self, redis: Redis, limit: int, *, prefix: str, window_seconds: int = 60) -> None:
        self._redis = redis
        self._limit = limit
        self._prefix = prefix
        self._window = window_seconds

    async def retry_after(self, client: str) -> int | None:
        """Seconds until the client may post again, or None when this post is allowed."""
        if self._limit <= 0:
            return None
        window = int(time.time()) // self._window
        key = f"{self._prefix}:{client}:{window}"
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, self._window * 2)
                count, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            # Spam protection must not cost a real client's message: without Redis, let it through.
            log.warning("rate limiter unavailable, allowing %s: %s", client, exc)
            return None
        if int(count) <= self._limit:
            return None
        return self._window - int(time.time()) % self._window or 1
