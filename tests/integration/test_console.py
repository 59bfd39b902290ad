"""The agent console over real HTTP: password sign-in with a server-side session cookie, CSRF on every form,
login rate limiting, the queue with SLA countdowns, a reply that reaches the client's mail, status and presence
changes, and what must never happen (script in a subject, a form from elsewhere, a link that leads away)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from notifier.senders import list_sink
from switchboard.bootstrap import Runtime
from tickets.inbound import Identity, Inbound
from tickets.models import Agent, Outbox, Presence, Role, WebSession

PASSWORD = "correct horse battery"


@pytest.fixture
async def anna(runtime: Runtime, add_agent: Any) -> Agent:
    agent, _ = await add_agent("Anna", email="anna@example.com", language="en")
    await runtime.service.set_password(agent.id, PASSWORD)
    return agent


async def login_token(client: TestClient[Any, Any]) -> str:
    """The sign-in form's token (its cookie is kept by the client), as a browser gets it by opening the form; a
    session this client holds is dropped first (a signed-in agent is sent on from the form)."""
    client.session.cookie_jar.clear(lambda cookie: cookie.key == "sb_session")
    found = re.search(r'name="login_token" value="([^"]+)"', await (await client.get("/desk/login")).text())
    return found.group(1) if found else ""


async def sign_in(client: TestClient[Any, Any], email: str = "anna@example.com", password: str = PASSWORD,
                  next_path: str = "/desk") -> Any:
    return await client.post("/desk/login", allow_redirects=False, data={
        "email": email, "password": password, "next": next_path, "login_token": await login_token(client)})


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def form(n: int, subject: str = "Printer") -> Inbound:
    return Inbound(channel="webform", identities=(Identity("email", f"client{n}@example.com"),),
                   subject=f"{subject} {n}", body_text="It does not print", customer_name=f"Client {n}")


async def test_signing_in_sets_an_http_only_session_and_signing_out_ends_it(
    client: TestClient[Any, Any], runtime: Runtime, anna: Agent
) -> None:
    away = await client.get("/desk", allow_redirects=False)
    assert away.status == 303 and away.headers["Location"] == "/desk/login?next=/desk"
    form_page = await client.get(away.headers["Location"])
    assert form_page.status == 200 and 'name="password"' in await form_page.text()

    wrong = await sign_in(client, password="not the password")
    assert wrong.status == 401 and "Wrong email or password." in await wrong.text()
    unknown = await sign_in(client, email="nobody@example.com")
    assert unknown.status == 401

    ok = await sign_in(client, next_path="/desk/tickets/1")
    assert ok.status == 303 and ok.headers["Location"] == "/desk/tickets/1"
    cookie = ok.headers["Set-Cookie"]
    assert cookie.startswith("sb_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    token = ok.cookies["sb_session"].value
    async with runtime.sessions() as session:
        [row] = list(await session.scalars(select(WebSession)))
    assert row.agent_id == anna.id and token not in row.id  # only the token's hash is stored

    queue = await client.get("/desk")
    assert queue.status == 200 and "Anna" in await queue.text()
    assert queue.headers["X-Content-Type-Options"] == "nosniff" and "frame-ancestors 'none'" in \
        queue.headers["Content-Security-Policy"]

    out = await client.post("/desk/logout", data={"csrf": csrf_of(await queue.text())}, allow_redirects=False)
    assert out.status == 303 and out.headers["Location"] == "/desk/login"
    async with runtime.sessions() as session:
        assert list(await session.scalars(select(WebSession))) == []
    client.session.cookie_jar.update_cookies({"sb_session": token})  # the old cookie, replayed
    assert (await client.get("/desk", allow_redirects=False)).status == 303


async def test_a_login_link_never_leads_away_from_the_console(client: TestClient[Any, Any], anna: Agent) -> None:
    for target in ("https://evil.example/", "//evil.example/desk", "/api/v1/tickets"):
        answer = await sign_in(client, next_path=target)
        assert answer.status == 303 and answer.headers["Location"] == "/desk", target


async def test_login_attempts_are_limited(client: TestClient[Any, Any], anna: Agent) -> None:
    statuses = [(await sign_in(client, password=f"guess {n}")).status for n in range(11)]
    assert statuses == [401] * 10 + [429]
    limited = await sign_in(client)  # even the right password waits now
    assert limited.status == 429 and int(limited.headers["Retry-After"]) > 0


async def test_the_queue_shows_a_routed_ticket_with_its_countdown_and_a_reply_reaches_the_client(
    client: TestClient[Any, Any], runtime: Runtime, anna: Agent
) -> None:
    ticket = (await runtime.service.ingest(form(1))).ticket
    assert ticket.assignee_id == anna.id
    await sign_in(client)
    queue = await (await client.get("/desk")).text()
    row = re.search(rf'<tr data-ticket="{ticket.id}"[^>]*>(.*?)</tr>', queue, re.S)
    # The built-in request ladder's first step, in words, counting down.
    assert row and "Printer 1" in row.group(1) and "to another agent after a day: in " in row.group(1)

    page = await client.get(f"/desk/tickets/{ticket.id}")
    html = await page.text()
    assert "client1@example.com" in html and "It does not print" in html
    sent = await client.post(f"/desk/tickets/{ticket.id}", allow_redirects=False,
                             data={"csrf": csrf_of(html), "action": "reply", "body": "We are on it."})
    assert sent.status == 303 and sent.headers["Location"] == f"/desk/tickets/{ticket.id}?done=done_reply"
    shown = await (await client.get(sent.headers["Location"])).text()
    assert "Reply queued for delivery." in shown and "We are on it." in shown
    # Answering is not resolving: the built-in request ladder keeps counting until the request is worked out.
    assert 'data-step="reassign" data-status="pending"' in shown

    async with runtime.sessions() as session:
        [reply] = list(await session.scalars(select(Outbox).where(Outbox.kind == "reply")))
    assert runtime.deliverer is not None and await runtime.deliverer.deliver(reply.id) == "sent"
    [mail] = [e for e in list_sink(runtime.settings.data_dir / "mail-sink") if e.subject.startswith("Re: ")]
    assert mail.to == "client1@example.com" and mail.subject == f"Re: [#{ticket.id}] Printer 1"

    unsaid = await client.post(f"/desk/tickets/{ticket.id}", data={
        "csrf": csrf_of(shown), "action": "save", "status": "resolved", "priority": "normal"})
    assert unsaid.status == 422 and "choose how it ended" in await unsaid.text()  # resolving asks for an outcome
    refused = await client.post(f"/desk/tickets/{ticket.id}", data={
        "csrf": csrf_of(shown), "action": "save", "status": "resolved", "priority": "normal", "outcome": "refused"})
    assert refused.status == 422 and "needs a reason" in await refused.text()
    resolved = await client.post(f"/desk/tickets/{ticket.id}", allow_redirects=False,
                                 data={"csrf": csrf_of(shown), "action": "save", "status": "resolved",
                                       "priority": "normal", "outcome": "refused", "outcome_reason": "price"})
    assert resolved.status == 303
    view = await runtime.service.get_ticket(anna, ticket.id)
    assert (view.ticket.status, view.ticket.outcome, view.ticket.outcome_reason) == ("resolved", "refused", "price")
    assert [(e.data["old"], e.data["new"]) for e in view.events if e.kind == "outcome_set"] == [("", "refused / price")]


async def test_forms_without_this_sessions_csrf_token_are_refused(
    client: TestClient[Any, Any], runtime: Runtime, anna: Agent, add_agent: Any
) -> None:
    ticket = (await runtime.service.ingest(form(1))).ticket
    await sign_in(client)
    for data in ({"action": "reply", "body": "forged"}, {"csrf": "guess", "action": "reply", "body": "forged"}):
        refused = await client.post(f"/desk/tickets/{ticket.id}", data=data, allow_redirects=False)
        assert refused.status == 403
    assert (await client.post("/desk/presence", data={"presence": "offline"})).status == 403
    view = await runtime.service.get_ticket(anna, ticket.id)
    assert [m.body_text for m in view.messages if m.body_text == "forged"] == []


async def test_script_in_a_subject_or_message_is_shown_as_text(
    client: TestClient[Any, Any], runtime: Runtime, anna: Agent
) -> None:
    ticket = (await runtime.service.ingest(Inbound(
        channel="webform", identities=(Identity("email", "x@example.com"),), subject="<script>alert(1)</script>",
        body_text='<img src=x onerror="alert(2)">', customer_name="<b>Mallory</b>"))).ticket
    await sign_in(client)
    for path in ("/desk", f"/desk/tickets/{ticket.id}"):
        html = await (await client.get(path)).text()
        assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path
        assert '<img src=x onerror' not in html and "<b>Mallory</b>" not in html


async def test_presence_switch_is_what_the_router_obeys_and_agents_see_only_their_views(
    client: TestClient[Any, Any], runtime: Runtime, anna: Agent
) -> None:
    await sign_in(client)
    html = await (await client.get("/desk?view=open")).text()
    assert 'aria-current="page">Mine' in html and "All open" not in html  # a manager's view, not hers
    moved = await client.post("/desk/presence", data={"csrf": csrf_of(html), "presence": "offline",
                                                      "next": "/desk?view=unassigned"}, allow_redirects=False)
    assert moved.status == 303 and moved.headers["Location"] == "/desk?view=unassigned"
    async with runtime.sessions() as session:
        assert (await session.get_one(Agent, anna.id)).presence == Presence.offline
    ticket = (await runtime.service.ingest(form(2))).ticket
    assert ticket.assignee_id is None  # offline: the router passed her by
    unassigned = await (await client.get("/desk?view=unassigned")).text()
    assert f'data-ticket="{ticket.id}"' in unassigned


async def test_a_manager_sees_every_open_ticket(client: TestClient[Any, Any], runtime: Runtime,
                                                add_agent: Any) -> None:
    mia, _ = await add_agent("Mia", email="mia@example.com", role=Role.manager, presence="offline", language="ru")
    await runtime.service.set_password(mia.id, PASSWORD)
    agent, _ = await add_agent("Boris")
    ticket = (await runtime.service.ingest(form(3))).ticket
    assert ticket.assignee_id == agent.id
    await sign_in(client, email="mia@example.com")
    html = await (await client.get("/desk?view=open")).text()
    assert f'data-ticket="{ticket.id}"' in html and "Все открытые" in html  # in her language


async def test_an_open_queue_hears_of_each_committed_change(
    client: TestClient[Any, Any], runtime: Runtime, anna: Agent
) -> None:
    import asyncio

    assert (await client.get("/desk/events", allow_redirects=False)).status == 303  # signed-in agents only
    await sign_in(client)
    queue = await (await client.get("/desk")).text()
    assert '<main data-live>' in queue and '/desk/static/console.js' in queue
    script = await client.get("/desk/static/console.js")
    assert script.status == 200 and "EventSource" in await script.text()

    stream = await client.get("/desk/events")
    assert stream.headers["Content-Type"].startswith("text/event-stream")

    async def next_event() -> str:
        while True:
            line = (await stream.content.readline()).decode()
            if line.startswith("data: "):
                return line.removeprefix("data: ").strip()

    assert (await stream.content.readline()).startswith(b"retry:")
    await asyncio.sleep(0.2)  # the stream has subscribed
    ticket = (await runtime.service.ingest(form(5))).ticket
    assert await asyncio.wait_for(next_event(), 5) == "changed"  # not which ticket: the page asks with its rights
    await runtime.service.update_ticket(anna, ticket.id, {"status": "pending"})
    assert await asyncio.wait_for(next_event(), 5) == "changed"
    stream.close()


async def test_the_dashboard_draws_load_per_agent_for_managers_only_and_exports_csv(
    client: TestClient[Any, Any], runtime: Runtime, anna: Agent, add_agent: Any
) -> None:
    mia, _ = await add_agent("Mia", email="mia@example.com", role=Role.manager, presence="offline")
    await runtime.service.set_password(mia.id, PASSWORD)
    await add_agent("<i>Boris</i>", presence="offline", capacity=4)
    for n in range(3):
        await runtime.service.ingest(form(n))  # all three to Anna, the one available agent
    await sign_in(client)
    assert (await client.get("/desk/dashboard")).status == 403  # an agent's
    assert (await client.get("/desk/dashboard/load.csv")).status == 403
    client.session.cookie_jar.clear()

    await sign_in(client, email="mia@example.com")
    html = await (await client.get("/desk/dashboard")).text()
    load = re.search(r'<section class="chart" id="chart-load">(.*?)</section>', html, re.S)
    assert load and "<svg" in load.group(1) and ">Anna</text>" in load.group(1) and "3 / 10" in load.group(1)
    assert "&lt;i&gt;Boris&lt;/i&gt;" in load.group(1) and "<i>Boris</i>" not in html
    for chart in ("queues", "compliance", "first_response", "resolution", "channels"):
        assert f'id="chart-{chart}"' in html
    csv_answer = await client.get("/desk/dashboard/load.csv")
    assert csv_answer.status == 200 and csv_answer.content_type == "text/csv"
    lines = (await csv_answer.text()).removeprefix("\ufeff").splitlines()
    assert lines[0] == "Agent,Presence,Open,Waiting for the client,Capacity" and "Anna,available,3,0,10" in lines
    assert (await client.get("/desk/dashboard/nothing.csv")).status == 404


async def test_admin_pages_list_the_team_check_a_regulations_file_and_show_delivery_history(
    client: TestClient[Any, Any], runtime: Runtime, anna: Agent, add_agent: Any
) -> None:
    await sign_in(client)
    assert (await client.get("/desk/admin")).status == 403  # an agent cannot see admin pages
    client.session.cookie_jar.clear()
    root, _ = await add_agent("Root", email="root@example.com", role=Role.admin, presence="offline")
    await runtime.service.set_password(root.id, PASSWORD)
    await runtime.service.ingest(form(1))  # its acknowledgement and Anna's notice are notifications
    await sign_in(client, email="root@example.com")

    html = await (await client.get("/desk/admin")).text()
    assert "anna@example.com" in html and "request" in html and "reassign" in html
    assert html.count("data-notification=") == 2
    bad = await client.post("/desk/admin/regulations", data={
        "csrf": csrf_of(html), "draft": "regulations:\n  - name: x\n    steps:\n      - {name: a, after: one day}\n"})
    assert bad.status == 422 and "draft:4: regulations.0.steps.0.after" in await bad.text()
    good = await client.post("/desk/admin/regulations", data={
        "csrf": csrf_of(html), "draft": "regulations:\n  - name: x\n    steps:\n"
                                        "      - {name: a, after: 2h, unless: resolved, breach: true}\n"})
    assert good.status == 200 and "The file is valid." in await good.text()
    forged = await client.post("/desk/admin/regulations", data={"draft": "regulations: []"})
    assert forged.status == 403


async def test_the_ticket_page_shows_the_customers_other_tickets_and_a_manager_transfers_it(
    client: TestClient[Any, Any], runtime: Runtime, anna: Agent, add_agent: Any
) -> None:
    mia, _ = await add_agent("Mia", email="mia@example.com", role=Role.manager, presence="offline")
    await runtime.service.set_password(mia.id, PASSWORD)
    boris, _ = await add_agent("Boris", presence="offline")
    first = (await runtime.service.ingest(form(1, "Invoice"))).ticket
    await runtime.service.update_ticket(anna, first.id, {"status": "resolved"})
    second = (await runtime.service.ingest(Inbound(
        channel="webform", identities=(Identity("email", "client1@example.com"),), subject="Printer again",
        body_text="Again"))).ticket
    await sign_in(client, email="mia@example.com")
    html = await (await client.get(f"/desk/tickets/{second.id}")).text()
    assert f'href="/desk/tickets/{first.id}">#{first.id} Invoice 1</a>' in html
    moved = await client.post(f"/desk/tickets/{second.id}", allow_redirects=False, data={
        "csrf": csrf_of(html), "action": "transfer", "assignee": str(boris.id)})
    assert moved.status == 303
    saved = await client.post(f"/desk/tickets/{second.id}", allow_redirects=False, data={
        "csrf": csrf_of(html), "action": "save", "status": "open", "priority": "high", "category": "hardware"})
    assert saved.status == 303
    view = await runtime.service.get_ticket(mia, second.id)
    assert (view.ticket.assignee_id, view.ticket.priority, view.ticket.category) == (boris.id, "high", "hardware")


async def test_search_finds_tickets_by_number_customer_address_and_text(
    client: TestClient[Any, Any], runtime: Runtime, anna: Agent
) -> None:
    printer = (await runtime.service.ingest(form(1, "Printer"))).ticket
    invoice = (await runtime.service.ingest(Inbound(
        channel="webform", identities=(Identity("email", "olga@shop.example"),), subject="Invoice",
        body_text="The VAT number is missing", customer_name="Olga Smirnova"))).ticket
    await runtime.service.add_message(anna, printer.id, "secret-word in a note", internal=True)
    await sign_in(client)

    async def found(query: str) -> set[int]:
        html = await (await client.get("/desk", params={"q": query})).text()
        return {int(n) for n in re.findall(r'data-ticket="(\d+)"', html)}

    assert await found(f"#{invoice.id}") == {invoice.id}
    assert await found("olga@shop") == {invoice.id}
    assert await found("smirnova") == {invoice.id}
    assert await found("vat number") == {invoice.id}
    assert await found("printer") == {printer.id}
    assert await found("secret-word") == set()  # internal notes are not searched from the queue


async def test_email_html_is_shown_cleaned_and_attachments_download_without_running(
    client: TestClient[Any, Any], runtime: Runtime, anna: Agent
) -> None:
    from tickets.inbound import AttachmentRef

    stored = await runtime.attachments.save("page.html", "text/html", b"<script>alert(1)</script>")
    picture = await runtime.attachments.save("photo.png", "image/png", b"\x89PNG\r\n\x1a\n")
    ticket = (await runtime.service.ingest(Inbound(
        channel="email", identities=(Identity("email", "eve@example.com"),), subject="Look", external_id="<m@x>",
        body_text="Look at this", body_html='<p onclick="steal()">Look <b>here</b><script>alert(3)</script></p>'
                                            '<a href="javascript:alert(4)">x</a><img src="http://t.example/p.gif">',
        attachments=(stored, picture), customer_name="Eve"))).ticket
    assert isinstance(stored, AttachmentRef)
    await sign_in(client)
    queue = await (await client.get("/desk")).text()
    assert "<td class=\"wide\">Eve</td>" in queue  # the customer column
    html = await (await client.get(f"/desk/tickets/{ticket.id}")).text()
    body = re.search(r'<div class="html-body">(.*?)</div>', html, re.S)
    assert body and "<b>here</b>" in body.group(1)
    for bad in ("onclick", "<script>alert(3)", "javascript:", "alert(1)"):
        assert bad not in html, bad
    links = re.findall(rf'href="(/desk/tickets/{ticket.id}/files/\d+/\d+)"', html)
    assert len(links) == 2
    page_file = await client.get(links[0])
    assert page_file.status == 200 and page_file.headers["Content-Type"] == "application/octet-stream"
    assert page_file.headers["Content-Disposition"].startswith("attachment") and \
        "sandbox" in page_file.headers["Content-Security-Policy"]
    assert await page_file.read() == b"<script>alert(1)</script>"  # stored as sent, delivered as a download
    image = await client.get(links[1])
    assert image.headers["Content-Type"] == "image/png"
    assert (await client.get(f"/desk/tickets/{ticket.id}/files/999/0")).status == 404


async def test_an_admin_adds_canned_responses_and_the_ticket_page_offers_them_filled_in(
    client: TestClient[Any, Any], runtime: Runtime, anna: Agent, add_agent: Any
) -> None:
    root, _ = await add_agent("Root", email="root@example.com", role=Role.admin, presence="offline")
    await runtime.service.set_password(root.id, PASSWORD)
    ticket = (await runtime.service.ingest(form(1))).ticket
    await sign_in(client, email="root@example.com")
    html = await (await client.get("/desk/admin")).text()
    added = await client.post("/desk/admin/canned", allow_redirects=False, data={
        "csrf": csrf_of(html), "title": "Restart", "text": "Hello {name}, please restart it (ticket #{number})."})
    assert added.status == 303 and added.headers["Location"] == "/desk/admin#canned"
    again = await client.post("/desk/admin/canned", allow_redirects=False, data={
        "csrf": csrf_of(html), "title": "Restart", "text": "twice"})
    assert again.status == 422 and "exists already" in await again.text()
    assert "Call +1 900 scam" not in await (await client.get("/desk/admin?error=Call+%2B1+900+scam")).text()
    assert [c.title for c in await runtime.service.list_canned()] == ["Restart"]

    client.session.cookie_jar.clear()
    await sign_in(client)  # Anna, an agent
    page = await (await client.get(f"/desk/tickets/{ticket.id}")).text()
    assert f'<option value="Hello Client 1, please restart it (ticket #{ticket.id}).">Restart</option>' in page
    assert (await client.post("/desk/admin/canned", data={"csrf": csrf_of(page), "title": "x", "text": "y"})
            ).status == 403  # only admins change them


async def test_a_queue_sorts_by_number_priority_waiting_and_deadline(
    client: TestClient[Any, Any], runtime: Runtime, anna: Agent
) -> None:
    first = (await runtime.service.ingest(form(1))).ticket
    second = (await runtime.service.ingest(form(2))).ticket
    await runtime.service.update_ticket(anna, first.id, {"priority": "critical"})
    await sign_in(client)

    async def order(sort: str) -> list[int]:
        html = await (await client.get("/desk", params={"sort": sort})).text()
        return [int(n) for n in re.findall(r'<tr data-ticket="(\d+)"', html)]

    assert await order("number") == [second.id, first.id]
    assert await order("waiting") == [first.id, second.id]
    assert await order("priority") == [first.id, second.id]
    assert set(await order("deadline")) == {first.id, second.id}
    assert await order("attention") == [first.id, second.id]  # the default: critical first
    assert await order("nonsense") == await order("attention")


async def test_a_refused_change_is_shown_in_words_not_as_a_field_map(
    client: TestClient[Any, Any], runtime: Runtime, anna: Agent
) -> None:
    ticket = (await runtime.service.ingest(form(7))).ticket
    await runtime.service.update_ticket(anna, ticket.id, {"assignee": None})  # back in the queue, nobody's
    await sign_in(client)
    html = await (await client.get(f"/desk/tickets/{ticket.id}")).text()
    refused = await client.post(f"/desk/tickets/{ticket.id}", allow_redirects=False, data={
        "csrf": csrf_of(html), "action": "save", "status": "pending"})
    assert refused.status == 422  # the page again, with the reason (never from the address)
    page = await refused.text()
    assert "assign the ticket before setting it pending" in page and "{&#39;status&#39;" not in page
    assert "Call +1 900 scam" not in await (await client.get(f"/desk/tickets/{ticket.id}?error=Call+%2B1+900+scam"))\
        .text()
