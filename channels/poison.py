"""Poison isolation, the same on every channel: an item whose storing fails for a reason other than an outage is
tried again a few times, then parked whole in the dead-letter table (`TicketService.park`) so the channel moves on
to the next client's item. An outage (`StoreUnavailable`) and what a channel retries on its own pass through: the
item waits, it is not poison."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tickets.errors import StoreUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
ATTEMPTS = 3
PAUSE = 0.2
"""Seconds before the second attempt; doubled before each next one."""


@dataclass(frozen=True)
class ParkedItem:
    number: int
    """Its id in the dead-letter table (`switchboard parked list`)."""
    error: str


async def store_or_park(
    work: Callable[[], Awaitable[T]],
    park: Callable[[str, int], Awaitable[int]],
    *,
    passes: tuple[type[BaseException], ...] = (),
    attempts: int = ATTEMPTS,
    what: str = "item",
) -> T | ParkedItem:
    """`work()`'s result, or the item parked by `park(error, attempts)` once every attempt failed. Exceptions in
    `passes` (and `StoreUnavailable`) are raised at once; so is a failure to park."""
    error = ""
    waits: tuple[type[BaseException], ...] = (StoreUnavailable, *passes)
    for attempt in range(1, attempts + 1):
        try:
            return await work()
        except waits:
            raise
        except Exception as exc:  # noqa: BLE001 - one poisoned item must not stop its channel
            error = f"{type(exc).__name__}: {exc}"[:4000]
            log.warning("%s failed (attempt %d of %d): %s", what, attempt, attempts, error, exc_info=True)
            if attempt < attempts:
                await asyncio.sleep(PAUSE * 2 ** (attempt - 1))
    number = await park(error, attempts)
    log.error("%s parked as item %d after %d attempts: %s", what, number, attempts, error)
    return ParkedItem(number, error)
