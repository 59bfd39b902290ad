"""Issue 28's screen pop in Debian's Chromium against `switchboard serve`: a PBX posts Zammad's generic CTI events
with curl's form encoding; the pop appears on the page Alice has open, with the caller's card, their open ticket
and last contacts; she says the call is about that ticket; at hang-up the call is logged on it, once; the caller log
shows it. axe-core reads the pop and the caller log at both widths."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest

from tests.e2e.test_agent_day_browser import WIDTHS, check
from tests.e2e.test_console_browser import TIMEOUT_MS, add_agent, sign_in, submit_form
from tests.integration.test_serve import Serve, cli, http

pytestmark = pytest.mark.embedded_default


def post_event(endpoint: str, **fields: str) -> dict[str, Any]:
    status, body = http("POST", endpoint, data=urllib.parse.urlencode(fields).encode(),
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200, body
    return dict(json.loads(body))


@pytest.mark.parametrize("width", list(WIDTHS))
async def test_a_ringing_call_pops_the_card_and_is_logged_on_the_chosen_ticket(
    serve: Serve, browser: Any, axe_source: str, width: str
) -> None:
    add_agent(serve, "Alice", "--extension", "201")
    rotated = cli(serve.cwd, serve.env, "calls", "cti-rotate")
    assert rotated.returncode == 0, rotated.stderr
    endpoint = rotated.stdout.strip()
    number = submit_form(serve, "Printer jams")  # Ivan Client, ivan@example.org
    status, _ = http("POST", f"{serve.base}/api/v1/webform", data=json.dumps({
        "name": "Ivan Client", "email": "ivan@example.org", "phone": "+44 20 7946 0958", "subject": "Toner",
        "message": "And the toner is low"}).encode(), headers={"Content-Type": "application/json"})
    assert status == 201

    context = await browser.new_context(viewport=WIDTHS[width], bypass_csp=True)
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await sign_in(page, serve, "alice")
    await page.wait_for_function("document.documentElement.dataset.live === 'on'")

    call = {"from": "+44 20 7946 0958", "to": "201", "direction": "in", "callId": f"e2e-{width}"}
    post_event(endpoint, event="newCall", **call, **{"user[]": "Alice"})
    pop = page.locator("#call-pop .call-card")
    await pop.wait_for()
    assert "Ivan Client" in await pop.inner_text()
    assert await pop.locator(f"a:has-text('#{number} Printer jams')").count() == 1
    await check(page, axe_source, f"{width}-28-01-pop")

    post_event(endpoint, event="answer", **call, answeringNumber="201")
    await page.locator("#call-pop .call-card[data-state=answered]").wait_for()
    await pop.locator(".call-tickets li", has_text=f"#{number}").locator("button").click()
    await page.locator("#call-pop [data-call-ticket]").wait_for()

    # She records the call with the next contact a few seconds ahead (in the browser's own time zone).
    due = await page.evaluate("""() => { const d = new Date(Date.now() + 8000); d.setMilliseconds(0);
        const local = new Date(d.getTime() - d.getTimezoneOffset() * 60000);
        return [local.toISOString().slice(0, 19), d.getTime()]; }""")
    record = pop.locator("form:has(input[name=next_what])")
    await record.locator("input[name=outcome]").fill("will try the other tray")
    await record.locator("input[name=next_at]").fill(due[0])
    await record.locator("input[name=next_what]").fill("Ask whether the tray helped")
    await record.locator("button").click()
    await page.locator("#call-pop [data-recorded]").wait_for()

    ended = post_event(endpoint, event="hangup", **call, cause="normalClearing")
    assert ended["logged"] is True and ended["ticket"] == number
    await page.locator("#call-pop .call-card[data-state=ended]").wait_for()
    assert post_event(endpoint, event="hangup", **call, cause="normalClearing") == {
        "call_id": call["callId"], "state": "ended"}  # told twice, logged once

    reminder = page.locator("main .notice.reminder")  # the timer fires while the page is open
    await reminder.wait_for(timeout=30_000)
    assert "Ask whether the tray helped" in await reminder.inner_text()
    late = await page.evaluate(f"Date.now() - {due[1]}")
    assert 0 <= late < 5000, late  # the notice came at the planned second, give or take the page's refresh
    await page.goto(f"{serve.base}/desk/calls")
    assert "Ivan Client" in await page.locator("#calls-today").inner_text()
    await check(page, axe_source, f"{width}-28-02-caller-log")
    await page.goto(f"{serve.base}/desk/tickets/{number}")
    assert await page.locator("p.call-line").count() == 1
    await context.close()
