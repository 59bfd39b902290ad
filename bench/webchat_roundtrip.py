"""Web chat round trip: visitor's message → ack → agent's reply over the API → pushed to the visitor's socket.

Usage: uv run python bench/webchat_roundtrip.py [--round-trips 300] [--visitors 10] [--concurrency 1] [--think 0.1]
                                                [--runs 3]
One `switchboard web` and one `switchboard worker` process on PostgreSQL (BENCH_PG_URL, a fresh database per
run) and Redis (BENCH_WEBCHAT_REDIS_URL, default db 7, emptied before each run: arq keeps job ids for 60 s and
a fresh database reuses outbox ids). Visitors are WebSocket clients; the "agent" is an HTTP client with a token.
Traffic goes only to 127.0.0.1 and stops after --round-trips round trips (each wait bounded by --timeout).

Per round trip:  ack    = visitor sends a message → its `ack` arrives (the message is committed and routed);
                 reply  = agent's POST /api/v1/tickets/{n}/messages starts → the reply event reaches the socket
                          (API commit + outbox row, arq picks the job up (poll_delay 0.1 s), Redis pub/sub, push);
                 push   = the POST answered 201 → the reply event reaches the socket (the asynchronous part);
                 total  = visitor sends → reply arrives.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.deployment import REPO, Deployment, deployment, report  # noqa: E402
from switchboard.worker import worker_settings  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.integration.test_concurrency import wait_healthy  # noqa: E402

REDIS_URL = os.environ.get("BENCH_WEBCHAT_REDIS_URL", "redis://127.0.0.1:6379/7")
METRICS = ("ack_ms", "reply_ms", "push_ms", "total_ms")


def poll_delay() -> float:
    """How long an idle arq worker sleeps between looks at the queue: it bounds how fast a reply leaves."""
    return float(worker_settings(SimpleNamespace(redis_url=REDIS_URL))["poll_delay"])  # type: ignore[arg-type]


class Visitor:
    """One browser tab: a socket whose frames are timestamped as they arrive."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.acks: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
        self.replies: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
        self.welcome: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.errors: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for frame in self.ws:
            arrived = time.perf_counter()
            if frame.type != aiohttp.WSMsgType.TEXT:
                break
            event = json.loads(frame.data)
            kind = event.get("type")
            if kind == "welcome":
                self.welcome.set_result(event)
            elif kind == "ack":
                self.acks.put_nowait((arrived, event))
            elif kind == "message" and event["message"]["direction"] == "out":
                self.replies.put_nowait((arrived, event))
            elif kind == "error":
                self.errors.append(event)
        # the socket ended: wake whoever waits, they fail on the sentinel
        self.acks.put_nowait((time.perf_counter(), {"type": "closed"}))
        self.replies.put_nowait((time.perf_counter(), {"type": "closed"}))

    async def send(self, **frame: Any) -> None:
        await self.ws.send_str(json.dumps(frame))

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()


async def next_event(queue: asyncio.Queue[tuple[float, dict[str, Any]]], timeout: float, what: str,
                     visitor: Visitor) -> tuple[float, dict[str, Any]]:
    try:
        arrived, event = await asyncio.wait_for(queue.get(), timeout)
    except TimeoutError:
        raise AssertionError(f"no {what} within {timeout} s (errors: {visitor.errors[-3:]})") from None
    if event.get("type") == "closed":
        raise AssertionError(f"the socket closed while waiting for {what}")
    return arrived, event


def add_agent(setup: Deployment) -> str:
    """The agent who answers every chat; the CLI prints the API token as its last line."""
    done = subprocess.run([sys.executable, "-m", "switchboard.cli", "agent", "add", "Bench Agent", "--email",
                           "bench.agent@example.com", "--role", "manager", "--capacity", "100000"],
                          env=setup.env, cwd=REPO, capture_output=True, text=True, check=True, timeout=60)
    return done.stdout.strip().splitlines()[-1]


