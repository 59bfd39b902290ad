"""An agent's day in the console over real HTTP (issue 27): the queue's columns and filters in the agent's language,
tickets whose client wrote back marked and risen, bulk changes with each ticket's own checks, a ticket page that
says who did what and where a reply goes, the live ticket page with who else is on it and typing, and the
dashboard's CSV as Excel reads it."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import re
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from notifier.senders import list_sink
from switchboard.bootstrap import Runtime
from switchboard.webapp import create_app
from tests.integration.test_console import PASSWORD, csrf_of, form, sign_in
from tickets.clock import Clock, ManualClock
from tickets.inbound import Identity, Inbound
from tickets.models import Agent, Outbox, Role, SavedView


@pytest.fixture
def clock() -> Clock:
    return ManualClock()


async def agent(runtime: Runtime, add_agent: Any, name: str, **options: Any) -> Agent:
    found, _ = await add_agent(name, email=f"{name.lower()}@example.com", **options)
    await runtime.service.set_password(found.id, PASSWORD)
    return found


def rows(html: str) -> dict[int, str]:
    """Each queue row's markup by ticket number."""
    return {int(n): body for n, body in re.findall(r'<tr data-ticket="(\d+)"[^>]*>(.*?)</tr>', html, re.S)}


def order(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr data-ticket="(\d+)"', html)]


async def test_the_queue_names_assignees_in_russian_and_a_client_who_wrote_back_rises_until_opened(
    client: TestClient[Any, Any], runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    anna = await agent(runtime, add_agent, "Anna", language="ru")
    first = (await runtime.service.ingest(form(1))).ticket
    second = (await runtime.service.ingest(form(2))).ticket
    await runtime.service.add_message(anna, first.id, "Проверьте кабель, пожалуйста.", internal=False)
    await runtime.service.update_ticket(anna, first.id, {"status": "pending"})
    clock.advance(timedelta(minutes=5))
    await runtime.service.ingest(Inbound(channel="webform", identities=(Identity("email", "client1@example.com"),),
                                         subject="Printer 1", body_text="Кабель в порядке.", ticket_number=first.id,
                                         customer_name="Client 1"))
    await sign_in(client, email="anna@example.com")
    html = await (await client.get("/desk")).text()
    assert order(html) == [first.id, second.id]  # the client wrote back: it comes first
    row = rows(html)[first.id]
    assert "клиент ответил" in row and "<strong>Printer 1</strong>" in row  # marked, and unread
    assert "Anna" in row and "в работе" in row and "веб-форма" in row and "обычный" in row  # words, not ids
    assert "webform" not in re.sub(r'class="[^"]*"', "", row) and ">open<" not in row
    assert "клиент ответил" not in rows(html)[second.id]

    assert (await client.get(f"/desk/tickets/{first.id}")).status == 200  # opening it reads the new message
    again = rows(await (await client.get("/desk")).text())[first.id]
    assert "клиент ответил" in again and "<strong>" not in again  # still owed an answer, no longer unread


async def test_a_long_queue_pages_to_older_tickets_keeping_its_filters(
    client: TestClient[Any, Any], runtime: Runtime, add_agent: Any
) -> None:
    await agent(runtime, add_agent, "Mia", role=Role.manager, presence="offline", language="en")
    numbers = [(await runtime.service.ingest(form(n))).ticket.id for n in range(203)]
    await sign_in(client, email="mia@example.com")
    first = await (await client.get("/desk", params={"view": "open", "channel": "webform", "sort": "number"})).text()
    assert order(first) == numbers[::-1][:100]
    older = re.search(r'<a href="(/desk\?[^"]+)" rel="next" data-older>Older tickets →</a>', first)
    assert older and "channel=webform" in older.group(1) and "sort=number" in older.group(1)
    second = await (await client.get(older.group(1).replace("&amp;", "&"))).text()
    assert order(second) == numbers[::-1][100:200] and "← Newest" in second
    last = re.search(r'<a href="(/desk\?[^"]+)" rel="next" data-older>', second)
    assert last
    third = await (await client.get(last.group(1).replace("&amp;", "&"))).text()
    assert order(third) == numbers[2::-1] and "data-older" not in third
    assert "data-older" not in await (await client.get("/desk", params={"view": "open", "channel": "email"})).text()
    assert order(await (await client.get("/desk", params={"view": "open", "before": "x"})).text())[:1] == [
        numbers[-1]]  # a cursor that is not a number is the first page


async def test_filters_narrow_the_queue_by_status_assignee_group_channel_priority_and_date(
    client: TestClient[Any, Any], runtime: Runtime, add_agent: Any
) -> None:
    mia = await agent(runtime, add_agent, "Mia", role=Role.manager, presence="offline", language="en")
    boris = await agent(runtime, add_agent, "Boris", language="en")
    mail = (await runtime.service.ingest(Inbound(channel="email", identities=(Identity("email", "c@example.com"),),
                                                 subject="Mail", body_text="Hello", external_id="<m1@x>"))).ticket
    web = (await runtime.service.ingest(form(1))).ticket
    unassigned = (await runtime.service.ingest(form(2))).ticket
    await runtime.service.update_ticket(mia, unassigned.id, {"assignee": None})
    await runtime.service.update_ticket(mia, web.id, {"priority": "high", "status": "pending"})
    await sign_in(client, email="mia@example.com")

    async def listed(**query: str) -> set[int]:
        return set(order(await (await client.get("/desk", params={"view": "open", **query})).text()))

    assert await listed() == {mail.id, web.id, unassigned.id}
    assert await listed(channel="email") == {mail.id}
    assert await listed(priority="high") == {web.id}
    assert await listed(status="pending") == {web.id}
    assert await listed(assignee="none") == {unassigned.id}
    assert await listed(assignee=str(boris.id)) == {mail.id, web.id}
    assert await listed(group="Support") == {mail.id, web.id, unassigned.id}
    today = runtime.clock.now().date()
    assert await listed(since=today.isoformat(), until=today.isoformat()) == {mail.id, web.id, unassigned.id}
    assert await listed(since=(today + timedelta(days=1)).isoformat()) == set()
    assert await listed(channel="nonsense", since="13/01/2026") == {mail.id, web.id, unassigned.id}  # ignored
    assert await listed(until="9999-12-31", since="0001-01-01") == {mail.id, web.id, unassigned.id}  # not a 500
    page = await (await client.get("/desk", params={"view": "open", "channel": "email"})).text()
    assert "<details class=\"panel filters-panel\" open>" in page and 'href="/desk?view=open">Clear' in page


async def test_bulk_changes_apply_each_tickets_own_checks(
    client: TestClient[Any, Any], runtime: Runtime, add_agent: Any
) -> None:
    anna = await agent(runtime, add_agent, "Anna", language="en")
    tickets = [(await runtime.service.ingest(form(n))).ticket for n in range(3)]
    assert {t.assignee_id for t in tickets} == {anna.id}
    boris = await agent(runtime, add_agent, "Boris", language="en")
    await sign_in(client, email="anna@example.com")
    html = await (await client.get("/desk")).text()
    chosen = [("ticket", str(t.id)) for t in tickets[:2]]
    done = await client.post("/desk/bulk", allow_redirects=False, data=[
        ("csrf", csrf_of(html)), ("back", "/desk?view=mine"), *chosen, ("status", "pending"), ("priority", "high"),
        ("action", "apply")])
    assert done.status == 303 and done.headers["Location"] == "/desk?view=mine&bulk=done&changed=2&refused=0"
    views = [await runtime.service.get_ticket(anna, t.id) for t in tickets]
    assert [(v.ticket.status, v.ticket.priority) for v in views] == [
        ("pending", "high"), ("pending", "high"), (tickets[2].status, "normal")]  # the third was not chosen
    shown = await (await client.get(done.headers["Location"])).text()
    assert "Changed: 2. Refused: 0." in shown

    # An agent may not give a colleague's ticket away: each such change is refused and counted, nothing else moves.
    refused = await client.post("/desk/bulk", allow_redirects=False, data=[
        ("csrf", csrf_of(html)), ("back", "/desk"), *chosen, ("assignee", str(boris.id)), ("action", "apply")])
    assert refused.headers["Location"] == "/desk?bulk=done&changed=0&refused=2"
    assert {(await runtime.service.get_ticket(anna, t.id)).ticket.assignee_id for t in tickets[:2]} == {anna.id}
    nothing = await client.post("/desk/bulk", allow_redirects=False, data={"csrf": csrf_of(html), "back": "/desk"})
    assert nothing.headers["Location"] == "/desk?bulk=nothing"
    bogus = await client.post("/desk/bulk", allow_redirects=False, data=[
        ("csrf", csrf_of(html)), ("back", "/desk"), *chosen, ("status", "bogus"), ("action", "apply")])
    assert bogus.headers["Location"] == "/desk?bulk=nothing"  # a value the page never offers changes nothing
    page = await (await client.get(f"/desk/tickets/{tickets[0].id}")).text()
    odd = await client.post(f"/desk/tickets/{tickets[0].id}", data={"csrf": csrf_of(page), "action": "save",
                                                                     "status": "open", "priority": "urgent!"})
    assert odd.status == 422 and "unknown priority" in await odd.text()
    forged = await client.post("/desk/bulk", allow_redirects=False, data=[("csrf", "x"), *chosen, ("status", "closed")])
    assert forged.status == 403


async def test_the_ticket_page_says_who_did_what_and_where_a_reply_goes(
    client: TestClient[Any, Any], runtime: Runtime, add_agent: Any
) -> None:
    anna = await agent(runtime, add_agent, "Anna", language="en")
    ticket = (await runtime.service.ingest(form(1))).ticket
    await runtime.service.add_message(anna, ticket.id, "Try another cable.", internal=False)
    await runtime.service.update_ticket(anna, ticket.id, {"status": "pending", "priority": "critical"})
    await sign_in(client, email="anna@example.com")
    html = await (await client.get(f"/desk/tickets/{ticket.id}")).text()
    head = re.search(r'<div class="ticket-head">(.*?)</div>', html, re.S)
    assert head and 'data-badge="status">waiting for the client<' in head.group(1)
    assert 'class="badge priority-critical" data-badge="priority">critical<' in head.group(1)
    assert "Assignee: Anna" in head.group(1) and "web form · Support" in head.group(1)
    assert re.search(r"<strong>Anna</strong>\s*<span>Agent · web form</span>", html)  # who replied
    assert "<strong>Anna</strong> changed the status: open → waiting for the client" in html
    assert "<strong>Anna</strong> changed the priority: normal → critical" in html
    assert "</strong> replied" not in html  # the reply itself shows; its event does not repeat it
    assert re.search(r'<details class="system"><summary>System events: \d+', html)  # the bookkeeping, folded
    assert "A reply goes by email to client1@example.com" in html
    assert 'class="primary">Send</button>' in html and 'class="note">Internal note</button>' in html
    assert ">Unassign</button>" in html and "Back to the queue" not in html


async def test_the_ticket_page_hears_its_ticket_change_and_who_else_is_on_it_and_typing(
    client: TestClient[Any, Any], runtime: Runtime, add_agent: Any
) -> None:
    """Mia's browser talks to a second web application on its own port, as another web process would."""
    anna = await agent(runtime, add_agent, "Anna", language="en")
    await agent(runtime, add_agent, "Mia", role=Role.manager, presence="offline", language="en")
    ticket = (await runtime.service.ingest(form(1))).ticket
    other = (await runtime.service.ingest(form(2))).ticket
    await sign_in(client, email="anna@example.com")
    async with TestClient(TestServer(create_app(runtime), host="127.0.0.1")) as colleague:
        await sign_in(colleague, email="mia@example.com")
        await _on_the_same_ticket(client, colleague, runtime, anna, ticket.id, other.id)


async def _on_the_same_ticket(client: TestClient[Any, Any], colleague: TestClient[Any, Any], runtime: Runtime,
                              anna: Agent, number: int, other_number: int) -> None:

    async def events(of: TestClient[Any, Any]) -> Any:
        stream = await of.get(f"/desk/events?ticket={number}")
        assert stream.status == 200 and (await stream.content.readline()).startswith(b"retry:")
        return stream

    async def next_event(stream: Any, kind: str) -> str:
        current = ""
        while True:
            line = (await stream.content.readline()).decode()
            if line.startswith("event: "):
                current = line.removeprefix("event: ").strip()
            elif line.startswith("data: ") and current == kind:
                return line.removeprefix("data: ").strip()

    async def company_becomes(stream: Any, expected: list[dict[str, Any]]) -> None:
        """Company events come on each change and each heartbeat: read them until one says this (bounded)."""
        async def seen() -> None:
            while json.loads(await next_event(stream, "company")) != expected:
                pass
        await asyncio.wait_for(seen(), 5)

    mine = await events(client)
    await company_becomes(mine, [])  # alone so far
    theirs = await events(colleague)
    await company_becomes(mine, [{"name": "Mia", "typing": False}])

    page = await (await colleague.get(f"/desk/tickets/{number}")).text()
    typed = await colleague.post(f"/desk/tickets/{number}/typing", data={"csrf": csrf_of(page)})
    assert typed.status == 204
    await company_becomes(mine, [{"name": "Mia", "typing": True}])

    await runtime.service.update_ticket(anna, other_number, {"priority": "high"})  # not this page's ticket
    await runtime.service.ingest(Inbound(channel="webform", identities=(Identity("email", "client1@example.com"),),
                                         subject="Printer 1", body_text="Any news?", ticket_number=number))
    assert await asyncio.wait_for(next_event(mine, "ticket"), 5) == "changed"
    theirs.close()
    await company_becomes(mine, [])  # Mia left
    mine.close()

    assert (await client.get(f"/desk/events?ticket={number + 1000}")).status == 404
    assert (await client.post(f"/desk/tickets/{number}/typing", data={"csrf": "forged"})).status == 403


async def test_the_dashboard_csv_opens_in_excel_with_headers_in_the_managers_language(
    client: TestClient[Any, Any], runtime: Runtime, add_agent: Any
) -> None:
    await agent(runtime, add_agent, "Mia", role=Role.manager, presence="offline", language="ru")
    await agent(runtime, add_agent, "Анна", language="ru")
    await runtime.service.ingest(form(1))
    await sign_in(client, email="mia@example.com")
    answer = await client.get("/desk/dashboard/load.csv")
    raw = await answer.read()
    assert raw.startswith("\ufeff".encode())  # the byte-order mark Excel needs to read UTF-8
    lines = raw.decode("utf-8-sig").splitlines()
    assert lines[0] == "Оператор,Статус,В работе,Ждут клиента,Вместимость"
    assert "Анна,на месте,1,0,10" in lines and "Mia,не в сети,0,0,10" in lines


async def test_every_page_uses_the_packaged_stylesheet_and_icon(
    client: TestClient[Any, Any], runtime: Runtime, add_agent: Any
) -> None:
    await agent(runtime, add_agent, "Anna", language="en")
    login = await (await client.get("/desk/login")).text()
    contact = await (await client.get("/contact")).text()
    for html in (login, contact):
        css = re.search(r'<link rel="stylesheet" href="(/assets/switchboard\.css\?v=[0-9a-f]{12})">', html)
        assert css and '<link rel="icon" href="/assets/favicon.svg' in html
        sheet = await client.get(css.group(1))
        assert sheet.status == 200 and sheet.content_type == "text/css" and ".badge" in await sheet.text()
    icon = await client.get("/favicon.ico")
    assert icon.status == 200 and icon.content_type == "image/svg+xml" and b"<svg" in await icon.read()
    assert 'class="sign-in"' in login and 'class="primary"' in login


async def test_a_managers_read_the_team_page_and_its_notifications_admins_change_it_agents_get_a_page_in_words(
    client: TestClient[Any, Any], runtime: Runtime, add_agent: Any
) -> None:
    await agent(runtime, add_agent, "Mia", role=Role.manager, presence="offline", language="en")
    await agent(runtime, add_agent, "Anna", language="ru")
    for n in range(53):  # 53 acknowledgements: more than a page of notifications
        await runtime.service.ingest(form(n))
    await sign_in(client, email="anna@example.com")
    refused = await client.get("/desk/admin")
    html = await refused.text()
    assert refused.status == 403 and "Недоступно для вашей роли" in html and 'class="topbar"' in html
    assert (await client.get("/desk/dashboard")).status == 403

    await sign_in(client, email="mia@example.com")
    page = await client.get("/desk/admin")
    html = await page.text()
    assert page.status == 200 and "<h1>Team and settings</h1>" in html and "admins change them" in html
    assert 'action="/desk/admin/canned"' not in html  # reading, not changing
    assert (await client.post("/desk/admin/canned", data={"csrf": csrf_of(html), "title": "Hi",
                                                          "text": "Hello"})).status == 403
    async with runtime.sessions() as session:
        total = len(list(await session.scalars(select(Outbox.id))))
    assert 50 < total <= 100  # acknowledgements and assignment notices: more than a page
    shown = re.findall(r'<tr data-notification="(\d+)"><td class="nowrap"><time', html)
    assert len(shown) == 50  # a page, each with its time
    older = re.search(r'href="(/desk/admin\?[^"]*before=\d+)#notifications">Older', html)
    assert older
    older_page = await (await client.get(older.group(1).replace("&amp;", "&"))).text()
    rest = re.findall(r'<tr data-notification="(\d+)"', older_page)
    assert len(rest) == total - 50 and not set(rest) & set(shown)
    sms = await (await client.get("/desk/admin", params={"channel": "sms"})).text()
    assert "data-notification" not in sms and '<option value="sms" selected>SMS</option>' in sms


async def test_the_dashboard_looks_back_over_a_chosen_period_and_lists_what_clients_said(
    client: TestClient[Any, Any], runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    await agent(runtime, add_agent, "Mia", role=Role.manager, presence="offline", language="en")
    anna = await agent(runtime, add_agent, "Anna", language="en")
    old = (await runtime.service.ingest(form(1))).ticket
    await runtime.service.update_ticket(anna, old.id, {"status": "resolved"})
    await runtime.service.rate(str(old.portal_key), 2, "Took three weeks")
    clock.advance(timedelta(days=20))
    recent = (await runtime.service.ingest(form(2))).ticket
    await runtime.service.update_ticket(anna, recent.id, {"status": "resolved"})
    await runtime.service.rate(str(recent.portal_key), 5, "Quick & kind <b>thanks</b>")
    await sign_in(client, email="mia@example.com")

    fortnight = await (await client.get("/desk/dashboard")).text()
    said = re.search(r'<section class="panel" id="comments">(.*?)</section>', fortnight, re.S)
    assert said and "Quick &amp; kind &lt;b&gt;thanks&lt;/b&gt;" in said.group(1)
    assert "Took three weeks" not in said.group(1)  # 20 days ago: outside the fortnight
    assert f'href="/desk/tickets/{recent.id}"' in said.group(1) and "5 ★" in said.group(1)
    month = await (await client.get("/desk/dashboard", params={"days": "30"})).text()
    assert "Took three weeks" in month and 'href="/desk/dashboard?days=30" aria-current="page"' in month
    assert 'href="/desk/dashboard/load.csv?days=30"' in month
    assert 'href="/desk/dashboard?days=14" aria-current="page"' in await (
        await client.get("/desk/dashboard", params={"days": "1000"})).text()  # not offered: the default

    ticket_page = await (await client.get(f"/desk/tickets/{recent.id}")).text()
    rating = re.search(r'<div class="panel" id="rating">(.*?)</div>', ticket_page, re.S)
    assert rating and "5 / 5 ★" in rating.group(1) and "Quick &amp; kind" in rating.group(1)


async def test_a_call_on_the_ticket_says_its_number_length_agent_and_recording(
    client: TestClient[Any, Any], runtime: Runtime, add_agent: Any
) -> None:
    anna, headers = await add_agent("Anna", email="anna@example.com", language="en")
    await runtime.service.set_password(anna.id, PASSWORD)
    started = runtime.clock.now() - timedelta(minutes=10)
    answer = await client.post("/api/v1/calls", headers=headers, json={
        "call_id": "pbx-77", "caller": "+442079460958", "called": "+442079460000", "direction": "in",
        "disposition": "answered", "started_at": started.isoformat(),
        "answered_at": (started + timedelta(seconds=15)).isoformat(),
        "ended_at": (started + timedelta(seconds=15 + 125)).isoformat(), "agent": "anna@example.com",
        "recording_url": "https://pbx.example.com/rec/77.wav", "notes": "Asked about the invoice"})
    assert answer.status == 201, await answer.text()
    number = (await answer.json())["ticket"]["number"]
    await sign_in(client, email="anna@example.com")
    html = await (await client.get(f"/desk/tickets/{number}")).text()
    line = re.search(r'<p class="call-line" data-call="\d+">(.*?)</p>', html, re.S)
    assert line, html
    words = " ".join(line.group(1).split())
    assert words.startswith("Inbound call · answered · +442079460958 · 2:05 · Anna")
    assert '<a href="https://pbx.example.com/rec/77.wav" rel="noopener noreferrer">recording</a>' in words


async def test_an_agent_saves_a_filtered_queue_as_their_own_view_and_removes_it(
    client: TestClient[Any, Any], runtime: Runtime, add_agent: Any
) -> None:
    anna = await agent(runtime, add_agent, "Anna", language="en")
    boris = await agent(runtime, add_agent, "Boris", language="en", presence="offline")  # Anna gets both
    mail = (await runtime.service.ingest(Inbound(channel="email", identities=(Identity("email", "c@example.com"),),
                                                 subject="Mail", body_text="Hello", external_id="<m2@x>"))).ticket
    web = (await runtime.service.ingest(form(1))).ticket
    assert mail.assignee_id == web.assignee_id == anna.id
    await sign_in(client, email="anna@example.com")
    html = await (await client.get("/desk", params={"view": "mine", "channel": "email", "sort": "number"})).text()
    here = re.search(r'name="query" value="([^"]+)"', html)
    assert here and "channel=email" in here.group(1)
    saved = await client.post("/desk/views", allow_redirects=False, data={
        "csrf": csrf_of(html), "name": "  My   email  ", "query": here.group(1).replace("&amp;", "&") + "&evil=<x>"})
    assert saved.status == 303 and "evil" not in saved.headers["Location"]
    back = await (await client.get(saved.headers["Location"])).text()
    assert "Saved: it is in your views above." in back
    link = re.search(r'<a href="(/desk\?[^"]+)" aria-current="page" data-saved-view="(\d+)">My email</a>', back)
    assert link, back
    kept = link.group(1).replace("&amp;", "&")
    assert all(part in kept for part in ("view=mine", "channel=email", "sort=number"))
    assert order(await (await client.get(kept)).text()) == [mail.id]  # the view, as saved: not the web form

    # Boris neither sees nor removes Anna's views; an empty name is refused in words.
    await sign_in(client, email="boris@example.com")
    his = await (await client.get("/desk")).text()
    assert "My email" not in his
    await client.post(f"/desk/views/{link.group(2)}/remove", data={"csrf": csrf_of(his)})
    assert await views_of(runtime) == [(anna.id, "My email")]
    nameless = await client.post("/desk/views", data={"csrf": csrf_of(his), "name": "  ", "query": "view=mine"})
    assert "Not saved: give the view a name" in await nameless.text()
    assert await views_of(runtime) == [(anna.id, "My email")]

    await sign_in(client, email="anna@example.com")
    mine = await (await client.get("/desk")).text()
    await client.post(f"/desk/views/{link.group(2)}/remove", data={"csrf": csrf_of(mine)})
    assert await views_of(runtime) == [] and boris.id != anna.id


async def views_of(runtime: Runtime) -> list[tuple[int, str]]:
    async with runtime.sessions() as session:
        return [(v.agent_id, v.name) for v in await session.scalars(select(SavedView).order_by(SavedView.id))]


async def test_tags_are_set_on_the_ticket_page_shown_in_the_queue_filtered_by_and_kept_by_the_api(
    client: TestClient[Any, Any], runtime: Runtime, add_agent: Any
) -> None:
    anna, headers = await add_agent("Anna", email="anna@example.com", language="en")
    await runtime.service.set_password(anna.id, PASSWORD)
    tagged = (await runtime.service.ingest(form(1))).ticket
    other = (await runtime.service.ingest(form(2))).ticket
    await sign_in(client, email="anna@example.com")
    page = await (await client.get(f"/desk/tickets/{tagged.id}")).text()
    saved = await client.post(f"/desk/tickets/{tagged.id}", allow_redirects=False, data={
        "csrf": csrf_of(page), "action": "save", "status": "open", "priority": "normal", "category": "question",
        "tags": "Refund, VIP client,refund"})
    assert saved.status == 303
    shown = await (await client.get(f"/desk/tickets/{tagged.id}")).text()
    assert re.findall(r'data-tag>#([^<]+)</a>', shown) == ["refund", "vip-client"]
    assert "<strong>Anna</strong> changed the tags: — → refund, vip-client" in shown
    assert '<option value="refund">' in shown  # offered as you type on every ticket

    queue = await (await client.get("/desk", params={"tag": "refund"})).text()
    assert order(queue) == [tagged.id] and "#vip-client" in rows(queue)[tagged.id]
    assert set(order(await (await client.get("/desk", params={"tag": "unknown"})).text())) == {tagged.id, other.id}

    answer = await client.patch(f"/api/v1/tickets/{other.id}", json={"tags": ["refund"]}, headers=headers)
    assert answer.status == 200 and (await answer.json())["tags"] == ["refund"]
    listed = await (await client.get("/api/v1/tickets", params={"tag": "Refund"}, headers=headers)).json()
    assert sorted(t["number"] for t in listed["items"]) == sorted([tagged.id, other.id])
    refused = await client.patch(f"/api/v1/tickets/{other.id}", json={"tags": ["no/slashes"]}, headers=headers)
    assert refused.status == 422 and "tags" in (await refused.json())["error"]["fields"]
    assert (await runtime.service.get_ticket(anna, other.id)).tags == ["refund"]  # nothing half-written


async def test_a_reply_with_files_reaches_the_client_with_them_and_a_note_keeps_its_file_among_agents(
    client: TestClient[Any, Any], runtime: Runtime, add_agent: Any
) -> None:
    await agent(runtime, add_agent, "Anna", language="en")
    ticket = (await runtime.service.ingest(form(1))).ticket
    await sign_in(client, email="anna@example.com")
    page = await (await client.get(f"/desk/tickets/{ticket.id}")).text()
    assert 'enctype="multipart/form-data"' in page and "(they go with the reply, by email)" in page
    invoice = b"%PDF-1.4 invoice " * 100

    def post(action: str, body: str, files: list[tuple[str, bytes, str]]) -> aiohttp.FormData:
        data = aiohttp.FormData(quote_fields=False)  # as browsers send file names: not percent-encoded
        for name, value in (("csrf", csrf_of(page)), ("action", action), ("body", body)):
            data.add_field(name, value)
        for filename, content, kind in files:
            data.add_field("files", content, filename=filename, content_type=kind)
        return data

    pdf = ("Счёт 17.pdf", invoice, "application/pdf")
    sent = await client.post(f"/desk/tickets/{ticket.id}", allow_redirects=False,
                             data=post("reply", "The invoice, as promised.", [pdf]))
    assert sent.status == 303
    noted = await client.post(f"/desk/tickets/{ticket.id}", allow_redirects=False,
                              data=post("note", "Photo of the jam", [("jam.png", b"\x89PNG fake", "image/png")]))
    assert noted.status == 303
    shown = await (await client.get(f"/desk/tickets/{ticket.id}")).text()
    assert "Счёт 17.pdf" in shown and "jam.png" in shown  # both on the ticket, to download

    async with runtime.sessions() as session:
        rows = list(await session.scalars(select(Outbox).where(Outbox.kind == "reply")))
    assert len(rows) == 1 and runtime.deliverer is not None  # the note went nowhere
    assert await runtime.deliverer.deliver(rows[0].id) == "sent"
    [mail] = [m for m in list_sink(runtime.settings.data_dir / "mail-sink") if m.subject.startswith("Re: ")]
    parsed = email.message_from_bytes(mail.path.read_bytes(), policy=email.policy.default)
    [part] = list(parsed.iter_attachments())
    assert part.get_filename() == "Счёт 17.pdf" and part.get_content_type() == "application/pdf"
    assert part.get_content() == invoice


async def test_the_dashboard_narrows_to_one_group_or_one_agent(
    client: TestClient[Any, Any], runtime: Runtime, add_agent: Any
) -> None:
    await agent(runtime, add_agent, "Mia", role=Role.manager, presence="offline", language="en")
    anna = await agent(runtime, add_agent, "Anna", language="en", groups=["Support"])
    await runtime.service.add_group("Sales")
    sam = await agent(runtime, add_agent, "Sam", language="en", groups=["Sales"])
    for n in range(3):
        await runtime.service.ingest(form(n))
    price = (await runtime.service.ingest(Inbound(channel="email", identities=(Identity("email", "buyer@example.com"),),
                                                  subject="Price", body_text="How much?", external_id="<p1@x>",
                                                  group="Sales"))).ticket
    await runtime.service.update_ticket(sam, price.id, {"tags": ["VIP"]})
    await sign_in(client, email="mia@example.com")

    def load_labels(html: str) -> list[str]:
        load = re.search(r'id="chart-load">(.*?)</section>', html, re.S)
        assert load
        return re.findall(r'text-anchor="end">([^<]+)</text>', load.group(1))

    everything = await (await client.get("/desk/dashboard")).text()
    assert {"Anna", "Sam", "Mia"} <= set(load_labels(everything))
    sales = await (await client.get("/desk/dashboard", params={"group": "Sales", "days": "30"})).text()
    assert load_labels(sales) == ["Sam"] and "<h1>Dashboard · Sales</h1>" in sales
    channels = re.search(r'id="chart-channels">(.*?)</section>', sales, re.S)
    assert channels and ">email<" in channels.group(1) and ">webform<" not in channels.group(1)
    assert 'href="/desk/dashboard/load.csv?days=30&amp;group=Sales"' in sales
    csv_text = (await (await client.get("/desk/dashboard/load.csv", params={"group": "Sales"})).text())
    assert [line.split(",")[0] for line in csv_text.removeprefix("\ufeff").splitlines()[1:]] == ["Sam"]
    tagged = re.search(r'id="chart-tags">(.*?)</section>', sales, re.S)
    assert tagged and "#vip" in tagged.group(1)  # tickets by tag, within the same choice
    hers = await (await client.get("/desk/dashboard", params={"agent": str(anna.id)})).text()
    assert load_labels(hers) == ["Anna"] and "#vip" not in hers
    assert load_labels(await (await client.get("/desk/dashboard", params={"group": "Nowhere"})).text()) == \
        load_labels(everything)  # an unknown group narrows nothing
