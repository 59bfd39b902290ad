"""Long polling with our own loop: the offset moves past an update only after it was committed.

aiogram's `Dispatcher.start_polling` confirms updates on its own schedule; here `getUpdates(offset=N)`
is what acknowledges everything below N, so N is advanced one stored update at a time. When the store
is away the loop stops advancing, backs off and fetches the same updates again.
"""

from __future__ import annotations

import asyncio
import logging
import random

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramRetryAfter, TelegramUnauthorizedError

from channels.chat.telegram.updates import ALLOWED_UPDATES, TelegramUpdates, TryLater
from tickets.errors import StoreUnavailable

log = logging.getLogger(__name__)


class TelegramPoller:
    def __init__(
        self,
        bot: Bot,
        updates: TelegramUpdates,
        *,
        timeout: int = 25,
        first_backoff: float = 1.0,
        max_backoff: float = 60.0,
    ) -> None:
        self._bot = bot
        self._updates = updates
        self.timeout = timeout
        self.offset: int | None = None
        """The next update id to ask for; everything below it is stored (or was never ours to store)."""
        self._first_backoff = first_backoff
        self._max_backoff = max_backoff
        self._failures = 0

    async def step(self) -> int:
        """One getUpdates and the updates it returned, in order; returns how many were committed.

        Raises `StoreUnavailable`/`TryLater` at the first update that could not be stored: the offset stays
        before it, so the next step fetches it again.
        """
        batch = await self._bot.get_updates(offset=self.offset, timeout=self.timeout, allowed_updates=ALLOWED_UPDATES)
        done = 0
        for update in batch:
            if self.offset is not None and update.update_id < self.offset:
                continue
            outcome = await self._updates.receive(update)
            log.info("telegram update %s: %s", update.update_id, outcome)
            self.offset = update.update_id + 1
            done += 1
        return done

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set; failures back off exponentially (with jitter) and never skip an update."""
        try:
            # getUpdates is refused while a webhook is set; pending updates are kept (not dropped).
            await self._bot.delete_webhook(drop_pending_updates=False)
        except TelegramAPIError as exc:
            log.warning("could not remove a webhook before polling: %s", exc)
        while not stop.is_set():
            try:
                await self.step()
                self._failures = 0
                continue
            except TelegramRetryAfter as exc:
                delay: float = exc.retry_after
            except TelegramUnauthorizedError as exc:
                log.error("Telegram refuses the bot token: %s", exc)
                delay = self._max_backoff
            except (StoreUnavailable, TryLater) as exc:
                self._failures += 1
                delay = self._delay()
                log.warning("telegram update not stored (%s); retrying it in %.1f s", exc, delay)
            except (TimeoutError, TelegramAPIError, OSError) as exc:
                self._failures += 1
                delay = self._delay()
                log.warning("getUpdates failed (%r); retrying in %.1f s", exc, delay)
            except Exception:  # noqa: BLE001 - a bug on one update must not end the channel; it is retried
                self._failures += 1
                delay = self._delay()
                log.exception("telegram update failed; retrying in %.1f s", delay)
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except TimeoutError:
                pass

    def _delay(self) -> float:
        base = min(self._max_backoff, self._first_backoff * 2 ** max(0, self._failures - 1))
        return base * (0.8 + 0.4 * random.random())
