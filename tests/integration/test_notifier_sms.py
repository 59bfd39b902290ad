"""SMS end to end: escalation alerts written to the outbox, a real arq worker on real Redis sending them to a fake
gateway on 127.0.0.1 that speaks the generic JSON or the Twilio profile, retries, permanent failures, lost
answers, delivery receipts posted back to the real web app, and the SMS log file when no gateway is set."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer
from arq import cron
from sqlalchemy import select

from notifier.alerts import AlertFacts, Person, StaffAlerts
from notifier.compose import EmailNotifications
from notifier.jobs import sweep_outbox
from notifier.quiet import quiet_window
from notifier.receipts import SMS_STATUS_PATH
from notifier.sms import read_log
from switchboard.bootstrap import Runtime, build
from switchboard.settings import Settings
from switchboard.worker import build_worker
from tests.conftest import REPO, running_workers, with_regulations
from tests.fake_sms import FakeSmsGateway, twilio_signature
from tests.fakes import SmtpSink
from tests.integration.test_regulations_worker import until
from tickets.clock import Clock
from tickets.inbound import Identity, Inbound
from tickets.models import Agent, Outbox, OutboxAttempt, OutboxStatus, Role, Ticket

HEAD_PHONE = "+447700900002"
REGULATIONS = """\
regulations:
  - name: request
    steps:
      - {name: head, after: 1s, unless: resolved, breach: true, notify: [{to: group_head, by: [email, sms]}]}
