"""The Zammad-compatible CTI endpoint as a PBX script calls it (form-encoded as curl sends it, or JSON), the pop it
raises in the consoles of the agents the call rings for, and the call logged once at hang-up."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select, update

from switchboard.bootstrap import Runtime
from tests.integration.test_console import PASSWORD, csrf_of, sign_in
from tests.sse import next_event
from tickets.inbound import Identity, Inbound
from tickets.models import Call, LiveCall, Ticket

CLIENT = "+442079460958"
Client = TestClient[Any, Any]


async def cti(client: Client, token: str, status: int = 200, **fields: Any) -> dict[str, Any]:
    """One event, form-encoded as `curl --data "event=newCall&from=…&user[]=…"` sends it."""
    users = fields.pop("user", [])
    form = [*fields.items(), *(("user[]", name) for name in users)]
    response = await client.post(f"/api/v1/cti/{token}", data=form)
    assert response.status == status, await response.text()
    return await response.json()


async def agent(runtime: Runtime, add_agent: Any, name: str, extension: str, **options: Any) -> Any:
    found, _ = await add_agent(name, email=f"{name.lower()}@example.com", extension=extension, language="en",
                               **options)
    await runtime.service.set_password(found.id, PASSWORD)
    return found


async def known_client(runtime: Runtime) -> Ticket:
    return (await runtime.service.ingest(Inbound(
        channel="webform", identities=(Identity("email", "carl@example.com"), Identity("phone", CLIENT)),
        subject="Printer jams", body_text="It jams on page two", customer_name="Carl Client"))).ticket


async def calls_logged(runtime: Runtime) -> list[Call]:
    async with runtime.sessions() as session:
        return list(await session.scalars(select(Call).order_by(Call.id)))


async def test_a_zammad_sequence_pops_the_card_for_the_ringing_agent_and_logs_the_call_once(
    client: Client, runtime: Runtime, add_agent: Any
) -> None:
    token = await runtime.service.rotate_cti_token()
    alice = await agent(runtime, add_agent, "Alice", "201")
    await agent(runtime, add_agent, "Bob", "202")
    ticket = await known_client(runtime)

    rang = await cti(client, token, event="newCall", **{"from": "020 7946 0958"}, to="201", direction="in",
                     callId="zc-1", user=["Alice"])
    assert rang == {"call_id": "zc-1", "state": "ringing"}

    await sign_in(client, email="alice@example.com")
    pop = await (await client.get("/desk/calls/current")).text()
    assert "Carl Client" in pop and CLIENT in pop and f"#{ticket.id} Printer jams" in pop
    assert "It jams on page two" in pop  # the last contacts
    caller_log = await (await client.get("/desk/calls")).text()
    assert re.search(r'<tr data-call="zc-1">.*?Carl Client.*?ringing.*?Alice', caller_log, re.S)

    assert (await cti(client, token, event="answer", **{"from": "020 7946 0958"}, to="201", direction="in",
                      callId="zc-1", answeringNumber="201"))["state"] == "answered"
    ended = await cti(client, token, event="hangup", **{"from": "020 7946 0958"}, to="201", direction="in",
                      callId="zc-1", cause="normalClearing", answeringNumber="201")
    assert ended | {"duplicate": None} == {"call_id": "zc-1", "state": "ended", "logged": True, "duplicate": None,
                                          "ticket": ticket.id}
    [call] = await calls_logged(runtime)
    assert (call.call_id, call.disposition, call.agent_id, call.ticket_id, call.source) == (
        "zc-1", "answered", alice.id, ticket.id, "cti")

    # The PBX says it again, and the CDR import reports it too: still one call.
    again = await cti(client, token, event="hangup", **{"from": "020 7946 0958"}, to="201", direction="in",
                      callId="zc-1", cause="normalClearing")
    assert again == {"call_id": "zc-1", "state": "ended"}
    headers = (await add_agent("PBX"))[1]
    cdr = await client.post("/api/v1/calls", headers=headers, json={
        "call_id": "zc-1", "caller": CLIENT, "called": "201", "direction": "in", "disposition": "answered",
        "started_at": call.started_at.isoformat()})
    assert cdr.status == 200 and (await cdr.json())["duplicate"] is True
    assert len(await calls_logged(runtime)) == 1


async def test_json_events_and_a_missed_call_open_a_callback(client: Client, runtime: Runtime, add_agent: Any) -> None:
    token = await runtime.service.rotate_cti_token()
    await agent(runtime, add_agent, "Alice", "201")
    base = {"from": "+49 30 5557 1600", "to": "201", "direction": "in", "callId": "zj-2"}
    for event in ({"event": "newCall", "user[]": ["Alice"]}, {"event": "hangup", "cause": "cancel"}):
        response = await client.post(f"/api/v1/cti/{token}", json=base | event)
        assert response.status == 200, await response.text()
    body = await response.json()
    assert body["logged"] is True and body["ticket"] is not None
    [call] = await calls_logged(runtime)
    assert (call.disposition, call.caller) == ("missed", "+493055571600")
    async with runtime.sessions() as session:
        callback = await session.get_one(Ticket, body["ticket"])
    assert callback.category == "callback"


async def test_a_wrong_token_or_a_bad_event_is_refused_and_nothing_is_kept(
    client: Client, runtime: Runtime
) -> None:
    token = await runtime.service.rotate_cti_token()
    assert (await client.post("/api/v1/cti/nope", data={"event": "newCall"})).status == 401
    for fields, field in [({"event": "ring", "direction": "in", "callId": "x"}, "event"),
                          ({"event": "newCall", "direction": "sideways", "callId": "x"}, "direction"),
                          ({"event": "newCall", "direction": "in"}, "callId"),
                          ({"event": "newCall", "direction": "in", "callId": "x" * 251}, "callId")]:
        response = await client.post(f"/api/v1/cti/{token}", data=fields)
        assert response.status == 422, fields
        assert field in (await response.json())["error"]["fields"], await response.text()
    newer = await runtime.service.rotate_cti_token()
    assert (await client.post(f"/api/v1/cti/{token}", data={"event": "newCall"})).status == 401  # rotated away
    assert (await client.post(f"/api/v1/cti/{newer}", json=[1])).status == 422
    async with runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(LiveCall)) == 0


async def test_the_pop_reaches_only_the_agents_the_call_rings_for(
    client: Client, runtime: Runtime, add_agent: Any
) -> None:
    token = await runtime.service.rotate_cti_token()
    await agent(runtime, add_agent, "Alice", "201")
    await agent(runtime, add_agent, "Bob", "202")

    async def stream(email: str) -> Any:
        other = TestClient(client.server)  # its own cookie jar: one browser per agent
        await other.start_server()
        await sign_in(other, email=email)
        response = await other.get("/desk/events?only=calls")
        assert response.status == 200
        return other, response

    def next_call(response: Any) -> Any:
        return next_event(response, "call")

    (alice_client, alice), (bob_client, bob) = await stream("alice@example.com"), await stream("bob@example.com")
    try:
        await asyncio.sleep(0.2)  # both streams subscribed
        await cti(client, token, event="newCall", **{"from": CLIENT}, to="201", direction="in", callId="zp-3",
                  user=["Alice"])
        assert await asyncio.wait_for(next_call(alice), 5) == {"call": "zp-3", "state": "ringing"}
        bob_heard = asyncio.ensure_future(next_call(bob))
        await cti(client, token, event="answer", **{"from": CLIENT}, to="201", direction="in", callId="zp-3",
                  answeringNumber="alice@example.com")
        assert await asyncio.wait_for(next_call(alice), 5) == {"call": "zp-3", "state": "answered"}
        await asyncio.sleep(0.3)
        assert not bob_heard.done()  # the call never rang for Bob
        bob_heard.cancel()
    finally:
        for response, other in ((alice, alice_client), (bob, bob_client)):
            response.close()
            await other.session.close()  # not other.close(): that would stop the server the test's client shares


async def test_an_unknown_caller_gets_a_card_and_a_ticket_from_the_pop_and_the_call_joins_it(
    client: Client, runtime: Runtime, add_agent: Any
) -> None:
    token = await runtime.service.rotate_cti_token()
    alice = await agent(runtime, add_agent, "Alice", "201")
    await cti(client, token, event="newCall", **{"from": "+44 161 496 0000"}, to="201", direction="in",
              callId="zu-4", user=["Alice"])
    await cti(client, token, event="answer", **{"from": "+44 161 496 0000"}, to="201", direction="in",
              callId="zu-4", answeringNumber="201")
    await sign_in(client, email="alice@example.com")
    page = await (await client.get("/desk")).text()
    pop = await (await client.get("/desk/calls/zu-4/pop")).text()
    assert "Unknown number." in pop and "+441614960000" in pop
    named = await client.post("/desk/calls/zu-4", allow_redirects=False,
                              data={"csrf": csrf_of(page), "action": "card", "name": "Dora Client", "next": "/desk"})
    assert named.status == 303
    opened = await client.post("/desk/calls/zu-4", allow_redirects=False,
                               data={"csrf": csrf_of(page), "action": "ticket"})
    assert opened.status == 303 and (found := re.fullmatch(r"/desk/tickets/(\d+)", opened.headers["Location"]))
    number = int(found.group(1))
    pop = await (await client.get("/desk/calls/current")).text()
    assert "Dora Client" in pop and "this call goes here" in pop

    ended = await cti(client, token, event="hangup", **{"from": "+44 161 496 0000"}, to="201", direction="in",
                      callId="zu-4", cause="normalClearing")
    assert ended["ticket"] == number
    ticket = await runtime.service.get_ticket(alice, number)
    assert ticket.ticket.assignee_id == alice.id and ticket.customer.name == "Dora Client"
    assert [c.call_id for c in ticket.calls] == ["zu-4"]
    assert (await client.get("/desk/calls/current")).status == 204  # nothing in progress any more
    stranger = await client.post("/desk/calls/zu-4", data={"csrf": csrf_of(page), "action": "ticket"})
    assert stranger.status == 422 and "logged already" in await stranger.text()


async def test_a_call_that_ended_but_was_never_logged_is_logged_by_the_sweep_once(
    client: Client, runtime: Runtime, add_agent: Any
) -> None:
    """The process stopped between ending the call and logging it: the worker's sweep logs it."""
    from datetime import timedelta

    from switchboard.worker import sweep_unlogged_calls
    from tickets.actions.live_calls import CallEvent

    await agent(runtime, add_agent, "Alice", "201")
    for kind in ("ring", "hangup"):  # what the endpoint records, without the logging step after it
        await runtime.service.record_call_event(CallEvent("zs-5", kind, "in", caller=CLIENT, called="201",
                                                          client_number=CLIENT, users=("Alice",), cause="cancel"))
    assert await sweep_unlogged_calls({"runtime": runtime}) == 0  # ended a moment ago: its request may still log it
    async with runtime.sessions() as session, session.begin():  # …two minutes ago, then
        await session.execute(update(LiveCall).where(LiveCall.call_id == "zs-5").values(
            ended_at=runtime.clock.now() - timedelta(minutes=2)))
    assert await sweep_unlogged_calls({"runtime": runtime}) == 1
    assert await sweep_unlogged_calls({"runtime": runtime}) == 0
    [call] = await calls_logged(runtime)
    assert (call.call_id, call.disposition, call.source) == ("zs-5", "missed", "cti")
    async with runtime.sessions() as session:
        live = await session.scalar(select(LiveCall).where(LiveCall.call_id == "zs-5"))
    assert live is not None and live.logged_call_id == call.id


