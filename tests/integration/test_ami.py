"""The Asterisk AMI session against a stand-in manager on 127.0.0.1 speaking the real protocol: a call from a trunk
ringing an agent's extension pops the caller's card on that agent's console stream, the answer and the hang-up
follow, and the call is logged once under Asterisk's Linkedid (so a CDR import of it is a duplicate); a missed
call to a ring group gets its callback ticket; the session survives an Asterisk restart and a wrong secret is
retried with backoff, never crashing the process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from channels.phone.ami import AmiBridge, parse_ami_url
from switchboard.bootstrap import Runtime
from tests.fake_ami import FakeAmi
from tests.integration.test_console import sign_in
from tests.integration.test_cti import CLIENT, agent, calls_logged, known_client
from tests.sse import next_event
from tickets.models import LiveCall, Ticket

Client = TestClient[Any, Any]


class Running:
    """A bridge running as `switchboard pbx` runs it, stopped at the end of the test."""

    def __init__(self, bridge: AmiBridge) -> None:
        self.bridge, self.stopping = bridge, asyncio.Event()
        self.task = asyncio.create_task(bridge.run(self.stopping))

    async def stop(self) -> None:
        self.stopping.set()
        await asyncio.wait_for(self.task, 10)


@pytest.fixture
async def pbx() -> AsyncIterator[FakeAmi]:
    fake = await FakeAmi().start()
    yield fake
    await fake.stop()


async def bridged(runtime: Runtime, url: str) -> Running:
    return Running(AmiBridge(runtime, parse_ami_url(url), first_delay=0.1, max_delay=0.4, ping_seconds=0.5,
                             timeout=2))


async def until(check: Any, timeout: float = 10) -> Any:
    """Poll an async check until it returns something true (the bridge applies events on its own task)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (found := await check()):
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)
    return found


async def test_an_ami_call_pops_the_card_for_the_ringing_extension_and_is_logged_once(
    client: Client, runtime: Runtime, add_agent: Any, pbx: FakeAmi
) -> None:
    alice = await agent(runtime, add_agent, "Alice", "201")
    ticket = await known_client(runtime)
    running = await bridged(runtime, pbx.url)
    try:
        await pbx.logged_in()
        await sign_in(client, email="alice@example.com")
        stream = await client.get("/desk/events?only=calls")
        await asyncio.sleep(0.2)  # subscribed

        call = await pbx.inbound_call(CLIENT, "201")
        assert await asyncio.wait_for(next_event(stream, "call"), 5) == {"call": call.linkedid, "state": "ringing"}
        pop = await (await client.get("/desk/calls/current")).text()
        assert "Carl Client" in pop and f"#{ticket.id} Printer jams" in pop

        await pbx.answer(call)
        assert await asyncio.wait_for(next_event(stream, "call"), 5) == {"call": call.linkedid, "state": "answered"}
        await pbx.hang_up(call)
        assert await asyncio.wait_for(next_event(stream, "call"), 5) == {"call": call.linkedid, "state": "ended"}
        assert await asyncio.wait_for(next_event(stream, "call"), 5) == {"call": call.linkedid, "state": "logged"}
        stream.close()
        [logged] = await calls_logged(runtime)
        assert (logged.call_id, logged.disposition, logged.agent_id, logged.caller, logged.called, logged.source) == (
            call.linkedid, "answered", alice.id, CLIENT, "201", "ami")

        # Master.csv carries the same uniqueid: importing it (or posting it) later is a duplicate.
        headers = (await add_agent("PBX"))[1]
        cdr = await client.post("/api/v1/calls", headers=headers, json={
            "call_id": call.linkedid, "caller": CLIENT, "called": "201", "direction": "in",
            "disposition": "answered", "started_at": logged.started_at.isoformat()})
        assert cdr.status == 200 and (await cdr.json())["duplicate"] is True
        assert len(await calls_logged(runtime)) == 1
    finally:
        await running.stop()


async def test_a_missed_call_to_a_ring_group_rings_every_phone_and_opens_a_callback(
    runtime: Runtime, add_agent: Any, pbx: FakeAmi
) -> None:
    alice = await agent(runtime, add_agent, "Alice", "201")
    bob = await agent(runtime, add_agent, "Bob", "202")
    running = await bridged(runtime, pbx.url)
    try:
        await pbx.logged_in()
        call = await pbx.inbound_call("+49 30 5557 1600", "201")
        await pbx.ring(call, "202")

        async def ringing() -> list[int] | None:
            async with runtime.sessions() as session:
                live = await session.scalar(select(LiveCall).where(LiveCall.call_id == call.linkedid))
            return live.ringing if live is not None and len(live.ringing) == 2 else None

        assert await until(ringing) == sorted([alice.id, bob.id])
        await pbx.hang_up(call, cause=16)  # the caller gave up
        [logged] = await until(lambda: calls_logged(runtime))
        assert (logged.disposition, logged.caller) == ("missed", "+493055571600")
        async with runtime.sessions() as session:
            callback = await session.get_one(Ticket, logged.ticket_id)
        assert callback.category == "callback"
    finally:
        await running.stop()


