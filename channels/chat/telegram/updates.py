"""One Telegram update in, one answer out: store the client's message, or answer /start and /status.

`handle` returns only once the message is committed; it raises `StoreUnavailable` (database away) or
`TryLater` (a file could not be fetched now) when the update must not be acknowledged, so Telegram
delivers it again (polling: the offset stays; webhook: 503).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import timedelta

import aiohttp
from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import Message, Update

from channels.chat.telegram import inbound as convert
from tickets.attachments import AttachmentStore
from tickets.errors import NotStored
from tickets.inbound import AttachmentRef, Identity, Inbound
from tickets.models import Ticket
from tickets.service import TicketService

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "edited_message"]
"""What we ask Telegram for: client messages and their edits (both are stored)."""

GREETING = {
    "ru": (
        "Здравствуйте! Это служба поддержки. Напишите ваш вопрос одним или несколькими сообщениями — "
        "мы создадим обращение, и оператор ответит здесь же. Фото, документы и голосовые тоже можно.\n"
        "/new ТЕКСТ — начать новое обращение\n/status — ваши обращения и их статусы"
    ),
    "en": (
        "Hello! This is customer support. Write your question in one or more messages: we open a ticket "
        "and an agent answers right here. Photos, documents and voice messages are welcome too.\n"
        "/new TEXT — start a new ticket\n/status — your tickets and their statuses"
    ),
}
NEW_HINT = {
    "ru": "Напишите вопрос сразу после команды, например: /new Не приходит счёт",
    "en": "Write your question right after the command, e.g. /new My invoice did not arrive",
}
NO_TICKETS = {"ru": "У вас пока нет обращений.", "en": "You have no tickets yet."}
STATUS_TITLE = {"ru": "Ваши обращения:", "en": "Your tickets:"}
STATUS_NAMES = {
    "ru": {"new": "новое", "open": "в работе", "pending": "ждёт вашего ответа", "resolved": "решено", "closed": "закрыто"},
    "en": {"new": "new", "open": "in progress", "pending": "waiting for you", "resolved": "resolved", "closed": "closed"},
}


class TryLater(Exception):
    """The update cannot be stored whole right now (a file download failed temporarily); do not acknowledge it."""


def reply_language(message: Message) -> str:
    return convert.language(message.from_user) or "en"


def status_text(tickets: list[Ticket], lang: str) -> str:
    if not tickets:
        return NO_TICKETS[lang]
    names = STATUS_NAMES[lang]
    lines = [STATUS_TITLE[lang]]
    lines += [f"#{t.id} {t.subject} — {names.get(str(t.status), str(t.status))}" for t in tickets]
    return "\n".join(lines)


class TelegramUpdates:
    """The channel adapter both polling and the webhook feed; it never imports the ORM's sessions."""

    def __init__(self, service: TicketService, attachments: AttachmentStore, bot: Bot, *, thread_window: timedelta) -> None:
        self._service = service
        self._attachments = attachments
        self._bot = bot
        self._window = thread_window

    async def handle(self, update: Update) -> str:
        """Process one update; returns what was done (for logs and tests)."""
        if update.message is not None:
            return await self._message(update.message, update.update_id)
        if update.edited_message is not None:
            return await self._message(update.edited_message, update.update_id, edited=True)
        return await self._other(update)

    async def _message(self, message: Message, update_id: int, *, edited: bool = False) -> str:
        lang = reply_language(message)
        order = None if edited else convert.command(message)
        if order is not None and message.from_user is not None:
            name, rest = order
            if name == "start":
                await self._answer(message, GREETING[lang])
                return "greeted"
            if name == "status":
                tickets = await self._service.customer_tickets_by_identity(*_address(convert.identity(message.from_user)))
                await self._answer(message, status_text(tickets, lang))
                return "status"
            if name == "new" and not rest:
                await self._answer(message, NEW_HINT[lang])
                return "hint"
        attachments, problems = await self._download(message)
        text = order[1] if order is not None and order[0] == "new" else None
        inbound = convert.to_inbound(
            message,
            thread_window=self._window,
            attachments=attachments,
            problems=problems,
            new_ticket=order is not None and order[0] == "new",
            text=text,
            update_id=update_id,
        )
        if edited:
            stamp = message.edit_date.timestamp() if message.edit_date else 0
            inbound = replace(
                inbound,
                body_text=f"[edited message {message.message_id}]\n{inbound.body_text}",
                external_id=f"{inbound.external_id}:edit:{int(stamp)}",
            )
        return await self._store(inbound)

    async def _other(self, update: Update) -> str:
        """An update kind we did not ask for: kept as a note if a client sent it, never silently dropped."""
        kind = update.event_type
        user = getattr(update.event, "from_user", None)
        if user is None:
            log.warning("telegram update %s (%s) has no sender; acknowledged without storing", update.update_id, kind)
            return "ignored"
        note = f"[unsupported Telegram update: {kind}]"
        inbound = Inbound(
            channel=convert.CHANNEL,
            identities=(convert.identity(user),),
            body_text=note,
            subject=note,
            external_id=f"update:{update.update_id}",
            customer_name=convert.full_name(user),
            language=convert.language(user),
            continue_open_within=self._window,
            meta={"chat_id": user.id, "user_id": user.id, "update_id": update.update_id, "content_type": kind},
        )
        return await self._store(inbound)

    async def _store(self, inbound: Inbound) -> str:
        try:
            result = await self._service.ingest(inbound)
        except NotStored as reason:
            log.info("telegram message %s not stored: %s", inbound.external_id, reason)
            return "not stored"
        if result.duplicate:
            return f"duplicate of ticket #{result.ticket.id}"
        return f"{'opened' if result.created else 'added to'} ticket #{result.ticket.id}"

    async def _download(self, message: Message) -> tuple[tuple[AttachmentRef, ...], tuple[str, ...]]:
        stored: list[AttachmentRef] = []
        problems: list[str] = []
        for item in convert.files(message):
            try:
                data = await self._bot.download(item.file_id)
            except (TelegramEntityTooLarge, TelegramBadRequest, TelegramNotFound) as exc:
                problems.append(f"could not download the {item.kind} {item.name}: {exc.message}")
                continue
            except (TelegramNetworkError, TelegramServerError, TelegramRetryAfter, aiohttp.ClientError,
                    OSError, asyncio.TimeoutError) as exc:
                if isinstance(exc, aiohttp.ClientResponseError) and 400 <= exc.status < 500:
                    problems.append(f"could not download the {item.kind} {item.name}: HTTP {exc.status}")
                    continue
                raise TryLater(f"downloading {item.kind} {item.file_id}: {exc!r}") from exc
            if data is None:
                problems.append(f"could not download the {item.kind} {item.name}")
                continue
            stored.append(await self._attachments.save(item.name, item.content_type, data.getvalue()))
        return tuple(stored), tuple(problems)

    async def _answer(self, message: Message, text: str) -> None:
        """A direct answer (greeting, status): best effort, it is not part of the ticket."""
        try:
            await self._bot.send_message(message.chat.id, text)
        except TelegramAPIError as exc:
            log.warning("could not answer chat %s: %s", message.chat.id, exc)


def _address(identity: Identity) -> tuple[str, str]:
    return identity.kind, identity.address
