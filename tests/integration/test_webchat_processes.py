"""Two `switchboard web` processes sharing PostgreSQL/SQLite and Redis: a reply reaches the visitor's
socket whichever process holds it, and every tab of the visitor sees the conversation."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from switchboard.bootstrap import Runtime
from switchboard.settings import Settings
from tests.conftest import background_worker, free_port
from tickets.models import Role

TIMEOUT = 15.0


class WebProcess:
    def __init__(self, settings: Settings, data_dir: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
        env.update({
            "SWITCHBOARD_DATABASE_URL": settings.database_url,
            "SWITCHBOARD_REDIS_URL": settings.redis.url or "",
            "SWITCHBOARD_HTTP_PORT": str(self.port),
            "SWITCHBOARD_DATA_DIR": str(data_dir),
        })
        self.process = subprocess.Popen(
            [sys.executable, "-m", "switchboard.cli", "web"], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )

    async def ready(self, http: aiohttp.ClientSession) -> None:
        async with asyncio.timeout(30):
            while True:
                if self.process.poll() is not None:
                    raise AssertionError(f"web exited {self.process.returncode}: {self.process.stderr.read()}")
                try:
                    async with http.get(f"{self.base}/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def web_processes(settings: Settings, tmp_path: Path) -> Iterator[list[WebProcess]]:
    processes = [WebProcess(settings, tmp_path / f"web{i}") for i in range(2)]
    try:
        yield processes
    finally:
        for process in processes:
            process.stop()


@pytest.fixture
async def worker(runtime: Runtime) -> AsyncIterator[None]:
    async with background_worker(runtime):
        yield


async def receive(ws: aiohttp.ClientWebSocketResponse, kind: str, direction: str | None = None) -> dict[str, Any]:
    async with asyncio.timeout(TIMEOUT):
        while True:
            event = json.loads((await ws.receive()).data)
            if event["type"] == kind and (direction is None or event["message"]["direction"] == direction):
                return event


async def test_a_reply_reaches_the_socket_on_the_other_process(
    web_processes: list[WebProcess], runtime: Runtime, worker: None
) -> None:
    _, token = await runtime.service.add_agent("Boris", "boris@support.example", role=Role.manager)
    agent = {"Authorization": f"Bearer {token}"}
    first, second = web_processes
    async with aiohttp.ClientSession() as http:
        await asyncio.gather(first.ready(http), second.ready(http))
        tab_a = await http.ws_connect(f"{first.base}/chat/ws")
        await tab_a.send_json({"type": "hello", "token": None})
        visitor_token = (await receive(tab_a, "welcome"))["token"]
        tab_b = await http.ws_connect(f"{second.base}/chat/ws")
        await tab_b.send_json({"type": "hello", "token": visitor_token})
        await receive(tab_b, "welcome")

        await tab_a.send_json({"type": "message", "id": "p1", "text": "Printer is on fire"})
        ack = await receive(tab_a, "ack")
        mirrored = await receive(tab_b, "message", "in")
        assert mirrored["message"]["text"] == "Printer is on fire"

        number = ack["ticket"]["number"]
        async with http.post(f"{second.base}/api/v1/tickets/{number}/messages", json={"body": "Unplug it now."},
                             headers=agent) as response:
            assert response.status == 201, await response.text()
        for tab in (tab_a, tab_b):
            pushed = await receive(tab, "message", "out")
            assert pushed["message"]["text"] == "Unplug it now." and pushed["message"]["author"] == "Boris"
        await tab_a.close()
        await tab_b.close()
