"""Two `switchboard web` processes sharing PostgreSQL/SQLite and Redis: a reply reaches the visitor's
socket whichever process holds it, and every tab of the visitor sees the conversation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from switchboard.bootstrap import Runtime
from switchboard.settings import Settings
from tests.conftest import background_worker, wait_healthy, web_processes
from tickets.models import Role

TIMEOUT = 15.0


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
    settings: Settings, runtime: Runtime, worker: None
) -> None:
    _, token = await runtime.service.add_agent("Boris", "boris@support.example", role=Role.manager)
    agent = {"Authorization": f"Bearer {token}"}
    with web_processes(settings, 2) as (first, second):
        async with aiohttp.ClientSession() as http:
            await asyncio.gather(wait_healthy(http, first), wait_healthy(http, second))
            tab_a = await http.ws_connect(f"{first}/chat/ws")
            await tab_a.send_json({"type": "hello", "token": None})
            visitor_token = (await receive(tab_a, "welcome"))["token"]
            tab_b = await http.ws_connect(f"{second}/chat/ws")
            await tab_b.send_json({"type": "hello", "token": visitor_token})
            await receive(tab_b, "welcome")

            await tab_a.send_json({"type": "message", "id": "p1", "text": "Printer is on fire"})
            ack = await receive(tab_a, "ack")
            mirrored = await receive(tab_b, "message", "in")
            assert mirrored["message"]["text"] == "Printer is on fire"

            number = ack["ticket"]["number"]
            async with http.post(f"{second}/api/v1/tickets/{number}/messages", json={"body": "Unplug it now."},
                                 headers=agent) as response:
                assert response.status == 201, await response.text()
            for tab in (tab_a, tab_b):
                pushed = await receive(tab, "message", "out")
                assert pushed["message"]["text"] == "Unplug it now." and pushed["message"]["author"] == "Boris"
            await tab_a.close()
            await tab_b.close()
