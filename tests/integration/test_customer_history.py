"""A client's whole typed history across channels — messages, calls and the contacts agents recorded — through
`GET /api/v1/customers/{id}/history` and the console's card page, filtered by type and paged back."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from switchboard.bootstrap import Runtime
from tests.integration.test_console import csrf_of
from tests.integration.test_plans import record, signed_in
from tickets.inbound import Identity, Inbound

Client = TestClient[Any, Any]


async def history(client: Client, headers: dict[str, str], customer: int, status: int = 200,
                  **params: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/customers/{customer}/history", params=params, headers=headers)
    assert response.status == status, await response.text()
    return await response.json()


async def a_week_with_carl(client: Client, runtime: Runtime, headers: dict[str, str], customer: int) -> None:
    """After his web form: an email, a missed call, and three contacts Alice recorded."""
    await runtime.service.ingest(Inbound(channel="email", identities=(Identity("email", "carl@example.com"),),
                                         subject="Quote, again", body_text="Any news on the quote?"))
    await client.post(f"/api/v1/customers/{customer}/identities", headers=headers,
                      json={"kind": "phone", "address": "+44 20 7946 0958"})
    logged = await client.post("/api/v1/calls", headers=headers, json={
        "call_id": "h-1", "caller": "+442079460958", "called": "201", "direction": "in", "disposition": "missed",
        "started_at": datetime.now(UTC).isoformat()})
    assert logged.status == 201, await logged.text()
    await record(client, headers, customer, type="call", outcome="called back", note="wants a discount")
    await record(client, headers, customer, type="meeting", outcome="met at the office")
    await record(client, headers, customer, type="demonstration", outcome="showed the plan")


async def test_the_history_lists_every_contact_newest_first_and_filters_by_type(
    client: Client, runtime: Runtime, add_agent: Any
) -> None:
    _, headers, customer, ticket = await signed_in(client, runtime, add_agent)
    await a_week_with_carl(client, runtime, headers, customer)

    everything = (await history(client, headers, customer))["items"]
    assert [(c["kind"], c["type"]) for c in everything] == [
        ("activity", "demonstration"), ("activity", "meeting"), ("activity", "call"), ("call", "call"),
        ("message", "email"), ("message", "webform")]
    assert [c["at"] for c in everything] == sorted((c["at"] for c in everything), reverse=True)
    assert everything[2]["text"] == "called back — wants a discount" and everything[3]["text"] == "missed"
    assert everything[-1] | {"at": None, "agent_id": None} == {
        "at": None, "kind": "message", "type": "webform", "channel": "webform", "direction": "in",
        "text": "Please send a quote", "ticket_id": ticket, "agent_id": None}

    calls = (await history(client, headers, customer, type="call"))["items"]
    assert [(c["kind"], c["text"]) for c in calls] == [("activity", "called back — wants a discount"),
                                                       ("call", "missed")]
    assert [c["type"] for c in (await history(client, headers, customer, type="meeting,email"))["items"]] == [
        "meeting", "email"]
    assert {c["kind"] for c in (await history(client, headers, customer, type="message"))["items"]} == {"message"}
    assert len((await history(client, headers, customer, type="activity"))["items"]) == 3

    refused = await history(client, headers, customer, 422, type="fax")
    assert "fax" in refused["error"]["fields"]["type"]
    await history(client, headers, 999_999, 404)


async def test_the_history_pages_back_without_losing_a_contact(
    client: Client, runtime: Runtime, add_agent: Any
) -> None:
    _, headers, customer, _ = await signed_in(client, runtime, add_agent)
    await a_week_with_carl(client, runtime, headers, customer)
    seen: list[str] = []
    page = await history(client, headers, customer, limit="4")
    while True:
        seen += [c["at"] for c in page["items"]]
        if page["next_before"] is None:
            break
        page = await history(client, headers, customer, limit="4", before=page["next_before"])
    assert len(seen) == 6 and seen == sorted(seen, reverse=True)


async def test_the_console_card_shows_the_history_by_type_and_records_the_next_contact(
    client: Client, runtime: Runtime, add_agent: Any
) -> None:
    _, headers, customer, ticket = await signed_in(client, runtime, add_agent)
    await a_week_with_carl(client, runtime, headers, customer)

    card = await (await client.get(f"/desk/customers/{customer}")).text()
    assert "Carl Client" in card and f"#{ticket} Quote" in card and "carl@example.com" in card
    assert len(re.findall(r'<li data-kind="', card)) == 6
    calls = await (await client.get(f"/desk/customers/{customer}?type=call")).text()
    assert re.findall(r'<li data-kind="(\w+)" data-type="(\w+)"', calls) == [("activity", "call"), ("call", "call")]
    assert 'aria-current="page" data-type="call"' in calls
    meetings = await (await client.get(f"/desk/customers/{customer}?type=meeting")).text()
    assert "met at the office" in meetings and "wants a discount" not in meetings

    month_ahead = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S")
    recorded = await client.post(f"/desk/customers/{customer}", allow_redirects=False, data={
        "csrf": csrf_of(card), "action": "activity", "type": "visit", "outcome": "signed the contract",
        "next_at": month_ahead, "tz": "0", "next_what": "Renewal talk"})
    assert recorded.status == 303, re.findall(r"class=\"error\"[^<]*<", await recorded.text())
    assert recorded.headers["Location"] == f"/desk/customers/{customer}?done=done_recorded"
    after = await (await client.get(recorded.headers["Location"])).text()
    assert "The contact is recorded." in after and "signed the contract" in after and "Renewal talk" in after
    refused = await client.post(f"/desk/customers/{customer}", data={
        "csrf": csrf_of(card), "action": "activity", "type": "fax"})
    assert refused.status == 422 and "fax" in await refused.text()
    assert (await client.get("/desk/customers/999999")).status == 404
