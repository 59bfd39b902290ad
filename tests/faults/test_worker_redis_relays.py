"""The worst afternoon for the delivery side, in one run of real processes: web-form tickets arrive while the mail
relay and the SMS gateway are down, so acknowledgements queue and retry; their regulation's step comes due
(an email and an SMS to the production manager); Redis is flushed, then killed and started again empty, so every
deadline timer and every queued delivery job is gone; the relays come back, slow; and the worker is SIGKILLed in
the middle of it and replaced. Afterwards every step fired once, and every notification arrived exactly once."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections import Counter
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

from tests.conftest import free_port, wait_healthy
from tests.fake_sms import FakeSmsGateway
from tests.fakes import SmtpSink
from tests.faults.services import Roles, eventually, private_postgres, private_redis, roles

TICKETS = 24
TIME_LIMIT = 200.0
"""After a restart the worker's sweepers catch up at once; a claim still fresh then waits for the next minute's."""
REGULATIONS = """\
contacts:
  production_manager: {email: pm@example.com, phone: "+447700900001"}
regulations:
  - name: request
    steps:
      - {name: alert, after: 3s, unless: resolved, notify: [{to: production_manager, by: [email, sms]}]}
"""


async def _post_forms(base: str) -> list[int]:
    numbers = []
    async with aiohttp.ClientSession() as session:
        for n in range(TICKETS):
            body = {"name": f"Client {n}", "email": f"client{n}@example.com", "subject": f"Problem {n}",
                    "message": f"Problem number {n}"}
            async with session.post(f"{base}/api/v1/webform", json=body, headers={"Idempotency-Key": f"k{n}"}) as r:
                assert r.status == 201, await r.text()
                numbers.append((await r.json())["number"])
    return numbers


async def test_steps_fire_and_notifications_arrive_once_through_relay_outages_redis_loss_and_a_killed_worker(
    tmp_path: Path,
) -> None:
    regulations = tmp_path / "regulations.yaml"
    regulations.write_text(REGULATIONS)
    relay, gateway = SmtpSink(), FakeSmsGateway(port=free_port())
    relay.port = free_port()  # both down for now: nothing listens on their ports yet
    deadline = time.monotonic() + TIME_LIMIT
    with private_postgres() as postgres, private_redis() as redis_server:
        http_port = free_port()
        with roles(postgres.url, redis_server.url, SWITCHBOARD_HTTP_PORT=str(http_port),
                   SWITCHBOARD_HTTP_FORM_RATE_LIMIT="0", SWITCHBOARD_REGULATIONS=str(regulations),
                   SWITCHBOARD_SMTP_RELAY_URL=relay.url, SWITCHBOARD_SMS_GATEWAY_URL=gateway.url,
                   SWITCHBOARD_SMS_TOKEN=gateway.token, SWITCHBOARD_NOTIFIER_FIRST_RETRY_SECONDS="1",
                   SWITCHBOARD_NOTIFIER_MAX_RETRY_SECONDS="3", SWITCHBOARD_NOTIFIER_MAX_ATTEMPTS="200",
                   SWITCHBOARD_NOTIFIER_STALE_AFTER_SECONDS="5",
                   SWITCHBOARD_NOTIFIER_ASSIGNMENT_EMAILS="false") as deployment:
            assert deployment.cli("agent", "add", "Anna", "--email", "anna@example.com",
                                  "--capacity", "100").returncode == 0
            deployment.start("web")
            deployment.start("worker", "worker-1")
            base = f"http://127.0.0.1:{http_port}"
            async with aiohttp.ClientSession() as session:
                await wait_healthy(session, base, timeout=60)
            numbers = await _post_forms(base)

            # Redis loses everything twice: flushed, then killed and started again, empty.
            await asyncio.sleep(1.0)
            client = aioredis.from_url(redis_server.url)
            await client.flushall()
            await client.aclose()
            await asyncio.sleep(1.0)
            redis_server.kill()
            await asyncio.sleep(2.0)
            redis_server.start()
            assert deployment.alive("worker-1"), deployment.log("worker-1")[-3000:]

            # The relays come back, the gateway slow; the worker dies mid-delivery and another takes over.
            gateway.stall(0.3, times=10_000)
            await gateway.start()
            await relay.start()
            await eventually(lambda: _some(gateway, relay), "the first deliveries", deadline)
            deployment.kill("worker-1", signal.SIGKILL)
            deployment.start("worker", "worker-2")

            seen: dict[str, object] = {}

            async def done() -> bool:
                fired = await postgres.fetch("SELECT count(*) AS n FROM deadlines WHERE status = 'fired'")
                # Sent and known to be: a row the dead worker left `sending` is taken over once its claim is stale
                # (the gateway's idempotency key makes the retry the same SMS).
                unsent = await postgres.fetch("SELECT id, kind, channel, status, attempts, next_attempt_at, "
                                              "last_error FROM outbox WHERE status <> 'sent' ORDER BY id")
                seen.update(fired=fired[0]["n"], unsent=[dict(row) for row in unsent],
                            sms=len(gateway.delivered), mails=len(relay.received))
                return (fired[0]["n"] == TICKETS and not unsent and len(gateway.delivered) >= TICKETS
                        and len(relay.received) >= 2 * TICKETS)

            try:
                await eventually(done, "every step and notification", deadline)
            except AssertionError as exc:  # say what was missing, and what the workers said about it
                raise AssertionError(f"{exc}: {seen}\nworker-2 log:\n{deployment.log('worker-2')[-6000:]}"
                                     f"\nworker-1 log:\n{deployment.log('worker-1')[-3000:]}") from None
            await asyncio.sleep(3.0)  # a duplicate, if any were coming, would arrive now
            await _check_once(postgres, deployment, gateway, relay, numbers)
            await gateway.stop()
            await relay.stop()


async def _some(gateway: FakeSmsGateway, relay: SmtpSink) -> bool:
    return len(gateway.delivered) + len(relay.received) >= 6


async def _check_once(postgres, deployment: Roles, gateway: FakeSmsGateway, relay: SmtpSink,  # type: ignore[no-untyped-def]
                      numbers: list[int]) -> None:
    events = await postgres.fetch("SELECT ticket_id, count(*) AS n FROM events WHERE kind = 'sla_step_fired' "
                                  "GROUP BY ticket_id")
    assert {row["ticket_id"]: row["n"] for row in events} == {n: 1 for n in numbers}

    def ticket_of(text: str) -> int:
        found = re.search(r"#(\d+)", text)
        assert found, text
        return int(found.group(1))

    sms = Counter(ticket_of(s.text) for s in gateway.delivered)
    assert sms == Counter({n: 1 for n in numbers}), f"SMS per ticket: {sms}"
    # Mail: SMTP has no idempotency, so a worker killed after the relay's 250 and before our commit sends that
    # mail again; every copy carries the Message-ID fixed when it was queued, so it is one message to the
    # recipient's mail system. Each notification: one Message-ID, at least one copy; copies beyond one only for
    # mail the killed worker had in flight (at most its max_jobs).
    ids: dict[tuple[str, int], set[str]] = {}
    copies = Counter()
    for mail in relay.received:
        key = ("ack" if mail.rcpt_tos[0].startswith("client") else mail.rcpt_tos[0],
               ticket_of(str(mail.message["Subject"])))
        ids.setdefault(key, set()).add(str(mail.message["Message-ID"]))
        copies[key] += 1
    assert set(ids) == {(kind, n) for n in numbers for kind in ("ack", "pm@example.com")}
    assert all(len(found) == 1 for found in ids.values()), ids
    resent = sum(copies.values()) - len(copies)
    assert resent <= 20, f"{resent} mails sent twice: more than the killed worker could have had in flight"
    outbox = await postgres.fetch("SELECT status, count(*) AS n FROM outbox GROUP BY status")
    assert {row["status"]: row["n"] for row in outbox} == {"sent": 3 * len(numbers)}, outbox
