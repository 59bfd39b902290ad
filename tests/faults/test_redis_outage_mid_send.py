"""Issue 26: Redis away for twelve seconds while acknowledgements are on their way to the relay. arq cancels the
jobs of a worker that loses Redis; a delivery cut off between the relay's answer and our record of it left its row
`sending` until the claim went stale (then 600 s), and the sweeper sent that mail again. Here, with the default
`stale_after`, every row is recorded sent soon after the outage, each mail reached the relay once, and no attempt
was abandoned."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import aiohttp

from tests.conftest import free_port, wait_healthy
from tests.fakes import SmtpSink
from tests.faults.services import eventually, private_postgres, private_redis, roles

TICKETS = 8
OUTAGE_SECONDS = 12.0
SETTLE_LIMIT = 60.0
"""Well under the default `stale_after` (120 s): a row still `sending` then waits for a stale claim."""


async def test_mail_in_flight_through_a_twelve_second_redis_outage_is_recorded_once_and_sent_once(
    tmp_path: Path,
) -> None:
    async with SmtpSink() as relay:
        await _run(relay)


async def _run(relay: SmtpSink) -> None:
    relay.hold()  # the relay takes each mail and keeps its answer: the mail is out, the worker does not know yet
    with private_postgres() as postgres, private_redis() as redis_server:
        http_port = free_port()
        with roles(postgres.url, redis_server.url, SWITCHBOARD_HTTP_PORT=str(http_port),
                   SWITCHBOARD_HTTP_FORM_RATE_LIMIT="0", SWITCHBOARD_SMTP_RELAY_URL=relay.url,
                   SWITCHBOARD_NOTIFIER_ASSIGNMENT_EMAILS="false") as deployment:
            assert deployment.cli("agent", "add", "Anna", "--email", "anna@example.com").returncode == 0
            deployment.start("web")
            deployment.start("worker")
            base = f"http://127.0.0.1:{http_port}"

            async def waited(check, what: str, limit: float) -> None:  # type: ignore[no-untyped-def]
                try:
                    await eventually(check, what, time.monotonic() + limit, pause=0.25)
                except AssertionError as exc:  # what the rows and the worker say
                    rows = await postgres.fetch("SELECT id, status, attempts, updated_at FROM outbox ORDER BY id")
                    raise AssertionError(f"{exc}: {len(relay.received)} at the relay; {[dict(r) for r in rows]}\n"
                                         f"{deployment.log('worker')[-6000:]}") from None

            async with aiohttp.ClientSession() as session:
                await wait_healthy(session, base, timeout=60)
                for n in range(TICKETS):
                    body = {"name": f"Client {n}", "email": f"client{n}@example.com", "subject": f"Problem {n}",
                            "message": f"Problem number {n}"}
                    async with session.post(f"{base}/api/v1/webform", json=body) as response:
                        assert response.status == 201, await response.text()

            async def in_flight() -> bool:
                return len(relay.received) == TICKETS

            await waited(in_flight, "every acknowledgement at the relay", 30)
            redis_server.kill()  # the worker loses Redis with every delivery job waiting for the relay's answer
            await asyncio.sleep(1.0)
            relay.release()  # the relay answers while Redis is away
            await asyncio.sleep(OUTAGE_SECONDS - 1.0)
            redis_server.start()  # back, empty
            assert deployment.alive("worker"), deployment.log("worker")[-3000:]

            async def all_sent() -> bool:
                rows = await postgres.fetch("SELECT status FROM outbox")
                return len(rows) == TICKETS and all(row["status"] == "sent" for row in rows)

            await waited(all_sent, "every row recorded sent", SETTLE_LIMIT)
            await asyncio.sleep(2.0)  # a second copy, if one were coming, would arrive now

            copies = Counter(str(mail.message["Message-ID"]) for mail in relay.received)
            assert len(copies) == TICKETS and set(copies.values()) == {1}, copies
            abandoned = await postgres.fetch("SELECT outbox_id FROM outbox_attempts WHERE outcome = 'abandoned'")
            assert abandoned == []
            attempts = await postgres.fetch("SELECT attempts FROM outbox")
            assert {row["attempts"] for row in attempts} == {1}