"""
EVERY_SECOND = set(range(60))


def configured(settings: Settings, tmp_path: Path, *, sms: dict[str, Any] | None = None,
               relay_url: str | None = None, **notifier: Any) -> Settings:
    """The test settings with second-scale regulations, fast retries, and the SMS gateway / relay given."""
    base = with_regulations(settings, tmp_path, REGULATIONS)
    data = base.model_dump()
    data["sms"] = {**data["sms"], **(sms or {})}
    data["smtp"] = {**data["smtp"], "relay_url": relay_url}
    # Retries come every half second here, so the default 8 attempts would give up within ~4 s of an outage: on a
    # loaded machine the first alert gave up before the test brought its gateway back (CI, once).
    data["notifier"] = {**data["notifier"], "first_retry_seconds": 0.2, "max_retry_seconds": 0.5,
                        "max_attempts": 100, **notifier}
    return Settings(**data)


def json_gateway(gateway: FakeSmsGateway, **extra: Any) -> dict[str, Any]:
    return {"gateway_url": gateway.url, "token": "test-token", "status_token": "receipt-token",
            "timeout_seconds": 1.0, **extra}


def twilio_gateway(gateway: FakeSmsGateway, **extra: Any) -> dict[str, Any]:
    return {"gateway_url": gateway.url, "profile": "twilio", "account_sid": "ACtest", "auth_token": "twilio-secret",
            "sender": "+447700900100", "timeout_seconds": 1.0, **extra}


@pytest.fixture
async def gateway() -> AsyncIterator[FakeSmsGateway]:
    async with FakeSmsGateway("json") as server:
        yield server


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    async with SmtpSink() as server:
        yield server


async def started(settings: Settings, clock: Clock) -> Runtime:
    rt = await build(settings, clock=clock)
    await rt.service.add_group("Support", head_email="head@example.com")
    await rt.service.add_agent("Hanna Head", "head@example.com", phone=HEAD_PHONE, role=Role.manager,
                               presence="offline")
    await rt.service.add_agent("Anna", "anna@example.com", capacity=50)
    return rt


@pytest.fixture
async def sms_runtime(settings: Settings, tmp_path: Path, clock: Clock, gateway: FakeSmsGateway,
                      sink: SmtpSink) -> AsyncIterator[Runtime]:
    rt = await started(configured(settings, tmp_path, sms=json_gateway(gateway), relay_url=sink.url), clock)
    try:
        yield rt
    finally:
        await rt.close()


def workers(rt: Runtime, *, sweepers: bool = False) -> Any:
    """The delivery worker and the timer worker `switchboard worker` runs (sweepers every second when asked)."""
    from arq.worker import Worker

    from sla.jobs import sweep_deadlines
    from switchboard.worker import timer_worker_settings

    outbox_crons = [cron(sweep_outbox, second=EVERY_SECOND, unique=True, name="cron:sweep_outbox")] if sweepers else []
    timer_crons = [cron(sweep_deadlines, second=EVERY_SECOND, unique=True, name="cron:sweep_deadlines")] \
        if sweepers else []
    return running_workers([build_worker(rt, cron_jobs=outbox_crons),
                            Worker(**timer_worker_settings(rt, cron_jobs=timer_crons))])


def form(n: int = 0) -> Inbound:
    return Inbound(channel="webform", identities=(Identity("email", f"client{n}@example.com"),),
                   body_text="The printer is on fire", subject=f"Printer {n}", customer_name=f"Client {n}")


async def sms_rows(rt: Runtime, ticket: int | None = None) -> list[Outbox]:
    async with rt.sessions() as session:
        query = select(Outbox).where(Outbox.channel == "sms").order_by(Outbox.id)
        if ticket is not None:
            query = query.where(Outbox.ticket_id == ticket)
        return list(await session.scalars(query))


async def settled(rt: Runtime, count: int = 1) -> bool:
    rows = await sms_rows(rt)
    return len(rows) >= count and all(r.status not in (OutboxStatus.queued, OutboxStatus.sending) for r in rows)


async def history(rt: Runtime, outbox_id: int) -> list[str]:
    async with rt.sessions() as session:
        return list(await session.scalars(select(OutboxAttempt.outcome).where(OutboxAttempt.outbox_id == outbox_id)
                                          .order_by(OutboxAttempt.id)))


# --- an escalation's alert, by SMS and by email ----------------------------------------------------------


async def test_an_escalation_texts_the_head_once_and_mails_the_ticket_link(
    sms_runtime: Runtime, gateway: FakeSmsGateway, sink: SmtpSink
) -> None:
    rt = sms_runtime
    ticket = (await rt.service.ingest(form(1))).ticket
    async with workers(rt):
        [sms] = await gateway.wait_for(1)
        mails = {m.rcpt_tos: m for m in await sink.wait_for(3)}
        await until(lambda: settled(rt))
    # The client's acknowledgement, Anna's notice of the ticket the router gave her, and the head's alert.
    assert sorted(mails) == [("anna@example.com",), ("client1@example.com",), ("head@example.com",)]
    assert f"[#{ticket.id}] Assigned to you: Printer 1" == str(mails[("anna@example.com",)].message["Subject"])
    mail = mails[("head@example.com",)]
    assert sms.to == HEAD_PHONE and sms.key is not None and sms.key.startswith("sla:")
    assert f"#{ticket.id}" in sms.text and f"/desk/tickets/{ticket.id}" in sms.text and "Client 1" in sms.text
    assert sms.fields["callback_url"] == f"{rt.settings.public_url}{SMS_STATUS_PATH}"
    body = mail.message.get_body(("plain",)).get_content()
    assert f"{rt.settings.public_url}/desk/tickets/{ticket.id}" in body
    assert "Client 1 <client1@example.com>, via webform" in body and "Waiting: " in body
    [row] = await sms_rows(rt, ticket.id)
    assert row.status == OutboxStatus.sent and row.provider_id == sms.id and row.attempts == 1
    assert await history(rt, row.id) == ["sent"]
    assert len(gateway.to(HEAD_PHONE)) == 1


async def test_three_503s_then_the_sms_arrives_exactly_once_and_every_attempt_is_shown(
    sms_runtime: Runtime, gateway: FakeSmsGateway, client_for: Callable[[Runtime], Any]
) -> None:
    rt = sms_runtime
    gateway.fail(503, times=3)
    ticket = (await rt.service.ingest(form(1))).ticket
    async with workers(rt):
        await gateway.wait_for(1)
        await until(lambda: settled(rt))
    assert len(gateway.delivered) == 1 and [s for s, _ in gateway.requests] == [503, 503, 503, 200]
    [row] = await sms_rows(rt, ticket.id)
    assert row.status == OutboxStatus.sent and row.attempts == 4 and row.last_error is None

    async with client_for(rt) as client:
        manager = await rt.service.add_agent("Mia", "mia@example.com", role=Role.manager)
        response = await client.get(f"/api/v1/tickets/{ticket.id}/notifications?channel=sms",
                                    headers={"Authorization": f"Bearer {manager[1]}"})
        assert response.status == 200
        [item] = (await response.json())["items"]
        agent = await rt.service.add_agent("Pat", "pat@example.com")
        refused = await client.get(f"/api/v1/tickets/{ticket.id}/notifications",
                                   headers={"Authorization": f"Bearer {agent[1]}"})
        assert refused.status == 403
    assert item["status"] == "sent" and item["recipient"] == HEAD_PHONE and item["attempts"] == 4
    assert [(h["attempt"], h["outcome"]) for h in item["history"]] == [(1, "retry"), (2, "retry"), (3, "retry"),
                                                                       (4, "sent")]
    assert all("503" in h["error"] for h in item["history"][:3])


async def test_an_invalid_number_fails_at_once_with_the_gateways_reason(
    sms_runtime: Runtime, gateway: FakeSmsGateway
) -> None:
    rt = sms_runtime
    gateway.fail(400, times=1)
    await rt.service.ingest(form(1))
    async with workers(rt):
        await until(lambda: settled(rt))
    [row] = await sms_rows(rt)
    assert row.status == OutboxStatus.failed and row.attempts == 1
    assert row.last_error is not None and "400" in row.last_error
    assert await history(rt, row.id) == ["failed"] and gateway.delivered == []


async def test_a_number_no_phone_can_have_never_reaches_the_gateway(
    sms_runtime: Runtime, gateway: FakeSmsGateway
) -> None:
    rt = sms_runtime
    async with rt.sessions.begin() as session:  # typed in by hand long ago, before numbers were checked
        head = await session.scalar(select(Agent).where(Agent.email == "head@example.com"))
        head.phone = "12"
    await rt.service.ingest(form(1))
    async with workers(rt):
        await until(lambda: settled(rt))
    [row] = await sms_rows(rt)
    assert row.status == OutboxStatus.failed and row.last_error is not None and "invalid number" in row.last_error
    assert gateway.requests == []


# --- lost answers, killed workers, a flushed Redis, a gateway down ------------------------------------


async def test_an_answer_lost_after_the_gateway_accepted_is_retried_with_the_same_key_and_sent_once(
    sms_runtime: Runtime, gateway: FakeSmsGateway
) -> None:
    rt = sms_runtime
    gateway.stall(2.0, times=1, accept=True)  # past the 1 s client timeout
    await rt.service.ingest(form(1))
    async with workers(rt):
        await until(lambda: settled(rt), timeout=30)
    [row] = await sms_rows(rt)
    assert row.status == OutboxStatus.sent and row.attempts == 2
    assert len(gateway.delivered) == 1 and gateway.duplicates_suppressed == 1
    assert row.provider_id == gateway.delivered[0].id
    assert await history(rt, row.id) == ["retry", "sent"]


async def test_without_idempotency_a_lost_answer_is_not_resent(
    settings: Settings, tmp_path: Path, clock: Clock, sink: SmtpSink
) -> None:
    async with FakeSmsGateway("json", honour_idempotency=False) as gateway:
        rt = await started(configured(settings, tmp_path, sms=json_gateway(gateway, idempotency_header="none"),
                                      relay_url=sink.url), clock)
        try:
            gateway.stall(2.0, times=1, accept=True)
            await rt.service.ingest(form(1))
            async with workers(rt):
                await until(lambda: settled(rt), timeout=30)
                await asyncio.sleep(1.0)  # a retry, if one were queued, would have come by now
            [row] = await sms_rows(rt)
            assert row.status == OutboxStatus.sent and row.attempts == 1
            assert row.last_error is not None and "not resent" in row.last_error
            assert await history(rt, row.id) == ["unconfirmed"]
            assert len(gateway.delivered) == 1 and len(gateway.requests) == 1

            # The gateway's receipt settles it: the message id comes with our reference.
            async with _client(rt) as client:
                answer = await client.post(SMS_STATUS_PATH, json={
                    "id": gateway.delivered[0].id, "reference": row.dedupe_key, "status": "delivered"},
                    headers={"Authorization": "Bearer receipt-token"})
                assert answer.status == 200, await answer.text()
            [row] = await sms_rows(rt)
            assert row.status == OutboxStatus.delivered and row.provider_id == gateway.delivered[0].id
        finally:
            await rt.close()


async def test_a_flushed_redis_and_a_gateway_down_for_a_while_still_deliver_each_alert_once(
    sms_runtime: Runtime, gateway: FakeSmsGateway
) -> None:
    rt = sms_runtime
    tickets = [(await rt.service.ingest(form(n))).ticket for n in range(3)]
    port = gateway.port
    await gateway.stop()  # connection refused for a while
    async with workers(rt, sweepers=True):
        await until(lambda: _tried(rt, 3), timeout=30)
        client = aioredis.from_url(rt.settings.redis.url)
        try:
            await client.flushdb()  # every queued retry is gone; the outbox rows are not
        finally:
            await client.aclose()
        async with FakeSmsGateway("json", port=port) as back:
            await back.wait_for(3, timeout=30)
            await until(lambda: settled(rt, 3), timeout=30)
            await asyncio.sleep(1.5)  # two more sweeps: nothing is sent again
    assert sorted(s.key for s in back.delivered) == sorted(r.dedupe_key for r in await sms_rows(rt))
    assert len(back.delivered) == 3 and back.duplicates_suppressed == 0
    for row in await sms_rows(rt):
        assert row.ticket_id in {t.id for t in tickets} and row.status == OutboxStatus.sent
        outcomes = await history(rt, row.id)
        assert outcomes[-1] == "sent" and set(outcomes[:-1]) == {"retry"}


async def _tried(rt: Runtime, count: int) -> bool:
    rows = await sms_rows(rt)
    return len(rows) >= count and all(r.attempts >= 1 for r in rows)


async def test_a_worker_killed_mid_send_never_sends_a_second_copy(
    settings: Settings, tmp_path: Path, clock: Clock, gateway: FakeSmsGateway, sink: SmtpSink
) -> None:
    cfg = configured(settings, tmp_path, sms=json_gateway(gateway, timeout_seconds=30), relay_url=sink.url,
                     stale_after_seconds=2)
    rt = await started(cfg, clock)
    env = {**os.environ, "SWITCHBOARD_DATABASE_URL": cfg.database_url, "SWITCHBOARD_REDIS_URL": cfg.redis.url or "",
           "SWITCHBOARD_DATA_DIR": str(cfg.data_dir), "SWITCHBOARD_REGULATIONS": str(cfg.regulations),
           "SWITCHBOARD_SMTP_RELAY_URL": sink.url, "SWITCHBOARD_HTTP_PORT": str(cfg.http.port),
           **{f"SWITCHBOARD_SMS_{k.upper()}": str(v) for k, v in json_gateway(gateway, timeout_seconds=30).items()},
           "SWITCHBOARD_NOTIFIER_STALE_AFTER_SECONDS": "2", "SWITCHBOARD_NOTIFIER_FIRST_RETRY_SECONDS": "0.2"}
    worker = None
    try:
        gateway.stall(60, times=1, accept=True)  # accepted, and the answer never comes: the worker dies waiting
        await rt.service.ingest(form(1))
        worker = subprocess.Popen([sys.executable, "-m", "switchboard.cli", "worker"], cwd=REPO, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await gateway.wait_for(1, timeout=30)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        [row] = await sms_rows(rt)
        assert row.status == OutboxStatus.sending and row.attempts == 1  # claimed, then nobody came back
        await asyncio.sleep(2.5)  # the claim goes stale (SWITCHBOARD_NOTIFIER_STALE_AFTER_SECONDS=2)

        # Another worker: its outbox sweeper (at start) takes the stale claim over and resends with the same key;
        # started before the claim was stale, it would wait for the sweeper's next minute.
        worker = subprocess.Popen([sys.executable, "-m", "switchboard.cli", "worker"], cwd=REPO, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await until(lambda: settled(rt), timeout=60)
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            # In a thread: a worker finishing a delivery to a fake served by this loop needs the loop to answer.
            await asyncio.to_thread(worker.wait, 20)
        await rt.close()
    [row] = await sms_rows(rt)
    assert row.status == OutboxStatus.sent and row.attempts == 2
    assert len(gateway.delivered) == 1 and gateway.duplicates_suppressed == 1
    assert await history(rt, row.id) == ["abandoned", "sent"]


# --- the Twilio profile and delivery receipts --------------------------------------------------------------


def _client(rt: Runtime) -> TestClient[Any, Any]:
    """The real web app on the port the settings' public URL names (receipts are signed for that URL)."""
    from switchboard.webapp import create_app

    return TestClient(TestServer(create_app(rt), host="127.0.0.1", port=rt.settings.http.port))


