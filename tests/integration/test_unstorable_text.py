"""Text the store cannot keep (NUL, unpaired surrogates) arriving on every channel and every form: it is stored
without them, the message says so among its problems, and nothing answers 5xx, 451 or drops a socket — on
PostgreSQL, which refuses both, and on SQLite."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from channels.chat.telegram.polling import TelegramPoller
from switchboard.bootstrap import Runtime
from tests.fakes import FakeTelegram
from tests.integration.test_console import sign_in
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
from tests.integration.test_webform import form_token
from tickets.models import Customer, Message, Ticket
from tickets.text import clean, clean_text

NUL = "\x00"
LONE = "\ud800"


def test_the_rule_removes_nul_and_replaces_unpaired_surrogates() -> None:
    assert clean_text(f"a{NUL}b{LONE}c") == ("ab\ufffdc", 2)
    assert clean_text("Привет 👋") == ("Привет 👋", 0)  # a pair is a character, not a surrogate
    nested, count = clean({"name": f"Ива{NUL}н", "items": [f"x{LONE}", 3], f"k{NUL}": None})
    assert nested == {"name": "Иван", "items": ["x\ufffd", 3], "k": None} and count == 3


async def messages(runtime: Runtime) -> list[Message]:
    async with runtime.sessions() as session:
        return list(await session.scalars(select(Message).order_by(Message.id)))


async def test_web_forms_json_and_html_store_the_text_without_them(client: TestClient[Any, Any],
                                                                  runtime: Runtime) -> None:
    body = json.dumps({"name": f"Zoe{NUL} Smith", "email": "zoe@example.com", "subject": f"Printer{NUL}",
                       "message": f"It{NUL} does not print {LONE}"})
    response = await client.post("/api/v1/webform", data=body, headers={"Content-Type": "application/json",
                                                                        "Idempotency-Key": "nul-1"})
    assert response.status == 201, await response.text()
    page = await client.post("/contact", data={"form_token": await form_token(client), "email": "amy@example.com",
                                               "message": f"From the form{NUL}"}, allow_redirects=False)
    assert page.status in (200, 303), await page.text()
    stored = await messages(runtime)
    assert [m.body_text for m in stored] == ["It does not print \ufffd", "From the form"]
    assert all(any("cannot keep" in problem for problem in m.problems) for m in stored)
    async with runtime.sessions() as session:
        ticket = await session.get_one(Ticket, stored[0].ticket_id)
        customer = await session.get_one(Customer, ticket.customer_id)
    assert ticket.subject == "Printer" and customer.name == "Zoe Smith"


async def test_a_mail_carrying_them_is_stored_not_deferred(mailbox: Mailbox) -> None:
    message = mail(subject=f"Счёт{NUL} за май", body=f"Здравствуйте!{NUL} Счёт не пришёл.",
                   sender=f"Иван{NUL} Петров <ivan@example.org>")
    status, reply = await mailbox.send(message)
    assert status == 250 and reply.startswith("2.0.0 OK") or reply.startswith("OK"), reply
    # a base64 text part whose bytes hold a NUL
    raw = (b"From: Anna <anna@example.org>\r\nTo: support@example.com\r\nSubject: =?utf-8?q?Bad=00Subject?=\r\n"
           b"Message-ID: <nul-b64@example.org>\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           b"SGVsbG8AV29ybGQ=\r\n")
    status, reply = await mailbox.send(raw, sender="anna@example.org")
    assert status == 250, reply
    tickets = await mailbox.tickets()
    assert [t.subject for t in tickets] == ["Счёт за май", "BadSubject"]
    stored = await messages(mailbox.runtime)
    assert stored[0].body_text.startswith("Здравствуйте! Счёт не пришёл.")
    assert stored[1].body_text.startswith("HelloWorld")


async def test_console_login_search_portal_and_call_notes_answer_without_5xx(
    client: TestClient[Any, Any], runtime: Runtime, add_agent: Any
) -> None:
    _, headers = await add_agent("Ada")
    login = await sign_in(client, f"ada{NUL}@example.com", f"x{NUL}")
    assert login.status < 500, await login.text()
    found = await client.get("/api/v1/tickets", params={"q": f"print{NUL}er"}, headers=headers)
    assert found.status == 200, await found.text()
    call = await client.post("/api/v1/calls", headers=headers, json={
        "call_id": "nul-call-1", "direction": "in", "disposition": "answered", "caller": "+447911123456",
        "started_at": "2026-12-01T10:00:00+00:00", "ended_at": "2026-12-01T10:05:00+00:00",
        "notes": f"Wants a refund{NUL}{LONE}"})
    assert call.status == 201, await call.text()
    logged = await call.json()
    assert logged["call"]["notes"] == "Wants a refund\ufffd"


async def test_a_web_chat_visitor_named_with_them_keeps_the_socket(web: TestClient[Any, Any],
                                                                   chat_runtime: Runtime) -> None:
    visitor, welcome = await connect(web, name=f"Pe{NUL}ter", email="peter@example.com")
    assert welcome["profile"]["name"] == "Peter"
    await visitor.ws.send_str('{"type": "message", "id": "c-1", "text": "broken \\ud800 pair and a \\u0000"}')
    await visitor.next("ack")
    await visitor.say("second message", "c-2")
    assert not visitor.ws.closed
    stored = await messages(chat_runtime)
    assert [m.body_text for m in stored] == ["broken \ufffd pair and a", "second message"]
    assert [bool(m.problems) for m in stored] == [True, False]


async def test_a_telegram_update_carrying_them_is_stored_and_the_offset_moves(
    rt: Runtime, tg: FakeTelegram, poller: TelegramPoller
) -> None:
    other = tg.user(user_id=77, first_name="Olga")
    _, second = tg.push(tg.message(f"Не работает{NUL} оплата"), tg.message("Где мой заказ?", user=other))
    await poller.step()
    await poller.step()
    stored = await messages(rt)
    assert [m.body_text for m in stored] == ["Не работает оплата", "Где мой заказ?"]
    assert tg.updates == [] and tg.get_updates_offsets[-1] == second["update_id"] + 1
