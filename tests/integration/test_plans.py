"""Recording contacts with a client (typed activities) and planning the next one: the plan reminds its agent at the
planned second through the regulation clock's timers (a real arq timer worker), in their console and by email,
once; recording the next contact keeps it; the sweeper reminds what a lost timer did not."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta, timezone
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from notifier.jobs import sweep_reminders
from switchboard.bootstrap import Runtime
from tests.integration.test_console import PASSWORD, csrf_of, sign_in
from tests.integration.test_regulations_worker import timer_workers, until
from tests.sse import next_event
from tickets.inbound import Identity, Inbound
from tickets.models import Agent, Outbox, PlannedContact, Role

Client = TestClient[Any, Any]


async def client_card(runtime: Runtime) -> tuple[int, int]:
    ticket = (await runtime.service.ingest(Inbound(
        channel="webform", identities=(Identity("email", "carl@example.com"),), subject="Quote",
        body_text="Please send a quote", customer_name="Carl Client"))).ticket
    return ticket.customer_id, ticket.id


async def signed_in(client: Client, runtime: Runtime, add_agent: Any) -> tuple[Any, dict[str, str], int, int]:
    """Alice, signed in to the console, and Carl's card and ticket: (Alice, her API headers, card, ticket)."""
    alice, headers = await add_agent("Alice", email="alice@example.com", language="en")
    await runtime.service.set_password(alice.id, PASSWORD)
    customer, ticket = await client_card(runtime)
    await sign_in(client, email="alice@example.com")
    return alice, headers, customer, ticket


async def record(client: Client, headers: dict[str, str], customer: int, status: int = 201,
                 **fields: Any) -> dict[str, Any]:
    response = await client.post(f"/api/v1/customers/{customer}/activities", json=fields, headers=headers)
    assert response.status == status, await response.text()
    return await response.json()


async def planned(runtime: Runtime, planned_id: int) -> PlannedContact:
    async with runtime.sessions() as session:
        return await session.get_one(PlannedContact, planned_id)


async def test_a_planned_contact_reminds_its_agent_at_the_planned_second_once(
    client: Client, runtime: Runtime, add_agent: Any
) -> None:
    alice, headers, customer, ticket = await signed_in(client, runtime, add_agent)
    stream = await client.get("/desk/events?only=calls")
    assert stream.status == 200


    due = runtime.clock.now() + timedelta(seconds=3)
    body = await record(client, headers, customer, type="Call", outcome="wants a quote", note="Asked for 20 seats",
                        ticket=ticket, next_at=due.isoformat(), next_what="Send the quote and call back")
    assert body["activity"] | {"id": 0, "created_at": ""} == {
        "id": 0, "customer_id": customer, "ticket_id": ticket, "agent_id": alice.id, "type": "call",
        "outcome": "wants a quote", "note": "Asked for 20 seats", "call_id": None, "created_at": ""}
    plan = body["planned"]
    assert (plan["status"], plan["what"], plan["reminded_at"], plan["overdue"]) == (
        "pending", "Send the quote and call back", None, False)

    async with timer_workers(runtime):
        notice = await asyncio.wait_for(next_event(stream, "notice"), 15)
        assert notice == {"text": "Planned contact with Carl Client: Send the quote and call back",
                          "link": f"/desk/tickets/{ticket}"}
        reminded = await planned(runtime, plan["id"])
        assert reminded.reminded_at is not None
        lateness = (reminded.reminded_at - reminded.due_at).total_seconds()
        assert 0 <= lateness < 2, lateness  # a timer, not a poll
        await until(lambda: _mail_sent(runtime, plan["id"]))
    stream.close()
    assert await runtime.service.remind(plan["id"]) is None  # once

    mine = await (await client.get("/api/v1/plan", headers=headers)).json()
    assert [(p["id"], p["customer"], p["overdue"]) for p in mine["items"]] == [(plan["id"], "Carl Client", True)]
    # The next contact keeps it: the plan is done and no longer overdue.
    kept = await record(client, headers, customer, type="email", outcome="quote sent")
    assert kept["kept"] == 1 and kept["planned"] is None
    assert (await (await client.get("/api/v1/plan", headers=headers)).json())["items"] == []