@pytest.fixture
def client_for() -> Callable[[Runtime], TestClient[Any, Any]]:
    return _client


async def test_twilio_profile_sends_form_encoded_and_its_signed_receipt_marks_delivered(
    settings: Settings, tmp_path: Path, clock: Clock, sink: SmtpSink
) -> None:
    async with FakeSmsGateway("twilio") as gateway:
        rt = await started(configured(settings, tmp_path, sms=twilio_gateway(gateway), relay_url=sink.url), clock)
        try:
            gateway.fail(429, times=1, retry_after=1)
            await rt.service.ingest(form(1))
            async with workers(rt), _client(rt) as client:
                [sms] = await gateway.wait_for(1, timeout=20)
                await until(lambda: settled(rt))
                assert sms.fields["From"] == "+447700900100" and sms.key is not None
                assert sms.fields["StatusCallback"] == f"{rt.settings.public_url}{SMS_STATUS_PATH}"
                [row] = await sms_rows(rt)
                assert row.provider_id == sms.id and row.provider_id.startswith("SM")
                assert row.next_attempt_at - row.created_at >= timedelta(seconds=1)  # Retry-After was honoured

                assert await gateway.send_receipt(sms.id, "delivered") == 200
                [row] = await sms_rows(rt)
                assert row.status == OutboxStatus.delivered

                forged = {"MessageSid": sms.id, "MessageStatus": "failed", "AccountSid": "ACtest"}
                bad = await client.post(SMS_STATUS_PATH, data=forged,
                                        headers={"X-Twilio-Signature": twilio_signature("wrong", "x", forged)})
                assert bad.status == 401
            [row] = await sms_rows(rt)
            assert row.status == OutboxStatus.delivered
            assert await history(rt, row.id) == ["retry", "sent", "delivered"]
        finally:
            await rt.close()


