"""PostgreSQL dies (an immediate stop: connections cut mid-transaction) and comes back while web-form posts, SMTP
mail and Telegram webhook calls stream in at once. Senders behave as real ones do: a web client retries on 503
or a broken connection with the same Idempotency-Key, a mail server retries on 451 or a dropped session, Telegram
repeats a call answered with anything but 2xx. Afterwards every item exists exactly once, and each sender was
refused at least once (the outage was felt, and nothing was acknowledged that was not stored)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import aiohttp
import aiosmtplib

from channels.chat.telegram.bot import webhook_secret
from channels.chat.telegram.webhook import PATH, SECRET_HEADER
from switchboard.settings import TelegramSettings
from tests.conftest import free_port, wait_healthy
from tests.faults.services import _wait_port, private_postgres, private_redis, roles

ITEMS = 120
"""Per channel: with three channels at once on 2 cores, a few seconds of traffic either side of the outage."""
CONCURRENCY = 6
OUTAGE_SECONDS = 3.0
TIME_LIMIT = 240.0
TOKEN = "424242:FAULT-token"


@dataclass
class Sender:
    channel: str
    send: Callable[[int], Awaitable[bool]]
    """Deliver item n once: True when acknowledged, False when refused in a way the sender retries."""
    accepted: set[int] = field(default_factory=set)
    refusals: Counter[str] = field(default_factory=Counter)

    async def run(self, stop_at: float) -> None:
        pending = iter(range(ITEMS))

        async def lane() -> None:
            for n in pending:
                while not await self._attempt(n):
                    if time.monotonic() > stop_at:
                        raise AssertionError(f"{self.channel}: item {n} never accepted; refusals {self.refusals}")
                    await asyncio.sleep(0.2)
                self.accepted.add(n)

        await asyncio.gather(*(lane() for _ in range(CONCURRENCY)))

    async def _attempt(self, n: int) -> bool:
        try:
            if await self.send(n):
                return True
            self.refusals["refused"] += 1
        except (TimeoutError, aiohttp.ClientError, aiosmtplib.SMTPException, OSError) as exc:
            self.refusals[type(exc).__name__] += 1
        return False


def webform(session: aiohttp.ClientSession, base: str) -> Sender:
    async def send(n: int) -> bool:
        body = {"name": f"Client {n}", "email": f"form{n}@example.com", "subject": f"Form {n}",
                "message": f"Web form message {n}"}
        async with session.post(f"{base}/api/v1/webform", json=body, headers={"Idempotency-Key": f"fault-{n}"},
                                timeout=aiohttp.ClientTimeout(total=20)) as response:
            if response.status >= 500:
                return False
            assert response.status in (200, 201), (response.status, await response.text())
            return True

    return Sender("webform", send)


def smtp(port: int) -> Sender:
    async def send(n: int) -> bool:
        message = EmailMessage()
        message["From"], message["To"] = f"mail{n}@example.org", "support@example.com"
        message["Subject"], message["Message-ID"] = f"Mail {n}", f"<fault-{n}@example.org>"
        message.set_content(f"Mail message {n}")
        try:
            await aiosmtplib.send(message, hostname="127.0.0.1", port=port, timeout=20)
        except aiosmtplib.SMTPResponseException as exc:
            assert 400 <= exc.code < 500, f"mail {n} refused for good: {exc.code} {exc.message}"  # 5xx is a loss
            return False
        return True

    return Sender("email", send)


def telegram(session: aiohttp.ClientSession, base: str) -> Sender:
    secret = webhook_secret(TelegramSettings(token=TOKEN))

    async def send(n: int) -> bool:
        user = {"id": 700_000 + n, "is_bot": False, "first_name": "Client", "language_code": "en"}
        update = {"update_id": 90_000 + n, "message": {"message_id": 1, "date": 1_790_000_000, "from": user,
                                                       "chat": {"id": user["id"], "type": "private"},
                                                       "text": f"Telegram message {n}"}}
        async with session.post(f"{base}{PATH}", json=update, headers={SECRET_HEADER: secret},
                                timeout=aiohttp.ClientTimeout(total=20)) as response:
            return 200 <= response.status < 300

    return Sender("telegram", send)


async def test_every_item_sent_through_a_database_restart_is_stored_exactly_once() -> None:
    with private_postgres() as postgres, private_redis() as redis:
        http_port, smtp_port = free_port(), free_port()
        with roles(postgres.url, redis.url, SWITCHBOARD_HTTP_PORT=str(http_port),
                   SWITCHBOARD_SMTP_PORT=str(smtp_port), SWITCHBOARD_HTTP_FORM_RATE_LIMIT="0",
                   SWITCHBOARD_SMTP_SENDER_RATE_LIMIT="0", SWITCHBOARD_TELEGRAM_TOKEN=TOKEN,
                   SWITCHBOARD_TELEGRAM_API_BASE=f"http://127.0.0.1:{free_port()}") as deployment:
            assert deployment.cli("agent", "add", "Anna", "--email", "anna@example.com",
                                  "--capacity", "1000").returncode == 0
            deployment.start("web")
            deployment.start("smtp")
            base = f"http://127.0.0.1:{http_port}"
            async with aiohttp.ClientSession() as session:
                await wait_healthy(session, base, timeout=60)
                await asyncio.to_thread(_wait_port, smtp_port)
                senders = [webform(session, base), smtp(smtp_port), telegram(session, base)]
                stop_at = time.monotonic() + TIME_LIMIT
                traffic = asyncio.gather(*(s.run(stop_at) for s in senders))

                # The outage, once every channel has some items in and the fastest a quarter of its own (the web
                # form's receipt is far quicker than a mail's: waiting for a quarter of each, it had finished):
                # the database dies and comes back.
                async with asyncio.timeout(TIME_LIMIT):
                    while min(len(s.accepted) for s in senders) < 1 or \
                            max(len(s.accepted) for s in senders) < ITEMS // 4:
                        await asyncio.sleep(0.05)
                await asyncio.to_thread(postgres.stop, "immediate")
                await asyncio.sleep(OUTAGE_SECONDS)
                await asyncio.to_thread(postgres.start)
                await traffic

            assert deployment.alive("web") and deployment.alive("smtp"), "a role died with the database"
            for sender in senders:
                assert sender.accepted == set(range(ITEMS)), sender.channel
                assert sum(sender.refusals.values()) > 0, f"{sender.channel} never felt the outage"
            await _exactly_once(postgres, {
                "webform": {f"key:fault-{n}" for n in range(ITEMS)},  # the form channel prefixes the key
                "email": {f"<fault-{n}@example.org>" for n in range(ITEMS)},
                "telegram": {f"{700_000 + n}:1" for n in range(ITEMS)},
            })


async def _exactly_once(postgres: Any, expected: dict[str, set[str]]) -> None:
    for channel, keys in expected.items():
        rows = await postgres.fetch("SELECT external_id, count(*) AS n FROM messages WHERE channel = $1 "
                                    "AND direction = 'in' GROUP BY external_id", channel)
        stored = {row["external_id"]: row["n"] for row in rows}
        assert set(stored) == keys, (channel, sorted(set(stored) ^ keys)[:10])
        assert {n for n in stored.values()} == {1}, (channel, [k for k, n in stored.items() if n > 1][:10])
        tickets = await postgres.fetch("SELECT count(*) AS n FROM tickets WHERE channel = $1", channel)
        assert tickets[0]["n"] == len(keys), channel  # one client each: one ticket each, none twice