async def _mail_sent(runtime: Runtime, planned_id: int) -> bool:
    async with runtime.sessions() as session:
        row = await session.scalar(select(Outbox).where(Outbox.dedupe_key == f"remind:{planned_id}"))
    return row is not None and row.recipient == "alice@example.com" and row.kind == "reminder" \
        and row.subject == "Planned contact with Carl Client: Send the quote and call back"


async def test_the_sweeper_reminds_a_contact_whose_timer_was_lost(
    client: Client, runtime: Runtime, add_agent: Any
) -> None:
    alice, headers = await add_agent("Alice", email="alice@example.com", language="ru")
    await runtime.service.set_password(alice.id, PASSWORD)
    await sign_in(client, email="alice@example.com")
    stream = await client.get("/desk/events?only=calls")
    customer, _ = await client_card(runtime)
    body = await record(client, headers, customer, type="meeting", next_at=(
        runtime.clock.now() + timedelta(seconds=1)).isoformat(), next_what="Позвонить")
    await asyncio.sleep(1.2)  # no timer worker ran: the job waits in Redis, as if lost
    assert await sweep_reminders({"runtime": runtime}) == 1
    notice = await asyncio.wait_for(next_event(stream, "notice"), 5)  # in her language, linking to the card
    assert notice == {"text": "Запланированный контакт с Carl Client: Позвонить", "link": f"/desk/customers/{customer}"}
    stream.close()
    assert await sweep_reminders({"runtime": runtime}) == 0
    async with runtime.sessions() as session:
        row = await session.scalar(select(Outbox).where(Outbox.dedupe_key == f"remind:{body['planned']['id']}"))
    assert row is not None and row.subject == "Запланированный контакт с Carl Client: Позвонить"


async def test_bad_activities_are_refused_field_by_field_and_nothing_is_kept(
    client: Client, runtime: Runtime, add_agent: Any
) -> None:
    _, headers = await add_agent("Alice")
    _, admin = await add_agent("Ada", role=Role.admin)
    customer, ticket = await client_card(runtime)
    other = (await runtime.service.ingest(Inbound(channel="webform", identities=(Identity("email", "x@example.com"),),
                                                  body_text="hi"))).ticket
    now = runtime.clock.now()
    for fields, field in [({"type": "telepathy"}, "type"),
                          ({"type": "call", "next_at": (now - timedelta(hours=1)).isoformat(), "next_what": "x"},
                           "next_at"),
                          ({"type": "call", "next_at": (now + timedelta(days=4000)).isoformat(), "next_what": "x"},
                           "next_at"),
                          ({"type": "call", "next_at": (now + timedelta(hours=1)).isoformat()}, "next_what"),
                          ({"type": "call", "next_at": "2026-12-31T10:00:00", "next_what": "x"}, "next_at"),
                          ({"type": "call", "mood": "good"}, "mood")]:
        response = await client.post(f"/api/v1/customers/{customer}/activities", json=fields, headers=headers)
        assert response.status == 422, (fields, await response.text())
        assert field in (await response.json())["error"]["fields"], (fields, await response.text())
    conflict = await client.post(f"/api/v1/customers/{customer}/activities", json={"type": "call",
                                 "ticket": other.id}, headers=admin)
    assert conflict.status == 409
    assert (await client.post("/api/v1/customers/999999/activities", json={"type": "call"},
                              headers=admin)).status == 404
    async with runtime.sessions() as session:
        assert list(await session.scalars(select(PlannedContact))) == []

    types = await (await client.get("/api/v1/activity-types", headers=headers)).json()
    assert [t["name"] for t in types["items"]] == ["call", "meeting", "demonstration", "email", "visit"]
    assert (await client.post("/api/v1/activity-types", json={"name": "Trade show"}, headers=headers)).status == 403
    added = await client.post("/api/v1/activity-types", json={"name": "Trade show"}, headers=admin)
    assert added.status == 201 and (await added.json())["name"] == "trade-show"
    assert (await client.post("/api/v1/activity-types", json={"name": "trade show"}, headers=admin)).status == 409
    assert (await record(client, admin, customer, type="trade-show", ticket=ticket))["activity"]["type"] == \
        "trade-show"


