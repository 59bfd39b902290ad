"""Issue 27's journeys in Debian's Chromium against `switchboard serve`, at a laptop's width and a phone's: an
agent's morning (filter the queue, change two tickets at once, open one, see a colleague on it and typing,
reply with a file, watch the client's answer arrive without reloading, resolve, read the client's rating) and a
manager's (give a ticket to another agent from the queue, read the dashboard and what clients said, narrow it to
one agent, download its CSV). axe-core checks every page the journeys pass for
serious and critical accessibility violations; no page scrolls sideways at 390 px. Screenshots go to
tests/artifacts/screenshots/."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_console_browser import TIMEOUT_MS, add_agent, mail_to, shot, sign_in, submit_form
from tests.integration.test_serve import Serve, cli

pytestmark = pytest.mark.embedded_default

WIDTHS = {"laptop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


async def accessible(page: Any, axe_source: str, what: str) -> None:
    """No serious or critical violation axe-core can find on the page as it is now."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(content=axe_source)
    found = await page.evaluate("""async () => (await axe.run(document, {resultTypes: ['violations']})).violations
        .filter(v => v.impact === 'serious' || v.impact === 'critical')
        .map(v => v.id + ': ' + v.help + ' — ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))""")
    assert found == [], f"{what}: {found}"


async def fits(page: Any, what: str) -> None:
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), \
        f"{what} scrolls sideways at {page.viewport_size['width']} px"


async def check(page: Any, axe_source: str, name: str) -> None:
    await accessible(page, axe_source, name)
    await fits(page, name)
    await shot(page, name)


