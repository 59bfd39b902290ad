"""The website chat end to end in one process: a real WebSocket client against the real web app, the real
arq worker publishing replies through real Redis, and unseen replies mailed to a real SMTP sink."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from switchboard.bootstrap import Runtime, build
from switchboard.settings import Settings
from tests.conftest import background_worker
from tests.fakes import SmtpSink
from tickets.clock import Clock
from tickets.models import CustomerIdentity, DeliveryStatus, Message, Outbox, OutboxStatus, Role, Ticket

TIMEOUT = 10.0


def chat_settings(settings: Settings, relay_url: str, **webchat: Any) -> Settings:
    return settings.model_copy(update={
        "smtp": settings.smtp.model_copy(update={"relay_url": relay_url, "from_address": "support@example.com"}),
        "webchat": settings.webchat.model_copy(update={"email_after_minutes": 0.02, **webchat}),
    })


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    async with SmtpSink() as server:
        yield server


@pytest.fixture
def chat_options() -> dict[str, Any]:
    return {}


@pytest.fixture
async def chat_runtime(
    settings: Settings, clock: Clock, sink: SmtpSink, chat_options: dict[str, Any]
) -> AsyncIterator[Runtime]:
    runtime = await build(chat_settings(settings, sink.url, **chat_options), clock=clock)
    try:
        yield runtime
    finally:
        await runtime.close()


@pytest.fixture
async def web(chat_runtime: Runtime) -> AsyncIterator[TestClient[Any, Any]]:
    from channels.chat.webchat.handlers import HUB
    from switchboard.webapp import create_app

    app = create_app(chat_runtime)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        await asyncio.wait_for(app[HUB].subscribed.wait(), TIMEOUT)
        yield client


@pytest.fixture
async def worker(chat_runtime: Runtime) -> AsyncIterator[None]:
    async with background_worker(chat_runtime):
        yield


@pytest.fixture
async def agent(chat_runtime: Runtime) -> dict[str, str]:
    _, token = await chat_runtime.service.add_agent("Anna Agent", "anna@support.example", role=Role.manager)
    return {"Authorization": f"Bearer {token}"}


class Visitor:
    """One browser tab: the socket and what it received."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []

    async def send(self, **frame: Any) -> None:
        await self.ws.send_str(json.dumps(frame))

    async def next(self, kind: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next event of this type (others are kept in `events`)."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.ws.receive()
                if message.type != aiohttp.WSMsgType.TEXT:
                    raise AssertionError(f"socket ended while waiting for {kind}: {message!r}")
                event = json.loads(message.data)
                self.events.append(event)
                if event["type"] == kind:
                    return event

    async def reply(self) -> dict[str, Any]:
        """The next agent's message pushed to this tab (its own messages come back too, for its other tabs)."""
        while (event := await self.next("message"))["message"]["direction"] != "out":
            pass
        return event

    async def say(self, text: str, client_id: str) -> dict[str, Any]:
        await self.send(type="message", id=client_id, text=text)
        return await self.next("ack")


async def connect(
    client: TestClient[Any, Any], token: str | None = None, **hello: Any
) -> tuple[Visitor, dict[str, Any]]:
    ws = await client.ws_connect("/chat/ws")
    visitor = Visitor(ws)
    await visitor.send(type="hello", token=token, **hello)
    return visitor, await visitor.next("welcome")


async def stored(runtime: Runtime, model: Any, *where: Any) -> list[Any]:
    async with runtime.sessions() as session:
        return list(await session.scalars(select(model).where(*where).order_by(model.id)))


async def test_page_widget_and_assets_are_served(web: TestClient[Any, Any]) -> None:
    page = await web.get("/chat", headers={"Accept-Language": "ru-RU,ru;q=0.9"})
    html = await page.text()
    assert page.status == 200 and '<html lang="ru">' in html
    assert 'role="log"' in html and '<label for="chat-text">Сообщение</label>' in html
    english = await (await web.get("/chat?lang=en&embed=1")).text()
    assert '<body class="embed">' in english and "Chat with support" in english
    widget = await web.get("/chat/widget.js")
    assert widget.status == 200 and widget.headers["Content-Type"].startswith("text/javascript")
    assert "/chat?embed=1" in await widget.text()
    script = await web.get("/chat/static/chat.js")
    assert script.status == 200 and "textContent" in await script.text()
    assert (await web.get("/chat/static/secrets.py")).status == 404


# The email fallback falls due 6 s after the reply: the browser's "seen" must come first, and under four test
# workers on two cores 1.2 s was sometimes too short for it.
@pytest.mark.parametrize("chat_options", [{"email_after_minutes": 0.1}])
async def test_a_message_becomes_a_routed_ticket_and_the_reply_arrives_live(
    web: TestClient[Any, Any], chat_runtime: Runtime, worker: None, agent: dict[str, str]
) -> None:
    visitor, welcome = await connect(web, name="Olga", email="Olga@Example.com", language="ru-RU")
    assert welcome["messages"] == [] and welcome["ticket"] is None and len(welcome["token"]) >= 32
    ack = await visitor.say("Не могу войти в кабинет", "m1")
    number = ack["ticket"]["number"]
    assert ack["ticket"]["status"] == "open" and ack["message"]["direction"] == "in"

    ticket = await (await web.get(f"/api/v1/tickets/{number}", headers=agent)).json()
    assert ticket["channel"] == "webchat" and ticket["assignee"]["name"] == "Anna Agent"
    kinds = {(i["kind"], i["address"]) for i in ticket["customer"]["identities"]}
    assert ("email", "olga@example.com") in kinds and any(kind == "webchat" for kind, _ in kinds)
    assert ticket["customer"]["name"] == "Olga"

    reply = await web.post(f"/api/v1/tickets/{number}/messages", json={"body": "Сбросили пароль, попробуйте."},
                           headers=agent)
    assert reply.status == 201, await reply.text()
    pushed = await visitor.reply()
    assert pushed["message"]["text"] == "Сбросили пароль, попробуйте."
    assert pushed["message"]["author"] == "Anna Agent" and pushed["message"]["direction"] == "out"

    # The browser showed it: the reply is delivered and its email copy is cancelled, never sent.
    await visitor.send(type="seen", ids=[pushed["message"]["id"]])
    await _until(lambda: _message_status(chat_runtime, pushed["message"]["id"]), DeliveryStatus.delivered)
    await _until(lambda: _outbox_status(chat_runtime, "chat_missed"), OutboxStatus.cancelled, timeout=15)
    web_rows = await stored(chat_runtime, Outbox, Outbox.channel == "webchat")
    assert [r.status for r in web_rows] == [OutboxStatus.sent]
    shown = await (await web.get(f"/api/v1/tickets/{number}", headers=agent)).json()
    assert [m["delivery_status"] for m in shown["messages"]] == [None, "delivered"]
    await visitor.ws.close()


async def test_an_agents_files_come_as_portal_links_live_and_in_the_history(
    web: TestClient[Any, Any], chat_runtime: Runtime, worker: None
) -> None:
    anna, _ = await chat_runtime.service.add_agent("Anna Agent", "anna@support.example", role=Role.manager)
    visitor, welcome = await connect(web, name="Olga")
    number = (await visitor.say("Пришлите счёт", "m1"))["ticket"]["number"]
    invoice = await chat_runtime.attachments.save("Счёт 17.pdf", "application/pdf", b"%PDF-1.4 invoice")
    reply = await chat_runtime.service.add_message(anna, number, "Вот счёт.", internal=False, attachments=(invoice,))
    pushed = (await visitor.reply())["message"]
    [ticket] = await stored(chat_runtime, Ticket, Ticket.id == number)
    link = f"/portal/{ticket.portal_key}/files/{reply.id}/0"
    assert pushed["files"] == [{"name": "Счёт 17.pdf", "size": 16, "url": link}]
    got = await web.get(link)  # on the chat page's own origin
    assert got.status == 200 and await got.read() == b"%PDF-1.4 invoice"
    await visitor.ws.close()

    again, back = await connect(web, token=welcome["token"])  # the visitor comes back: the welcome has the history
    assert [m["files"] for m in back["messages"]] == [[], pushed["files"]]
    assert [m["files"] for m in await _history(again)] == [[], pushed["files"]]
    await again.ws.close()


async def test_an_unseen_reply_is_emailed_and_waits_in_the_history(
    web: TestClient[Any, Any], chat_runtime: Runtime, worker: None, agent: dict[str, str], sink: SmtpSink
) -> None:
    visitor, welcome = await connect(web, email="away@example.com")
    token = welcome["token"]
    number = (await visitor.say("Where is my order 1042?", "a1"))["ticket"]["number"]
    await visitor.ws.close()

    reply = await web.post(f"/api/v1/tickets/{number}/messages", json={"body": "It ships tomorrow."}, headers=agent)
    assert reply.status == 201
    # The agent was told of the ticket when it was routed to them; the visitor gets the reply.
    mails = await sink.wait_for(2, timeout=15)
    [mail] = [m for m in mails if m.rcpt_tos == ("away@example.com",)]
    [notice] = [m for m in mails if m is not mail]
    assert "Assigned to you" in str(notice.message["Subject"])
    assert f"[#{number}]" in str(mail.message["Subject"])
    body = mail.message.get_body(("plain",)).get_content()
    assert "It ships tomorrow." in body and "/chat" in body and "Anna Agent" in body

    again, welcome = await connect(web, token=token)
    assert [(m["direction"], m["text"]) for m in welcome["messages"]] == [
        ("in", "Where is my order 1042?"), ("out", "It ships tomorrow.")]
    assert welcome["ticket"] == {"number": number, "status": "open"}
    follow_up = await again.say("Thanks!", "a2")
    assert follow_up["ticket"]["number"] == number, "a returning visitor continues their open ticket"
    await again.ws.close()


async def test_a_resent_message_is_stored_once_and_other_tabs_see_it(
    web: TestClient[Any, Any], chat_runtime: Runtime
) -> None:
    first, welcome = await connect(web)
    second, _ = await connect(web, token=welcome["token"])
    ack = await first.say("hello <b>there</b> <script>alert(1)</script>", "same-id")
    again = await first.say("hello <b>there</b> <script>alert(1)</script>", "same-id")
    assert again["duplicate"] is True and again["message"]["id"] == ack["message"]["id"]
    seen_elsewhere = await second.next("message")
    assert seen_elsewhere["message"]["id"] == ack["message"]["id"]
    [message] = await stored(chat_runtime, Message, Message.ticket_id == ack["ticket"]["number"])
    assert message.body_text == "hello <b>there</b> <script>alert(1)</script>" and message.body_html is None
    await first.ws.close()
    await second.ws.close()


async def test_a_visitor_using_someones_email_joins_their_card_but_sees_only_their_own_chat(
    web: TestClient[Any, Any], chat_runtime: Runtime
) -> None:
    owner, _ = await connect(web, email="owner@example.com")
    owners = (await owner.say("my private question", "o1"))["ticket"]["number"]
    stranger, welcome = await connect(web, email="owner@example.com")
    assert welcome["messages"] == []
    theirs = (await stranger.say("hi", "s1"))["ticket"]["number"]
    assert theirs != owners, "the stranger's message must not join the owner's conversation"
    history_events = stranger.events[:]
    await stranger.send(type="history")
    history = await stranger.next("history")
    assert [m["text"] for m in history["messages"]] == ["hi"] and history_events
    # One card: the agent sees both chats under the owner's customer.
    identities = await stored(chat_runtime, CustomerIdentity, CustomerIdentity.kind.in_(("email", "webchat")))
    assert len({i.customer_id for i in identities}) == 1 and len(identities) == 3
    await owner.ws.close()
    await stranger.ws.close()


@pytest.mark.parametrize("chat_options", [{"rate_limit": 2, "max_message_chars": 50}])
async def test_bad_frames_get_clear_errors_and_nothing_is_lost(
    web: TestClient[Any, Any], chat_runtime: Runtime
) -> None:
    ws = await web.ws_connect("/chat/ws")
    raw = Visitor(ws)
    await raw.send(type="message", id="x", text="before hello")
    assert (await raw.next("error"))["code"] == "hello_first"
    await ws.send_str("not json")
    assert (await raw.next("error"))["code"] == "invalid"
    await raw.send(type="hello", token="short", email="not-an-email")
    welcome = await raw.next("welcome")
    assert "email" in welcome["errors"] and welcome["token"] != "short"
    await raw.send(type="message", id="long", text="x" * 51)
    too_long = await raw.next("error")
    assert too_long["code"] == "too_long" and too_long["id"] == "long" and too_long["max_chars"] == 50
    await raw.send(type="message", id="bad id!", text="hi")
    assert (await raw.next("error"))["code"] == "invalid"
    await raw.send(type="profile", email="still-bad")
    assert "email" in (await raw.next("error"))["errors"]
    await raw.say("one", "r1")
    await raw.say("two", "r2")
    await raw.send(type="message", id="r3", text="three")
    limited = await raw.next("error")
    assert limited["code"] == "rate_limited" and limited["id"] == "r3" and limited["retry_after"] >= 1
    texts = [m.body_text for m in await stored(chat_runtime, Message, Message.channel == "webchat")]
    assert texts == ["one", "two"]
    await ws.close()


async def test_resolution_is_told_in_the_chat(
    web: TestClient[Any, Any], chat_runtime: Runtime, worker: None, agent: dict[str, str]
) -> None:
    visitor, _ = await connect(web, language="en")
    number = (await visitor.say("It is broken", "b1"))["ticket"]["number"]
    resolved = await web.patch(f"/api/v1/tickets/{number}", json={"status": "resolved"}, headers=agent)
    assert resolved.status == 200, await resolved.text()
    status = await visitor.next("status")
    assert status["ticket"] == number and status["status"] == "resolved" and f"#{number}" in status["text"]
    reopened = await visitor.say("Still broken", "b2")
    assert reopened["ticket"] == {"number": number, "status": "open"}
    await visitor.ws.close()


async def test_sockets_from_other_sites_are_refused(web: TestClient[Any, Any]) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await web.ws_connect("/chat/ws", headers={"Origin": "https://evil.example"})
    assert refused.value.status == 403
    own = await web.ws_connect("/chat/ws", headers={"Origin": f"http://{web.host}:{web.port}"})
    await own.close()


async def _message_status(runtime: Runtime, message_id: int) -> Any:
    async with runtime.sessions() as session:
        return (await session.get_one(Message, message_id)).delivery_status


async def _outbox_status(runtime: Runtime, kind: str) -> Any:
    rows = await stored(runtime, Outbox, Outbox.kind == kind)
    return rows[0].status if rows else None


async def _until(read: Any, expected: Any, timeout: float = TIMEOUT) -> None:
    async with asyncio.timeout(timeout):
        while (value := await read()) != expected:
            await asyncio.sleep(0.1)
    assert value == expected


async def test_a_lost_subscription_comes_back_and_tells_sockets_to_resync(
    web: TestClient[Any, Any], chat_runtime: Runtime
) -> None:
    from channels.chat.webchat.handlers import HUB

    visitor, _ = await connect(web)
    killed = await chat_runtime.redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    assert killed >= 1
    await visitor.next("resync")
    assert web.server.app[HUB].subscribed.is_set()
    await visitor.send(type="history")
    assert (await visitor.next("history"))["messages"] == []
    await visitor.ws.close()


@pytest.mark.parametrize("chat_options", [{"thread_hours": 0.0002}])
async def test_a_visitor_back_long_after_resolution_starts_a_new_ticket(
    web: TestClient[Any, Any], chat_runtime: Runtime, agent: dict[str, str]
) -> None:
    visitor, welcome = await connect(web)
    number = (await visitor.say("first question", "q1"))["ticket"]["number"]
    await asyncio.sleep(1.0)  # past the 0.72 s window: an open ticket is still continued
    assert (await visitor.say("more on it", "q2"))["ticket"]["number"] == number
    resolved = await web.patch(f"/api/v1/tickets/{number}", json={"status": "resolved"}, headers=agent)
    assert resolved.status == 200
    await visitor.ws.close()
    await asyncio.sleep(1.0)
    back, welcome = await connect(web, token=welcome["token"])
    assert welcome["ticket"] == {"number": number, "status": "resolved"}
    fresh = await back.say("a new question", "q3")
    assert fresh["ticket"]["number"] != number and fresh["ticket"]["status"] in ("new", "open")
    assert [m["text"] for m in (await _history(back))] == ["first question", "more on it", "a new question"]
    await back.ws.close()


async def _history(visitor: Visitor) -> list[dict[str, Any]]:
    await visitor.send(type="history")
    return (await visitor.next("history"))["messages"]


@pytest.mark.postgresql_only
async def test_a_database_outage_keeps_the_message_for_a_resend_that_stores_it_once(
    settings: Settings, clock: Clock, runtime: Runtime, sink: SmtpSink
) -> None:
    from sqlalchemy.engine import make_url

    from switchboard.webapp import create_app
    from tests.proxy import TcpProxy

    url = make_url(settings.database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    cut_settings = chat_settings(settings, sink.url).model_copy(
        update={"database": settings.database.model_copy(update={"url": proxied})})
    outage_runtime = await build(cut_settings, clock=clock)
    try:
        async with TestClient(TestServer(create_app(outage_runtime), host="127.0.0.1")) as client:
            visitor, _ = await connect(client)
            await proxy.cut()
            await visitor.send(type="message", id="kept", text="sent while the database is down")
            refused = await visitor.next("error")
            assert refused["code"] == "unavailable" and refused["id"] == "kept" and refused["retry_after"] > 0

            late = await client.ws_connect("/chat/ws")
            await late.send_str(json.dumps({"type": "hello", "token": None}))
            assert json.loads((await late.receive()).data)["code"] == "unavailable"
            closed = await late.receive()
            assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == aiohttp.WSCloseCode.TRY_AGAIN_LATER

            await proxy.start()
            first = await visitor.say("sent while the database is down", "kept")
            again = await visitor.say("sent while the database is down", "kept")
            assert first["duplicate"] is False and again["duplicate"] is True
            await visitor.ws.close()
    finally:
        await proxy.cut()
        await outage_runtime.close()
    texts = [m.body_text for m in await stored(runtime, Message, Message.channel == "webchat")]
    assert texts == ["sent while the database is down"]
