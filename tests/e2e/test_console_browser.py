"""The agent console, the dashboard and the customer portal in a real browser (Playwright driving Debian's
Chromium, headless) against `switchboard serve`, as issue 9's acceptance asks: sign in, watch a web-form ticket
arrive live, answer it (the reply reaches the client's mail sink and the SLA countdown stops), change status and
presence; a manager reads the load per agent from the dashboard's chart; the client replies and rates the ticket
in the portal. Each page is saved as a screenshot under tests/artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import subprocess
import sys
import time
import urllib.request
from typing import Any

import pytest

from tests.conftest import REPO
from tests.integration.test_serve import Serve, cli

pytestmark = pytest.mark.embedded_default

TIMEOUT_MS = 15_000
PASSWORD = "correct horse battery"
SHOTS = REPO / "tests" / "artifacts" / "screenshots"


def add_agent(serve: Serve, name: str, *args: str) -> None:
    email_address = f"{name.lower()}@example.com"
    added = cli(serve.cwd, serve.env, "agent", "add", name, "--email", email_address, "--language", "en", *args)
    assert added.returncode == 0, added.stderr
    passwd = subprocess.run([sys.executable, "-m", "switchboard.cli", "agent", "passwd", email_address, "--stdin"],
                            cwd=serve.cwd, env=serve.env, input=PASSWORD + "\n", capture_output=True, text=True,
                            timeout=60)
    assert passwd.returncode == 0, passwd.stderr


def submit_form(serve: Serve, subject: str) -> int:
    payload = {"name": "Ivan Client", "email": "ivan@example.org", "subject": subject, "message": "It does not print"}
    request = urllib.request.Request(f"{serve.base}/api/v1/webform", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json", "Accept-Language": "en"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(json.loads(response.read())["number"])


def mail_to(serve: Serve, address: str, subject_start: str, timeout: float = 20) -> email.message.EmailMessage:
    """The first mail in the sink to `address` whose subject starts so (the worker in serve writes them)."""
    deadline = time.monotonic() + timeout
    sink = serve.cwd / "data" / "mail-sink"
    while time.monotonic() < deadline:
        for path in sorted(sink.glob("*.eml")) if sink.is_dir() else []:
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if message["To"] == address and str(message["Subject"]).startswith(subject_start):
                return message  # type: ignore[return-value]
        time.sleep(0.25)
    raise AssertionError(f"no mail to {address} starting {subject_start!r} in {sink}")


async def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def sign_in(page: Any, serve: Serve, who: str) -> None:
    await page.goto(f"{serve.base}/desk")
    assert "/desk/login" in page.url
    await page.fill("input[name=email]", f"{who}@example.com")
    await page.fill("input[name=password]", PASSWORD)
    await page.press("input[name=password]", "Enter")  # the keyboard is enough
    await page.wait_for_url(f"{serve.base}/desk", timeout=TIMEOUT_MS)


async def test_an_agent_answers_a_live_ticket_a_manager_reads_the_chart_the_client_rates_it(
    serve: Serve, browser: Any
) -> None:
    add_agent(serve, "Alice")
    assert cli(serve.cwd, serve.env, "canned", "add", "Greeting", "--text", "Hello {name},").returncode == 0
    add_agent(serve, "Mia", "--role", "manager")
    assert cli(serve.cwd, serve.env, "agent", "set", "mia@example.com", "--presence", "offline").returncode == 0
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(TIMEOUT_MS)

    await sign_in(page, serve, "alice")
    assert await page.locator("main[data-live] nav").is_visible()
    await page.locator("html[data-live=on]").wait_for(state="attached")  # a selector: no eval under the CSP
    await shot(page, "01-queue-empty")

    # A web form arrives: the open queue shows it without a reload.
    await page.evaluate("window.__samePage = true")
    number = submit_form(serve, "Printer on fire")
    row = page.locator(f'tr[data-ticket="{number}"]')
    await row.wait_for()
    assert await page.evaluate("window.__samePage === true")
    assert "to another agent after a day: in" in await row.locator("td.sla").inner_text()  # the step, in words
    await shot(page, "02-queue-live-ticket")

    # Answer it: the reply goes out by email to the client; the request ladder counts on until it is resolved.
    await row.locator("a").first.click()
    await page.wait_for_url(re.compile(rf"/desk/tickets/{number}$"))
    await page.select_option("#canned", label="Greeting")  # a canned response, filled in for this client
    assert await page.input_value("textarea[name=body]") == "Hello Ivan Client,"
    await page.fill("textarea[name=body]", "We are on it: a technician comes at 3 pm.")
    await page.click("button[value=reply]")
    await page.locator("p.notice").wait_for()
    assert await page.locator('li[data-step="reassign"]').get_attribute("data-status") == "pending"
    await shot(page, "03-ticket-replied")
    reply = mail_to(serve, "ivan@example.org", f"Re: [#{number}]")
    assert "a technician comes at 3 pm" in reply.get_body(("plain",)).get_content()

    # Status and presence.
    await page.select_option("select[name=status]", "resolved")
    await page.select_option("select[name=outcome]", "solved")
    await page.click("button[value=save]")
    await page.locator("p.notice").wait_for()
    assert await page.locator("select[name=status]").input_value() == "resolved"
    async with page.expect_navigation():
        await page.select_option("select[name=presence]", "away")  # choosing is enough
    assert await page.locator("select[name=presence]").input_value() == "away"
    await shot(page, "04-ticket-resolved-away")

    # The manager's dashboard: the load chart names Alice with her one ticket.
    await page.click("header form[action='/desk/logout'] button")
    await page.wait_for_url(re.compile(r"/desk/login$"))
    await sign_in(page, serve, "mia")
    await page.click("text=Dashboard")
    chart = page.locator("#chart-load svg")
    await chart.wait_for()
    labels = await chart.locator("text").all_text_contents()
    assert "Alice" in labels and "Mia" in labels
    assert await page.locator("#chart-satisfaction svg").count() == 1
    await shot(page, "05-dashboard")

    # The client: the acknowledgement's link opens the portal; they rate the resolved ticket, then write again.
    ack = mail_to(serve, "ivan@example.org", f"[#{number}]")
    link = re.search(r"http://\S+/portal/[\w-]+", ack.get_body(("plain",)).get_content())
    assert link, "no portal link in the acknowledgement"
    client = await browser.new_page()
    client.set_default_timeout(TIMEOUT_MS)
    await client.goto(link.group(0))
    assert "resolved" in await client.locator("strong.status").inner_text()
    assert "a technician comes at 3 pm" in await client.locator(".timeline").inner_text()
    await client.check("input[name=score][value='5']")
    await client.fill("textarea[name=comment]", "Quick and kind")
    await client.click("#rate button")
    await client.locator("p.notice").wait_for()
    assert "5 / 5" in await client.content()
    await client.fill("textarea[name=body]", "It broke again, sorry")
    await client.click("form[action$='/portal/" + link.group(0).rsplit("/", 1)[1] + "'] button")
    await client.locator("p.notice").wait_for()
    assert "It broke again, sorry" in await client.locator(".timeline").inner_text()
    assert "in progress" in await client.locator("strong.status").inner_text()  # the reply reopened it
    await shot(client, "06-portal-rated-and-replied")

    await page.reload()
    assert "5 ★" in " ".join(await page.locator("#chart-satisfaction svg text").all_text_contents())


async def test_keyboard_merge_and_admin_pages_on_a_laptop_and_a_phone_in_russian(serve: Serve, browser: Any) -> None:
    add_agent(serve, "Alice")
    add_agent(serve, "Ada", "--role", "admin", "--language", "ru")  # the last --language counts
    assert cli(serve.cwd, serve.env, "agent", "set", "ada@example.com", "--presence", "offline").returncode == 0
    first = submit_form(serve, "Scanner is slow")
    second = submit_form(serve, "Scanner still slow")
    assert first != second

    page = await browser.new_page(viewport={"width": 1366, "height": 768})
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(f"{serve.base}/desk")
    await shot(page, "07-login")
    await sign_in(page, serve, "alice")

    # The keyboard alone: "/" searches, j/k choose a row, Enter opens it, r writes, Ctrl+Enter sends.
    await page.keyboard.press("/")
    assert await page.evaluate("document.activeElement.name") == "q"
    await page.keyboard.press("Escape")
    await page.evaluate("document.activeElement.blur()")
    await page.keyboard.press("j")
    chosen = page.locator("tr.selected")
    assert await chosen.count() == 1
    picked = int(await chosen.get_attribute("data-ticket") or 0)
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(rf"/desk/tickets/{picked}$"))
    await page.keyboard.press("r")
    assert await page.evaluate("document.activeElement.id") == "body"
    await page.keyboard.type("Looking into it.")
    await page.keyboard.press("Control+Enter")
    await page.locator("p.notice").wait_for()
    assert "Looking into it." in await page.locator(".timeline").inner_text()

    # Merge the client's other ticket into this one; the page asks first.
    other = second if picked == first else first
    await page.goto(f"{serve.base}/desk/tickets/{other}")
    page.once("dialog", lambda dialog: dialog.accept())
    await page.select_option(".link-merge select[name=other]", str(picked))
    await page.click(".link-merge button[value=merge]")
    await page.wait_for_url(re.compile(rf"/desk/tickets/{picked}\?done=done_merged$"))
    timeline = await page.locator(".timeline").inner_text()
    assert timeline.count("It does not print") == 2  # both tickets' messages, one history
    await shot(page, "08-ticket-merged")
    await page.keyboard.press("q")
    await page.wait_for_url(f"{serve.base}/desk")
    assert await page.locator(f'tr[data-ticket="{other}"]').count() == 0  # closed by the merge

    # A filter that matches nothing, then none.
    await page.click("details.filters-panel summary")
    await page.select_option("select[name=channel]", "email")
    await page.click(".filters button")
    await page.wait_for_url(re.compile(r"channel=email"))
    assert await page.locator("tr[data-ticket]").count() == 0

    # The admin, in Russian, on a phone: the queue columns that do not fit are hidden, the admin pages read.
    await page.click("header form[action='/desk/logout'] button")
    phone = await browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone.set_default_timeout(TIMEOUT_MS)
    await sign_in(phone, serve, "ada")
    await phone.goto(f"{serve.base}/desk?view=open")
    assert "Все открытые" in await phone.locator("nav.views").inner_text()
    assert "Клавиши" in await phone.locator("footer.keys").inner_text()
    assert not await phone.locator("th.wide").first.is_visible()
    assert await phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    await shot(phone, "09-queue-phone-ru")
    await phone.click("text=Администрирование")
    await phone.locator("h1").wait_for()
    admin = await phone.content()
    assert "alice@example.com" in admin and "ada@example.com" in admin
    await shot(phone, "10-admin-phone-ru")
    await phone.goto(f"{serve.base}/desk/dashboard")
    await phone.locator("#chart-load svg").wait_for()
    await shot(phone, "11-dashboard-phone-ru")