@pytest.mark.parametrize("width", list(WIDTHS))
async def test_an_agents_morning_and_a_managers_transfer(serve: Serve, browser: Any, axe_source: str,
                                                         width: str) -> None:
    add_agent(serve, "Alice")
    add_agent(serve, "Boris")
    add_agent(serve, "Mia", "--role", "manager")
    assert cli(serve.cwd, serve.env, "agent", "set", "mia@example.com", "--presence", "offline").returncode == 0
    numbers = [submit_form(serve, f"Printer {n}") for n in range(4)]
    context = await browser.new_context(viewport=WIDTHS[width], bypass_csp=True)  # axe goes in as a script
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)

    await page.goto(f"{serve.base}/desk")
    await check(page, axe_source, f"{width}-01-login")
    await sign_in(page, serve, "alice")
    mine = [int(n) for n in await page.locator("tr[data-ticket]").evaluate_all(
        "rows => rows.map(r => r.dataset.ticket)")]
    assert mine and set(mine) <= set(numbers)
    await check(page, axe_source, f"{width}-02-queue")

    # Filter: only web-form tickets (all of them), then change two at once.
    await page.click("details.filters-panel summary")
    await page.select_option("details.filters-panel select[name=channel]", "webform")
    await page.click("details.filters-panel button[type=submit]")
    await page.wait_for_url(re.compile(r"channel=webform"))
    assert await page.locator("tr[data-ticket]").count() == len(mine)
    chosen = mine[:2]
    for number in chosen:
        await page.check(f'input[name=ticket][value="{number}"]')
    assert "2" in await page.locator("[data-selected-count]").inner_text()
    await page.select_option("#bulk select[name=priority]", "high")
    await page.click("#bulk button[value=apply]")
    await page.wait_for_url(re.compile(r"bulk=done&changed=2"))
    for number in chosen:
        assert "high" in await page.locator(f'tr[data-ticket="{number}"] .badge.priority-high').inner_text()

    # Open one; a manager opens it too and types: Alice sees both, live.
    ticket = chosen[0]
    await page.goto(f"{serve.base}/desk/tickets/{ticket}")
    await page.locator("html[data-live=on]").wait_for(state="attached")  # a selector: no eval under the CSP
    manager_context = await browser.new_context(viewport=WIDTHS["laptop"], bypass_csp=True)
    manager = await manager_context.new_page()
    manager.set_default_timeout(TIMEOUT_MS)
    await sign_in(manager, serve, "mia")
    await manager.goto(f"{serve.base}/desk/tickets/{ticket}")
    await page.locator("[data-others]:has-text('Mia')").wait_for()
    await manager.fill("textarea[name=body]", "Checking the toner level")  # an internal note, being written
    await page.locator("[data-typing]:has-text('Mia')").wait_for()
    await check(page, axe_source, f"{width}-03-ticket-with-a-colleague")

    # Reply; the client answers from their portal; the answer appears on Alice's open page without a reload.
    await page.fill("textarea[name=body]", "Please try the other tray.")
    await page.set_input_files("#files", files=[{"name": "tray-steps.txt", "mimeType": "text/plain",
                                                 "buffer": b"1. Open the lower tray."}])
    await page.click("button[value=reply]")
    await page.locator("p.notice").wait_for()
    assert "by email to ivan@example.org" in await page.locator("[data-where]").inner_text()
    assert await page.locator(".timeline article.out a:has-text('tray-steps.txt')").count() == 1
    reply = mail_to(serve, "ivan@example.org", f"Re: [#{ticket}]")
    assert [(a.get_filename(), a.get_content()) for a in reply.iter_attachments()] == [
        ("tray-steps.txt", "1. Open the lower tray.")]
    await page.evaluate("window.__samePage = true")
    ack = mail_to(serve, "ivan@example.org", f"[#{ticket}]")
    link = re.search(r"http://\S+/portal/[\w-]+", ack.get_body(("plain",)).get_content())
    assert link
    client = await (await browser.new_context(viewport=WIDTHS[width])).new_page()
    client.set_default_timeout(TIMEOUT_MS)
    await client.goto(link.group(0))
    async with client.expect_download() as downloading:  # the agent's file, from the client's own page
        await client.click(".timeline a:has-text('tray-steps.txt')")
    download = await downloading.value
    assert Path(await download.path()).read_bytes() == b"1. Open the lower tray."
    await client.fill("textarea[name=body]", "The other tray works, thank you")
    await client.click("form[enctype] button")
    await client.locator("p.notice").wait_for()
    await page.locator(".timeline article.in:has-text('The other tray works')").wait_for()
    assert await page.evaluate("window.__samePage === true")
    await shot(page, f"{width}-04-ticket-client-answered-live")

    # Resolve it.
    await page.select_option("aside select[name=status]", "resolved")
    await page.select_option("aside select[name=outcome]", "solved")  # resolving asks how it ended
    await page.click("aside button[value=save]")
    await page.locator("p.notice").wait_for()
    assert "resolved" in await page.locator('[data-badge="status"]').inner_text()

    # The client rates it from the same page, with a word; Alice sees it on the ticket.
    await client.reload()
    await client.check("input[name=score][value='4']")
    await client.fill("textarea[name=comment]", "Helpful, a bit slow")
    await client.click("#rate button")
    await client.locator("p.notice").wait_for()
    await page.reload()
    assert "Helpful, a bit slow" in await page.locator("#rating").inner_text()

    # The manager gives one of Boris's tickets to Alice from the queue, reads the dashboard and its CSV.
    await manager.goto(f"{serve.base}/desk?view=open&assignee=")
    boris = [n for n in numbers if n not in mine]
    if boris:
        await manager.check(f'input[name=ticket][value="{boris[0]}"]')
        await manager.select_option("#bulk select[name=assignee]", label="Alice")
        await manager.click("#bulk button[value=apply]")
        await manager.wait_for_url(re.compile(r"bulk=done&changed=1"))
        assert "Alice" in await manager.locator(f'tr[data-ticket="{boris[0]}"]').inner_text()
    await manager.goto(f"{serve.base}/desk/dashboard")
    await manager.locator("#chart-load svg").wait_for()
    assert "Helpful, a bit slow" in await manager.locator("#comments").inner_text()  # what clients said
    await manager.select_option("form.filters select[name=agent]", label="Alice")
    await manager.click("form.filters button[type=submit]")
    await manager.wait_for_url(re.compile(r"agent=\d+"))
    assert "Alice" in await manager.locator("h1").inner_text()
    assert await manager.locator("#chart-load svg text:text-is('Boris')").count() == 0  # her tickets only
    if width == "phone":
        await manager.set_viewport_size(WIDTHS["phone"])
    await check(manager, axe_source, f"{width}-05-dashboard")
    cookie = next(c for c in await manager_context.cookies() if c["name"] == "sb_session")
    request = urllib.request.Request(f"{serve.base}/desk/dashboard/load.csv",
                                     headers={"Cookie": f"sb_session={cookie['value']}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.read().startswith("\ufeffAgent,".encode())

    # The public pages read as well.
    public = await (await browser.new_context(viewport=WIDTHS[width], bypass_csp=True)).new_page()
    await public.goto(f"{serve.base}/contact")
    await check(public, axe_source, f"{width}-06-contact")
    await public.goto(link.group(0))
    await check(public, axe_source, f"{width}-07-portal")
    await public.goto(f"{serve.base}/chat")
    await public.locator("#status[data-state=online]").wait_for()
    await check(public, axe_source, f"{width}-08-chat")
