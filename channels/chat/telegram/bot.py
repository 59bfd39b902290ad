"""Building the aiogram `Bot` from settings, and the webhook secret both `bot --set-webhook` and `web` agree on."""

from __future__ import annotations

import hashlib
import hmac
from typing import Protocol

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer


class TelegramConfig(Protocol):
    @property
    def token(self) -> str | None: ...

    @property
    def api_base(self) -> str | None: ...

    @property
    def webhook_secret(self) -> str | None: ...


def create_bot(config: TelegramConfig) -> Bot:
    """A Bot on the configured Bot API server (a local one when `api_base` is set)."""
    if not config.token:
        raise ValueError("no Telegram token configured")
    session = AiohttpSession(api=TelegramAPIServer.from_base(config.api_base)) if config.api_base else AiohttpSession()
    return Bot(config.token, session=session)


def webhook_secret(config: TelegramConfig) -> str:
    """The configured secret, or one derived from the token so every process computes the same without sharing it."""
    if config.webhook_secret:
        return config.webhook_secret
    if not config.token:
        raise ValueError("no Telegram token configured")
    return hmac.new(config.token.encode(), b"switchboard-telegram-webhook", hashlib.sha256).hexdigest()
