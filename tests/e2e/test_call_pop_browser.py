"""Issue 28's screen pop in Debian's Chromium against `switchboard serve`: a PBX reports the call — a stand-in Asterisk
manager (AMI) on 127.0.0.1 that `serve` follows through SWITCHBOARD_AMI_URL, or Zammad's generic CTI events posted
with curl's form encoding; the pop appears on the page Alice has open, with the caller's card, their open ticket and
last contacts; she says the call is about that ticket and records it with the next contact seconds ahead; at
hang-up the call is logged on it, once; the reminder comes at the planned second; the caller log shows it. axe-core
reads the pop and the caller log at both widths."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_agent_day_browser import WIDTHS, check
from tests.e2e.test_console_browser import TIMEOUT_MS, add_agent, sign_in, submit_form
from tests.fake_ami import FakeAmi
from tests.integration.test_serve import Serve, cli, http

pytestmark = pytest.mark.embedded_default
CLIENT = "+44 20 7946 0958"


def post_event(endpoint: str, **fields: str) -> dict[str, Any]:
    status, body = http("POST", endpoint, data=urllib.parse.urlencode(fields).encode(),
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200, body
    return dict(json.loads(body))


@dataclass
class Pbx:
    """The call as the PBX reports it: ring Alice's extension 201, she answers, the call ends."""

    ring: Callable[[], Awaitable[None]]
    answer: Callable[[], Awaitable[None]]
    hang_up: Callable[[], Awaitable[None]]


@asynccontextmanager
async def switchboard_with(source: str, cwd: Path) -> AsyncIterator[tuple[Serve, Pbx]]:
    """`serve` following a stand-in Asterisk manager, or `serve` with a CTI token and curl's events."""
    fake = await FakeAmi().start() if source == "ami" else None
    serve = Serve(cwd, {"SWITCHBOARD_AMI_URL": fake.url} if fake else {})
    try:
        await asyncio.to_thread(serve.wait_ready)
        add_agent(serve, "Alice", "--extension", "201")
        if fake is not None:
            await fake.logged_in()
            calls: list[Any] = []

            async def ring() -> None:
                calls.append(await fake.inbound_call(CLIENT.replace(" ", ""), "201"))

            async def answer() -> None:
                await fake.answer(calls[0])

            async def hang_up() -> None:
                await fake.hang_up(calls[0])
                await fake.hang_up(calls[0])  # Asterisk saying it twice still logs one call
            yield serve, Pbx(ring, answer, hang_up)
            return
        rotated = cli(serve.cwd, serve.env, "calls", "cti-rotate")
        assert rotated.returncode == 0, rotated.stderr
        endpoint = rotated.stdout.strip()
        call = {"from": CLIENT, "to": "201", "direction": "in", "callId": "e2e-cti"}

        async def cti_ring() -> None:
            post_event(endpoint, event="newCall", **call, **{"user[]": "Alice"})

        async def cti_answer() -> None:
            post_event(endpoint, event="answer", **call, answeringNumber="201")

        async def cti_hang_up() -> None:
            assert post_event(endpoint, event="hangup", **call, cause="normalClearing")["logged"] is True
            assert post_event(endpoint, event="hangup", **call, cause="normalClearing") == {
                "call_id": call["callId"], "state": "ended"}  # told twice, logged once
        yield serve, Pbx(cti_ring, cti_answer, cti_hang_up)
    finally:
        serve.stop()
        if fake is not None:
            await fake.stop()


@pytest.mark.parametrize(("width", "source", "ahead"), [("laptop", "ami", 20), ("phone", "cti", 8)])
async def test_a_ringing_call_pops_the_card_and_is_logged_on_the_chosen_ticket(
    tmp_path: Path, browser: Any, axe_source: str, width: str, source: str, ahead: int
) -> None:
    async with switchboard_with(source, tmp_path) as (serve, pbx):
        await journey(serve, pbx, browser, axe_source, width, ahead)


async def journey(serve: Serve, pbx: Pbx, browser: Any, axe_source: str, width: str, ahead: int) -> None:
    number = submit_form(serve, "Printer jams")  # Ivan Client, ivan@example.org
    status, _ = http("POST", f"{serve.base}/api/v1/webform", data=json.dumps({
        "name": "Ivan Client", "email": "ivan@example.org", "phone": CLIENT, "subject": "Toner",
        "message": "And the toner is low"}).encode(), headers={"Content-Type": "application/json"})
    assert status == 201

    context = await browser.new_context(viewport=WIDTHS[width], bypass_csp=True)
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await sign_in(page, serve, "alice")
    await page.locator("html[data-live=on]").wait_for(state="attached")  # a selector: no eval under the CSP

    await pbx.ring()
    pop = page.locator("#call-pop .call-card")
    await pop.wait_for()
    assert "Ivan Client" in await pop.inner_text()
    assert await pop.locator(f"a:has-text('#{number} Printer jams')").count() == 1
    await check(page, axe_source, f"{width}-28-01-pop")

    await pbx.answer()
    await page.locator("#call-pop .call-card[data-state=answered]").wait_for()
    await pop.locator(".call-tickets li", has_text=f"#{number}").locator("button").click()
    await page.locator("#call-pop [data-call-ticket]").wait_for()

    # She records the call with the next contact a few seconds ahead (in the browser's own time zone).
    due = await page.evaluate("""ahead => { const d = new Date(Date.now() + ahead * 1000); d.setMilliseconds(0);
        const local = new Date(d.getTime() - d.getTimezoneOffset() * 60000);
        return [local.toISOString().slice(0, 19), d.getTime()]; }""", ahead)
    record = pop.locator("form:has(input[name=next_what])")
    await record.locator("input[name=outcome]").fill("will try the other tray")
    await record.locator("input[name=next_at]").fill(due[0])
    await record.locator("input[name=next_what]").fill("Ask whether the tray helped")
    await record.locator("button").click()
    await page.locator("#call-pop [data-recorded]").wait_for()

    await pbx.hang_up()
    await page.locator("#call-pop .call-card[data-state=ended]").wait_for()

    reminder = page.locator("main .notice.reminder")  # the timer fires while the page is open
    await reminder.wait_for(timeout=(ahead + 20) * 1000)
    assert "Ask whether the tray helped" in await reminder.inner_text()
    late = await page.evaluate(f"Date.now() - {due[1]}")
    assert 0 <= late < 5000, late  # the notice came at the planned second, give or take the page's refresh
    await page.goto(f"{serve.base}/desk/calls")
    assert "Ivan Client" in await page.locator("#calls-today").inner_text()
    await check(page, axe_source, f"{width}-28-02-caller-log")
    await page.goto(f"{serve.base}/desk/tickets/{number}")
    assert await page.locator("p.call-line").count() == 1

    # The client's card: the whole history across channels, by type, with the contact she recorded.
    await page.locator("aside a", has_text="Ivan Client").click()
    await page.locator("#history").wait_for()
    assert await page.locator("#history li[data-kind=message]").count() == 2
    await page.locator("nav.views a[data-type=call]").click()
    await page.wait_for_url("**type=call")
    assert await page.locator("#history li[data-kind=message]").count() == 0
    assert await page.locator("#history li[data-kind=call]").count() == 1
    assert "will try the other tray" in await page.locator("#history li[data-kind=activity]").inner_text()
    await check(page, axe_source, f"{width}-28-03-card")
    await context.close()