async def test_the_session_survives_an_asterisk_restart(runtime: Runtime, add_agent: Any, pbx: FakeAmi) -> None:
    await agent(runtime, add_agent, "Alice", "201")
    running = await bridged(runtime, pbx.url)
    try:
        await pbx.logged_in()
        await pbx.drop()
        await pbx.logged_in(count=2)  # back by itself
        await asyncio.wait_for(running.bridge.connected.wait(), 5)
        call = await pbx.inbound_call(CLIENT, "201")
        await pbx.answer(call)
        await pbx.hang_up(call)
        [logged] = await until(lambda: calls_logged(runtime))
        assert logged.call_id == call.linkedid and logged.disposition == "answered"
    finally:
        await running.stop()
    assert running.task.done() and running.task.exception() is None


async def test_a_pbx_that_reports_only_channel_states_is_followed_through_the_session(
    runtime: Runtime, add_agent: Any, pbx: FakeAmi
) -> None:
    """No DialBegin or DialEnd: the phone's channel rings (its connected line the caller) and goes up."""
    alice = await agent(runtime, add_agent, "Alice", "201")
    running = await bridged(runtime, pbx.url)
    try:
        await pbx.logged_in()
        phone = {"Channel": "PJSIP/201-0000000b", "Uniqueid": "1765000100.2", "Linkedid": "1765000100.1"}
        await pbx.send("Newstate", **phone, ChannelState="5", ChannelStateDesc="Ringing", ConnectedLineNum=CLIENT)
        await pbx.send("Newstate", **phone, ChannelState="6", ChannelStateDesc="Up", ConnectedLineNum=CLIENT)
        await pbx.send("Hangup", **phone, Cause="16")
        await pbx.send("Hangup", Channel="PJSIP/trunk-0000000a", Uniqueid="1765000100.1", Linkedid="1765000100.1",
                       Cause="16")
        [logged] = await until(lambda: calls_logged(runtime))
        assert (logged.call_id, logged.disposition, logged.agent_id, logged.caller) == (
            "1765000100.1", "answered", alice.id, CLIENT)
    finally:
        await running.stop()


async def test_a_call_in_progress_when_the_pbx_role_restarts_is_taken_up_and_logged_once(
    runtime: Runtime, add_agent: Any, pbx: FakeAmi
) -> None:
    alice = await agent(runtime, add_agent, "Alice", "201")
    first = await bridged(runtime, pbx.url)
    await pbx.logged_in()
    call = await pbx.inbound_call(CLIENT, "201")
    await pbx.answer(call)

    async def answered() -> bool:
        async with runtime.sessions() as session:
            live = await session.scalar(select(LiveCall).where(LiveCall.call_id == call.linkedid))
        return live is not None and live.answered_at is not None

    await until(answered)
    await first.stop()  # `switchboard pbx` restarts while Alice talks
    second = await bridged(runtime, pbx.url)
    try:
        await pbx.logged_in(count=2)
        await asyncio.wait_for(second.bridge.connected.wait(), 5)
        await pbx.hang_up(call)
        [logged] = await until(lambda: calls_logged(runtime))
        assert (logged.call_id, logged.disposition, logged.agent_id, logged.source) == (
            call.linkedid, "answered", alice.id, "ami")
    finally:
        await second.stop()


async def test_a_manager_without_action_ids_or_pongs_is_followed_and_a_hung_one_is_left(
    runtime: Runtime, add_agent: Any, pbx: FakeAmi
) -> None:
    await agent(runtime, add_agent, "Alice", "201")
    pbx.action_ids, pbx.pongs = False, False  # a minimal manager: it never answered a Ping, so none is awaited
    running = await bridged(runtime, pbx.url)
    try:
        await asyncio.wait_for(running.bridge.connected.wait(), 5)
        await asyncio.sleep(3)  # six ping intervals, no Pong: still one session
        assert len(pbx.logins) == 1 and running.bridge.connected.is_set()
        call = await pbx.inbound_call(CLIENT, "201")
        await pbx.hang_up(call)
        [logged] = await until(lambda: calls_logged(runtime))
        assert (logged.call_id, logged.disposition) == (call.linkedid, "missed")

        # A manager that answered pings and stops is taken for hung: the link is made again.
        pbx.action_ids, pbx.pongs = True, True
        await pbx.drop()
        await pbx.logged_in(count=2)
        await asyncio.sleep(1)  # a Pong or two
        pbx.pongs = False
        await pbx.logged_in(count=3, timeout=10)
    finally:
        await running.stop()


async def test_a_wrong_secret_is_retried_with_backoff_and_nothing_crashes(runtime: Runtime, pbx: FakeAmi) -> None:
    wrong = pbx.url.replace(pbx.secret, "not-it")
    running = await bridged(runtime, wrong)
    await asyncio.sleep(1.5)
    attempts = len(pbx.logins)
    assert pbx.logins[0] == ("switchboard", False)
    assert 2 <= attempts <= 6, attempts  # 0.1, 0.2, 0.4, 0.4 s apart: backing off, not hammering
    assert not running.bridge.connected.is_set() and not running.task.done()
    await running.stop()


async def test_an_unreachable_pbx_is_retried_until_it_comes_up(runtime: Runtime, add_agent: Any) -> None:
    fake = FakeAmi()
    await fake.start()
    port = fake.port
    await fake.stop()  # nothing listens there now
    running = await bridged(runtime, f"ami://switchboard:s3cret@127.0.0.1:{port}")
    try:
        await asyncio.sleep(0.5)
        assert not running.bridge.connected.is_set()
        await fake.start(port)
        await fake.logged_in()
        await asyncio.wait_for(running.bridge.connected.wait(), 5)
    finally:
        await running.stop()
        await fake.stop()
