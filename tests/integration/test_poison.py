"""Poison isolation on every channel: an item the database refuses every time is parked whole in the dead-letter
table after its retries, the channel answers as for a kept item (never 451 forever, never a stuck offset, never a
dropped socket), and the next item from another client is stored. The refusal is the database's own: a trigger,
installed here in the test's database, that rejects any message whose text holds the pill."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select, text

from channels.chat.telegram.polling import TelegramPoller
from switchboard.bootstrap import Runtime
from tests.conftest import free_port
from tests.fakes import FakeTelegram
from tests.integration.test_console import sign_in
from tests.integration.test_serve import clean_env, cli
from tests.integration.test_smtp import Mailbox, mail
from tests.integration.test_smtp import mailbox as mailbox  # noqa: F401 - the fixture
from tests.integration.test_telegram import poller as poller  # noqa: F401 - the fixture
from tests.integration.test_telegram import rt as rt  # noqa: F401 - the fixture
from tests.integration.test_telegram import tg as tg  # noqa: F401 - the fixture
from tests.integration.test_telegram import tg_settings as tg_settings  # noqa: F401 - the fixture
from tests.integration.test_webchat import chat_options as chat_options  # noqa: F401 - the fixture
from tests.integration.test_webchat import chat_runtime as chat_runtime  # noqa: F401 - the fixture
from tests.integration.test_webchat import connect
from tests.integration.test_webchat import sink as sink  # noqa: F401 - the fixture
from tests.integration.test_webchat import web as web  # noqa: F401 - the fixture
from tickets.models import Message, Parked, Role

PILL = "POISON-PILL"


async def poison(runtime: Runtime) -> None:
    """The database refuses every message holding the pill, as it would a value it cannot keep."""
    async with runtime.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text(
                "CREATE OR REPLACE FUNCTION refuse_pill() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.body_text LIKE '%{PILL}%' THEN RAISE EXCEPTION 'refused by the test trigger'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"))
            await connection.execute(text("CREATE TRIGGER refuse_pill BEFORE INSERT ON messages "
                                          "FOR EACH ROW EXECUTE FUNCTION refuse_pill()"))
        else:
            await connection.execute(text(
                f"CREATE TRIGGER refuse_pill BEFORE INSERT ON messages WHEN NEW.body_text LIKE '%{PILL}%' "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END"))


async def parked(runtime: Runtime) -> list[Parked]:
    async with runtime.sessions() as session:
        return list(await session.scalars(select(Parked).order_by(Parked.id)))


async def bodies(runtime: Runtime) -> list[str]:
    async with runtime.sessions() as session:
        return list(await session.scalars(select(Message.body_text).order_by(Message.id)))


async def test_a_mail_the_store_refuses_is_parked_with_its_bytes_and_the_next_mail_is_stored(
    mailbox: Mailbox,
) -> None:
    await poison(mailbox.runtime)
    status, reply = await mailbox.send(mail(body=f"Счёт {PILL}", message_id="<pill@example.org>"))
    assert status == 250 and "kept for review as parked item" in reply, reply
    status, reply = await mailbox.send(mail(body="Другое письмо", sender="Olga <olga@example.org>"))
    assert "opened ticket" in reply, reply
    [item] = await parked(mailbox.runtime)
    assert item.channel == "email" and item.reference == "<pill@example.org>" and item.attempts == 3
    assert "refused by the test trigger" in item.error and item.raw is not None
    kept = mailbox.runtime.attachments.open_path(item.raw["path"])
    assert PILL.encode() in kept.read_bytes()
    assert [body.strip() for body in await bodies(mailbox.runtime)] == ["Другое письмо"]


async def test_a_telegram_update_the_store_refuses_is_parked_and_the_offset_moves_on(
    rt: Runtime, tg: FakeTelegram, poller: TelegramPoller
) -> None:
    await poison(rt)
    other = tg.user(user_id=77, first_name="Olga")
    first, second = tg.push(tg.message(f"Оплата {PILL}"), tg.message("Где мой заказ?", user=other))
    await poller.step()
    await poller.step()
    assert tg.updates == [] and tg.get_updates_offsets[-1] == second["update_id"] + 1
    [item] = await parked(rt)
    assert item.channel == "telegram" and item.reference == str(first["update_id"])
    assert item.payload is not None and PILL in json.loads(item.payload)["message"]["text"]
    assert await bodies(rt) == ["Где мой заказ?"]


async def test_a_web_chat_message_the_store_refuses_is_parked_and_the_socket_stays(
    web: TestClient[Any, Any], chat_runtime: Runtime
) -> None:
    await poison(chat_runtime)
    visitor, _ = await connect(web, name="Peter", email="peter@example.com")
    await visitor.send(type="message", id="c-1", text=f"Help {PILL}")
    refusal = await visitor.next("error")
    assert refusal["code"] == "kept" and refusal["id"] == "c-1"
    ack = await visitor.say("second message", "c-2")
    assert ack["id"] == "c-2" and not visitor.ws.closed
    [item] = await parked(chat_runtime)
    assert item.channel == "webchat" and PILL in (item.payload or "")
    assert await bodies(chat_runtime) == ["second message"]


async def test_a_web_form_the_store_refuses_is_parked_and_answered_as_kept(
    client: TestClient[Any, Any], runtime: Runtime
) -> None:
    await poison(runtime)
    response = await client.post("/api/v1/webform", json={"email": "zoe@example.com", "message": f"Hi {PILL}"},
                                 headers={"Idempotency-Key": "pill-1"})
    assert response.status == 202, await response.text()
    answer = await response.json()
    assert answer["status"] == "kept" and answer["parked"] >= 1
    ok = await client.post("/api/v1/webform", json={"email": "amy@example.com", "message": "Hello"})
    assert ok.status == 201
    [item] = await parked(runtime)
    assert item.channel == "webform" and item.reference == "key:pill-1" and PILL in (item.payload or "")


async def test_admins_see_parked_items_in_the_console_and_the_cli(
    client: TestClient[Any, Any], runtime: Runtime, add_agent: Any, tmp_path: Path
) -> None:
    await poison(runtime)
    response = await client.post("/api/v1/webform", json={"email": "zoe@example.com", "message": f"Hi {PILL}"},
                                 headers={"Idempotency-Key": "pill-2"})
    number = (await response.json())["parked"]
    admin, _ = await add_agent("Root", role=Role.admin, email="root@example.com", language="en")
    await runtime.service.set_password(admin.id, "a long enough password")
    await sign_in(client, "root@example.com", "a long enough password")
    page = await (await client.get("/desk/admin")).text()
    assert f'data-parked="{number}"' in page and "refused by the test trigger" in page
    env = clean_env(free_port())
    env["SWITCHBOARD_DATABASE_URL"] = runtime.settings.database_url
    listed = cli(tmp_path, env, "parked", "list")
    assert listed.returncode == 0 and "webform  key:pill-2" in listed.stdout, listed.stderr
    shown = cli(tmp_path, env, "parked", "show", str(number))
    assert shown.returncode == 0 and "error: " in shown.stdout and PILL in shown.stdout, shown.stderr


async def test_a_call_the_store_refuses_is_parked_and_the_next_call_is_logged(
    client: TestClient[Any, Any], runtime: Runtime, add_agent: Any
) -> None:
    await poison(runtime)
    _, headers = await add_agent("Ada")
    call = {"direction": "in", "disposition": "answered", "started_at": "2026-12-01T10:00:00+00:00",
            "ended_at": "2026-12-01T10:05:00+00:00"}
    kept = await client.post("/api/v1/calls", headers=headers, json={
        **call, "call_id": "pill-call", "caller": "+447911123456", "notes": f"Refund {PILL}"})
    assert kept.status == 202 and (await kept.json())["status"] == "kept"
    logged = await client.post("/api/v1/calls", headers=headers, json={
        **call, "call_id": "next-call", "caller": "+447911123457", "notes": "Wants a callback"})
    assert logged.status == 201, await logged.text()
    [item] = await parked(runtime)
    assert item.channel == "phone" and item.reference == "pill-call" and PILL in (item.payload or "")
