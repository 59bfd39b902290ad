"""Telegram webhook ingest: updates/s accepted by `POST /telegram/webhook` only after they were committed.

Each update is a distinct client's text message (a new customer card, ticket, message, routing, audit), sent
with the right secret header to one `switchboard web` process with a bot token set. Ingesting a text
message does not call the Bot API; its base points at an unused 127.0.0.1 port so nothing leaves the host.
For scale, the same run measures a bare aiohttp server that only checks the secret and parses the update
with aiogram (`Update.model_validate`), and the raw limit (bench/raw_limit.py) on the same PostgreSQL.
Usage: uv run python bench/telegram_webhook.py [--updates 2000] [--concurrency 32] [--runs 3]
Needs PostgreSQL (BENCH_PG_URL) and Redis (BENCH_REDIS_URL); traffic goes only to 127.0.0.1 and stops
after --updates requests per server.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.deployment import deployment, drive, report  # noqa: E402
from bench.raw_limit import raw_limit  # noqa: E402
from channels.chat.telegram.bot import webhook_secret  # noqa: E402
from channels.chat.telegram.webhook import PATH, SECRET_HEADER  # noqa: E402
from switchboard.settings import TelegramSettings  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.integration.test_concurrency import wait_healthy  # noqa: E402

TOKEN = "123456:BENCH-token"
TEXT = ("Здравствуйте! Не проходит оплата картой в приложении, пишет «операция отклонена». "
        "Заказ 55123, пробовал дважды, деньги не списались. Подскажите, что делать? ") * 2

BARE_SERVER = textwrap.dedent("""
    import hmac, sys
    from aiohttp import web
    from aiogram.types import Update
    secret = sys.argv[2].encode()
    async def handle(request):
        if not hmac.compare_digest(request.headers.get("X-Telegram-Bot-Api-Secret-Token", "").encode(), secret):
            return web.json_response({"error": "secret"}, status=401)
        Update.model_validate(await request.json())
        return web.json_response({"ok": True})
    async def healthz(request):
        return web.Response(text="ok")
    app = web.Application()
    app.router.add_post("/telegram/webhook", handle)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
""")


def update(n: int) -> dict[str, Any]:
    """A private-chat text message from client n (distinct user, chat, update and message ids)."""
    user = {"id": 500_000 + n, "is_bot": False, "first_name": "Client", "last_name": str(n), "language_code": "ru"}
    return {"update_id": 10_000 + n, "message": {
        "message_id": 1 + n, "date": 1_790_000_000, "from": user,
        "chat": {"id": user["id"], "type": "private", "first_name": "Client"}, "text": f"{TEXT}#{n}"}}


async def blast(session: aiohttp.ClientSession, url: str, count: int, concurrency: int,
                secret: str) -> dict[str, float]:
    bodies = [update(n) for n in range(count)]

    async def post(n: int) -> None:
        async with session.post(f"{url}{PATH}", json=bodies[n], headers={SECRET_HEADER: secret}) as response:
            assert response.status == 200, (response.status, await response.text())
            await response.read()

    return await drive(count, concurrency, post)


async def one_run(count: int, concurrency: int) -> dict[str, float]:
    nowhere = free_port()  # the Bot API base: nothing listens there, and ingest never calls it
    secret = webhook_secret(TelegramSettings(token=TOKEN))
    async with deployment(agents=5, capacity=count, SWITCHBOARD_TELEGRAM_TOKEN=TOKEN,
                          SWITCHBOARD_TELEGRAM_API_BASE=f"http://127.0.0.1:{nowhere}") as setup:
        ours, bare = free_port(), free_port()
        setup.start("web", SWITCHBOARD_HTTP_PORT=str(ours))
        setup.processes.append(subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(bare), secret],
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            for port in (ours, bare):
                await wait_healthy(session, f"http://127.0.0.1:{port}")
            bare_result = await blast(session, f"http://127.0.0.1:{bare}", count, concurrency, secret)
            our_result = await blast(session, f"http://127.0.0.1:{ours}", count, concurrency, secret)
        stored = await setup.count("SELECT count(*) FROM messages WHERE channel = 'telegram' AND direction = 'in'")
        assert stored == count, (stored, count)
    raw = await raw_limit(3000, concurrency)
    return {"updates_per_s": our_result["per_s"], "p50_ms": our_result["p50_ms"], "p99_ms": our_result["p99_ms"],
            "bare_parse_per_s": bare_result["per_s"], "ratio": our_result["per_s"] / bare_result["per_s"],
            "raw_txn_per_s": raw, "raw_ratio": our_result["per_s"] / raw}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = [await one_run(args.updates, args.concurrency) for _ in range(args.runs)]
    report(results, f"{args.updates} text updates, {args.concurrency} clients, 1 web process")


if __name__ == "__main__":
    asyncio.run(main())
