"""The dispatcher loop (in the worker, in `serve`, or with SWITCHBOARD_DISPATCH_BY=receiver in each receiving
process), and the wake receiving processes send it through Redis.

Each wake drains what is owed in batches (`TicketService.dispatch_owed`); receipts that commit while a batch runs
are taken by the next one, so the batches grow with the load. The sweep every few seconds dispatches what no wake
announced (a receipt whose process died before its wake went out, a wake Redis lost): any number of loops may run
against one database, and each owed ticket is taken by exactly one of them (`SKIP LOCKED`). A worker beside
processes that dispatch their own receipts takes only orphans, so it never holds a group's agents locked against a
live dispatcher.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from tickets.dispatch import BATCH
from tickets.service import TicketService

log = logging.getLogger(__name__)

SWEEP_SECONDS = 2.0
STOP_GRACE_SECONDS = 5.0
RETRY_SECONDS = 1.0
"""After a failed batch (the database away): wait this long, then try again."""
ORPHANED_AFTER = timedelta(seconds=5)
"""Owed this long, a ticket is taken to have lost the process that received it."""


def wake_channel(redis: Redis) -> str:
    """Pub/sub ignores Redis's database number: naming it keeps two installations on one server apart."""
    return f"switchboard:{redis.connection_pool.connection_kwargs.get('db', 0)}:dispatch"


class RedisWake:
    """The wake a receiving process sends when the worker dispatches: one PUBLISH per turn of its event loop, however
    many receipts committed in that turn. A lost wake costs one sweep interval, nothing more."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._channel = wake_channel(redis)
        self._pending: asyncio.Task[None] | None = None

    def __call__(self) -> None:
        if self._pending is None:
            self._pending = asyncio.get_running_loop().create_task(self._publish())

    async def _publish(self) -> None:
        self._pending = None
        try:
            await self._redis.publish(self._channel, b"1")
        except Exception:  # noqa: BLE001 - the dispatchers' sweep finds the tickets all the same
            log.debug("could not wake the dispatchers", exc_info=True)


class DispatchLoop:
    def __init__(self, service: TicketService, *, sweep_seconds: float = SWEEP_SECONDS, batch: int = BATCH,
                 orphans_only: bool = False, wakes: Redis | None = None) -> None:
        """`orphans_only`: take only tickets owed longer than `ORPHANED_AFTER` (a worker beside processes that
        dispatch their own receipts re-drives only what a dead one left, and never competes with the live ones).
        `wakes`: also wake on the `RedisWake`s other processes send."""
        self._service = service
        self._sweep_seconds = sweep_seconds
        self._batch = batch
        self._owed_for = ORPHANED_AFTER if orphans_only else None
        self._wakes = wakes
        self._woken = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._caught_up = asyncio.Event()
        self._caught_up.set()
        self._stopping = False

    def wake(self) -> None:
        self._woken.set()

    async def start(self) -> None:
        """Put the load counters right (weights may have changed since the last start), then run in the background
        and have this process's receipts wake the loop instead of dispatching themselves."""
        try:
            fixed = await self._service.recount_loads()
            if fixed:
                log.info("load counters of %d agents recounted", fixed)
        except Exception:  # noqa: BLE001 - the database may be away at start; routing still works on the counters
            log.warning("could not recount the agents' load counters", exc_info=True)
        self._task = asyncio.create_task(self._run(), name="dispatcher")
        if self._wakes is not None:
            self._listener = asyncio.create_task(self._listen(self._wakes), name="dispatcher wakes")
        self._service.wake_dispatcher = self.wake
        self.wake()  # what was owed before this process started

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Finish what is owed now if that takes less than `grace` seconds, then stop; a batch still in flight is
        cancelled, and its tickets stay owed for the next process that sweeps (nothing is lost)."""
        self._service.wake_dispatcher = None
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None
        if self._task is None:
            return
        self._stopping = True
        self.wake()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace)
        except TimeoutError:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._task = None

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await asyncio.wait_for(self._woken.wait(), self._sweep_seconds)
            except TimeoutError:
                pass
            self._woken.clear()
            await self.drain()

    async def caught_up(self, within: float) -> None:
        """Return once the last batch came back short (nothing left behind), or after `within` seconds."""
        if not self._caught_up.is_set():
            try:
                await asyncio.wait_for(self._caught_up.wait(), within)
            except TimeoutError:
                pass

    async def _listen(self, redis: Redis) -> None:
        """Wake on each message of the wake channel; resubscribe after a Redis outage (the sweep covers the gap)."""
        while True:
            try:
                async with redis.pubsub() as pubsub:
                    await pubsub.subscribe(wake_channel(redis))
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self.wake()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - Redis away: the sweep keeps dispatching meanwhile
                log.warning("lost the dispatch wakes; listening again in %s s", self._sweep_seconds, exc_info=True)
                await asyncio.sleep(self._sweep_seconds)

    async def drain(self) -> int:
        """Dispatch batches until one comes back short; returns how many tickets were dispatched."""
        total = 0
        while True:
            began = time.perf_counter()
            try:
                done = await self._service.dispatch_owed(limit=self._batch, owed_for=self._owed_for)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the tickets stay owed; the loop must outlive any outage
                log.warning("dispatch failed; retrying in %s s", RETRY_SECONDS, exc_info=True)
                await asyncio.sleep(RETRY_SECONDS)
                return total
            total += len(done.tickets)
            if done.tickets:
                log.debug("dispatched %d tickets (#%d-#%d) in %.0f ms, committed at %s", len(done.tickets),
                          min(t.id for t in done.tickets), max(t.id for t in done.tickets),
                          (time.perf_counter() - began) * 1000, datetime.now(UTC).isoformat())
            if len(done.tickets) < self._batch:
                self._caught_up.set()
                return total
            self._caught_up.clear()

