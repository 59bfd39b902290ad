"""The agent REST API over real HTTP: auth, tickets, replies, changes, agents, OpenAPI, health and outages."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from desk import api
from switchboard.bootstrap import Runtime, build
from switchboard.settings import DatabaseSettings, HttpSettings, RedisSettings, Settings
from switchboard.webapp import create_app
from tickets.inbound import Identity, Inbound
from tickets.models import Presence, Role

WEBFORM = "/api/v1/webform"


# --- helpers -------------------------------------------------------------------------------------


async def submit(client: TestClient[Any, Any], message: str = "help", email: str = "client@example.com",
                 **extra: Any) -> int:
    response = await client.post(WEBFORM, json={"email": email, "message": message, **extra})
    assert response.status == 201, await response.text()
    return int((await response.json())["number"])


async def get_ticket(client: TestClient[Any, Any], number: int, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get(f"/api/v1/tickets/{number}", headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()


async def numbers(client: TestClient[Any, Any], headers: dict[str, str], **params: str) -> list[int]:
    response = await client.get("/api/v1/tickets", params={"limit": "200", **params}, headers=headers)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["next_cursor"] is None
    return [t["number"] for t in body["items"]]


async def patch(client: TestClient[Any, Any], number: int, headers: dict[str, str], **changes: Any) -> Any:
    return await client.patch(f"/api/v1/tickets/{number}", json=changes, headers=headers)


async def agents_by_id(client: TestClient[Any, Any], headers: dict[str, str]) -> dict[int, dict[str, Any]]:
    response = await client.get("/api/v1/agents", headers=headers)
    assert response.status == 200
    return {a["id"]: a for a in (await response.json())["items"]}


async def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    error = (await response.json())["error"]
    assert error["code"] == code
    assert error["message"]
    return error


def kinds(ticket: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in ticket["events"]]


# --- authentication and visibility -----------------------------------------------------------------


async def test_every_agent_endpoint_needs_a_valid_token(client: TestClient[Any, Any], add_agent: Any) -> None:
    _, headers = await add_agent()
    number = await submit(client)
    guarded = [e for e in api.ENDPOINTS if e.auth]
    assert {(e.method, e.path) for e in guarded} >= {
        ("GET", "/api/v1/tickets"), ("GET", "/api/v1/tickets/{number}"), ("POST", "/api/v1/tickets/{number}/messages"),
        ("PATCH", "/api/v1/tickets/{number}"), ("GET", "/api/v1/customers/{id}"), ("GET", "/api/v1/agents"),
        ("PATCH", "/api/v1/agents/me"),
    }
    bodies = {"/api/v1/agents/me": {"presence": "away"}, "/api/v1/tickets/{number}": {"status": "pending"},
              "/api/v1/tickets/{number}/messages": {"body": "hi"}}
    for endpoint in guarded:
        path = endpoint.path.replace("{number}", str(number)).replace("{id}", "1").replace("{other}", "1")
        body = bodies.get(endpoint.path) if endpoint.method != "GET" else None
        for auth in (None, "Bearer not-a-real-token", "Basic dXNlcjpwYXNz", "Bearer ", headers["Authorization"] + "x"):
            response = await client.request(endpoint.method, path, json=body,
                                            headers={"Authorization": auth} if auth is not None else {})
            error = await assert_error(response, 401, "unauthorized")
            assert response.headers["WWW-Authenticate"].startswith("Bearer "), (endpoint.path, auth)
            if auth and auth.startswith("Bearer") and auth.strip() != "Bearer":
                assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
            assert "fields" not in error

    # None of the refused requests changed anything.
    ticket = await get_ticket(client, number, headers)
    assert ticket["status"] == "open"
    assert len(ticket["messages"]) == 1
    assert kinds(ticket) == ["created", "assigned"]
    assert all(a["presence"] == "available" for a in (await agents_by_id(client, headers)).values())


async def test_agents_see_only_their_groups_and_managers_see_all(
    client: TestClient[Any, Any], add_agent: Any, runtime: Runtime
) -> None:
    await runtime.service.add_group("Sales")
    support, support_headers = await add_agent("Sam Support")
    seller, seller_headers = await add_agent("Sally Sales", groups=["Sales"])
    _, manager_headers = await add_agent("Mia Manager", role=Role.manager, presence=Presence.offline)
    number = await submit(client)
    assert (await get_ticket(client, number, support_headers))["assignee_id"] == support.id

    await assert_error(await client.get(f"/api/v1/tickets/{number}", headers=seller_headers), 403, "forbidden")
    await assert_error(await client.post(f"/api/v1/tickets/{number}/messages", json={"body": "mine now"},
                                         headers=seller_headers), 403, "forbidden")
    await assert_error(await patch(client, number, seller_headers, status="resolved"), 403, "forbidden")
    await assert_error(await patch(client, number, seller_headers, assignee=seller.id), 403, "forbidden")
    assert await numbers(client, seller_headers) == []

    ticket = await get_ticket(client, number, manager_headers)
    assert ticket["group"] == "Support"
    assert await numbers(client, manager_headers) == [number]
    assert await numbers(client, support_headers) == [number]
    # The seller's attempts left nothing behind.
    assert len(ticket["messages"]) == 1
    assert ticket["status"] == "open" and ticket["assignee_id"] == support.id

    # The card of a client whose tickets the seller may not open is not theirs to read (ids are sequential:
    # it is answered as any id that is not a card), nor to add an address to.
    card = f"/api/v1/customers/{ticket['customer_id']}"
    await assert_error(await client.get(card, headers=seller_headers), 404, "not_found")
    await assert_error(await client.post(f"{card}/identities", json={"kind": "email", "address": "me@sales.example"},
                                         headers=seller_headers), 404, "not_found")
    card_for_support = await (await client.get(card, headers=support_headers)).json()
    card_for_manager = await (await client.get(card, headers=manager_headers)).json()
    assert card_for_support["identities"] == card_for_manager["identities"]
    assert [t["number"] for t in card_for_manager["tickets"]] == [number]


# --- listing -------------------------------------------------------------------------------------


async def test_list_filters_and_pagination(client: TestClient[Any, Any], add_agent: Any, runtime: Runtime) -> None:
    await runtime.service.add_group("Sales")
    alice, alice_headers = await add_agent("Alice", capacity=3)
    seller, _ = await add_agent("Sally", groups=["Sales"])
    manager, manager_headers = await add_agent("Max", role=Role.manager, presence=Presence.offline)
    support = [await submit(client, f"ticket {i}", email=f"c{i}@example.com") for i in range(7)]
    sales = await runtime.service.ingest(
        Inbound(channel="webform", identities=(Identity("email", "buyer@example.com"),), body_text="quote?",
                group="Sales")
    )
    every = sorted([*support, sales.ticket.id], reverse=True)
    assert sales.ticket.assignee_id == seller.id

    assert await numbers(client, manager_headers) == every
    assert await numbers(client, alice_headers) == sorted(support, reverse=True), "Alice sees her group only"

    held = sorted(support[:3], reverse=True)
    queued = sorted(support[3:], reverse=True)
    assert await numbers(client, alice_headers, assignee="me") == held
    assert await numbers(client, manager_headers, assignee="none") == queued
    assert await numbers(client, manager_headers, assignee=str(alice.id)) == held
    assert await numbers(client, manager_headers, assignee="me") == []
    assert await numbers(client, manager_headers, status="new") == queued
    assert await numbers(client, manager_headers, status="open") == sorted([*held, sales.ticket.id], reverse=True)
    assert await numbers(client, manager_headers, group="Sales") == [sales.ticket.id]
    assert await numbers(client, manager_headers, group="Support") == sorted(support, reverse=True)
    assert await numbers(client, manager_headers, group="Nobody") == []

    # Resolving frees a place: the oldest queued ticket moves to Alice.
    response = await patch(client, support[0], alice_headers, status="resolved")
    assert response.status == 200
    assert await numbers(client, manager_headers, status="resolved") == [support[0]]
    assert await numbers(client, manager_headers, status="new,resolved") == sorted(
        [support[0], *support[4:]], reverse=True
    )
    assert await numbers(client, manager_headers, status=" open , pending ", group="Support") == sorted(
        [support[1], support[2], support[3]], reverse=True
    )
    assert await numbers(client, alice_headers, assignee="me", status="open") == sorted(support[1:4], reverse=True)

    # Walking pages: every ticket once, newest first, and the last page says so.
    for limit in (1, 3, 8, 50):
        seen: list[int] = []
        cursor: int | None = None
        pages = 0
        while True:
            params = {"limit": str(limit)} | ({"cursor": str(cursor)} if cursor is not None else {})
            response = await client.get("/api/v1/tickets", params=params, headers=manager_headers)
            assert response.status == 200
            page = await response.json()
            assert 0 < len(page["items"]) <= limit
            seen += [t["number"] for t in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
            assert cursor == seen[-1]
        assert seen == every, limit
        assert pages == -(-len(every) // limit)
    # Filters and pages together.
    first = await (await client.get("/api/v1/tickets", params={"status": "new", "limit": "2"},
                                    headers=manager_headers)).json()
    rest = await (await client.get("/api/v1/tickets",
                                   params={"status": "new", "limit": "2", "cursor": str(first["next_cursor"])},
                                   headers=manager_headers)).json()
    assert [t["number"] for t in first["items"] + rest["items"]] == sorted(support[4:], reverse=True)
    assert rest["next_cursor"] is None

    summary = (await (await client.get("/api/v1/tickets", params={"limit": "1"},
                                       headers=manager_headers)).json())["items"][0]
    assert set(summary) >= {"number", "subject", "status", "priority", "category", "channel", "customer_id", "group_id",
                            "assignee_id", "created_at", "updated_at", "first_response_at", "resolved_at", "closed_at"}
    assert "messages" not in summary

    for params, field in [
        ({"limit": "0"}, "limit"), ({"limit": "201"}, "limit"), ({"limit": "ten"}, "limit"),
        ({"cursor": "x"}, "cursor"), ({"status": "bogus"}, "status"), ({"status": "open,bogus"}, "status"),
        ({"assignee": "someone"}, "assignee"),
    ]:
        response = await client.get("/api/v1/tickets", params=params, headers=manager_headers)
        error = await assert_error(response, 422, "invalid")
        assert set(error["fields"]) == {field}, params


# --- one ticket ------------------------------------------------------------------------------------


async def test_ticket_detail_with_messages_and_events(client: TestClient[Any, Any], add_agent: Any) -> None:
    agent, headers = await add_agent("Alice")
    number = await submit(client, "Where is my parcel?", subject="Parcel", name="Zoe", category="request")
    ticket = await get_ticket(client, number, headers)
    assert ticket["number"] == number
    assert ticket["subject"] == "Parcel"
    assert ticket["status"] == "open"
    assert ticket["priority"] == "normal"
    assert ticket["category"] == "request"
    assert ticket["group"] == "Support"
    assert ticket["assignee"] == {"id": agent.id, "name": "Alice", "email": agent.email}
    assert ticket["customer"]["name"] == "Zoe"
    assert ticket["customer"]["identities"] == [{"kind": "email", "address": "client@example.com"}]
    assert ticket["first_response_at"] is None and ticket["resolved_at"] is None
    [message] = ticket["messages"]
    assert message["direction"] == "in"
    assert message["body_text"] == "Where is my parcel?"
    assert message["customer_id"] == ticket["customer_id"]
    assert message["delivery_status"] is None
    created, assigned = ticket["events"]
    assert created["kind"] == "created" and created["actor"] == "customer"
    assert created["reason"] == "new webform message"
    assert assigned["kind"] == "assigned" and assigned["actor"] == "router"
    assert "least-loaded" in assigned["reason"]
    assert assigned["data"]["agent_id"] == agent.id

    await assert_error(await client.get("/api/v1/tickets/999999", headers=headers), 404, "not_found")
    await assert_error(await client.get("/api/v1/tickets/abc", headers=headers), 404, "not_found")
    await assert_error(await client.patch("/api/v1/tickets/abc", json={}, headers=headers), 404, "not_found")
    await assert_error(await client.get("/api/v1/customers/abc", headers=headers), 404, "not_found")
    await assert_error(await client.get("/api/v1/nowhere", headers=headers), 404, "not_found")
    response = await client.delete(f"/api/v1/tickets/{number}", headers=headers)
    await assert_error(response, 405, "method_not_allowed")
    assert "PATCH" in response.headers["Allow"]


async def test_reply_and_internal_note(client: TestClient[Any, Any], add_agent: Any) -> None:
    agent, headers = await add_agent()
    number = await submit(client)

    response = await client.post(f"/api/v1/tickets/{number}/messages", json={"body": "We are on it."}, headers=headers)
    assert response.status == 201, await response.text()
    reply = await response.json()
    assert reply["direction"] == "out"
    assert reply["delivery_status"] == "queued"
    assert reply["channel"] == "webform"
    assert reply["author_id"] == agent.id
    assert reply["body_text"] == "We are on it."
    ticket = await get_ticket(client, number, headers)
    assert ticket["first_response_at"] is not None
    assert [m["id"] for m in ticket["messages"]][-1] == reply["id"]
    replied = [e for e in ticket["events"] if e["kind"] == "replied"]
    assert len(replied) == 1
    assert replied[0]["data"]["message_id"] == reply["id"] and replied[0]["actor"] == f"agent:{agent.id}"
    first_response = ticket["first_response_at"]

    response = await client.post(f"/api/v1/tickets/{number}/messages", json={"body": "VIP client", "internal": True},
                                 headers=headers)
    assert response.status == 201
    note = await response.json()
    assert note["direction"] == "internal"
    assert note["delivery_status"] is None
    ticket = await get_ticket(client, number, headers)
    assert ticket["first_response_at"] == first_response
    assert [m["direction"] for m in ticket["messages"]] == ["in", "out", "internal"]
    assert kinds(ticket)[-1] == "note_added"

    # A note alone is not a first response.
    other = await submit(client, "second", email="other@example.com")
    await client.post(f"/api/v1/tickets/{other}/messages", json={"body": "checking", "internal": True}, headers=headers)
    assert (await get_ticket(client, other, headers))["first_response_at"] is None

    for payload, field in [({"body": ""}, "body"), ({"body": "   \n"}, "body"), ({}, "body"),
                           ({"body": "x", "internal": "maybe"}, "internal"), ({"body": "x", "cc": "boss"}, "cc")]:
        response = await client.post(f"/api/v1/tickets/{number}/messages", json=payload, headers=headers)
        error = await assert_error(response, 422, "invalid")
        assert field in error["fields"], payload
    response = await client.post(f"/api/v1/tickets/{number}/messages", data="{oops",
                                 headers={**headers, "Content-Type": "application/json"})
    assert set((await assert_error(response, 422, "invalid"))["fields"]) == {"body"}
    await assert_error(await client.post("/api/v1/tickets/999999/messages", json={"body": "x"}, headers=headers),
                       404, "not_found")
    assert len((await get_ticket(client, number, headers))["messages"]) == 3


# --- changing a ticket -----------------------------------------------------------------------------


async def test_status_priority_and_category_changes(client: TestClient[Any, Any], add_agent: Any) -> None:
    agent, headers = await add_agent()
    first, second = await submit(client, "one"), await submit(client, "two", email="two@example.com")
    assert (await agents_by_id(client, headers))[agent.id]["load"] == 2

    response = await patch(client, first, headers, status="resolved")
    assert response.status == 200, await response.text()
    ticket = await response.json()
    assert ticket["status"] == "resolved" and ticket["resolved_at"] is not None
    assert (await get_ticket(client, first, headers))["status"] == "resolved"
    assert (await agents_by_id(client, headers))[agent.id]["load"] == 1
    changed = [e for e in ticket["events"] if e["kind"] == "status_changed"][-1]
    assert changed["data"] == {"old": "open", "new": "resolved"}

    response = await patch(client, first, headers, status="open")
    assert response.status == 200
    assert (await response.json())["resolved_at"] is None
    assert (await agents_by_id(client, headers))[agent.id]["load"] == 2
    pending = await (await patch(client, second, headers, status="pending")).json()
    assert pending["status"] == "pending"
    assert (await agents_by_id(client, headers))[agent.id]["load"] == 2, "pending tickets still count"
    closed = await (await patch(client, second, headers, status="closed")).json()
    assert closed["status"] == "closed" and closed["closed_at"] and closed["resolved_at"]

    response = await patch(client, first, headers, priority="high", category="billing")
    assert response.status == 200
    ticket = await get_ticket(client, first, headers)
    assert ticket["priority"] == "high" and ticket["category"] == "billing"
    by_kind = {e["kind"]: e for e in ticket["events"]}
    assert by_kind["priority_changed"]["data"] == {"old": "normal", "new": "high"}
    assert by_kind["category_changed"]["data"] == {"old": "question", "new": "billing"}
    assert by_kind["priority_changed"]["actor"] == f"agent:{agent.id}"
    events_before = len(ticket["events"])
    # Setting what is already there records nothing.
    assert (await patch(client, first, headers, priority="high", status="open")).status == 200
    assert len((await get_ticket(client, first, headers))["events"]) == events_before

    for changes, field in [({"colour": "red"}, "colour"), ({"status": "new"}, "status"), ({"status": "done"}, "status"),
                           ({"status": None}, "status"), ({"priority": "urgent"}, "priority"),
                           ({"priority": None}, "priority"), ({"assignee": "bob"}, "assignee")]:
        error = await assert_error(await patch(client, first, headers, **changes), 422, "invalid")
        assert field in error["fields"], changes
    response = await client.patch(f"/api/v1/tickets/{first}", data="[]",
                                  headers={**headers, "Content-Type": "application/json"})
    await assert_error(response, 422, "invalid")
    after = await get_ticket(client, first, headers)
    assert (after["status"], after["priority"], len(after["events"])) == ("open", "high", events_before)


async def test_returning_a_ticket_to_the_queue(client: TestClient[Any, Any], add_agent: Any) -> None:
    alice, alice_headers = await add_agent("Alice")
    number = await submit(client)
    bob, bob_headers = await add_agent("Bob")
    assert (await get_ticket(client, number, alice_headers))["assignee_id"] == alice.id

    # Another agent may not give it back for Alice.
    await assert_error(await patch(client, number, bob_headers, assignee=None), 403, "forbidden")
    # Alice returns it: it is re-routed to the other available agent.
    response = await patch(client, number, alice_headers, assignee=None)
    assert response.status == 200, await response.text()
    ticket = await get_ticket(client, number, alice_headers)
    assert ticket["assignee_id"] == bob.id and ticket["status"] == "open"
    assert kinds(ticket)[-2:] == ["unassigned", "assigned"]
    loads = await agents_by_id(client, alice_headers)
    assert (loads[alice.id]["load"], loads[bob.id]["load"]) == (0, 1)

    # Bob, now alone (Alice is away), returns it: it waits in the queue as new.
    assert (await client.patch("/api/v1/agents/me", json={"presence": "away"}, headers=alice_headers)).status == 200
    response = await patch(client, number, bob_headers, assignee=None)
    assert response.status == 200
    ticket = await response.json()
    assert ticket["status"] == "new" and ticket["assignee_id"] is None
    assert (await get_ticket(client, number, bob_headers))["status"] == "new"


async def test_assigning_to_someone_else_needs_a_manager(client: TestClient[Any, Any], add_agent: Any) -> None:
    alice, alice_headers = await add_agent("Alice")
    number = await submit(client)
    bob, bob_headers = await add_agent("Bob")
    manager, manager_headers = await add_agent("Max", role=Role.manager, presence=Presence.away)

    await assert_error(await patch(client, number, alice_headers, assignee=bob.id), 403, "forbidden")
    assert (await get_ticket(client, number, alice_headers))["assignee_id"] == alice.id

    response = await patch(client, number, manager_headers, assignee=bob.id)
    assert response.status == 200, await response.text()
    ticket = await get_ticket(client, number, bob_headers)
    assert ticket["assignee_id"] == bob.id and ticket["status"] == "open"
    transferred = ticket["events"][-1]
    assert transferred["kind"] == "transferred"
    assert transferred["actor"] == f"agent:{manager.id}"
    assert transferred["data"] == {"agent_id": bob.id, "previous_agent_id": alice.id}
    loads = await agents_by_id(client, manager_headers)
    assert (loads[alice.id]["load"], loads[bob.id]["load"]) == (0, 1)

    # An agent may not take a colleague's ticket (only managers transfer); returned to the queue, the router hands
    # it to the other available agent at once, and holding it, taking it is a no-op.
    await assert_error(await patch(client, number, alice_headers, assignee=alice.id), 403, "forbidden")
    assert (await patch(client, number, bob_headers, assignee=None)).status == 200
    response = await patch(client, number, alice_headers, assignee=alice.id)
    assert response.status == 200
    ticket = await response.json()
    assert ticket["assignee_id"] == alice.id and ticket["events"][-1]["kind"] == "assigned"

    error = await assert_error(await patch(client, number, manager_headers, assignee=999_999), 422, "invalid")
    assert "assignee" in error["fields"]
    assert (await get_ticket(client, number, manager_headers))["assignee_id"] == alice.id


# --- agents --------------------------------------------------------------------------------------


async def test_agents_with_load_and_presence(client: TestClient[Any, Any], add_agent: Any, runtime: Runtime) -> None:
    await runtime.service.add_group("Sales")
    alice, alice_headers = await add_agent("Alice", capacity=4, groups=["Support", "Sales"])
    bob, bob_headers = await add_agent("Bob", capacity=2, presence=Presence.away, role=Role.manager)
    await submit(client, "a")
    await submit(client, "b", email="b@example.com")

    listed = await agents_by_id(client, bob_headers)
    assert set(listed) == {alice.id, bob.id}
    assert listed[alice.id] | {"last_assigned_at": None} == {
        "id": alice.id, "name": "Alice", "email": alice.email, "role": "agent", "presence": "available",
        "capacity": 4, "open_tickets": 2, "load": 2, "groups": ["Sales", "Support"], "skills": [],
        "last_assigned_at": None, "last_seen_at": None, "remind_by": "auto",
    }
    assert listed[alice.id]["last_assigned_at"] is not None
    assert (listed[bob.id]["presence"], listed[bob.id]["load"], listed[bob.id]["role"]) == ("away", 0, "manager")

    response = await client.patch("/api/v1/agents/me", json={"presence": "offline"}, headers=alice_headers)
    assert response.status == 200
    me = await response.json()
    # Going offline hands back what the router gave her and she never touched; with Bob away, it waits.
    assert (me["id"], me["presence"], me["load"], me["groups"]) == (alice.id, "offline", 0, ["Sales", "Support"])
    assert me["last_seen_at"] is not None
    queue = await client.get("/api/v1/tickets?assignee=none&status=new", headers=bob_headers)
    assert len((await queue.json())["items"]) == 2
    assert (await agents_by_id(client, bob_headers))[alice.id]["presence"] == "offline"

    for payload, field in [
        ({"presence": "busy"}, "presence"), ({}, "body"), ({"presence": "away", "capacity": 99}, "capacity"),
    ]:
        error = await assert_error(await client.patch("/api/v1/agents/me", json=payload, headers=alice_headers),
                                   422, "invalid")
        assert field in error["fields"], payload
    listed = await agents_by_id(client, bob_headers)
    assert (listed[alice.id]["presence"], listed[alice.id]["capacity"]) == ("offline", 4)


# --- OpenAPI and health ----------------------------------------------------------------------------


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


async def test_openapi_document_matches_the_routes(client: TestClient[Any, Any]) -> None:
    response = await client.get("/api/v1/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    doc = await response.json()

    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    methods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
    operation_ids: list[str] = []
    for path, item in doc["paths"].items():
        assert path.startswith("/")
        templated = set(re.findall(r"{(\w+)}", path))
        for method, operation in item.items():
            assert method in methods, (path, method)
            operation_ids.append(operation["operationId"])
            assert operation["summary"] and operation["tags"]
            assert operation["responses"], (path, method)
            for status, answer in operation["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d", status) and answer["description"]
            params = operation.get("parameters", [])
            path_params = {p["name"] for p in params if p["in"] == "path"}
            assert path_params == templated, (path, method)
            for param in params:
                assert param["in"] in ("query", "path", "header", "cookie")
                assert "schema" in param
                if param["in"] == "path":
                    assert param["required"] is True
            if "requestBody" in operation:
                assert operation["requestBody"]["content"]
            if path.startswith("/api/v1/") and path not in ("/api/v1/webform", "/api/v1/notifier/sms/status",
                                                            "/api/v1/cti/{token}"):  # its token is in the path
                assert operation.get("security") == [{"bearer": []}], (path, method)
    assert len(operation_ids) == len(set(operation_ids)), "operationIds are unique"

    schemas = doc["components"]["schemas"]
    refs = _refs(doc)
    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schemas, ref

    # Every route the running app serves under /api/v1 is documented, and the document names no other.
    served = {
        (route.resource.canonical, route.method.lower())
        for route in client.app.router.routes()
        if route.resource is not None and route.method not in ("HEAD", "OPTIONS", "*")
    }
    served_api = {(p, m) for p, m in served if p.startswith("/api/v1/") and p != "/api/v1/openapi.json"}
    documented = {(p, m) for p, item in doc["paths"].items() for m in item}
    assert served_api == {(p, m) for p, m in documented if p.startswith("/api/v1/")}
    assert documented <= served, documented - served
    assert ("/healthz", "get") in documented

    # The documented shapes are the ones served: the detail schema lists the fields a real answer has.
    detail = schemas["TicketDetail"]
    op = doc["paths"]["/api/v1/tickets/{number}"]["get"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TicketDetail"
    }
    assert {"number", "messages", "events", "assignee", "customer"} <= set(detail["properties"])
    assert doc["paths"]["/api/v1/webform"]["post"]["responses"]["201"]


async def test_healthz(client: TestClient[Any, Any]) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_database_down_answers_503_never_500(redis_url: str, tmp_path: Path) -> None:
    """Built here, not from the per-backend fixtures: one run per way the database can be unreachable."""
    unreachable = {
        "postgresql": f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/x",
        "sqlite": f"sqlite+aiosqlite:///{tmp_path / 'no-such-dir' / 'switchboard.db'}",
    }
    for backend, url in unreachable.items():
        settings = Settings(
            data_dir=tmp_path / backend,
            database=DatabaseSettings(url=url),
            redis=RedisSettings(url=redis_url),
            http=HttpSettings(port=_closed_port(), form_rate_limit=5),
            phone_region="GB",
        )
        rt = await build(settings)
        try:
            async with TestClient(TestServer(create_app(rt), host="127.0.0.1")) as client:
                response = await client.post(WEBFORM, json={"email": "a@example.com", "message": "hello?"},
                                             headers={"Idempotency-Key": "down-1"})
                error = await assert_error(response, 503, "unavailable")
                assert response.headers["Retry-After"].isdigit(), backend
                assert "unavailable" in error["message"]

                page = await client.post("/contact", data={"form_token": "t" * 32, "email": "a@example.com",
                                                           "message": "keep my words"})
                assert page.status == 503, backend
                assert page.content_type == "text/html"
                assert page.headers["Retry-After"].isdigit()
                assert "keep my words" in await page.text()

                response = await client.get("/api/v1/tickets", headers={"Authorization": "Bearer whatever"})
                await assert_error(response, 503, "unavailable")
                assert response.headers["Retry-After"].isdigit()

                response = await client.get("/metrics")  # a direct read of the store, not a command
                assert response.status == 503, backend
                assert response.headers["Retry-After"].isdigit()

                response = await client.get("/healthz")
                assert response.status == 503
                health = await response.json()
                assert health["status"] == "degraded" and health["redis"] == "ok"
                assert health["database"].startswith("error: "), health
        finally:
            await rt.close()


async def test_numbers_no_key_can_hold_and_unreadable_forms_are_refused_not_500(
    client: TestClient[Any, Any], add_agent: Any
) -> None:
    """What schemathesis found: ids past 64 bits reached the database, which refused the whole query (500)."""
    _, headers = await add_agent(role=Role.admin)
    number = await submit(client)
    huge = str(2**64)
    for method, path in (("GET", f"/api/v1/tickets/{huge}"), ("GET", f"/api/v1/customers/{huge}"),
                         ("DELETE", f"/api/v1/routing/rules/{huge}"), ("GET", "/api/v1/tickets/²")):
        await assert_error(await client.request(method, path, headers=headers), 404, "not_found")
    await assert_error(await client.get("/api/v1/notifications", params={"ticket": huge}, headers=headers),
                       422, "invalid")
    merged = await client.post(f"/api/v1/tickets/{number}/merge", json={"into": -2**70}, headers=headers)
    assert "into" in (await assert_error(merged, 422, "invalid"))["fields"]
    assert (await client.get("/api/v1/tickets", params={"q": f"#{huge}"}, headers=headers)).status == 200
    unreadable = await client.post("/api/v1/notifier/sms/status", data=b"x",
                                   headers={"Content-Type": "multipart/form-data"})
    assert unreadable.status == 400


async def test_metrics_count_the_store_and_this_process_requests_by_route(
    client: TestClient[Any, Any], add_agent: Any
) -> None:
    _, headers = await add_agent()
    number = await submit(client)
    await client.get(f"/api/v1/tickets/{number}", headers=headers)
    answer = await client.get("/metrics")
    assert answer.status == 200 and answer.content_type == "text/plain"
    text = await answer.text()
    assert 'switchboard_tickets{status="open"} 1.0' in text
    assert 'switchboard_agents{presence="available"} 1.0' in text
    assert 'switchboard_deadlines_pending{state="due_later"}' in text
    assert 'switchboard_notifications{channel="email",status="queued"}' in text  # the acknowledgement
    assert 'route="/api/v1/tickets/{number}",status="200"' in text  # the pattern, never the number
    assert f"/api/v1/tickets/{number}\"" not in text
    assert "process_resident_memory_bytes" in text
