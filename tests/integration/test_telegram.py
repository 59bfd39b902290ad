"""The Telegram channel end to end: a real aiogram Bot against a fake Bot API server on 127.0.0.1, real
databases (both backends), real Redis and a real arq worker for the replies."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from channels.chat.telegram.bot import webhook_secret
from channels.chat.telegram.polling import TelegramPoller
from channels.chat.telegram.updates import NEW_ARMED, TelegramUpdates, new_key
from notifier.chat import RESOLVED
from notifier.delivery import Deliverer
from notifier.telegram import BLOCKED, split_text
from switchboard.bootstrap import Runtime, build, build_service
from switchboard.settings import DatabaseSettings, Settings, TelegramSettings
from switchboard.worker import build_worker
from tests.conftest import free_port
from tests.fakes import FakeTelegram
from tickets.clock import Clock
from tickets.inbound import Identity, Inbound
from tickets.models import Agent, Customer, CustomerIdentity, DeliveryStatus, Message, Outbox, Presence, Role, Ticket

TOKEN = "123456:TEST-token"


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(TOKEN) as server:
        yield server


@pytest.fixture
def tg_settings(settings: Settings, tg: FakeTelegram) -> Settings:
    return settings.model_copy(update={"telegram": TelegramSettings(token=TOKEN, api_base=tg.base_url)})


@pytest.fixture
async def rt(tg_settings: Settings, clock: Clock) -> AsyncIterator[Runtime]:
    runtime = await build(tg_settings, clock=clock)
    assert runtime.deliverer is not None and runtime.telegram_bot is not None
    runtime.deliverer = Deliverer(
        runtime.store, runtime.clock, runtime.deliverer.sender, chat_senders=runtime.deliverer.chat_senders,
        renderer=runtime.deliverer.renderer, attachments=runtime.attachments,
        first_retry=timedelta(milliseconds=200), max_retry=timedelta(seconds=1),
    )
    try:
        yield runtime
    finally:
        await runtime.close()


@pytest.fixture
def poller(rt: Runtime) -> TelegramPoller:
    assert rt.telegram_bot is not None
    return TelegramPoller(rt.telegram_bot, rt.telegram_updates(), timeout=0)


@pytest.fixture
async def manager(rt: Runtime) -> Agent:
    agent, _ = await rt.service.add_agent("Mia", "mia@support.example", role=Role.manager)
    return agent


async def messages(rt: Runtime) -> list[Message]:
    async with rt.sessions() as session:
        return list(await session.scalars(select(Message).order_by(Message.id)))


async def tickets(rt: Runtime) -> list[Ticket]:
    async with rt.sessions() as session:
        return list(await session.scalars(select(Ticket).order_by(Ticket.id)))


async def run_worker(runtime: Runtime, timeout: float = 30) -> None:
    worker = build_worker(runtime, burst=True, cron_jobs=[])
    try:
        await asyncio.wait_for(worker.main(), timeout)
    finally:
        await worker.close()


# --- polling ---------------------------------------------------------------------------------------------


async def test_a_message_becomes_a_routed_ticket_and_the_offset_confirms_it(
    rt: Runtime, tg: FakeTelegram, poller: TelegramPoller, manager: Agent
) -> None:
    [update] = tg.push(tg.message("Не работает оплата\nКарта отклонена при оплате заказа 55"))
    assert await poller.step() == 1
    [ticket] = await tickets(rt)
    assert ticket.channel == "telegram" and ticket.subject == "Не работает оплата"
    assert ticket.assignee_id == manager.id and str(ticket.status) == "open"
    [message] = await messages(rt)
    assert message.external_id == f"42:{update['message']['message_id']}"
    assert message.meta["chat_id"] == 42 and message.body_text.endswith("заказа 55")
    async with rt.sessions() as session:
        customer = await session.get_one(Customer, ticket.customer_id)
        identities = list(await session.scalars(select(CustomerIdentity.address).where(
            CustomerIdentity.customer_id == customer.id, CustomerIdentity.kind == "telegram")))
    assert customer.name == "Ivan Petrov" and customer.language == "ru" and identities == ["42"]
    # A follow-up joins the open ticket; the next getUpdates confirms both.
    tg.push(tg.message("Ещё деталь"))
    await poller.step()
    await poller.step()
    assert len(await tickets(rt)) == 1 and len(await messages(rt)) == 2
    assert tg.updates == [] and tg.get_updates_offsets[-1] == update["update_id"] + 2


async def test_the_polling_loop_runs_until_stopped(rt: Runtime, tg: FakeTelegram) -> None:
    assert rt.telegram_bot is not None
    poller = TelegramPoller(rt.telegram_bot, rt.telegram_updates(), timeout=1)
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    tg.push(tg.message("Первое"), tg.message("Второе"))
    async with asyncio.timeout(10):
        while len(await messages(rt)) < 2:
            await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert tg.webhook_deleted == 1 and [m.body_text for m in await messages(rt)] == ["Первое", "Второе"]


async def test_update_not_confirmed_until_committed(
    rt: Runtime, tg: FakeTelegram, tg_settings: Settings, clock: Clock
) -> None:
    closed = free_port()
    broken_settings = tg_settings.model_copy(update={"database": DatabaseSettings(
        url=f"postgresql+asyncpg://postgres@127.0.0.1:{closed}/nowhere")})
    from switchboard.bootstrap import build_engine

    broken_engine = build_engine(broken_settings)
    assert rt.telegram_bot is not None
    try:
        broken = TelegramPoller(rt.telegram_bot, TelegramUpdates(
            build_service(broken_settings, broken_engine, clock), rt.attachments, rt.telegram_bot,
            thread_window=timedelta(hours=72)), timeout=0)
        [update] = tg.push(tg.message("Сообщение во время сбоя"))
        from tickets.errors import StoreUnavailable

        with pytest.raises(StoreUnavailable):
            await broken.step()
        assert broken.offset is None and tg.updates == [update]
    finally:
        await broken_engine.dispose()
    healthy = TelegramPoller(rt.telegram_bot, rt.telegram_updates(), timeout=0)
    assert await healthy.step() == 1  # the same update, fetched again
    await healthy.step()
    assert tg.updates == []
    [message] = await messages(rt)
    assert message.body_text == "Сообщение во время сбоя"


async def test_a_repeated_update_is_stored_once(rt: Runtime, tg: FakeTelegram, poller: TelegramPoller) -> None:
    update = tg.message("Привет")
    tg.push(update)
    await poller.step()
    await poller.step()
    tg.push(update)  # Telegram sends it again (e.g. a retried webhook or lost confirmation)
    poller.offset = None
    await poller.step()
    assert len(await messages(rt)) == 1 and len(await tickets(rt)) == 1


async def test_an_edited_message_joins_the_ticket_as_a_new_message(
    rt: Runtime, tg: FakeTelegram, poller: TelegramPoller
) -> None:
    [first] = tg.push(tg.message("Оплата не проходит"))
    await poller.step()
    edited = tg.message("Оплата не проходит, карта Visa", message_id=first["message"]["message_id"])
    edited["edited_message"] = {**edited.pop("message"), "edit_date": 1_790_000_060}
    tg.push(edited)
    await poller.step()
    await poller.step()
    [ticket] = await tickets(rt)
    stored = await messages(rt)
    assert [m.ticket_id for m in stored] == [ticket.id, ticket.id]
    assert stored[1].body_text == f"[edited message {first['message']['message_id']}]\nОплата не проходит, карта Visa"
    assert stored[1].external_id == f"42:{first['message']['message_id']}:edit:1790000060"
    assert tg.updates == []


@pytest.mark.parametrize(("language", "greeting"), [("ru", "Здравствуйте"), ("en", "Hello")])
async def test_start_greets_in_the_clients_language_without_a_ticket(
    rt: Runtime, tg: FakeTelegram, poller: TelegramPoller, language: str, greeting: str
) -> None:
    tg.push(tg.message("/start", user=tg.user(7, language_code=language)))
    await poller.step()
    [answer] = tg.sent
    assert answer["chat_id"] == 7 and answer["text"].startswith(greeting) and "/status" in answer["text"]
    assert await tickets(rt) == [] and await messages(rt) == []


async def test_status_lists_the_clients_tickets_and_new_opens_another(
    rt: Runtime, tg: FakeTelegram, poller: TelegramPoller
) -> None:
    tg.push(tg.message("Первый вопрос", user=tg.user(9, language_code="en")))
    await poller.step()
    tg.push(tg.message("/new Second question", user=tg.user(9, language_code="en")))
    await poller.step()
    tg.push(tg.message("/status", user=tg.user(9, language_code="en")))
    await poller.step()
    first, second = await tickets(rt)
    assert second.subject == "Second question" and first.customer_id == second.customer_id
    [status] = tg.sent
    assert status["text"].splitlines()[0] == "Your tickets:"
    assert (f"#{first.id} Первый вопрос — new" in status["text"]
            and f"#{second.id} Second question — new" in status["text"])


def armed_updates(rt: Runtime, service: Any = None) -> TelegramUpdates:
    """The runtime's adapter (with Redis for the per-chat /new mark), optionally on another service."""
    if service is None:
        return rt.telegram_updates()
    assert rt.telegram_bot is not None
    return TelegramUpdates(service, rt.attachments, rt.telegram_bot, thread_window=timedelta(hours=72), redis=rt.redis)


