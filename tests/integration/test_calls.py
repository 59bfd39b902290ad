"""The phone channel through `POST /api/v1/calls` on a real server and database: what each kind of call becomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from switchboard.bootstrap import Runtime
from tests.integration.test_api import assert_error, get_ticket, numbers, submit
from tickets.clock import ManualClock
from tickets.inbound import Identity, Inbound
from tickets.models import Role

CALLS = "/api/v1/calls"
MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
CLIENT = "+442079460958"


@pytest.fixture
def clock() -> ManualClock:
    # Monday 10:05 UTC; the default calendar works 09:00–18:00 UTC on weekdays.
    return ManualClock(MONDAY + timedelta(minutes=5))


def at(minutes: float) -> str:
    return (MONDAY + timedelta(minutes=minutes)).isoformat()


async def log(client: TestClient[Any, Any], headers: dict[str, str], status: int = 201,
              **fields: Any) -> dict[str, Any]:
    response = await client.post(CALLS, json=fields, headers=headers)
    assert response.status == status, await response.text()
    return await response.json()


def missed(call_id: str, caller: str = CLIENT, minutes: float = 0, **extra: Any) -> dict[str, Any]:
    return {"call_id": call_id, "caller": caller, "called": "+442079460000", "direction": "in",
            "disposition": "missed", "started_at": at(minutes), "ended_at": at(minutes + 0.5), **extra}


async def test_a_missed_call_opens_a_routed_callback_ticket_due_in_two_business_hours(
    client: TestClient[Any, Any], add_agent: Any
) -> None:
    agent, headers = await add_agent("Anna")
    body = await log(client, headers, **missed("pbx-1", caller="020 7946 0958", caller_name="Jane Smith"))

    assert body["duplicate"] is False and body["ticket_created"] is True
    assert body["call"]["caller"] == CLIENT  # national format, region GB
    assert (body["call"]["direction"], body["call"]["disposition"], body["call"]["duration"]) == ("in", "missed", 30)
    number = body["ticket"]["number"]
    ticket = await get_ticket(client, number, headers)
    assert (ticket["channel"], ticket["category"], ticket["status"]) == ("phone", "callback", "open")
    assert ticket["assignee_id"] == agent.id
    assert "Jane Smith" in ticket["subject"] and CLIENT in ticket["subject"]
    assert [(d["regulation"], d["status"], d["came_due_unmet"]) for d in ticket["deadlines"]] == [
        ("callback", "pending", False)]
    assert ticket["deadlines"][0]["due_at"].startswith("2026-03-02T12:00:30")  # ended 10:00:30 + 2 business hours
    assert [c["call_id"] for c in ticket["calls"]] == ["pbx-1"]
    assert ticket["messages"][0]["channel"] == "phone" and "missed" in ticket["messages"][0]["body_text"]
    assert ticket["customer"]["name"] == "Jane Smith"
    assert {"kind": "phone", "address": CLIENT} in ticket["customer"]["identities"]


async def test_a_missed_call_late_on_friday_is_due_on_monday_morning(
    client: TestClient[Any, Any], add_agent: Any, clock: ManualClock
) -> None:
    _, headers = await add_agent()
    friday_17 = MONDAY - timedelta(days=3) + timedelta(hours=7)
    body = await log(client, headers, call_id="fri", caller=CLIENT, direction="in", disposition="busy",
                     started_at=friday_17.isoformat())
    ticket = await get_ticket(client, body["ticket"]["number"], headers)
    assert ticket["deadlines"][0]["due_at"].startswith("2026-03-02T10:00:00")  # 1 h on Friday, 1 h on Monday


async def test_a_second_missed_call_joins_the_open_callback_and_a_call_back_meets_it(
    client: TestClient[Any, Any], add_agent: Any, clock: ManualClock
) -> None:
    agent, headers = await add_agent("Anna", extension="201")
    first = await log(client, headers, **missed("m-1"))
    again = await log(client, headers, **missed("m-2", minutes=3))
    number = first["ticket"]["number"]
    assert again["ticket"]["number"] == number and again["ticket_created"] is False

    clock.advance(timedelta(minutes=30))
    back = await log(client, headers, call_id="out-1", caller="201", called=CLIENT, direction="out",
                     disposition="answered", started_at=at(30), answered_at=at(30.2), ended_at=at(35),
                     notes="Called back: the router was unplugged.")
    assert back["ticket"]["number"] == number
    assert back["call"]["agent_id"] == agent.id  # named by the token, the extension matches too
    ticket = await get_ticket(client, number, headers)
    assert ticket["first_response_at"].startswith("2026-03-02T10:30:12")
    assert [(d["status"], d["came_due_unmet"]) for d in ticket["deadlines"]] == [("met", False)]
    assert [c["call_id"] for c in ticket["calls"]] == ["m-1", "m-2", "out-1"]
    outbound = ticket["messages"][-1]
    assert (outbound["direction"], outbound["author_id"], outbound["body_text"]) == (
        "out", agent.id, "Called back: the router was unplugged.")
    assert "call_response" in [e["kind"] for e in ticket["events"]]

    # Missed again after the call back: the promise to call back starts over.
    clock.advance(timedelta(minutes=30))
    await log(client, headers, **missed("m-3", minutes=60))
    ticket = await get_ticket(client, number, headers)
    assert [(d["status"], d["due_at"][:19]) for d in ticket["deadlines"]] == [("pending", "2026-03-02T13:00:30")]


async def test_an_unanswered_callback_shows_in_the_overdue_queue_until_someone_calls(
    client: TestClient[Any, Any], add_agent: Any, clock: ManualClock
) -> None:
    _, headers = await add_agent()
    number = (await log(client, headers, **missed("late-1")))["ticket"]["number"]
    webform = await submit(client)
    assert await numbers(client, headers, overdue="true") == []

    clock.advance(timedelta(hours=3))
    assert await numbers(client, headers, overdue="true") == [number]
    assert set(await numbers(client, headers)) == {number, webform}
    ticket = await get_ticket(client, number, headers)
    assert ticket["deadlines"][0]["came_due_unmet"] is True

    await client.post(f"/api/v1/tickets/{number}/messages", json={"body": "Sorry we missed you"}, headers=headers)
    assert await numbers(client, headers, overdue="true") == []
    ticket = await get_ticket(client, number, headers)
    assert [(d["status"], d["came_due_unmet"]) for d in ticket["deadlines"]] == [("met", True)]
    await assert_error(await client.get("/api/v1/tickets", params={"overdue": "maybe"}, headers=headers),
                       422, "invalid")


async def test_an_answered_call_with_notes_joins_the_clients_open_ticket_on_any_channel(
    client: TestClient[Any, Any], add_agent: Any
) -> None:
    agent, headers = await add_agent("Anna", extension="201")
    email_ticket = await submit(client, email="jane@example.com", phone=CLIENT)
    body = await log(client, headers, call_id="ans-1", caller=CLIENT, direction="in", disposition="answered",
                     started_at=at(0), answered_at=at(0.1), ended_at=at(4), agent="201",
                     notes="Asked about the invoice again.")
    assert body["ticket"]["number"] == email_ticket and body["ticket_created"] is False
    assert (body["call"]["talk_time"], body["call"]["duration"]) == (234, 240)
    ticket = await get_ticket(client, email_ticket, headers)
    call_message = ticket["messages"][-1]
    assert (call_message["channel"], call_message["direction"]) == ("phone", "in")
    assert call_message["body_text"] == "Asked about the invoice again."
    assert ticket["first_response_at"] is not None  # Anna talked to the client


async def test_an_answered_call_with_notes_and_no_open_ticket_goes_to_the_agent_who_took_it(
    client: TestClient[Any, Any], add_agent: Any
) -> None:
    await add_agent("Busy Bob")  # least loaded too, but he did not take the call
    anna, _ = await add_agent("Anna", extension="202")
    _, pbx = await add_agent("PBX", role=Role.admin)
    body = await log(client, pbx, call_id="n-1", caller=CLIENT, direction="in", disposition="answered",
                     started_at=at(0), answered_at=at(0.1), ended_at=at(2), agent="202",
                     notes="Wants a quote for 20 seats\nCall Tuesday")
    assert body["ticket_created"] is True
    ticket = await get_ticket(client, body["ticket"]["number"], pbx)
    assert ticket["assignee_id"] == anna.id and ticket["subject"] == "Wants a quote for 20 seats"
    assert body["call"]["agent_id"] == anna.id
    # The receipt writes the history in order; the dispatcher gives the ticket to Anna without asking the router.
    history = [(e["kind"], e["actor"], e["data"]) for e in ticket["events"] if e["kind"] not in ("clock", "started")]
    assert history[:3] == [
        ("created", "customer", {"channel": "phone"}),
        ("call_response", f"agent:{anna.id}", {"call_id": "n-1", "deadlines_met": 0}),
        ("assigned", "phone", {"agent_id": anna.id}),
    ], history
    assert ticket["first_response_at"].startswith("2026-03-02T10:00:06")
    (message,) = ticket["messages"]
    assert (message["direction"], message["channel"], message["body_text"]) == (
        "in", "phone", "Wants a quote for 20 seats\nCall Tuesday")

    # Without notes and with nothing open, a call only goes on the card.
    await log(client, pbx, call_id="n-2", caller="+442079460999", direction="in", disposition="answered",
              started_at=at(5), ended_at=at(6))
    plain = await log(client, pbx, 200, call_id="n-2", caller="+442079460999", direction="in",
                      disposition="answered", started_at=at(5), ended_at=at(6))
    assert plain["ticket"] is None and plain["duplicate"] is True


async def test_a_call_is_logged_once_however_often_it_is_posted(
    client: TestClient[Any, Any], add_agent: Any, runtime: Runtime
) -> None:
    _, headers = await add_agent()
    first = await log(client, headers, **missed("dup-1"))
    for _ in range(3):
        again = await log(client, headers, 200, **missed("dup-1"))
        assert again["duplicate"] is True and again["ticket"]["number"] == first["ticket"]["number"]
        assert again["call"]["id"] == first["call"]["id"]
    ticket = await get_ticket(client, first["ticket"]["number"], headers)
    assert len(ticket["calls"]) == 1 and len(ticket["messages"]) == 1


async def test_a_withheld_number_is_kept_but_opens_nothing(client: TestClient[Any, Any], add_agent: Any) -> None:
    _, headers = await add_agent()
    body = await log(client, headers, call_id="anon-1", caller="anonymous", direction="in", disposition="missed",
                     started_at=at(0))
    assert body["ticket"] is None and body["call"]["caller"] is None and body["call"]["customer_id"] is None
    assert await numbers(client, headers) == []


async def test_the_customer_card_shows_calls_and_tickets_from_every_channel(
    client: TestClient[Any, Any], add_agent: Any
) -> None:
    _, headers = await add_agent()
    called = await log(client, headers, **missed("card-1"))
    emailed = await submit(client, email="jane@example.com", phone="020 7946 0958", message="Following up my call")
    customer_id = called["call"]["customer_id"]
    card = await client.get(f"/api/v1/customers/{customer_id}", headers=headers)
    assert card.status == 200
    body = await card.json()
    assert {t["number"] for t in body["tickets"]} == {called["ticket"]["number"], emailed}
    assert {(i["kind"], i["address"]) for i in body["identities"]} == {("phone", CLIENT), ("email", "jane@example.com")}
    assert [(c["call_id"], c["direction"], c["disposition"], c["duration"]) for c in body["calls"]] == [
        ("card-1", "in", "missed", 30)]


async def test_invalid_entries_get_an_error_for_each_field_and_store_nothing(
    client: TestClient[Any, Any], add_agent: Any
) -> None:
    _, headers = await add_agent()
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({"caller": CLIENT, "direction": "sideways", "disposition": "missed", "started_at": at(0)},
         {"call_id", "direction"}),
        ({"call_id": "x", "caller": "12", "direction": "in", "disposition": "missed", "started_at": at(0)},
         {"caller"}),
        ({"call_id": "x", "caller": "not a number", "direction": "in", "disposition": "missed",
          "started_at": at(0), "ended_at": at(-1)}, {"caller", "ended_at"}),
        ({"call_id": "x", "caller": "201", "direction": "out", "disposition": "answered", "started_at": at(0)},
         {"called"}),
        ({"call_id": "x", "caller": CLIENT, "direction": "in", "disposition": "answered",
          "started_at": "2026-03-02T10:00:00", "duration": -1}, {"started_at", "duration"}),
        ({"call_id": "x", "caller": CLIENT, "direction": "in", "disposition": "picked up", "started_at": at(0),
          "recording_url": "ftp://x", "colour": "red"}, {"disposition", "recording_url", "colour"}),
        ({"call_id": "x", "caller": CLIENT, "direction": "in", "disposition": "missed", "started_at": at(60)},
         {"started_at"}),
        ({"call_id": "x", "caller": CLIENT, "direction": "in", "disposition": "answered", "started_at": at(0),
          "ended_at": at(1), "talk_time": 600}, {"talk_time"}),
        ({"call_id": "x", "caller": CLIENT, "direction": "in", "disposition": "answered", "started_at": at(0),
          "agent": "nobody@example.com"}, {"agent"}),
        ({"call_id": "x", "caller": CLIENT, "direction": "in", "disposition": "answered", "started_at": at(0),
          "agent": 999999}, {"agent"}),
    ]
    for payload, fields in cases:
        error = await assert_error(await client.post(CALLS, json=payload, headers=headers), 422, "invalid")
        assert set(error["fields"]) == fields, (payload, error)
    await assert_error(await client.post(CALLS, data="{not json", headers=headers), 422, "invalid")
    await assert_error(await client.post(CALLS, json=missed("no-auth")), 401, "unauthorized")
    assert await numbers(client, headers) == []
    # The refused id is free: a corrected entry is logged.
    await log(client, headers, **missed("x"))


async def test_calls_are_in_the_openapi_document(client: TestClient[Any, Any]) -> None:
    document = await (await client.get("/api/v1/openapi.json")).json()
    operation = document["paths"]["/api/v1/calls"]["post"]
    assert "201" in operation["responses"] and "422" in operation["responses"]


async def test_an_email_the_client_gave_on_the_phone_joins_their_card_and_cards_merge(
    client: TestClient[Any, Any], add_agent: Any, runtime: Runtime
) -> None:
    _, headers = await add_agent()
    called = await log(client, headers, **missed("give-1"))
    customer_id = called["call"]["customer_id"]
    url = f"/api/v1/customers/{customer_id}/identities"

    response = await client.post(url, json={"kind": "email", "address": "Jane@Example.com"}, headers=headers)
    assert response.status == 200, await response.text()
    assert {"kind": "email", "address": "jane@example.com"} in (await response.json())["identities"]
    mailed = await runtime.service.ingest(Inbound(channel="email", identities=(Identity("email", "jane@example.com"),),
                                                  subject="About my call", body_text="Hello", external_id="<m1@x>"))
    assert mailed.ticket.customer_id == customer_id

    # The same client wrote earlier from another address, which is on a card of its own.
    other = await runtime.service.ingest(Inbound(channel="email",
                                                 identities=(Identity("email", "j.smith@work.example"),),
                                                 subject="Old question", body_text="Hi", external_id="<m0@x>"))
    conflict = await client.post(url, json={"kind": "email", "address": "j.smith@work.example"}, headers=headers)
    error = await assert_error(conflict, 409, "conflict")
    assert "merge" in error["message"]
    merged = await client.post(url, json={"kind": "email", "address": "j.smith@work.example", "merge": True},
                               headers=headers)
    body = await merged.json()
    assert {t["number"] for t in body["tickets"]} == {called["ticket"]["number"], mailed.ticket.id, other.ticket.id}
    assert [c["call_id"] for c in body["calls"]] == ["give-1"]
    await assert_error(await client.get(f"/api/v1/customers/{other.ticket.customer_id}", headers=headers), 404,
                       "not_found")
    moved = await get_ticket(client, other.ticket.id, headers)
    assert moved["customer"]["id"] == customer_id and "customer_merged" in [e["kind"] for e in moved["events"]]
    bad = await client.post(url, json={"kind": "phone", "address": "12"}, headers=headers)
    assert set((await assert_error(bad, 422, "invalid"))["fields"]) == {"address"}


async def test_a_pbx_account_names_the_agent_by_the_extension_on_the_call(
    client: TestClient[Any, Any], add_agent: Any
) -> None:
    anna, _ = await add_agent("Anna", extension="201")
    _, pbx = await add_agent("PBX", role=Role.admin)
    out = await log(client, pbx, call_id="pbx-out", caller="201", called=CLIENT, direction="out",
                    disposition="answered", started_at=at(0), answered_at=at(0.1), ended_at=at(1), notes="Quote sent")
    assert (out["call"]["agent_id"], out["call"]["extension"]) == (anna.id, "201")
    taken = await log(client, pbx, call_id="pbx-in", caller="+442079460999", called="201", direction="in",
                      disposition="answered", started_at=at(2), ended_at=at(3))
    assert taken["call"]["agent_id"] == anna.id
    unknown = await log(client, pbx, call_id="pbx-in-2", caller="+442079460999", called="299", direction="in",
                        disposition="answered", started_at=at(4), ended_at=at(5))
    assert (unknown["call"]["agent_id"], unknown["call"]["extension"]) == (None, "299")
