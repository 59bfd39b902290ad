"""Issue 4's Telegram acceptance as a new user tries it: `switchboard serve` with a token and the API base
pointed at a local Bot API server (our fake, speaking the real protocol on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.fakes import FakeTelegram
from tests.integration.test_serve import Serve, cli, http

pytestmark = pytest.mark.embedded_default


async def test_a_telegram_message_becomes_a_routed_ticket_and_the_reply_reaches_the_chat(tmp_path: Path) -> None:
    async with FakeTelegram() as telegram:
        serve = Serve(tmp_path, env={"SWITCHBOARD_TELEGRAM_TOKEN": telegram.token,
                                     "SWITCHBOARD_TELEGRAM_API_BASE": telegram.base_url})
        try:
            await asyncio.to_thread(serve.wait_ready)
            added = await asyncio.to_thread(cli, serve.cwd, serve.env, "agent", "add", "Tanya",
                                            "--email", "t@example.com")
            assert added.returncode == 0, added.stderr
            auth = {"Authorization": f"Bearer {added.stdout.strip().splitlines()[-1]}"}

            telegram.push(telegram.message("Не приходит SMS с кодом"))
            ticket = await _eventually(lambda: _first_ticket(serve.base, auth))
            assert ticket["channel"] == "telegram" and ticket["assignee"]["name"] == "Tanya"
            assert ticket["messages"][0]["body_text"] == "Не приходит SMS с кодом"

            body = json.dumps({"body": "Отправили код ещё раз."}).encode()
            status, _ = await asyncio.to_thread(
                http, "POST", f"{serve.base}/api/v1/tickets/{ticket['number']}/messages", data=body,
                headers={**auth, "Content-Type": "application/json"})
            assert status == 201
            sent = await telegram.wait_sent(1, timeout=20)
            assert sent[-1]["text"] == "Отправили код ещё раз." and str(sent[-1]["chat_id"]) == "42"
        finally:
            await asyncio.to_thread(serve.stop)


def _first_ticket(base: str, auth: dict[str, str]) -> dict | None:
    status, body = http("GET", f"{base}/api/v1/tickets", headers=auth)
    items = json.loads(body)["items"] if status == 200 else []
    if not items:
        return None
    return json.loads(http("GET", f"{base}/api/v1/tickets/{items[0]['number']}", headers=auth)[1])


async def _eventually(read, timeout: float = 20.0):
    async with asyncio.timeout(timeout):
        while (value := await asyncio.to_thread(read)) is None:
            await asyncio.sleep(0.2)
    return value