async def test_a_bare_new_makes_the_next_message_start_a_new_ticket(rt: Runtime, tg: FakeTelegram) -> None:
    poller = TelegramPoller(rt.telegram_bot, armed_updates(rt), timeout=0)  # type: ignore[arg-type]
    en = tg.user(9, language_code="en")
    tg.push(tg.message("First question", user=en))
    await poller.step()
    tg.push(tg.message("/new", user=en))
    await poller.step()
    assert tg.sent == [{"chat_id": 9, "text": NEW_ARMED["en"]}]
    assert len(await tickets(rt)) == 1 and len(await messages(rt)) == 1  # the command itself is not stored
    assert 0 < await rt.redis.ttl(new_key(9)) <= 3600
    tg.push(tg.message("/new", user=tg.user(10, language_code="ru")))  # another chat, in Russian
    await poller.step()
    assert tg.sent[-1] == {"chat_id": 10, "text": NEW_ARMED["ru"]}

    tg.push(tg.message("Second question", user=en), tg.message("More about the second", user=en))
    await poller.step()
    first, second = await tickets(rt)
    assert first.customer_id == second.customer_id and second.subject == "Second question"
    stored = await messages(rt)
    assert [(m.ticket_id, m.body_text) for m in stored] == [
        (first.id, "First question"), (second.id, "Second question"), (second.id, "More about the second")]
    assert await rt.redis.exists(new_key(9)) == 0 and await rt.redis.exists(new_key(10)) == 1


