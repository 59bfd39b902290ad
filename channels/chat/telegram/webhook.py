"""`POST /telegram/webhook`: 200 only after the update is committed, 503 (Telegram retries) when it is not."""

from __future__ import annotations

import hmac
import logging

from aiogram import Bot
from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError

from channels.chat.telegram.updates import TelegramUpdates, TryLater
from tickets.errors import InvalidInput, StoreUnavailable
from web.http import Handler, read_json

log = logging.getLogger(__name__)

PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def webhook_handler(bot: Bot, updates: TelegramUpdates, secret: str) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return web.json_response({"error": "wrong or missing secret token"}, status=401)
        try:
            update = Update.model_validate(await read_json(request), context={"bot": bot})
        except (InvalidInput, ValueError, ValidationError) as exc:
            log.warning("telegram webhook: unreadable update: %s", exc)
            return web.json_response({"error": "not a Telegram update"}, status=400)
        try:
            outcome = await updates.receive(update)
        except (StoreUnavailable, TryLater) as exc:
            log.warning("telegram update %s not stored (%s); Telegram will retry", update.update_id, exc)
            return web.json_response({"error": "try again later"}, status=503, headers={"Retry-After": "5"})
        log.info("telegram update %s: %s", update.update_id, outcome)
        return web.json_response({"ok": True})

    return handle


def setup(app: web.Application, bot: Bot, updates: TelegramUpdates, secret: str) -> None:
    app.router.add_post(PATH, webhook_handler(bot, updates, secret))
