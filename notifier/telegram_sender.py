"""Sending outbox rows to Telegram with the bot: split at Telegram's limit, 429/5xx retried, a blocked bot final.

Kept apart from `notifier.telegram` because importing aiogram costs seconds: only a process with a token pays it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
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
from aiogram.types import FSInputFile, Message

from notifier.delivery import OutFile
from notifier.senders import PermanentFailure, TemporaryFailure
from notifier.telegram import BLOCKED, MAX_INLINE_WAIT, split_text

log = logging.getLogger(__name__)
PIECES_SENT = "pieces_sent"
"""How many of the row's pieces (the text's, then one per file) an earlier attempt sent."""
LAST_SENT_ID = "last_sent_id"


class TelegramSender:
    """Sends one outbox row's text with the bot: 429 waits as told, 5xx/network retry later, 403 is final."""

    def __init__(self, bot: Bot, *, max_inline_wait: float = MAX_INLINE_WAIT) -> None:
        self.bot = bot
        self._max_inline_wait = max_inline_wait

    async def send_text(self, chat_id: str, text: str, details: Mapping[str, Any],
                        files: Sequence[OutFile] = ()) -> str | None:
        """Send the text's pieces, then each file as a document, in order, skipping those an earlier attempt sent;
        returns the last Telegram message id."""
        missing = await asyncio.to_thread(lambda: [f.name for f in files if not f.path.is_file()])
        if missing:
            raise PermanentFailure(f"the file {missing[0]!r} is missing from the attachment store")
        done = int(details.get(PIECES_SENT, 0) or 0)
        sent_id: int | None = details.get(LAST_SENT_ID)
        pieces: list[Callable[[], Awaitable[Message]]] = [
            *(self._text(chat_id, piece) for piece in split_text(text)),
            *(self._document(chat_id, file) for file in files)]
        for index, send in enumerate(pieces):
            if index < done:
                continue
            try:
                sent_id = await self._send_piece(chat_id, send)
            except TemporaryFailure as exc:
                if index:
                    exc.progress = {PIECES_SENT: index, LAST_SENT_ID: sent_id}
                raise
        return str(sent_id) if sent_id is not None else None

    def _text(self, chat_id: str, piece: str) -> Callable[[], Awaitable[Message]]:
        return lambda: self.bot.send_message(chat_id, piece)

    def _document(self, chat_id: str, file: OutFile) -> Callable[[], Awaitable[Message]]:
        return lambda: self.bot.send_document(chat_id, FSInputFile(file.path, filename=file.name))

    async def _send_piece(self, chat_id: str, send: Callable[[], Awaitable[Message]]) -> int:
        for _ in range(5):
            try:
                sent = await send()
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