async def test_a_bare_new_stays_armed_until_the_next_message_is_committed(
    rt: Runtime, tg: FakeTelegram, tg_settings: Settings, clock: Clock
) -> None:
    from switchboard.bootstrap import build_engine
    from tickets.errors import StoreUnavailable

    assert rt.telegram_bot is not None
    healthy = TelegramPoller(rt.telegram_bot, armed_updates(rt), timeout=0)
    tg.push(tg.message("Первый вопрос"), tg.message("/new"))
    await healthy.step()
    broken_settings = tg_settings.model_copy(update={"database": DatabaseSettings(
        url=f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere")})
    broken_engine = build_engine(broken_settings)
    try:
        broken = TelegramPoller(rt.telegram_bot,
                                armed_updates(rt, build_service(broken_settings, broken_engine, clock)),
                                timeout=0)
        broken.offset = healthy.offset
        tg.push(tg.message("Второй вопрос"))
        with pytest.raises(StoreUnavailable):
            await broken.step()
    finally:
        await broken_engine.dispose()
    assert await rt.redis.exists(new_key(42)) == 1  # nothing stored, so the mark is kept
    await healthy.step()  # the same update again, now committed
    first, second = await tickets(rt)
    assert [m.body_text for m in await messages(rt) if m.ticket_id == second.id] == ["Второй вопрос"]
    assert await rt.redis.exists(new_key(42)) == 0


async def test_a_shared_contact_links_the_phone_to_the_same_card(
    rt: Runtime, tg: FakeTelegram, poller: TelegramPoller
) -> None:
    tg.push(tg.message("Здравствуйте"))
    contact = {"phone_number": "447911123456", "first_name": "Ivan", "user_id": 42}
    tg.push(tg.message(None, contact=contact))
    await poller.step()
    ticket = (await tickets(rt))[0]
    async with rt.sessions() as session:
        found = {(i.kind, i.address) for i in await session.scalars(
            select(CustomerIdentity).where(CustomerIdentity.customer_id == ticket.customer_id))}
    assert found == {("telegram", "42"), ("phone", "+447911123456")}
    assert "+447911123456" in (await messages(rt))[-1].body_text
    # A phone call logged from that number would now find the same card.
    result = await rt.service.ingest(Inbound(channel="phone", identities=(Identity("phone", "+447911123456"),),
                                             body_text="call", external_id="call-1"))
    assert result.ticket.customer_id == ticket.customer_id


async def test_photos_and_documents_are_stored_as_attachments_and_stickers_as_notes(
    rt: Runtime, tg: FakeTelegram, poller: TelegramPoller
) -> None:
    tg.add_file("small", b"small-jpeg")
    tg.add_file("large", b"large-jpeg-bytes")
    tg.add_file("doc", b"%PDF-1.4 invoice", "documents/invoice.pdf")
    photo = [{"file_id": "small", "file_unique_id": "s1", "width": 90, "height": 90, "file_size": 10},
             {"file_id": "large", "file_unique_id": "l1", "width": 1280, "height": 960, "file_size": 16}]
    tg.push(tg.message(None, photo=photo, caption="Скриншот ошибки"))
    tg.push(tg.message(None, document={"file_id": "doc", "file_unique_id": "d1", "file_name": "invoice.pdf",
                                       "mime_type": "application/pdf"}))
    tg.push(tg.message(None, sticker={"file_id": "st", "file_unique_id": "st1", "type": "regular", "width": 512,
                                      "height": 512, "is_animated": False, "is_video": False}))
    assert await poller.step() == 3
    photo_message, document_message, sticker_message = await messages(rt)
    [picture] = photo_message.attachments
    assert photo_message.body_text == "Скриншот ошибки" and picture["content_type"] == "image/jpeg"
    assert rt.attachments.open_path(picture["path"]).read_bytes() == b"large-jpeg-bytes"
    [pdf] = document_message.attachments
    assert pdf["name"] == "invoice.pdf" and pdf["content_type"] == "application/pdf"
    assert rt.attachments.open_path(pdf["path"]).read_bytes() == b"%PDF-1.4 invoice"
    assert sticker_message.body_text == "[unsupported Telegram message: sticker]"


# --- webhook ---------------------------------------------------------------------------------------------


@pytest.fixture
async def web_client(rt: Runtime) -> AsyncIterator[TestClient[Any, Any]]:
    from switchboard.webapp import create_app

    async with TestClient(TestServer(create_app(rt), host="127.0.0.1")) as test_client:
        yield test_client


async def test_webhook_checks_the_secret_and_answers_after_commit(
    rt: Runtime, tg: FakeTelegram, web_client: TestClient[Any, Any]
) -> None:
    update = tg.message("Вопрос через вебхук")
    for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
        response = await web_client.post("/telegram/webhook", json=update, headers=headers)
        assert response.status == 401
    assert await messages(rt) == []
    secret = {"X-Telegram-Bot-Api-Secret-Token": webhook_secret(rt.settings.telegram)}
    for _ in range(2):
        response = await web_client.post("/telegram/webhook", json=update, headers=secret)
        assert response.status == 200
    [ticket] = await tickets(rt)
    [message] = await messages(rt)
    assert ticket.channel == "telegram" and message.body_text == "Вопрос через вебхук"


async def test_no_webhook_route_without_a_token(settings: Settings, clock: Clock) -> None:
    from switchboard.webapp import create_app

    runtime = await build(settings, clock=clock)
    try:
        async with TestClient(TestServer(create_app(runtime), host="127.0.0.1")) as client:
            response = await client.post("/telegram/webhook", json={})
            assert response.status in (404, 405)
    finally:
        await runtime.close()


# --- outbound --------------------------------------------------------------------------------------------


async def telegram_ticket(rt: Runtime, chat_id: int = 42) -> int:
    result = await rt.service.ingest(Inbound(
        channel="telegram", identities=(Identity("telegram", str(chat_id)),), body_text="Помогите",
        external_id=f"{chat_id}:1", meta={"chat_id": chat_id}))
    return result.ticket.id


async def test_an_agents_reply_goes_to_the_chat(rt: Runtime, tg: FakeTelegram, manager: Agent) -> None:
    number = await telegram_ticket(rt)
    reply = await rt.service.add_message(manager, number, "Проверили, всё исправлено.", internal=False)
    await run_worker(rt)
    assert tg.sent == [{"chat_id": 42, "text": "Проверили, всё исправлено."}]
    async with rt.sessions() as session:
        row = await session.scalar(select(Outbox).where(Outbox.kind != "assigned"))  # the agent's notice aside
        stored = await session.get_one(Message, reply.id)
    assert row is not None and (row.channel, row.recipient, row.kind, row.dedupe_key) == (
        "telegram", "42", "reply", f"reply:{reply.id}")
    assert stored.delivery_status == DeliveryStatus.sent


async def test_a_reply_with_files_sends_the_text_then_each_file_and_resumes_after_what_went(
    rt: Runtime, tg: FakeTelegram, manager: Agent
) -> None:
    number = await telegram_ticket(rt)
    invoice, photo = b"%PDF-1.4 " + b"x" * 5000, b"\x89PNG\r\n fake"
    files = (await rt.attachments.save("Счёт 17.pdf", "application/pdf", invoice),
             await rt.attachments.save("screen.png", "image/png", photo))
    tg.fail_next(500, after=2)  # the text and the invoice go out, the photo gets a 500 once
    reply = await rt.service.add_message(manager, number, "Счёт и снимок экрана.", internal=False, attachments=files)
    await run_worker(rt)
    assert [(m["chat_id"], m.get("text"), m.get("document"), m.get("data")) for m in tg.sent] == [
        (42, "Счёт и снимок экрана.", None, None), (42, None, "Счёт 17.pdf", invoice),
        (42, None, "screen.png", photo)]
    assert tg.send_attempts == 4  # the photo twice, nothing before it again
    async with rt.sessions() as session:
        row = await session.scalar(select(Outbox).where(Outbox.message_id == reply.id))
        stored = await session.get_one(Message, reply.id)
    assert row is not None and (row.status, row.attempts, row.headers["pieces_sent"]) == ("sent", 2, 2)
    assert stored.delivery_status == DeliveryStatus.sent


async def test_a_reply_whose_file_left_the_store_fails_and_says_which(
    rt: Runtime, tg: FakeTelegram, manager: Agent
) -> None:
    number = await telegram_ticket(rt)
    ref = await rt.attachments.save("gone.txt", "text/plain", b"soon gone")
    rt.attachments.open_path(ref.path).unlink()
    reply = await rt.service.add_message(manager, number, "See the file.", internal=False, attachments=(ref,))
    await run_worker(rt)
    assert tg.sent == []
    async with rt.sessions() as session:
        row = await session.scalar(select(Outbox).where(Outbox.message_id == reply.id))
    assert row is not None and row.status == "failed" and "'gone.txt' is missing" in (row.last_error or "")


async def test_resolving_tells_the_client_in_their_language(rt: Runtime, tg: FakeTelegram, manager: Agent) -> None:
    result = await rt.service.ingest(Inbound(
        channel="telegram", identities=(Identity("telegram", "42"),), body_text="Помогите", language="ru",
        external_id="42:1", meta={"chat_id": 42}))
    number = result.ticket.id
    await rt.service.update_ticket(manager, number, {"status": "pending"})  # not a resolution: nothing sent
    await rt.service.update_ticket(manager, number, {"status": "resolved"})
    await rt.service.update_ticket(manager, number, {"status": "resolved"})  # unchanged: nothing more
    await run_worker(rt)
    assert tg.sent == [{"chat_id": 42, "text": RESOLVED["ru"].format(number=number)}]

    # an email ticket resolved writes no Telegram row (its notice goes by email), a Telegram one no email row
    email = await rt.service.ingest(Inbound(channel="email", identities=(Identity("email", "a@example.com"),),
                                            body_text="hi", external_id="<e@example.com>"))
    await rt.service.update_ticket(manager, email.ticket.id, {"status": "resolved"})
    async with rt.sessions() as session:
        rows = [(row.ticket_id, row.channel, row.kind)
                for row in await session.scalars(select(Outbox).where(Outbox.kind != "assigned").order_by(Outbox.id))]
    assert [(ch, kind) for ticket, ch, kind in rows if kind == "resolved"] == [
        ("telegram", "resolved"), ("email", "resolved")
    ]
    assert {ch for ticket, ch, _ in rows if ticket == number} == {"telegram"}
    assert {ch for ticket, ch, _ in rows if ticket == email.ticket.id} == {"email"}


async def test_a_long_reply_is_split_at_the_limit(rt: Runtime, tg: FakeTelegram, manager: Agent) -> None:
    number = await telegram_ticket(rt)
    lines = [f"Строка {i}: " + "слово " * 10 for i in range(80)]
    body = "\n".join(line.strip() for line in lines)
    assert 4096 < len(body) <= 8000
    await rt.service.add_message(manager, number, body, internal=False)
    await run_worker(rt)
    assert len(tg.sent) == 2 and all(len(m["text"]) <= 4096 for m in tg.sent)
    assert tg.sent[0]["text"] + "\n" + tg.sent[1]["text"] == body
    assert split_text("a" * 5000) == ["a" * 4096, "a" * 904]


async def test_a_split_reply_failing_midway_resumes_after_the_sent_pieces(
    rt: Runtime, tg: FakeTelegram, manager: Agent
) -> None:
    number = await telegram_ticket(rt)
    body = "\n".join(f"Шаг {i}: " + "подробность " * 8 for i in range(110))
    pieces = split_text(body)
    assert len(pieces) == 3
    tg.fail_next(500, after=1)  # the first piece goes out, the second gets a 500 once
    reply = await rt.service.add_message(manager, number, body, internal=False)
    await run_worker(rt)
    assert tg.send_attempts == 4  # piece 1, piece 2 refused, then pieces 2 and 3 on the retry
    assert [m["text"] for m in tg.sent] == pieces and {m["chat_id"] for m in tg.sent} == {42}
    async with rt.sessions() as session:
        row = await session.scalar(select(Outbox).where(Outbox.message_id == reply.id))
        stored = await session.get_one(Message, reply.id)
    assert row is not None and row.status == "sent" and row.attempts == 2
    assert row.headers["pieces_sent"] == 1
    assert stored.delivery_status == DeliveryStatus.sent


async def test_rate_limit_is_waited_out_and_the_reply_delivered_once(
    rt: Runtime, tg: FakeTelegram, manager: Agent
) -> None:
    number = await telegram_ticket(rt)
    tg.fail_next(429, retry_after=1)
    await rt.service.add_message(manager, number, "Ответ", internal=False)
    await run_worker(rt)
    assert tg.send_attempts == 2 and tg.sent == [{"chat_id": 42, "text": "Ответ"}]


async def test_server_errors_are_retried(rt: Runtime, tg: FakeTelegram, manager: Agent) -> None:
    number = await telegram_ticket(rt)
    tg.fail_next(500, times=2)
    await rt.service.add_message(manager, number, "Ответ", internal=False)
    await run_worker(rt)
    assert tg.send_attempts == 3 and len(tg.sent) == 1


async def test_a_blocked_bot_fails_the_message_with_the_reason(
    rt: Runtime, tg: FakeTelegram, manager: Agent
) -> None:
    number = await telegram_ticket(rt)
    tg.fail_next(403)
    reply = await rt.service.add_message(manager, number, "Ответ", internal=False)
    await run_worker(rt)
    assert tg.sent == [] and tg.send_attempts == 1
    async with rt.sessions() as session:
        stored = await session.get_one(Message, reply.id)
    assert stored.delivery_status == DeliveryStatus.failed and stored.delivery_error == BLOCKED


# --- the command line ------------------------------------------------------------------------------------


async def test_cli_sets_the_webhook_with_the_shared_secret(tg: FakeTelegram, tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SWITCHBOARD_")}
    env.update(SWITCHBOARD_TELEGRAM_TOKEN=TOKEN, SWITCHBOARD_TELEGRAM_API_BASE=tg.base_url,
               SWITCHBOARD_DATA_DIR=str(tmp_path / "data"))
    url = "https://support.example.com/telegram/webhook"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "switchboard.cli", "bot", "--set-webhook", url,
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    assert tg.webhook is not None and tg.webhook["url"] == url
    assert tg.webhook["secret_token"] == webhook_secret(TelegramSettings(token=TOKEN))
    assert "webhook set" in stdout.decode()


# --- agents: alerts in Telegram ---------------------------------------------------------------------------


async def test_an_agent_links_their_chat_with_a_code_and_gets_alerts_and_notices_there(
    tg_settings: Settings, clock: Clock, tg: FakeTelegram, tmp_path: Path
) -> None:
    from tests.conftest import with_regulations
    from tickets.telegram_link import link_code

    rt = await build(with_regulations(tg_settings, tmp_path, """\
regulations:
  - name: request
    steps:
      - {name: nudge, after: 1s, unless: processed, notify: [{to: assignee, by: [telegram]}]}
"""), clock=clock)
    try:
        assert rt.telegram_bot is not None and rt.escalations is not None
        poller = TelegramPoller(rt.telegram_bot, rt.telegram_updates(), timeout=0)
        anna, _ = await rt.service.add_agent("Anna", "anna@support.example", presence="offline")
        code, _ = link_code(TOKEN, anna.id, rt.clock.now())
        agent_user = tg.user(77, first_name="Anna", last_name=None, language_code="en")
        tg.push(tg.message("/link 1-1-forged", user=agent_user), tg.message(f"/link {code}", user=agent_user))
        await poller.step()
        assert [m["text"] for m in tg.sent if m["chat_id"] == 77] == [
            "This code is wrong or has expired. Get a new one: switchboard agent telegram YOUR_EMAIL",
            "Done, Anna: Switchboard alerts will come to this chat now."]
        assert await tickets(rt) == []  # an agent's commands are never a ticket
        async with rt.sessions() as session:
            assert (await session.get_one(Agent, anna.id)).telegram_chat_id == "77"

        # A ticket routed to her: the notice comes by email and to her chat; a second later the regulation's
        # step tells her by Telegram.
        await rt.service.set_presence(anna.id, Presence.available)
        result = await rt.service.ingest(Inbound(channel="email", identities=(Identity("email", "c@example.com"),),
                                                 subject="Printer", body_text="Broken", external_id="<c@x.example>"))
        await asyncio.sleep(1.2)
        assert await rt.escalations.sweep() == 1
        await run_worker(rt)
        # The worker sends both at once: they arrive in either order.
        texts = sorted(m["text"] for m in tg.sent if m["chat_id"] == 77 and m["text"].startswith("[#"))
        assert len(texts) == 2, texts
        assert texts[0].startswith(f"[#{result.ticket.id}] Assigned to you: Printer")
        assert texts[1].startswith(f"[#{result.ticket.id}] Escalation: request/nudge — Printer")
        assert f"/desk/tickets/{result.ticket.id}" in texts[1]
        async with rt.sessions() as session:
            rows = list(await session.scalars(select(Outbox).where(Outbox.channel == "telegram")
                                              .order_by(Outbox.id)))
        assert [(r.kind, r.recipient, str(r.status)) for r in rows] == [("assigned", "77", "sent"),
                                                                         ("sla_alert", "77", "sent")]
    finally:
        await rt.close()
