"""Sending outbox rows to Telegram with the bot: split at Telegram's limit, 429/5xx retried, a blocked bot final.

Kept apart from `notifier.telegram` because importing aiogram costs seconds: only a process with a token pays it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)

from notifier.senders import PermanentFailure, TemporaryFailure
from notifier.telegram import BLOCKED, MAX_INLINE_WAIT, split_text

log = logging.getLogger(__name__)
PIECES_SENT = "pieces_sent"
LAST_SENT_ID = "last_sent_id"


class TelegramSender:
    """Sends one outbox row's text with the bot: 429 waits as told, 5xx/network retry later, 403 is final."""

    def __init__(self, bot: Bot, *, max_inline_wait: float = MAX_INLINE_WAIT) -> None:
        self.bot = bot
        self._max_inline_wait = max_inline_wait

    async def send_text(self, chat_id: str, text: str, details: Mapping[str, Any]) -> str | None:
        """Send the pieces in order, skipping those an earlier attempt sent; returns the last Telegram message id."""
        done = int(details.get(PIECES_SENT, 0) or 0)
        sent_id: int | None = details.get(LAST_SENT_ID)
        for index, piece in enumerate(split_text(text)):
            if index < done:
                continue
            try:
                sent_id = await self._send_piece(chat_id, piece)
            except TemporaryFailure as exc:
                if index:
                    exc.progress = {PIECES_SENT: index, LAST_SENT_ID: sent_id}
                raise
        return str(sent_id) if sent_id is not None else None

    async def _send_piece(self, chat_id: str, piece: str) -> int:
        for _ in range(5):
            try:
                sent = await self.bot.send_message(chat_id, piece)
                return sent.message_id
            except TelegramRetryAfter as exc:
                if exc.retry_after > self._max_inline_wait:
                    raise TemporaryFailure(f"Telegram rate limit: retry after {exc.retry_after} s",
                                           retry_after=timedelta(seconds=exc.retry_after)) from exc
                log.info("Telegram asks to wait %s s before sending to %s", exc.retry_after, chat_id)
                await asyncio.sleep(exc.retry_after)
            except TelegramForbiddenError as exc:
                raise PermanentFailure(BLOCKED) from exc
            except (TelegramBadRequest, TelegramNotFound) as exc:
                raise PermanentFailure(f"Telegram refused the message: {exc.message}") from exc
            except (TelegramServerError, TelegramNetworkError) as exc:
                raise TemporaryFailure(f"Telegram unavailable: {exc.message}") from exc
            except TelegramAPIError as exc:  # 401 (token) and the like: fix the configuration, keep the reply
                raise TemporaryFailure(f"Telegram error: {exc.message}") from exc
        raise TemporaryFailure("Telegram kept asking to wait")