async def one_run(round_trips: int, visitors: int, concurrency: int, think: float, timeout: float) -> dict[str, float]:
    redis = aioredis.from_url(REDIS_URL)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()
    async with deployment(agents=0, capacity=1, SWITCHBOARD_REDIS_URL=REDIS_URL,
                          SWITCHBOARD_WEBCHAT_RATE_LIMIT="0") as setup:
        token = add_agent(setup)
        auth = {"Authorization": f"Bearer {token}"}
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        setup.start("web", SWITCHBOARD_HTTP_PORT=str(port))
        setup.start("worker")
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                         timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            await wait_healthy(session, base)
            tabs: list[Visitor] = []
            tickets: dict[int, int] = {}
            samples: dict[str, list[float]] = {m: [] for m in METRICS}
            try:
                for _ in range(visitors):
                    tab = Visitor(await session.ws_connect(f"{base}/chat/ws"))
                    tabs.append(tab)
                    await tab.send(type="hello", token=None, name=None, email=None, language="en",
                                   page="http://127.0.0.1/bench")
                    await asyncio.wait_for(tab.welcome, timeout)

                async def round_trip(n: int, measured: bool) -> None:
                    tab = tabs[n % visitors]
                    began = time.perf_counter()
                    await tab.send(type="message", id=f"m{n}-{int(measured)}", text=f"Question {n}: where is my order?")
                    acked, ack = await next_event(tab.acks, timeout, "ack", tab)
                    number = ack["ticket"]["number"]
                    tickets[n % visitors] = number
                    posted = time.perf_counter()
                    async with session.post(f"{base}/api/v1/tickets/{number}/messages", headers=auth,
                                            json={"body": f"Answer {n}: it ships tomorrow."}) as response:
                        assert response.status == 201, await response.text()
                        await response.read()
                    answered = time.perf_counter()
                    arrived, event = await next_event(tab.replies, timeout, "the reply", tab)
                    assert event["message"]["text"] == f"Answer {n}: it ships tomorrow.", event
                    await tab.send(type="seen", ids=[event["message"]["id"]])  # as the browser does; not timed
                    if measured:
                        samples["ack_ms"].append((acked - began) * 1000)
                        samples["reply_ms"].append((arrived - posted) * 1000)
                        samples["push_ms"].append((arrived - answered) * 1000)
                        samples["total_ms"].append((arrived - began) * 1000)

                # Warm-up (not measured): every visitor opens its ticket, the worker and pools warm up.
                await asyncio.gather(*(round_trip(v, False) for v in range(visitors)))

                async def lane(k: int) -> None:
                    # lanes never share a visitor: visitors is a multiple of concurrency
                    pauses = random.Random(k)
                    for n in range(k, round_trips, concurrency):
                        # a random pause, so sends do not fall into step with the worker's polling
                        await asyncio.sleep(pauses.uniform(0, think))
                        await round_trip(n, True)

                started = time.perf_counter()
                await asyncio.gather(*(lane(k) for k in range(concurrency)))
                elapsed = time.perf_counter() - started
            finally:
                for tab in tabs:
                    await tab.close()
        stored = await setup.count("SELECT count(*) FROM messages")
        assert stored == 2 * (round_trips + visitors), (stored, round_trips, visitors)
        assert len(set(tickets.values())) == visitors, tickets
        result = {"round_trips_per_s": round_trips / elapsed}  # pauses included: a load figure, not a capacity
        for metric, values in samples.items():
            values.sort()
            result[f"{metric}_p50"] = statistics.median(values)
            result[f"{metric}_p95"] = values[max(0, int(len(values) * 0.95) - 1)]
        return result


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--round-trips", type=int, default=300)
    parser.add_argument("--visitors", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=1, help="round trips in flight at once")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--think", type=float, default=0.1,
                        help="most seconds a visitor pauses before each round trip (uniformly random; not timed)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds any one wait may take")
    args = parser.parse_args()
    if args.visitors % args.concurrency or not 0 < args.round_trips <= 10_000:
        parser.error("--visitors must be a multiple of --concurrency; --round-trips 1..10000")
    results = [await one_run(args.round_trips, args.visitors, args.concurrency, args.think, args.timeout)
               for _ in range(args.runs)]
    report(results, f"{args.round_trips} round trips, {args.visitors} visitors, {args.concurrency} in flight, "
           f"pauses 0-{args.think} s, 1 web + 1 worker process, arq poll_delay {poll_delay()} s",
           keys=("round_trips_per_s",), digits=1)
    for metric in METRICS:
        p50 = statistics.median(r[f"{metric}_p50"] for r in results)
        p95 = statistics.median(r[f"{metric}_p95"] for r in results)
        print(f"  {metric}: p50 {p50:.1f}  p95 {p95:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
