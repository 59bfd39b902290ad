"""The web form channel over real HTTP: the HTML contact page, the JSON endpoint, and what they store."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import html
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html.parser import HTMLParser
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from switchboard.bootstrap import Runtime
from switchboard.settings import Settings
from switchboard.webapp import create_app
from tickets.models import Message, Outbox, Presence, Role

WEBFORM = "/api/v1/webform"


# --- helpers -------------------------------------------------------------------------------------


class FormParser(HTMLParser):
    """Collects the form, its controls (with the attributes of each) and whether a control sits in an aria-hidden
    box."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, str]] = []
        self.controls: dict[str, dict[str, Any]] = {}
        self.options: dict[str, list[str]] = {}
        self._select: str | None = None
        self._textarea: str | None = None
        self._hidden_depth: list[bool] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "div":
            self._hidden_depth.append(a.get("aria-hidden") == "true")
        if tag == "form":
            self.forms.append(a)
        elif tag in ("input", "select", "textarea") and "name" in a:
            a["_tag"] = tag
            a["_in_hidden_box"] = any(self._hidden_depth)
            a["_text"] = ""
            self.controls[a["name"]] = a
            if tag == "select":
                self._select = a["name"]
                self.options[a["name"]] = []
            if tag == "textarea":
                self._textarea = a["name"]
        elif tag == "option" and self._select is not None:
            self.options[self._select].append(a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self._hidden_depth:
            self._hidden_depth.pop()
        if tag == "select":
            self._select = None
        if tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self.controls[self._textarea]["_text"] += data


def parse_form(page: str) -> FormParser:
    parser = FormParser()
    parser.feed(page)
    return parser


def ticket_number(page: str) -> int:
    match = re.search(r'data-ticket-number="(\d+)"', page)
    assert match, page
    return int(match.group(1))


def form_data(fields: dict[str, str], files: list[tuple[str, bytes, str]] = ()) -> aiohttp.FormData:  # type: ignore[assignment]
    data = aiohttp.FormData(quote_fields=False)  # as browsers send file names: not percent-encoded
    for name, value in fields.items():
        data.add_field(name, value)
    for filename, content, content_type in files:
        data.add_field("attachments", content, filename=filename, content_type=content_type)
    return data


async def form_token(client: TestClient[Any, Any]) -> str:
    response = await client.get("/contact")
    assert response.status == 200
    return parse_form(await response.text()).controls["form_token"]["value"]


async def all_tickets(client: TestClient[Any, Any], headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/tickets", headers=headers, params={"limit": "200"})
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["next_cursor"] is None
    return body["items"]


async def get_ticket(client: TestClient[Any, Any], number: int, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get(f"/api/v1/tickets/{number}", headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()


def http_settings(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update={"http": settings.http.model_copy(update=changes)})


@asynccontextmanager
async def app_client(runtime: Runtime, settings: Settings) -> AsyncIterator[TestClient[Any, Any]]:
    """A second real server over the same database and Redis, built from different settings."""
    rt = dataclasses.replace(runtime, settings=settings)
    async with TestClient(TestServer(create_app(rt), host="127.0.0.1")) as test_client:
        yield test_client


def stored_files(settings: Settings) -> list[bytes]:
    root = settings.attachments_dir
    if not root.exists():
        return []
    return [p.read_bytes() for p in root.rglob("*") if p.is_file()]


# --- the HTML form ---------------------------------------------------------------------------------


async def test_contact_page_offers_every_field(client: TestClient[Any, Any]) -> None:
    response = await client.get("/contact")
    assert response.status == 200
    assert response.content_type == "text/html"
    page = parse_form(await response.text())

    assert len(page.forms) == 1
    form = page.forms[0]
    assert form["method"].lower() == "post"
    assert form["action"] == "/contact?lang=en"  # the reader's language, kept when the form is shown again
    assert form["enctype"] == "multipart/form-data"

    controls = page.controls
    for name in ("name", "email", "phone", "subject"):
        assert controls[name]["_tag"] == "input", name
    assert controls["email"]["type"] == "email"
    assert controls["phone"]["type"] == "tel"
    assert controls["message"]["_tag"] == "textarea"
    assert controls["category"]["_tag"] == "select"
    assert page.options["category"] == ["question", "request", "defect", "billing", "feedback"]
    assert controls["attachments"]["_tag"] == "input"
    assert controls["attachments"]["type"] == "file"
    assert "multiple" in controls["attachments"]
    # The honeypot is a normal text input people never see (a type=hidden field would not fool bots).
    assert controls["website"]["_tag"] == "input"
    assert controls["website"]["_in_hidden_box"] is True
    assert controls["website"]["tabindex"] == "-1"
    assert controls["form_token"]["type"] == "hidden"
    token = controls["form_token"]["value"]
    assert re.fullmatch(r"[0-9a-f]{32}", token)
    assert await form_token(client) != token, "each page view gets its own token"


async def test_the_contact_page_speaks_the_readers_language_and_its_answer_links_the_ticket_page(
    client: TestClient[Any, Any], add_agent: Any
) -> None:
    await add_agent("Alice")
    russian = {"Accept-Language": "ru-RU,ru;q=0.9"}
    page = await (await client.get("/contact", headers=russian)).text()
    assert '<html lang="ru">' in page and "Написать в поддержку" in page and ">Что-то сломалось</option>" in page
    assert "Contact support" not in page and '<form method="post" action="/contact?lang=ru"' in page
    english = await (await client.get("/contact?lang=en", headers=russian)).text()  # the reader's own choice wins
    assert '<html lang="en">' in english and "Contact support" in english

    token = re.search(r'name="form_token" value="([0-9a-f]+)"', page)
    assert token
    fields = {"form_token": token.group(1), "name": "Иван", "email": "ivan@", "message": "", "category": "defect"}
    refused = await client.post("/contact?lang=ru", data=form_data(fields, []), headers=russian)
    shown = await refused.text()
    assert refused.status == 422 and "Исправьте, пожалуйста, отмеченные поля." in shown
    assert "напишите, пожалуйста, сообщение" in shown and "адрес почты записан с ошибкой" in shown

    fields.update(email="ivan@example.org", message="Принтер не печатает")
    done = await client.post("/contact?lang=ru", data=form_data(fields, []), headers=russian)
    answer = await done.text()
    assert done.status == 200 and "Спасибо — ваше сообщение получено" in answer
    link = re.search(r'<a href="(/portal/[\w-]+)" data-portal>', answer)
    assert link, answer
    portal = await client.get(link.group(1))
    assert portal.status == 200 and "Принтер не печатает" in await portal.text()


async def test_contact_post_with_attachment_opens_an_assigned_ticket(
    client: TestClient[Any, Any], add_agent: Any, settings: Settings
) -> None:
    agent, headers = await add_agent("Alice")
    content = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    digest = hashlib.sha256(content).hexdigest()
    fields = {
        "form_token": await form_token(client),
        "name": "Jane Client",
        "email": "Jane.Client@Example.com",
        "phone": "",
        "subject": "Printer on fire",
        "message": "The printer is on fire.\nPlease advise.",
        "category": "defect",
        "website": "",
    }
    response = await client.post("/contact", data=form_data(fields, [("screen shot.png", content, "image/png")]))
    assert response.status == 200, await response.text()
    assert response.content_type == "text/html"
    page = await response.text()
    number = ticket_number(page)
    assert f"#{number}" in page

    ticket = await get_ticket(client, number, headers)
    assert ticket["number"] == number
    assert ticket["subject"] == "Printer on fire"
    assert ticket["category"] == "defect"
    assert ticket["channel"] == "webform"
    assert ticket["status"] == "open"
    assert ticket["assignee_id"] == agent.id
    assert ticket["assignee"] == {"id": agent.id, "name": "Alice", "email": agent.email}
    assert ticket["customer"]["name"] == "Jane Client"
    assert ticket["customer"]["identities"] == [{"kind": "email", "address": "jane.client@example.com"}]
    [message] = ticket["messages"]
    assert message["direction"] == "in"
    assert message["body_text"] == "The printer is on fire.\nPlease advise."
    assert message["attachments"] == [
        {"name": "screen shot.png", "content_type": "image/png", "size": len(content), "sha256": digest,
         "content_id": None, "inline": False}
    ]
    assert [e["kind"] for e in ticket["events"]] == ["created", "assigned"]

    assert stored_files(settings) == [content]


async def test_same_form_token_twice_is_one_ticket(client: TestClient[Any, Any], add_agent: Any) -> None:
    _, headers = await add_agent()
    fields = {"form_token": await form_token(client), "email": "twice@example.com", "message": "Sent twice"}
    first = await client.post("/contact", data=form_data(fields, [("a.txt", b"hello", "text/plain")]))
    assert first.status == 200
    second = await client.post("/contact", data=form_data(fields, [("a.txt", b"hello", "text/plain")]))
    assert second.status == 200
    number = ticket_number(await first.text())
    second_page = await second.text()
    assert ticket_number(second_page) == number
    assert "same ticket" in second_page

    tickets = await all_tickets(client, headers)
    assert [t["number"] for t in tickets] == [number]
    assert len((await get_ticket(client, number, headers))["messages"]) == 1

    # The same page sent again with another message (back button) is a new submission, not a retry.
    third = await client.post("/contact", data=form_data({**fields, "message": "A second question"}))
    assert third.status == 200
    other = ticket_number(await third.text())
    assert other != number
    assert (await get_ticket(client, other, headers))["messages"][0]["body_text"] == "A second question"
    assert len(await all_tickets(client, headers)) == 2


async def test_invalid_html_post_reshows_the_form_and_stores_nothing(
    client: TestClient[Any, Any], add_agent: Any, settings: Settings
) -> None:
    _, headers = await add_agent()
    token = await form_token(client)
    typed = "My <b>order</b> & the \"refund\" never came"

    # Neither email nor phone.
    response = await client.post(
        "/contact",
        data=form_data({"form_token": token, "name": "Bob", "subject": "Refund", "message": typed,
                        "category": "billing"},
                       [("proof.pdf", b"%PDF-1.4 proof", "application/pdf")]),
    )
    assert response.status == 422
    assert response.content_type == "text/html"
    raw = await response.text()
    page = parse_form(raw)
    assert page.controls["message"]["_text"] == typed, "the typed message must survive"
    assert "<b>order</b>" not in raw, "typed text is escaped"
    assert page.controls["name"]["value"] == "Bob"
    assert page.controls["subject"]["value"] == "Refund"
    assert page.controls["form_token"]["value"] == token, "a fixed form keeps its idempotency token"
    category = re.search(r'<option value="billing"\s+selected', raw)
    assert category, "the chosen category stays selected"
    assert 'id="email-error"' in raw
    assert "give an email address or a phone number" in html.unescape(raw)
    assert "attach them once more" in raw

    # A malformed email address.
    response = await client.post(
        "/contact", data=form_data({"form_token": token, "email": "bob-at-example", "message": typed})
    )
    assert response.status == 422
    raw = await response.text()
    page = parse_form(raw)
    assert page.controls["email"]["value"] == "bob-at-example"
    assert page.controls["email"]["aria-invalid"] == "true"
    assert page.controls["message"]["_text"] == typed
    error = re.search(r'<p class="error" id="email-error">(.*?)</p>', raw, re.S)
    assert error and "@" in html.unescape(error.group(1))

    # An empty message.
    response = await client.post("/contact",
                                 data=form_data({"form_token": token, "email": "bob@example.com", "message": " "}))
    assert response.status == 422
    raw = await response.text()
    assert 'id="message-error"' in raw
    assert parse_form(raw).controls["email"]["value"] == "bob@example.com"

    assert await all_tickets(client, headers) == []
    assert stored_files(settings) == [], "files of a refused form are not kept"


async def test_filled_honeypot_is_refused(client: TestClient[Any, Any], add_agent: Any, settings: Settings) -> None:
    _, headers = await add_agent()
    fields = {"form_token": await form_token(client), "email": "bot@example.com", "message": "Buy now",
              "website": "http://spam.example"}
    response = await client.post("/contact", data=form_data(fields, [("x.bin", b"spam", "application/octet-stream")]))
    assert response.status == 422
    raw = await response.text()
    assert 'id="website-error"' in raw
    assert "http://spam.example" not in raw, "the honeypot is not echoed back"
    assert await all_tickets(client, headers) == []
    assert stored_files(settings) == []

    # The JSON endpoint has the same trap.
    response = await client.post(WEBFORM, json={"email": "bot@example.com", "message": "Buy now", "website": "x"})
    assert response.status == 422
    assert "website" in (await response.json())["error"]["fields"]
    assert await all_tickets(client, headers) == []


# --- the JSON endpoint --------------------------------------------------------------------------------


async def test_json_submission_creates_a_ticket(client: TestClient[Any, Any], add_agent: Any) -> None:
    agent, headers = await add_agent()
    payload = {"name": "Ann", "email": "ann@example.com", "subject": "Invoice", "message": "Wrong VAT",
               "category": "billing"}
    response = await client.post(WEBFORM, json=payload, headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"})
    assert response.status == 201, await response.text()
    body = await response.json()
    number = body["number"]
    assert body == {"number": number, "status": "open", "created": True, "duplicate": False}
    assert response.headers["Location"] == f"/api/v1/tickets/{number}"
    assert "Idempotent-Replayed" not in response.headers

    fetched = await client.get(response.headers["Location"], headers=headers)
    assert fetched.status == 200
    ticket = await fetched.json()
    assert ticket["subject"] == "Invoice"
    assert ticket["category"] == "billing"
    assert ticket["status"] == "open"
    assert ticket["assignee_id"] == agent.id
    assert ticket["customer"]["name"] == "Ann"
    assert ticket["customer"]["language"] == "ru"
    assert [m["body_text"] for m in ticket["messages"]] == ["Wrong VAT"]
    assert ticket["messages"][0]["attachments"] == []


async def test_json_idempotency_key(client: TestClient[Any, Any], add_agent: Any) -> None:
    _, headers = await add_agent()
    payload = {"email": "retry@example.com", "message": "Network was flaky"}
    key = {"Idempotency-Key": "4b1f0d7e-retry"}

    first = await client.post(WEBFORM, json=payload, headers=key)
    second = await client.post(WEBFORM, json=payload, headers=key)
    assert first.status == 201
    assert second.status == 201
    one, two = await first.json(), await second.json()
    assert one["duplicate"] is False and one["created"] is True
    assert two["number"] == one["number"]
    assert two["duplicate"] is True and two["created"] is False
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Location"] == f"/api/v1/tickets/{one['number']}"
    assert [t["number"] for t in await all_tickets(client, headers)] == [one["number"]]
    assert len((await get_ticket(client, one["number"], headers))["messages"]) == 1

    other = await client.post(WEBFORM, json=payload, headers={"Idempotency-Key": "another-key"})
    assert other.status == 201
    three = await other.json()
    assert three["number"] != one["number"] and three["duplicate"] is False
    assert sorted(t["number"] for t in await all_tickets(client, headers)) == sorted([one["number"], three["number"]])

    # The HTML form's tokens and the JSON keys live apart: a key equal to a form token is a new ticket.
    token = await form_token(client)
    html_post = await client.post("/contact", data=form_data({"form_token": token, "email": "retry@example.com",
                                                              "message": "via the page"}))
    json_post = await client.post(WEBFORM, json=payload, headers={"Idempotency-Key": token})
    assert ticket_number(await html_post.text()) != (await json_post.json())["number"]

    too_long = await client.post(WEBFORM, json=payload, headers={"Idempotency-Key": "k" * 201})
    assert too_long.status == 422
    assert "Idempotency-Key" in (await too_long.json())["error"]["fields"]
    assert len(await all_tickets(client, headers)) == 4

    # The same key with another message is refused rather than silently dropping that message.
    reused = await client.post(WEBFORM, json={**payload, "message": "something else"}, headers=key)
    assert reused.status == 422
    error = (await reused.json())["error"]
    assert error["code"] == "idempotency_key_reused"
    assert f"#{one['number']}" in error["fields"]["Idempotency-Key"]
    assert len(await all_tickets(client, headers)) == 4


async def test_json_invalid_fields(
    client: TestClient[Any, Any], add_agent: Any, runtime: Runtime, settings: Settings
) -> None:
    _, headers = await add_agent()
    cases: list[tuple[Any, set[str]]] = [
        ({"email": "not-an-email", "message": "x"}, {"email"}),
        ({"email": "a@example.com"}, {"message"}),
        ({"email": "a@example.com", "message": "   "}, {"message"}),
        ({"email": "a@example.com", "message": "x", "category": "spam"}, {"category"}),
        ({"phone": "12", "message": "x"}, {"phone"}),
        ({"message": "x"}, {"email"}),
        ({"email": "a@example.com", "message": "x", "colour": "red"}, {"colour"}),
        ({"email": "a@example.com", "message": 42}, {"message"}),
        ({"email": "a@example.com", "message": "x" * 20_001}, {"message"}),
        # Every bad field at once, the address formats included.
        ({"email": "nope", "phone": "12", "category": "spam"}, {"email", "phone", "category", "message"}),
    ]
    for payload, expected in cases:
        response = await client.post(WEBFORM, json=payload)
        assert response.status == 422, payload
        assert response.content_type == "application/json"
        error = (await response.json())["error"]
        assert error["code"] == "invalid"
        assert set(error["fields"]) == expected, (payload, error)
        assert all(isinstance(text, str) and text for text in error["fields"].values())

    for raw in ("{not json", "", "[1, 2]", '"a string"', "null", "42"):
        response = await client.post(WEBFORM, data=raw, headers={"Content-Type": "application/json"})
        assert response.status == 422, raw
        assert set((await response.json())["error"]["fields"]) == {"body"}, raw

    # Without a default region a national number cannot be placed.
    async with app_client(runtime, settings.model_copy(update={"phone_region": None})) as no_region:
        response = await no_region.post(WEBFORM, json={"phone": "020 7946 0958", "message": "call me"})
        assert response.status == 422
        assert "country code" in (await response.json())["error"]["fields"]["phone"]
        response = await no_region.post(WEBFORM, json={"phone": "+44 20 7946 0958", "message": "call me"})
        assert response.status == 201
        created = await response.json()

    [only] = await all_tickets(client, headers)
    assert only["number"] == created["number"]


async def test_one_customer_card_across_submissions(client: TestClient[Any, Any], add_agent: Any) -> None:
    _, headers = await add_agent()
    first = await (await client.post(WEBFORM, json={"email": "carol@example.com", "message": "one"})).json()
    token = await form_token(client)
    page = await client.post("/contact",
                             data=form_data({"form_token": token, "email": "CAROL@example.com", "message": "two"}))
    second_number = ticket_number(await page.text())

    one = await get_ticket(client, first["number"], headers)
    two = await get_ticket(client, second_number, headers)
    assert one["customer_id"] == two["customer_id"]
    response = await client.get(f"/api/v1/customers/{one['customer_id']}", headers=headers)
    assert response.status == 200
    card = await response.json()
    assert card["id"] == one["customer_id"]
    assert card["identities"] == [{"kind": "email", "address": "carol@example.com"}]
    assert [t["number"] for t in card["tickets"]] == [second_number, first["number"]]

    # Email and phone together: both identities on one card, the phone in E.164.
    both = await (await client.post(WEBFORM, json={"email": "dave@example.com", "phone": "020 7946 0958",
                                                   "message": "ring me"})).json()
    dave = (await get_ticket(client, both["number"], headers))["customer"]
    assert dave["id"] != one["customer_id"]
    assert sorted((i["kind"], i["address"]) for i in dave["identities"]) == [
        ("email", "dave@example.com"), ("phone", "+442079460958")
    ]
    # Writing later from the phone alone lands on the same card.
    by_phone = await (await client.post(WEBFORM, json={"phone": "+44 20 7946 0958", "message": "me again"})).json()
    assert (await get_ticket(client, by_phone["number"], headers))["customer_id"] == dave["id"]
    card = await (await client.get(f"/api/v1/customers/{dave['id']}", headers=headers)).json()
    assert {t["number"] for t in card["tickets"]} == {both["number"], by_phone["number"]}

    missing = await client.get("/api/v1/customers/999999", headers=headers)
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "not_found"


# --- limits, CORS, queueing ------------------------------------------------------------------------------


async def _clear_of_window_edge() -> None:
    """The limiter counts per clock minute: start a burst well inside one so it is not split in two."""
    into = time.time() % 60
    if into > 55:
        await asyncio.sleep(60 - into + 0.1)


async def test_rate_limit_per_client_ip(client: TestClient[Any, Any], runtime: Runtime, settings: Settings,
                                        add_agent: Any) -> None:
    _, headers = await add_agent()
    async with app_client(runtime, http_settings(settings, form_rate_limit=3)) as limited:
        await _clear_of_window_edge()
        for i in range(3):
            response = await limited.post(WEBFORM, json={"email": "flood@example.com", "message": f"json {i}"})
            assert response.status == 201, i
        refused = await limited.post(WEBFORM, json={"email": "flood@example.com", "message": "json 4"},
                                     headers={"X-Forwarded-For": "203.0.113.9"})  # not from a trusted proxy
        assert refused.status == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert (await refused.json())["error"]["code"] == "rate_limited"

        await runtime.redis.delete(*[k async for k in runtime.redis.scan_iter("ratelimit:webform:*")])
        await _clear_of_window_edge()
        for i in range(3):
            fields = {"form_token": f"{i:032x}", "email": "flood@example.com", "message": f"page {i}"}
            response = await limited.post("/contact", data=form_data(fields))
            assert response.status == 200, i
        refused = await limited.post("/contact", data=form_data({"form_token": "f" * 32, "email": "flood@example.com",
                                                                 "message": "page 4"}))
        assert refused.status == 429
        assert refused.content_type == "text/html"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert "Too many submissions" in await refused.text()

    bodies = [m["body_text"] for t in await all_tickets(client, headers)
              for m in (await get_ticket(client, t["number"], headers))["messages"]]
    assert sorted(bodies) == ["json 0", "json 1", "json 2", "page 0", "page 1", "page 2"]


async def test_cors_for_listed_origins_only(client: TestClient[Any, Any], runtime: Runtime, settings: Settings,
                                            add_agent: Any) -> None:
    _, headers = await add_agent()
    shop = "https://shop.example"
    async with app_client(runtime, http_settings(settings, cors_origins=[shop])) as cors:
        preflight = await cors.options(WEBFORM, headers={
            "Origin": shop, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Content-Type, Idempotency-Key",
        })
        assert preflight.status == 200
        assert preflight.headers["Access-Control-Allow-Origin"] == shop
        assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
        allowed = {h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
        assert {"content-type", "idempotency-key"} <= allowed

        posted = await cors.post(WEBFORM, json={"email": "cors@example.com", "message": "from the shop"},
                                 headers={"Origin": shop})
        assert posted.status == 201
        assert posted.headers["Access-Control-Allow-Origin"] == shop
        exposed = {h.strip().lower() for h in posted.headers["Access-Control-Expose-Headers"].split(",")}
        assert {"location", "idempotent-replayed", "retry-after"} <= exposed

        evil = "https://evil.example"
        preflight = await cors.options(WEBFORM, headers={"Origin": evil, "Access-Control-Request-Method": "POST"})
        assert preflight.status == 403
        assert "Access-Control-Allow-Origin" not in preflight.headers
        assert (await preflight.json())["error"]["code"] == "forbidden"
        posted_evil = await cors.post(WEBFORM, json={"email": "cors@example.com", "message": "from elsewhere"},
                                      headers={"Origin": evil})
        assert posted_evil.status == 201  # the browser, not the server, withholds the answer
        assert "Access-Control-Allow-Origin" not in posted_evil.headers

    # Without configured origins there is no CORS at all.
    preflight = await client.options(WEBFORM, headers={"Origin": shop, "Access-Control-Request-Method": "POST"})
    assert preflight.status == 405
    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert "POST" in preflight.headers["Allow"]
    assert (await preflight.json())["error"]["code"] == "method_not_allowed"
    posted = await client.post(WEBFORM, json={"email": "cors@example.com", "message": "plain"},
                               headers={"Origin": shop})
    assert posted.status == 201
    assert "Access-Control-Allow-Origin" not in posted.headers
    assert len(await all_tickets(client, headers)) == 3


async def test_without_agents_the_ticket_waits_for_the_first_available(
    client: TestClient[Any, Any], add_agent: Any
) -> None:
    response = await client.post(WEBFORM, json={"email": "early@example.com", "message": "anyone there?"})
    assert response.status == 201
    body = await response.json()
    assert body["status"] == "new"
    number = body["number"]

    # Neither an agent who is away nor an offline manager is routed to.
    agent, headers = await add_agent("Late Larry", presence=Presence.away)
    _, manager_headers = await add_agent("Boss", role=Role.manager, presence=Presence.offline)
    ticket = await get_ticket(client, number, headers)
    assert ticket["status"] == "new"
    assert ticket["assignee"] is None
    queued = [e for e in ticket["events"] if e["kind"] == "queued"]
    assert queued and queued[0]["reason"] == "no agent available"
    listed = await (await client.get("/api/v1/tickets", params={"assignee": "none"}, headers=manager_headers)).json()
    assert [t["number"] for t in listed["items"]] == [number]

    response = await client.patch("/api/v1/agents/me", json={"presence": "available"}, headers=headers)
    assert response.status == 200
    me = await response.json()
    assert me["id"] == agent.id and me["presence"] == "available"
    ticket = await get_ticket(client, number, headers)
    assert me["load"] == 1
    assert ticket["status"] == "open"
    assert ticket["assignee_id"] == agent.id
    assigned = [e for e in ticket["events"] if e["kind"] == "assigned"]
    assert len(assigned) == 1 and assigned[0]["data"]["agent_id"] == agent.id
    assert "from the queue" in assigned[0]["reason"]


async def test_concurrent_retries_with_one_key_store_one_ticket(client: TestClient[Any, Any], add_agent: Any) -> None:
    _, headers = await add_agent()
    payload = {"email": "racer@example.com", "message": "double click"}
    responses = await asyncio.gather(
        *(client.post(WEBFORM, json=payload, headers={"Idempotency-Key": "race-1"}) for _ in range(6))
    )
    assert [r.status for r in responses] == [201] * 6
    bodies = [await r.json() for r in responses]
    assert len({b["number"] for b in bodies}) == 1
    assert sorted(b["duplicate"] for b in bodies) == [False] + [True] * 5
    [ticket] = await all_tickets(client, headers)
    assert len((await get_ticket(client, ticket["number"], headers))["messages"]) == 1


async def test_oversized_upload_is_refused(client: TestClient[Any, Any], runtime: Runtime, settings: Settings,
                                           add_agent: Any) -> None:
    _, headers = await add_agent()
    async with app_client(runtime, http_settings(settings, max_upload_mb=1)) as small:
        fields = {"form_token": "a" * 32, "email": "big@example.com", "message": "see the video"}
        response = await small.post("/contact",
                                    data=form_data(fields, [("video.mp4", b"\0" * (1024 * 1024 + 1), "video/mp4")]))
        assert response.status == 422
        raw = await response.text()
        assert 'id="attachments-error"' in raw and "1 MB" in raw
        assert parse_form(raw).controls["message"]["_text"] == "see the video"
        fitting = await small.post("/contact", data=form_data(fields, [("clip.mp4", b"\1" * 1000, "video/mp4")]))
        assert fitting.status == 200
        number = ticket_number(await fitting.text())
    assert [t["number"] for t in await all_tickets(client, headers)] == [number]
    assert stored_files(settings) == [b"\1" * 1000]


async def test_a_multipart_post_aiohttp_cannot_read_is_refused_with_422(client: Any) -> None:
    """Found by schemathesis: a part without headers made the contact form answer 500."""
    boundary = "0b28aa2a2a9a35e566d7d0345d8def0d"
    body = f"--{boundary}\r\n-6.124281921666951e+16--{boundary}--\r\n"
    response = await client.post("/contact", data=body.encode(),
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert response.status == 422, await response.text()


async def test_a_form_token_with_line_breaks_cannot_break_the_acknowledgement(
    client: TestClient[Any, Any], runtime: Runtime
) -> None:
    """A token with CR/LF was kept as the ticket's message id and landed in the acknowledgement's In-Reply-To,
    which failed every delivery; and a form's id is not a Message-ID in any case."""
    response = await client.post("/contact", data={"form_token": "abc\r\nBcc: victim@example.org",
                                                   "email": "zoe@example.com", "message": "Hello"})
    assert response.status == 200 and "data-ticket-number" in await response.text()
    async with runtime.sessions() as session:
        ack = await session.scalar(select(Outbox).where(Outbox.kind == "ack"))
        message = await session.scalar(select(Message))
    assert ack is not None and message is not None and "\n" not in (message.external_id or "")
    assert runtime.deliverer is not None and await runtime.deliverer.deliver(ack.id) == "sent"
    async with runtime.sessions() as session:
        ack = await session.get_one(Outbox, ack.id)
    assert not ack.headers.get("In-Reply-To") and not ack.headers.get("References")
