"""Notifications delivered per second by one `switchboard worker` to a real SMTP relay and an HTTP SMS gateway.

Usage: uv run python bench/notifier_throughput.py [--notifications 2000] [--sms-share 0.5] [--runs 3]
       [--profile json|twilio]

Each run: a fresh PostgreSQL database (migrated) gets `--notifications` queued outbox rows — alerts to staff,
`--sms-share` of them SMS, the rest email with a text and an HTML part — and one delivery job each in Redis
(what the ticket services enqueue after commit). Then one worker process starts and sends them: mail to an
aiosmtpd relay (`tests.fakes.SmtpSink`, one SMTP connection per message, as `RelaySender` sends), SMS to the
fake gateway (`tests.fake_sms.FakeSmsGateway`, the chosen profile), both in this process on 127.0.0.1.
Rate = rows / (last sent_at − first sent_at), from the database, so worker start-up is not counted.
Each database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.deployment import REDIS_URL, asyncpg_dsn, deployment, report  # noqa: E402
from switchboard.bootstrap import redis_settings  # noqa: E402
from tests.fake_sms import FakeSmsGateway  # noqa: E402
from tests.fakes import SmtpSink  # noqa: E402

TEXT = ("[#{n}] Escalation: request/head — Printer on fire\nTicket #{n} \"Printer on fire\"\nClient: Client {n} "
        "<client{n}@example.com>, via webform; priority normal\nWaiting: 1 d 2 h\n\nOpen the ticket: "
        "http://127.0.0.1:8080/desk/tickets/{n}\n")
SMS = "Escalation #{n} request/head: not resolved, waiting 1 d 2 h. Client {n}, webform. http://127.0.0.1:8080/desk/tickets/{n}"


async def fill(dsn: str, count: int, sms_share: float) -> list[int]:
    connection = await asyncpg.connect(dsn)
    try:
        now = datetime.now(UTC)
        sms = int(count * sms_share)
        records = []
        for n in range(count):
            if n < sms:
                records.append(("sla_alert", "sms", f"+4477009{n % 100000:05d}", None, SMS.format(n=n), None, {},
                                f"bench:sms:{n}", "queued", 0, now, now, now))
            else:
                text = TEXT.format(n=n)
                html = "<html><body>" + "".join(f"<p>{line}</p>" for line in text.splitlines()) + "</body></html>"
                records.append(("sla_alert", "email", f"head{n}@example.com", f"[#{n}] Escalation", text, html,
                                {"From": "desk@example.com", "To": f"head{n}@example.com"}, f"bench:mail:{n}",
                                "queued", 0, now, now, now))
        await connection.executemany(
            "INSERT INTO outbox (kind, channel, recipient, subject, body_text, body_html, headers, dedupe_key, status, "
            "attempts, next_attempt_at, created_at, updated_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7::json, $8, $9, $10, $11, $12, $13)",
            [(*r[:6], json.dumps(r[6]), *r[7:]) for r in records])
        return [row["id"] for row in await connection.fetch("SELECT id FROM outbox ORDER BY id")]
    finally:
        await connection.close()


async def one_run(count: int, sms_share: float, profile: str) -> dict[str, float]:
    from arq import create_pool

    from notifier.jobs import ArqJobQueue

    async with SmtpSink() as sink, FakeSmsGateway(profile) as gateway:  # type: ignore[arg-type]
        sms_env = {"SWITCHBOARD_SMS_GATEWAY_URL": gateway.url, "SWITCHBOARD_SMS_PROFILE": profile,
                   "SWITCHBOARD_SMS_TOKEN": "test-token", "SWITCHBOARD_SMS_ACCOUNT_SID": "ACtest",
                   "SWITCHBOARD_SMS_AUTH_TOKEN": "twilio-secret", "SWITCHBOARD_SMS_SENDER": "+447700900100"}
        async with deployment(agents=0, capacity=1, SWITCHBOARD_SMTP_RELAY_URL=sink.url, **sms_env) as setup:
            dsn = asyncpg_dsn(setup.database_url)
            ids = await fill(dsn, count, sms_share)
            redis = await create_pool(redis_settings(REDIS_URL))
            try:
                await redis.flushdb()
                await ArqJobQueue(redis).deliver(ids)
            finally:
                await redis.aclose()
            started = time.monotonic()
            setup.start("worker")
            while await setup.count("SELECT count(*) FROM outbox WHERE status IN ('queued', 'sending')"):
                if time.monotonic() - started > 600:
                    raise SystemExit("not all notifications were sent within 10 minutes")
                await asyncio.sleep(0.2)
            connection = await asyncpg.connect(dsn)
            try:
                first, last, failed = await connection.fetchrow(
                    "SELECT min(sent_at), max(sent_at), count(*) FILTER (WHERE status <> 'sent') FROM outbox")
            finally:
                await connection.close()
        if failed:
            raise SystemExit(f"{failed} notifications did not go out")
        sms = int(count * sms_share)
        if len(gateway.delivered) != sms or len(sink.received) != count - sms:
            raise SystemExit(f"expected {sms} SMS and {count - sms} mails, got {len(gateway.delivered)} and "
                             f"{len(sink.received)}")
    seconds = (last - first).total_seconds()
    return {"per_second": (count - 1) / seconds if seconds else float("inf"), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notifications", type=int, default=2000)
    parser.add_argument("--sms-share", type=float, default=0.5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", choices=["json", "twilio"], default="json")
    args = parser.parse_args()
    results = [asyncio.run(one_run(args.notifications, args.sms_share, args.profile)) for _ in range(args.runs)]
    report(results, f"{args.notifications} notifications ({args.sms_share:.0%} SMS, {args.profile} profile), "
                    "one worker")


if __name__ == "__main__":
    main()