async def test_a_plus_lost_to_form_encoding_still_finds_the_card_and_an_unreadable_number_says_so(
    client: Client, runtime: Runtime, add_agent: Any
) -> None:
    """`curl --data "from=+44 …"` sends the + as a space; a number no region can read is kept as written."""
    token = await runtime.service.rotate_cti_token()
    await agent(runtime, add_agent, "Alice", "201")
    ticket = await known_client(runtime)
    await cti(client, token, event="newCall", **{"from": " 44 20 7946 0958"}, to="201", direction="in",
              callId="zf-6", user=["Alice"])
    await sign_in(client, email="alice@example.com")
    pop = await (await client.get("/desk/calls/zf-6/pop")).text()
    assert "Carl Client" in pop and f"#{ticket.id} Printer jams" in pop

    await cti(client, token, event="newCall", **{"from": "212 555 1234"}, to="201", direction="in",
              callId="zf-7", user=["Alice"])
    pop = await (await client.get("/desk/calls/zf-7/pop")).text()
    assert "212 555 1234" in pop and "not one Switchboard can read" in pop and "withheld" not in pop
    ended = await cti(client, token, event="hangup", **{"from": "212 555 1234"}, to="201", direction="in",
                      callId="zf-7", cause="cancel")
    assert ended["logged"] is True
    logged = [c for c in await calls_logged(runtime) if c.call_id == "zf-7"]
    assert [(c.caller, c.customer_id) for c in logged] == [("212 555 1234", None)]