async def test_the_ticket_page_records_a_contact_in_local_time_and_the_queue_shows_the_days_plan(
    client: Client, runtime: Runtime, add_agent: Any
) -> None:
    _, headers, customer, ticket = await signed_in(client, runtime, add_agent)
    page = await (await client.get(f"/desk/tickets/{ticket}")).text()
    assert "Record a contact" in page and '<option value="demonstration">demonstration</option>' in page

    moscow = runtime.clock.now().astimezone(timezone(timedelta(hours=3))) + timedelta(minutes=2)
    local = moscow.replace(second=0, microsecond=0, tzinfo=None).isoformat(timespec="minutes")
    sent = await client.post(f"/desk/tickets/{ticket}", allow_redirects=False, data={
        "csrf": csrf_of(page), "action": "activity", "type": "demonstration", "outcome": "liked it",
        "next_at": local, "next_what": "Send the contract", "tz": "-180"})
    assert sent.status == 303 and sent.headers["Location"].endswith("done=done_recorded")
    async with runtime.sessions() as session:
        plan = await session.scalar(select(PlannedContact))
    assert plan is not None and plan.due_at == moscow.replace(second=0, microsecond=0)
    shown = await (await client.get(f"/desk/tickets/{ticket}")).text()
    assert "Planned with this client" in shown and "Send the contract" in shown
    assert re.search(r'<ul class="activities"><li><time[^>]*>[^<]*</time> · demonstration: liked it</li>', shown)
    card = await (await client.get(f"/api/v1/customers/{customer}", headers=headers)).json()
    assert [(a["type"], a["outcome"], a["ticket_id"]) for a in card["activities"]] == [
        ("demonstration", "liked it", ticket)]
    queue = await (await client.get("/desk")).text()
    if plan.due_at.date() == runtime.clock.now().date():  # the day's plan: due before midnight UTC
        assert re.search(r'id="my-plan".*Carl Client</strong></a> — Send the contract', queue, re.S)

    refused = await client.post(f"/desk/tickets/{ticket}", data={
        "csrf": csrf_of(page), "action": "activity", "type": "call", "next_at": "tomorrow", "next_what": "x"})
    assert refused.status == 422 and "not a date and time" in await refused.text()


async def test_each_agent_is_reminded_by_the_medium_they_chose(
    client: Client, runtime: Runtime, add_agent: Any
) -> None:
    alice, headers = await add_agent("Alice", email="alice@example.com", phone="+447700900123", language="en")
    customer, _ = await client_card(runtime)

    async def choose(medium: str, status: int = 200) -> dict[str, Any]:
        response = await client.patch("/api/v1/agents/me", json={"remind_by": medium}, headers=headers)
        assert response.status == status, await response.text()
        return await response.json()

    async def reminded_by() -> tuple[str, str] | None:
        body = await record(client, headers, customer, type="call", next_at=(
            runtime.clock.now() + timedelta(seconds=1)).isoformat(), next_what="Call back")
        await asyncio.sleep(1.2)
        assert await sweep_reminders({"runtime": runtime}) == 1
        async with runtime.sessions() as session:
            row = await session.scalar(select(Outbox).where(Outbox.dedupe_key == f"remind:{body['planned']['id']}"))
        return (row.channel, row.recipient) if row is not None else None

    assert (await choose("sms"))["remind_by"] == "sms"
    assert await reminded_by() == ("sms", "+447700900123")
    assert (await choose("console"))["remind_by"] == "console"
    assert await reminded_by() is None  # the console notice alone
    refused = await choose("telegram", 422)  # not linked to the bot yet
    assert "link Telegram first" in refused["error"]["fields"]["remind_by"]
    await choose("fax", 422)
    assert (await choose("auto"))["remind_by"] == "auto"
    assert await reminded_by() == ("email", "alice@example.com")

    # In the console: the choice sits by the plan, and offers only what reaches the agent.
    await runtime.service.set_password(alice.id, PASSWORD)
    await sign_in(client, email="alice@example.com")
    card = await (await client.get(f"/desk/customers/{customer}")).text()
    assert re.findall(r'<option value="(\w+)"', card.split('id="remind-by"')[1].split("</select>")[0]) == [
        "auto", "email", "sms", "console"]
    chosen = await client.post("/desk/me/remind-by", allow_redirects=False, data={
        "csrf": csrf_of(card), "remind_by": "email", "next": f"/desk/customers/{customer}"})
    assert chosen.status == 303 and chosen.headers["Location"] == f"/desk/customers/{customer}"
    async with runtime.sessions() as session:
        assert (await session.get_one(Agent, alice.id)).remind_by == "email"