async def test_json_receipts_need_the_status_token_and_report_undelivered(
    sms_runtime: Runtime, gateway: FakeSmsGateway
) -> None:
    rt = sms_runtime
    await rt.service.ingest(form(1))
    async with workers(rt):
        [sms] = await gateway.wait_for(1)
        await until(lambda: settled(rt))
    async with _client(rt) as client:
        missing = await client.post(SMS_STATUS_PATH, json={"id": sms.id, "status": "delivered"})
        assert missing.status == 401
        unknown = await client.post(SMS_STATUS_PATH, json={"id": "nope", "status": "delivered"},
                                    headers={"Authorization": "Bearer receipt-token"})
        assert unknown.status == 404
        empty = await client.post(SMS_STATUS_PATH, json={"id": sms.id},
                                  headers={"Authorization": "Bearer receipt-token"})
        assert empty.status == 422
        assert await gateway.send_receipt(sms.id, "undelivered", error="handset off") == 200
    [row] = await sms_rows(rt)
    assert row.status == OutboxStatus.failed and row.last_error == "the gateway reports undelivered: handset off"


# --- no gateway: the SMS log; quiet hours ----------------------------------------------------------------


async def test_without_a_gateway_sms_go_to_the_log_file_and_the_cli_lists_them(
    settings: Settings, tmp_path: Path, clock: Clock, sink: SmtpSink
) -> None:
    cfg = configured(settings, tmp_path, relay_url=sink.url)
    rt = await started(cfg, clock)
    try:
        ticket = (await rt.service.ingest(form(1))).ticket
        async with workers(rt):
            await until(lambda: settled(rt))
    finally:
        await rt.close()
    [entry] = read_log(cfg.data_dir / "sms-log.jsonl")
    assert entry["to"] == HEAD_PHONE and f"#{ticket.id}" in entry["text"] and entry["segments"] <= 2
    env = {**os.environ, "SWITCHBOARD_DATABASE_URL": cfg.database_url, "SWITCHBOARD_DATA_DIR": str(cfg.data_dir)}
    listed = subprocess.run([sys.executable, "-m", "switchboard.cli", "notifications", "list", "--channel", "sms",
                             "--history"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert HEAD_PHONE in lines[0] and "sent" in lines[0] and entry["id"] in lines[0]
    assert "attempt 1  sent" in lines[1]


async def test_quiet_hours_hold_a_warning_sms_until_morning_but_never_an_escalation(runtime: Runtime) -> None:
    alerts = StaffAlerts(EmailNotifications(runtime.settings), "desk@example.com", "http://desk.example",
                         quiet_hours=quiet_window("22:00-08:00"), timezone="Europe/London")
    ticket = (await runtime.service.ingest(form(1))).ticket
    night = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
    person = Person("Anna", phone="+447700900003", language="ru")
    due = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)
    async with runtime.sessions.begin() as session:
        ticket = await session.get_one(Ticket, ticket.id)
        warning = await alerts.queue(session, ticket, person, "sms", AlertFacts("warning", "request", "w", "replied",
                                     due), dedupe_key="q:warning", now=night)
        urgent = await alerts.queue(session, ticket, person, "sms", AlertFacts("escalation", "request", "e",
                                    "processed", due), dedupe_key="q:urgent", now=night)
    async with runtime.sessions() as session:
        held, sent = await session.get_one(Outbox, warning), await session.get_one(Outbox, urgent)
    assert held.next_attempt_at == datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    assert sent.next_attempt_at == night
    assert held.body_text.startswith("Предупреждение №") and "не получила ответ" in held.body_text
    assert sent.body_text.startswith("Эскалация №")


def test_receipts_of_the_fake_gateway_are_signed_as_twilio_signs() -> None:
    from notifier.receipts import signed_by_twilio

    params = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    signature = twilio_signature("secret", "https://desk.example/api/v1/notifier/sms/status", params)
    assert signed_by_twilio("secret", "https://desk.example/api/v1/notifier/sms/status", params, signature)
    assert not signed_by_twilio("secret", "https://other.example/api/v1/notifier/sms/status", params, signature)
    assert not signed_by_twilio("secret", "https://desk.example/api/v1/notifier/sms/status", params, None)
