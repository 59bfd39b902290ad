"""Screen-pop latency: a PBX reports a ringing call → the ringing agent's console has the pop.

Usage: uv run python bench/call_pop.py [--agents 50] [--calls 200] [--runs 3] [--source cti|ami]
--source cti (default): the PBX posts Zammad's generic CTI `newCall`; --source ami: a stand-in Asterisk manager
(tests/fake_ami.py, in this process) sends `DialBegin` to the session a `switchboard pbx` process keeps.
One `switchboard web` process on a fresh PostgreSQL database (BENCH_PG_URL) and Redis (BENCH_REDIS_URL, emptied
first), `--agents` agents signed in to the console, each holding its event stream open as a browser does. Each call
rings one agent (by extension, in turn); traffic goes only to 127.0.0.1 and stops after --calls calls.

Per call:  event = the POST /api/v1/cti/{token} starts (the AMI events are written) → the agent's stream has
                   `event: call`;
           pop   = the same start → the agent's GET /desk/calls/{id}/pop (what the page does on the event) answered.
Target: pop p95 ≤ 300 ms with 50 agents signed in.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.deployment import REDIS_URL, deployment, report  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.fake_ami import FakeAmi  # noqa: E402
from tests.integration.test_concurrency import wait_healthy  # noqa: E402

PASSWORD = "bench-password-1"


async def prepare(env: dict[str, str], agents: int) -> tuple[str, list[str]]:
    """Agents with extensions and console sessions, a client to call about, the CTI token (in-process: fast, and
    past the sign-in form's limit of 10 attempts per address)."""
    from switchboard.bootstrap import build
    from switchboard.settings import Settings
    from tickets.inbound import Identity, Inbound

    os.environ.update({k: v for k, v in env.items() if k.startswith("SWITCHBOARD_")})
    runtime = await build(Settings())
    try:
        sessions = []
        for n in range(agents):
            agent, _ = await runtime.service.add_agent(f"Agent {n}", f"agent{n}@example.com", extension=f"{200 + n}")
            await runtime.service.set_password(agent.id, PASSWORD)
            login = await runtime.service.log_in(agent.email, PASSWORD)
            assert login is not None
            sessions.append(login.token)
        await runtime.service.ingest(Inbound(
            channel="webform", identities=(Identity("email", "carl@example.com"), Identity("phone", "+442079460958")),
            subject="Printer", body_text="It jams", customer_name="Carl Client"))
        return await runtime.service.rotate_cti_token(), sessions
    finally:
        await runtime.close()


class Console:
    """One agent's browser: a session and the event stream, whose `call` events are timestamped on arrival."""

    def __init__(self, base: str, session_token: str) -> None:
        self.base = base
        self.session = aiohttp.ClientSession(cookies={"sb_session": session_token})
        self.calls: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        stream = await self.session.get(f"{self.base}/desk/events?only=calls")
        assert stream.status == 200
        self._reader = asyncio.create_task(self._read(stream))

    async def _read(self, stream: aiohttp.ClientResponse) -> None:
        kind = None
        async for raw in stream.content:
            line = raw.decode().strip()
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: ") and kind == "call":
                self.calls.put_nowait((time.perf_counter(), line))

    async def pop(self, call_id: str) -> None:
        async with self.session.get(f"{self.base}/desk/calls/{call_id}/pop") as answer:
            assert answer.status == 200 and "Carl Client" in await answer.text()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self.session.close()


class Pbx:
    """The PBX: Zammad's generic CTI posts, or a stand-in Asterisk manager's events."""

    def __init__(self, http: aiohttp.ClientSession, base: str, token: str, ami: FakeAmi | None) -> None:
        self.http, self.base, self.token, self.ami = http, base, token, ami
        self._ami_calls: dict[str, Any] = {}

    async def ring(self, n: int, extension: str) -> str:
        if self.ami is not None:
            call = await self.ami.inbound_call("+442079460958", extension, linkedid=f"1765000000.{n}")
            self._ami_calls[call.linkedid] = call
            return str(call.linkedid)
        async with self.http.post(f"{self.base}/api/v1/cti/{self.token}", data={
                "event": "newCall", "from": "+442079460958", "to": extension, "direction": "in",
                "callId": f"bench-{n}"}) as answer:
            assert answer.status == 200, await answer.text()
        return f"bench-{n}"

    async def hang_up(self, n: int, call_id: str, extension: str) -> None:
        if self.ami is not None:
            await self.ami.hang_up(self._ami_calls.pop(call_id))
            return
        await self.http.post(f"{self.base}/api/v1/cti/{self.token}", data={
            "event": "hangup", "from": "+442079460958", "to": extension, "direction": "in", "callId": call_id,
            "cause": "cancel"})


async def one_run(agents: int, calls: int, source: str) -> dict[str, float]:
    redis = aioredis.from_url(REDIS_URL)
    await redis.flushdb()
    await redis.aclose()
    port = free_port()
    fake = await FakeAmi().start() if source == "ami" else None
    async with deployment(agents=0, capacity=10, worker=False) as setup:
        token, sessions = await prepare(setup.env, agents)
        setup.start("web", SWITCHBOARD_HTTP_PORT=str(port))
        if fake is not None:
            setup.start("pbx", SWITCHBOARD_AMI_URL=fake.url)
            await fake.logged_in(timeout=30)
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as probe:
            await wait_healthy(probe, base)
        consoles = [Console(base, sessions[n]) for n in range(agents)]
        try:
            await asyncio.gather(*(c.open() for c in consoles))
            await asyncio.sleep(0.5)  # every stream subscribed
            events: list[float] = []
            pops: list[float] = []
            async with aiohttp.ClientSession() as http:
                pbx = Pbx(http, base, token, fake)
                for n in range(calls):
                    console = consoles[n % agents]
                    started = time.perf_counter()
                    call_id = await pbx.ring(n, str(200 + n % agents))
                    while True:  # this call ringing (the previous call's `ended`/`logged` may come first)
                        arrived, data = await asyncio.wait_for(console.calls.get(), 10)
                        if f'"{call_id}"' in data and '"ringing"' in data:
                            break
                    await console.pop(call_id)
                    events.append(arrived - started)
                    pops.append(time.perf_counter() - started)
                    await pbx.hang_up(n, call_id, str(200 + n % agents))  # the next call starts clean
        finally:
            await asyncio.gather(*(c.close() for c in consoles))
            if fake is not None:
                await fake.stop()
    events.sort()
    pops.sort()

    def pct(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(len(values) * q))] * 1000

    return {"event_p50_ms": statistics.median(events) * 1000, "event_p95_ms": pct(events, 0.95),
            "pop_p50_ms": statistics.median(pops) * 1000, "pop_p95_ms": pct(pops, 0.95), "pop_p99_ms": pct(pops, 0.99)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--source", choices=("cti", "ami"), default="cti")
    args = parser.parse_args()
    results: list[dict[str, Any]] = [await one_run(args.agents, args.calls, args.source) for _ in range(args.runs)]
    report(results, f"{args.agents} agents signed in, {args.calls} calls one at a time by {args.source} "
                    f"(PID {os.getpid()}; target pop p95 ≤ 300 ms)")


if __name__ == "__main__":
    asyncio.run(main())
