"""The website chat in a real browser against `switchboard serve` (issue acceptance): the chat on /chat opens a
conversation, the agent's reply appears without reloading, reloading shows the history; the widget on another
site opens the chat in a frame that connects.

Runs once per suite, not per database backend: `serve` brings its own embedded SQLite and Redis, as in
tests/integration/test_serve.py. Needs Chromium (`apt-get install chromium`); without it the tests skip,
or fail under SWITCHBOARD_TEST_STRICT=1.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import unavailable
from tests.e2e.browser import Chromium, Page, find_chromium
from tests.integration.test_serve import Serve, cli

pytestmark = pytest.mark.embedded_default

TIMEOUT = 15.0
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Chromium]:
    binary = find_chromium()
    if binary is None:
        unavailable("Chromium (apt-get install -y chromium)")
    chromium = Chromium(binary, tmp_path / "chromium-profile")
    try:
        await chromium.start()
        yield chromium
    finally:
        await chromium.stop()


@pytest.fixture
def agent_token(serve: Serve) -> str:
    added = cli(serve.cwd, serve.env, "agent", "add", "Alice Agent", "--email", "alice@example.com")
    assert added.returncode == 0, added.stderr
    return added.stdout.strip().splitlines()[-1]


class Api:
    """The agent's side: the REST API with a Bearer token."""

    def __init__(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        self._session = session
        self._base = base
        self._headers = {"Authorization": f"Bearer {token}"}

    async def get(self, path: str) -> Any:
        async with self._session.get(f"{self._base}{path}", headers=self._headers) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def reply(self, number: int, body: str) -> None:
        async with self._session.post(f"{self._base}/api/v1/tickets/{number}/messages", json={"body": body},
                                      headers=self._headers) as response:
            assert response.status == 201, await response.text()

    async def chat_tickets(self) -> list[dict[str, Any]]:
        return [t for t in (await self.get("/api/v1/tickets"))["items"] if t["channel"] == "webchat"]


@pytest.fixture
async def api(serve: Serve, agent_token: str) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as session:
        yield Api(session, serve.base, agent_token)


BUBBLES = """[...document.querySelectorAll('#messages li')].map(li => ({
    kind: li.className, pending: li.dataset.pending || null, id: li.dataset.id || null,
    who: li.querySelector('.who') ? li.querySelector('.who').textContent : null,
    text: li.querySelector('.text') ? li.querySelector('.text').textContent : li.textContent}))"""


async def bubbles(page: Page) -> list[dict[str, Any]]:
    return list(await page.evaluate(BUBBLES))


async def wait_online(page: Page, context_id: int | None = None) -> None:
    await page.wait_for("!!(document.getElementById('status') && document.getElementById('status').dataset.state)",
                        timeout=TIMEOUT, context_id=context_id, what="the status line")
    await page.wait_for("document.getElementById('status').dataset.state === 'online'", timeout=TIMEOUT,
                        context_id=context_id, what="the chat to connect (status data-state=online)")


async def wait_acked(page: Page, text: str) -> None:
    """The bubble with this text carries the stored message's id (the server acked it)."""
    await page.wait_for(
        "[...document.querySelectorAll('#messages li[data-id]')]"
        f".some(li => li.querySelector('.text').textContent === {json.dumps(text)})"
        " && !document.querySelector('#messages li[data-pending]')",
        timeout=TIMEOUT, what=f"the ack of {text!r}")


async def test_chat_page_conversation_live_reply_and_history_after_reload(
    browser: Chromium, serve: Serve, api: Api
) -> None:
    page = await browser.new_page()
    await page.navigate(f"{serve.base}/chat?lang=en")
    await wait_online(page)
    assert await bubbles(page) == []

    # The visitor types and presses Enter, as a person would.
    first = "Hello, my printer is on fire"
    await page.type("#chat-text", first)
    await page.press_enter()
    await wait_acked(page, first)
    assert await page.evaluate("document.getElementById('chat-text').value") == ""

    [ticket] = await api.chat_tickets()
    assert ticket["status"] == "open"
    detail = await api.get(f"/api/v1/tickets/{ticket['number']}")
    assert detail["messages"][0]["body_text"] == first
    assert detail["assignee"]["name"] == "Alice Agent"

    # The agent answers; the page shows it without a reload (the marker survives only if the page stayed).
    await page.evaluate("window.__stillTheSamePage = true")
    reply = "Turn it off and step away; an engineer is on the way."
    await api.reply(ticket["number"], reply)
    await page.wait_for(
        f"[...document.querySelectorAll('#messages li.out .text')].some(p => p.textContent === {json.dumps(reply)})",
        timeout=TIMEOUT, what="the agent's reply to appear")
    assert await page.evaluate("window.__stillTheSamePage === true"), "the page was reloaded"

    # HTML a visitor writes is shown as text: no element is made of it and no script runs.
    await page.type("#chat-text", XSS)
    await page.click("#composer button[type=submit]")
    await wait_acked(page, XSS)

    def conversation(items: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
        return [(i["kind"], i["who"], i["text"]) for i in items]

    expected = [("in", "You", first), ("out", "Alice Agent", reply), ("in", "You", XSS)]
    assert conversation(await bubbles(page)) == expected
    assert await page.evaluate("document.querySelectorAll('#messages img, #messages script').length") == 0

    # A reload shows the whole history again, in order, from the server (the token is in localStorage).
    await page.reload()
    await wait_online(page)
    await page.wait_for("document.querySelectorAll('#messages li').length >= 3", timeout=TIMEOUT,
                        what="the history after the reload")
    assert await page.evaluate("window.__stillTheSamePage === undefined"), "the page did not reload"
    shown = await bubbles(page)
    assert conversation(shown) == expected
    ids = [int(i["id"]) for i in shown]
    assert ids == sorted(ids) and all(i["pending"] is None for i in shown)
    assert await page.evaluate("document.querySelectorAll('#messages img, #messages script').length") == 0
    assert page.seen("Page.javascriptDialogOpening") == [], "a script the visitor wrote ran"

    # Still one ticket holding all three messages.
    [again] = await api.chat_tickets()
    assert again["number"] == ticket["number"]
    detail = await api.get(f"/api/v1/tickets/{ticket['number']}")
    assert [m["body_text"] for m in detail["messages"]] == [first, reply, XSS]


@pytest.fixture
async def host_site(serve: Serve) -> AsyncIterator[str]:
    """Somebody else's site (another origin) that embeds the widget with the one-line snippet."""
    html = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title></head>'
            f'<body><h1>A shop</h1><p>Products.</p>'
            f'<script src="{serve.base}/chat/widget.js" async></script></body></html>')

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", index)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}/"
    finally:
        await runner.cleanup()


async def test_widget_on_another_site_opens_the_chat_in_a_frame_that_connects(
    browser: Chromium, serve: Serve, api: Api, host_site: str
) -> None:
    page = await browser.new_page()
    await page.navigate(host_site)
    await page.wait_for("!!document.querySelector('button[aria-controls=switchboard-chat-frame]')", timeout=TIMEOUT,
                        what="the widget's button")
    assert await page.evaluate("document.getElementById('switchboard-chat-frame') === null")

    await page.click("button[aria-controls=switchboard-chat-frame]")
    src = await page.wait_for("document.getElementById('switchboard-chat-frame') && "
                              "document.getElementById('switchboard-chat-frame').src", timeout=TIMEOUT,
                              what="the chat frame")
    assert src == f"{serve.base}/chat?embed=1&page={quote(host_site, safe='')}"
    assert await page.evaluate("document.querySelector('button[aria-controls=switchboard-chat-frame]')"
                               ".getAttribute('aria-expanded')") == "true"

    # Inside the frame (our origin, not the shop's): the chat connects and takes a message.
    frame = await page.frame_context("/chat?embed=1")
    await wait_online(page, frame)
    assert await page.evaluate("document.body.className", context_id=frame) == "embed"
    text = "Do you ship to Lisbon?"
    await page.evaluate(
        f"(() => {{ const t = document.getElementById('chat-text'); t.value = {json.dumps(text)};"
        " document.getElementById('composer').requestSubmit(); })()", context_id=frame)
    await page.wait_for(
        "[...document.querySelectorAll('#messages li[data-id] .text')]"
        f".some(p => p.textContent === {json.dumps(text)})",
        timeout=TIMEOUT, context_id=frame, what="the ack inside the frame")
    [ticket] = await api.chat_tickets()
    detail = await api.get(f"/api/v1/tickets/{ticket['number']}")
    assert detail["messages"][0]["body_text"] == text

    # The agent's reply reaches the frame too.
    await api.reply(ticket["number"], "Yes, in 3 days.")
    await page.wait_for("[...document.querySelectorAll('#messages li.out .text')]"
                        ".some(p => p.textContent === 'Yes, in 3 days.')",
                        timeout=TIMEOUT, context_id=frame, what="the reply inside the frame")

    # The button closes and reopens the same frame.
    await page.click("button[aria-controls=switchboard-chat-frame]")
    assert await page.evaluate("document.getElementById('switchboard-chat-frame').hidden") is True
    await page.click("button[aria-controls=switchboard-chat-frame]")
    assert await page.evaluate("document.getElementById('switchboard-chat-frame').hidden") is False
    assert await page.evaluate("document.querySelectorAll('iframe').length") == 1
