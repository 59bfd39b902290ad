"""One Telegram update in, one answer out: store the client's message, or answer /start and /status.

`handle` returns only once the message is committed; it raises `StoreUnavailable` (database away) or
`TryLater` (a file could not be fetched now) when the update must not be acknowledged, so Telegram
delivers it again (polling: the offset stays; webhook: 503).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

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
from redis.asyncio import Redis
from redis.exceptions import RedisError

from channels.chat.telegram import inbound as convert
from channels.poison import ParkedItem, store_or_park
from tickets.attachments import AttachmentStore
from tickets.errors import NotStored
from tickets.inbound import AttachmentRef, Identity, Inbound
from tickets.models import Ticket
from tickets.service import TicketService
from tickets.telegram_link import agent_of

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "edited_message"]
"""What we ask Telegram for: client messages and their edits (both are stored)."""

GREETING = {
    "ru": (
        "Здравствуйте! Это служба поддержки. Напишите ваш вопрос одним или несколькими сообщениями — "
        "мы создадим обращение, и оператор ответит здесь же. Фото, документы и голосовые тоже можно.\n"
        "/new — начать новое обращение (можно сразу с текстом: /new ТЕКСТ)\n/status — ваши обращения и их статусы"
    ),
    "en": (
        "Hello! This is customer support. Write your question in one or more messages: we open a ticket "
        "and an agent answers right here. Photos, documents and voice messages are welcome too.\n"
        "/new — start a new ticket (or at once: /new TEXT)\n/status — your tickets and their statuses"
    ),
}
NEW_ARMED = {
    "ru": "Хорошо! Следующее ваше сообщение начнёт новое обращение.",
    "en": "OK! Your next message will start a new ticket.",
}
NEW_HINT = {
    "ru": "Напишите вопрос сразу после команды, например: /new Не приходит счёт",
    "en": "Write your question right after the command, e.g. /new My invoice did not arrive",
}
LINKED = {
    "ru": "Готово, {name}: оповещения Switchboard теперь будут приходить сюда.",
    "en": "Done, {name}: Switchboard alerts will come to this chat now.",
}
BAD_LINK = {
    "ru": "Этот код неверен или устарел. Получите новый: switchboard agent telegram ВАШ_EMAIL",
    "en": "This code is wrong or has expired. Get a new one: switchboard agent telegram YOUR_EMAIL",
}
NO_TICKETS = {"ru": "У вас пока нет обращений.", "en": "You have no tickets yet."}
STATUS_TITLE = {"ru": "Ваши обращения:", "en": "Your tickets:"}
STATUS_NAMES = {
    "ru": {
        "new": "новое", "open": "в работе", "pending": "ждёт вашего ответа", "resolved": "решено", "closed": "закрыто",
    },
    "en": {
        "new": "new", "open": "in progress", "pending": "waiting for you", "resolved": "resolved", "closed": "closed",
    },
}


class TryLater(Exception):
    """The update cannot be stored whole right now (a file download failed temporarily); do not acknowledge it."""


NEW_TTL_SECONDS = 3600
"""How long a bare /new waits for the message that starts the new ticket."""
_CONSUME = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
"""Delete the mark only if it is still the one this message read (a /new sent meanwhile stays armed)."""


def new_key(chat_id: int) -> str:
    return f"telegram:new:{chat_id}"


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

    def __init__(
        self,
        service: TicketService,
        attachments: AttachmentStore,
        bot: Bot,
        *,
        thread_window: timedelta,
        redis: Redis | None = None,
    ) -> None:
        """`redis` keeps a bare /new armed per chat until the next message; without it /new needs its text."""
        self._service = service
        self._attachments = attachments
        self._bot = bot
        self._window = thread_window
        self._redis = redis

    async def receive(self, update: Update) -> str:
        """`handle`, or the update parked after its retries (`channels.poison`), so one update that cannot be
        stored never holds back the next from another client; returns what to log."""

        async def park(error: str, attempts: int) -> int:
            payload = update.model_dump_json(exclude_none=True)
            return await self._service.park(convert.CHANNEL, str(update.update_id), error, payload=payload,
                                            attempts=attempts)

        outcome = await store_or_park(lambda: self.handle(update), park, passes=(TryLater,),
                                      what=f"telegram update {update.update_id}")
        return f"parked as item {outcome.number}" if isinstance(outcome, ParkedItem) else outcome

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
                tickets = await self._service.customer_tickets_by_identity(
                    *_address(convert.identity(message.from_user))
                )
                await self._answer(message, status_text(tickets, lang))
                return "status"
            if name == "link":
                return await self._link(message, rest, lang)
            if name == "new" and not rest:
                if await self._arm_new(message):
                    await self._answer(message, NEW_ARMED[lang])
                    return "armed /new"
                await self._answer(message, NEW_HINT[lang])
                return "hint"
        armed = None if edited else await self._armed(message)
        attachments, problems = await self._download(message)
        text = order[1] if order is not None and order[0] == "new" else None
        inbound = convert.to_inbound(
            message,
            thread_window=self._window,
            attachments=attachments,
            problems=problems,
            new_ticket=(order is not None and order[0] == "new") or armed is not None,
            text=text,
            update_id=update_id,
        )
        if edited:
            stamp = message.edit_date or 0  # Unix time: aiogram leaves edit_date as Telegram sends it
            inbound = replace(
                inbound,
                body_text=f"[edited message {message.message_id}]\n{inbound.body_text}",
                external_id=f"{inbound.external_id}:edit:{stamp}",
            )
        outcome = await self._store(inbound)
        if armed is not None:  # only now: had the store failed, the redelivered update must still start a ticket
            await self._disarm(message, armed)
        return outcome

    async def _link(self, message: Message, code: str, lang: str) -> str:
        """An agent links this chat for alerts with the code the CLI or the API gave them; never a ticket."""
        agent_id = agent_of(self._bot.token, code, self._service.now())
        agent = await self._service.link_telegram(agent_id, str(message.chat.id)) if agent_id is not None else None
        if agent is None:
            await self._answer(message, BAD_LINK[lang])
            return "link refused"
        await self._answer(message, LINKED[lang].format(name=agent.name))
        return "linked"

    async def _arm_new(self, message: Message) -> bool:
        """Remember for an hour that this chat's next message starts a new ticket; False when Redis is unusable."""
        if self._redis is None:
            return False
        try:
            await self._redis.set(new_key(message.chat.id), str(message.message_id), ex=NEW_TTL_SECONDS)
        except (RedisError, OSError) as exc:
            log.warning("could not arm /new for chat %s: %s", message.chat.id, exc)
            return False
        return True

    async def _armed(self, message: Message) -> bytes | None:
        """The pending /new mark of this chat, if any. Redis away: the message joins the open ticket as usual."""
        if self._redis is None:
            return None
        try:
            mark = await self._redis.get(new_key(message.chat.id))
        except (RedisError, OSError) as exc:
            log.warning("could not read the /new mark of chat %s: %s", message.chat.id, exc)
            return None
        return mark if isinstance(mark, bytes) or mark is None else str(mark).encode()

    async def _disarm(self, message: Message, mark: bytes) -> None:
        assert self._redis is not None
        try:
            consume: Any = self._redis.eval  # redis-py types script arguments as text; the mark is bytes
            await consume(_CONSUME, 1, new_key(message.chat.id), mark)
        except (RedisError, OSError) as exc:  # the mark expires on its own; the next message may open one more
            log.warning("could not clear the /new mark of chat %s: %s", message.chat.id, exc)

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
            except (
                TimeoutError, TelegramNetworkError, TelegramServerError, TelegramRetryAfter, aiohttp.ClientError,
                OSError,
            ) as exc:
                if isinstance(exc, aiohttp.ClientResponseError) and 400 <= exc.status < 500:
                    problems.append(f"could not download the {item.kind} {item.name}: HTTP {exc.status}")
                    continue
                raise TryLater(f"downloading {item.kind} {item.file_id}: {exc!r}") from exc
            if data is None:
                problems.append(f"could not download the {item.kind} {item.name}")
                continue
            stored.append(await self._attachments.save(item.name, item.content_type, data.read()))
        return tuple(stored), tuple(problems)

    async def _answer(self, message: Message, text: str) -> None:
        """A direct answer (greeting, status): best effort, it is not part of the ticket."""
        try:
            await self._bot.send_message(message.chat.id, text)
        except TelegramAPIError as exc:
            log.warning("could not answer chat %s: %s", message.chat.id, exc)


def _address(identity: Identity) -> tuple[str, str]:
    return identity.kind, identity.address
