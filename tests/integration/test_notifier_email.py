"""Outbound email end to end: outbox rows written with the ticket change, a real arq worker on real Redis
delivering them to a real SMTP relay on 127.0.0.1 (or the .eml sink), retries, failures and the sweeper."""

from __future__ import annotations

import asyncio
import email.policy
from collections.abc import AsyncIterator
from datetime import timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import aiosmtplib
import pytest
from aiohttp.test_utils import TestClient, TestServer
from arq.constants import in_progress_key_prefix
from sqlalchemy import select, update

from channels.email.smtp import InboundMailHandler, MailboxConfig, start_smtp_server
from notifier.delivery import Deliverer
from notifier.jobs import job_id
from notifier.senders import RelayConfig, list_sink
from switchboard.bootstrap import Runtime, build, build_service
from switchboard.settings import Settings
from switchboard.worker import build_worker, worker_settings
from tests.fakes import SmtpSink
from tickets.clock import Clock
from tickets.inbound import Identity, Inbound
from tickets.models import Agent, DeliveryStatus, Event, Outbox, OutboxStatus, Role, Ticket
from web.ratelimit import RateLimiter

CLIENT = "client@example.com"
SUPPORT = "support@example.com"


def client_mail(
    message_id: str = "<c1@client.example>",
    *,
    sender: str = CLIENT,
    subject: str = "Принтер",
    body: str = "Принтер не печатает.",
    references: tuple[str, ...] = (),
    **kwargs: Any,
) -> Inbound:
    return Inbound(
        channel="email",
        identities=(Identity("email", sender.lower()),),
        subject=subject,
        body_text=body,
        external_id=message_id,
        meta={"from": sender.lower(), "recipient": SUPPORT, "references": list(references), "message_id": message_id},
        **kwargs,
    )


def with_relay(settings: Settings, relay_url: str | None) -> Settings:
    """With this relay, and without assignment notices to agents (these tests count the client's mail)."""
    return settings.model_copy(update={"smtp": settings.smtp.model_copy(update={"relay_url": relay_url}),
                                       "notifier": settings.notifier.model_copy(update={"assignment_emails": False})})


async def start(settings: Settings, clock: Clock) -> Runtime:
    """A runtime whose retries come after a fraction of a second instead of 30 s (and no assignment notices)."""
    runtime = await build(with_relay(settings, settings.smtp.relay_url), clock=clock)
    assert runtime.deliverer is not None
    runtime.deliverer = Deliverer(
        runtime.store, runtime.clock, runtime.deliverer.sender, renderer=runtime.deliverer.renderer,
        first_retry=timedelta(milliseconds=200), max_retry=timedelta(seconds=1),
    )
    return runtime


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    async with SmtpSink() as server:
        yield server


@pytest.fixture
async def mail_runtime(settings: Settings, clock: Clock, sink: SmtpSink) -> AsyncIterator[Runtime]:
    runtime = await start(with_relay(settings, sink.url), clock)
    try:
        yield runtime
    finally:
        await runtime.close()


@pytest.fixture
async def manager(mail_runtime: Runtime) -> Agent:
    agent, _ = await mail_runtime.service.add_agent("Mia", "mia@support.example", role=Role.manager)
    return agent


async def run_worker(runtime: Runtime, *, cron_jobs: list[Any] | None = None, timeout: float = 30) -> None:
    """A real arq worker in burst mode: runs until the queue (deferred retries included) is empty."""
    worker = build_worker(runtime, burst=True, cron_jobs=cron_jobs or [])
    try:
        await asyncio.wait_for(worker.main(), timeout)
    finally:
        await worker.close()


async def outbox_rows(runtime: Runtime) -> list[Outbox]:
    async with runtime.sessions() as session:
        return list(await session.scalars(select(Outbox).order_by(Outbox.id)))


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None, "expected a text part and an HTML alternative"
    # Text travels with CRLF line ends on the wire; compare it as the agent typed it.
    return text.get_content().replace("\r\n", "\n"), html.get_content().replace("\r\n", "\n")


def header(message: EmailMessage, name: str) -> str:
    return " ".join(str(message[name] or "").split())


# --- acknowledgement, reply, threading -----------------------------------------------------------------


async def test_ack_and_reply_go_out_threaded_and_the_answer_comes_back(
    mail_runtime: Runtime, sink: SmtpSink, manager: Agent
) -> None:
    rt = mail_runtime
    first = await rt.service.ingest(client_mail())
    number = first.ticket.id
    await run_worker(rt)

    [ack] = await sink.wait_for(1)
    assert ack.mail_from == SUPPORT and ack.rcpt_tos == (CLIENT,)
    message = ack.message
    assert header(message, "From") == SUPPORT and header(message, "To") == CLIENT
    assert header(message, "Subject") == f"[#{number}] Принтер"
    assert header(message, "Auto-Submitted") == "auto-replied"
    assert header(message, "In-Reply-To") == "<c1@client.example>"
    assert header(message, "References") == "<c1@client.example>"
    assert header(message, "Message-ID").endswith("@example.com>")
    text, html = parts(message)
    assert f"#{number}" in text and "reply to this mail" in text
    assert f"#{number}" in html and "<p>" in html

    reply = await rt.service.add_message(manager, number, "Проверим сегодня.\nЖдите <звонка>.\n\nС уважением",
                                         internal=False)
    await run_worker(rt)
    received = await sink.wait_for(2)
    assert len(received) == 2
    out = received[1].message
    view = await rt.service.get_ticket(manager, number)
    stored = next(m for m in view.messages if m.id == reply.id)
    assert stored.delivery_status == DeliveryStatus.sent and stored.delivery_error is None
    assert stored.external_id and header(out, "Message-ID") == stored.external_id
    assert stored.meta["in_reply_to"] == "<c1@client.example>" and stored.meta["to"] == CLIENT
    assert header(out, "Subject") == f"Re: [#{number}] Принтер"
    assert header(out, "From") == SUPPORT and header(out, "To") == CLIENT
    assert header(out, "In-Reply-To") == "<c1@client.example>"
    assert header(out, "References") == "<c1@client.example>"
    assert out["Auto-Submitted"] is None
    text, html = parts(out)
    assert text.rstrip("\n") == "Проверим сегодня.\nЖдите <звонка>.\n\nС уважением"
    assert "Ждите &lt;звонка&gt;." in html and "<br>" in html and html.count("<p>") == 2

    # The client answers our reply from their mail program: it joins the ticket, and is not acknowledged again.
    answer = await rt.service.ingest(
        client_mail("<c2@client.example>", subject=f"Re: [#{number}] Принтер", body="Спасибо",
                    references=("<c1@client.example>", stored.external_id), thread_ids=(stored.external_id,))
    )
    assert answer.ticket.id == number and not answer.created
    assert answer.message.thread_reason == f"replies to {stored.external_id} of ticket #{number}"

    # The next reply threads under the client's latest mail, and the subject does not grow another "Re:".
    await rt.service.add_message(manager, number, "Рады помочь", internal=False)
    await run_worker(rt)
    received = await sink.wait_for(3)
    assert len(received) == 3
    latest = received[2].message
    assert header(latest, "Subject") == f"Re: [#{number}] Принтер"
    assert header(latest, "In-Reply-To") == "<c2@client.example>"
    assert header(latest, "References") == f"<c1@client.example> {stored.external_id} <c2@client.example>"
    assert [row.kind for row in await outbox_rows(rt)] == ["ack", "reply", "reply"]
    assert all(row.status == OutboxStatus.sent and row.attempts == 1 for row in await outbox_rows(rt))


async def test_ack_speaks_the_customers_language(mail_runtime: Runtime, sink: SmtpSink) -> None:
    result = await mail_runtime.service.ingest(client_mail(language="ru"))
    await run_worker(mail_runtime)
    [ack] = await sink.wait_for(1)
    text, html = parts(ack.message)
    assert "Спасибо за обращение" in text and f"№{result.ticket.id}" in text
    assert "Спасибо за обращение" in html and 'lang="ru"' in html


async def test_no_ack_when_the_group_does_not_want_one(mail_runtime: Runtime, sink: SmtpSink) -> None:
    await mail_runtime.service.add_group("Quiet", acknowledge=False)
    result = await mail_runtime.service.ingest(client_mail(group="Quiet"))
    assert result.created
    await run_worker(mail_runtime)
    assert await outbox_rows(mail_runtime) == [] and sink.received == []


@pytest.mark.parametrize("sender", ["MAILER-DAEMON@mx.example.net", "postmaster@example.net", "no-reply@shop.example"])
async def test_no_ack_for_automated_senders(mail_runtime: Runtime, sink: SmtpSink, sender: str) -> None:
    result = await mail_runtime.service.ingest(client_mail(sender=sender))
    assert result.created
    await run_worker(mail_runtime)
    assert await outbox_rows(mail_runtime) == [] and sink.received == []


async def test_a_reply_without_any_address_stays_queued(mail_runtime: Runtime, manager: Agent) -> None:
    rt = mail_runtime
    phoned = await rt.service.ingest(
        Inbound(channel="email", identities=(Identity("phone", "+441632960001"),), subject="?", body_text="?",
                external_id="<nobody@client.example>")
    )
    reply = await rt.service.add_message(manager, phoned.ticket.id, "Hello?", internal=False)
    webform = await rt.service.ingest(Inbound(channel="webform", identities=(Identity("email", CLIENT),),
                                              body_text="hi"))
    await rt.service.add_message(manager, webform.ticket.id, "Hi", internal=False)
    # No address for the first; the web form's client gave one, so they get the acknowledgement and the reply.
    assert [(r.ticket_id, r.kind, r.recipient) for r in await outbox_rows(rt)] == [
        (webform.ticket.id, "ack", CLIENT), (webform.ticket.id, "reply", CLIENT)]
    view = await rt.service.get_ticket(manager, phoned.ticket.id)
    assert next(m for m in view.messages if m.id == reply.id).delivery_status == DeliveryStatus.queued


# --- the resolution notice ---------------------------------------------------------------------------


@pytest.fixture
async def inbound_smtp(mail_runtime: Runtime) -> AsyncIterator[int]:
    """The real inbound SMTP server on 127.0.0.1, every recipient into the default group; yields its port."""
    rt = mail_runtime
    limiter = RateLimiter(rt.redis, 0, prefix="ratelimit:mail", window_seconds=3600)
    handler = InboundMailHandler(rt.service, rt.attachments, MailboxConfig({}, 10_000_000), limiter)
    server = await start_smtp_server(handler, "127.0.0.1", 0, max_bytes=10_000_000)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def send_in(port: int, message: EmailMessage) -> str:
    """The client's mail program sends to our inbound server; returns the server's answer to DATA."""
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=10) as smtp:
        errors, reply = await smtp.sendmail(CLIENT, [SUPPORT], message.as_bytes())
    assert not errors, errors
    return reply


def mail_from_client(subject: str, body: str, message_id: str, **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Иван Петров <{CLIENT}>"
    message["To"] = SUPPORT
    message["Subject"] = subject
    message["Message-ID"] = message_id
    for name, value in headers.items():
        message[name] = value
    message.set_content(body)
    return message


async def test_resolving_an_email_ticket_mails_the_client_and_their_reply_reopens_it(
    mail_runtime: Runtime, sink: SmtpSink, inbound_smtp: int
) -> None:
    rt = mail_runtime
    manager, token = await rt.service.add_agent("Mia", "mia@support.example", role=Role.manager)
    auth = {"Authorization": f"Bearer {token}"}
    answer = await send_in(inbound_smtp, mail_from_client("Принтер", "Принтер не печатает уже второй день.",
                                                          "<c1@client.example>"))
    assert "opened ticket #" in answer
    async with rt.sessions() as session:
        [ticket] = list(await session.scalars(select(Ticket)))
    number = ticket.id
    await run_worker(rt)
    await sink.wait_for(1)  # the acknowledgement

    from switchboard.webapp import create_app

    async with TestClient(TestServer(create_app(rt), host="127.0.0.1")) as web:
        response = await web.patch(f"/api/v1/tickets/{number}", json={"status": "resolved"}, headers=auth)
        assert response.status == 200, await response.text()
        await run_worker(rt)
        received = await sink.wait_for(2)
        assert len(received) == 2
        notice = received[1].message
        assert received[1].rcpt_tos == (CLIENT,) and header(notice, "From") == SUPPORT
        assert header(notice, "Subject") == f"Re: [#{number}] Принтер"
        assert header(notice, "In-Reply-To") == "<c1@client.example>"
        assert header(notice, "References") == "<c1@client.example>"
        assert header(notice, "Auto-Submitted") == "auto-replied"
        text, html = parts(notice)
        assert f"№{number}" in text and "решена" in text and "ответьте на это письмо" in text
        assert f"№{number}" in html
        assert [(row.kind, row.status) for row in await outbox_rows(rt)] == [("ack", "sent"), ("resolved", "sent")]

        # The client answers the notice from their mail program: the same ticket, open again, not acknowledged.
        reply = mail_from_client(
            f"Re: {notice['Subject']}", "Нет, всё ещё не печатает.", "<c2@client.example>",
            **{"In-Reply-To": header(notice, "Message-ID"),
               "References": f"{header(notice, 'References')} {header(notice, 'Message-ID')}"})
        answer = await send_in(inbound_smtp, reply)
        assert answer.endswith(f"added to ticket #{number}")
        view = await rt.service.get_ticket(manager, number)
        assert str(view.ticket.status) == "open" and view.ticket.resolved_at is None
        assert [e.kind for e in view.events].count("reopened") == 1

        # Resolved again: a second notice (one per resolution), threaded under the client's latest mail.
        response = await web.patch(f"/api/v1/tickets/{number}", json={"status": "resolved"}, headers=auth)
        assert response.status == 200
        await run_worker(rt)
        received = await sink.wait_for(3)
        assert len(received) == 3
        assert header(received[2].message, "In-Reply-To") == "<c2@client.example>"
        assert [row.kind for row in await outbox_rows(rt)] == ["ack", "resolved", "resolved"]


async def test_no_resolution_mail_for_other_channels_or_automated_senders(
    mail_runtime: Runtime, sink: SmtpSink, manager: Agent
) -> None:
    rt = mail_runtime
    english = await rt.service.ingest(client_mail(language="en", subject="Printer"))
    robot = await rt.service.ingest(client_mail("<r1@shop.example>", sender="no-reply@shop.example"))
    webform = await rt.service.ingest(Inbound(channel="webform", identities=(Identity("email", "web@example.com"),),
                                              body_text="hi", external_id="form-1"))
    phoned = await rt.service.ingest(Inbound(channel="phone", identities=(Identity("email", "call@example.com"),),
                                             body_text="called", external_id="call-1"))
    for result in (english, robot, webform, phoned):
        await rt.service.update_ticket(manager, result.ticket.id, {"status": "resolved"})
    rows = [(row.ticket_id, row.kind) for row in await outbox_rows(rt)]
    # The web form's client is answered by email (the address the form asked for); a phone ticket is not.
    assert [ticket for ticket, kind in rows if kind == "resolved"] == [english.ticket.id, webform.ticket.id]
    await run_worker(rt)
    [notice] = [mail for mail in await sink.wait_for(4) if "resolved" in parts(mail.message)[0]
                and mail.rcpt_tos == (CLIENT,)]
    text, _ = parts(notice.message)
    assert f"ticket #{english.ticket.id}" in text and "reply to this mail" in text and "reopens" in text


# --- failures and retries ------------------------------------------------------------------------------


async def test_temporary_failure_is_retried_and_delivered_once(mail_runtime: Runtime, sink: SmtpSink) -> None:
    sink.answer("451 4.3.0 Try again later", times=1)
    result = await mail_runtime.service.ingest(client_mail())
    await run_worker(mail_runtime)

    received = await sink.wait_for(1)
    assert len(received) == 1 and sink.refused == [("data", "451 4.3.0 Try again later")]
    assert header(received[0].message, "Subject") == f"[#{result.ticket.id}] Принтер"
    [row] = await outbox_rows(mail_runtime)
    assert row.status == OutboxStatus.sent and row.attempts == 2 and row.last_error is None
    assert row.provider_id == "SINK1"


async def test_temporary_failures_give_up_after_the_last_attempt(
    settings: Settings, clock: Clock, sink: SmtpSink
) -> None:
    sink.answer("421 4.3.2 Shutting down", times=None)
    rt = await start(with_relay(settings, sink.url), clock)
    try:
        assert rt.deliverer is not None
        rt.deliverer.max_attempts = 3
        result = await rt.service.ingest(client_mail())
        await run_worker(rt)
        [row] = await outbox_rows(rt)
        assert row.status == OutboxStatus.failed and row.attempts == 3
        assert row.last_error is not None and row.last_error.startswith("gave up after 3 attempts")
        assert len(sink.refused) == 3 and sink.received == []
        async with rt.sessions() as session:
            kinds = list(await session.scalars(select(Event.kind).where(Event.ticket_id == result.ticket.id)))
        assert kinds[-1] == "delivery_failed"
    finally:
        await rt.close()


async def test_permanent_failure_marks_the_reply_failed(mail_runtime: Runtime, sink: SmtpSink, manager: Agent) -> None:
    rt = mail_runtime
    sink.answer("550 5.1.1 No such user here", times=None, stage="rcpt")
    result = await rt.service.ingest(client_mail())
    reply = await rt.service.add_message(manager, result.ticket.id, "Answer", internal=False)
    await run_worker(rt)

    assert sink.received == [] and len(sink.refused) == 2  # the ack and the reply, each tried once
    rows = await outbox_rows(rt)
    assert [(r.kind, r.status, r.attempts) for r in rows] == [("ack", "failed", 1), ("reply", "failed", 1)]
    view = await rt.service.get_ticket(manager, result.ticket.id)
    failed = next(m for m in view.messages if m.id == reply.id)
    assert failed.delivery_status == DeliveryStatus.failed
    assert failed.delivery_error is not None and "550" in failed.delivery_error and CLIENT in failed.delivery_error
    # The worker sends both at once, so their events come in either order.
    events = {e.data["notification"]: e for e in view.events if e.kind == "delivery_failed"}
    assert sorted(events) == ["ack", "reply"]
    assert events["reply"].data["message_id"] == reply.id and events["reply"].actor == "notifier"
    assert events["reply"].reason is not None and "550" in events["reply"].reason


async def test_unreachable_relay_is_a_temporary_failure(settings: Settings, clock: Clock) -> None:
    async with SmtpSink() as closed:
        url = closed.url
    rt = await start(with_relay(settings, url), clock)
    try:
        assert rt.deliverer is not None
        await rt.service.ingest(client_mail())
        [row] = await outbox_rows(rt)
        assert await rt.deliverer.deliver(row.id) == "queued"
        [row] = await outbox_rows(rt)
        assert row.status == OutboxStatus.queued and row.attempts == 1
        assert row.last_error is not None and "unreachable" in row.last_error
        assert row.next_attempt_at > row.updated_at
    finally:
        await rt.close()


# --- exactly once, and the sweeper ---------------------------------------------------------------------


async def test_delivering_the_same_row_twice_sends_one_mail(mail_runtime: Runtime, sink: SmtpSink) -> None:
    rt = mail_runtime
    assert rt.deliverer is not None
    await rt.service.ingest(client_mail())
    [row] = await outbox_rows(rt)

    outcomes = await asyncio.gather(rt.deliverer.deliver(row.id), rt.deliverer.deliver(row.id))
    assert sorted(outcomes) in (["sending", "sent"], ["sent", "sent"])
    assert await rt.deliverer.deliver(row.id) == "sent"
    await run_worker(rt)  # the job queued after commit runs too, and finds the row sent

    assert len(sink.received) == 1
    [row] = await outbox_rows(rt)
    assert row.status == OutboxStatus.sent and row.attempts == 1


async def test_sweeper_delivers_rows_redis_never_heard_of(
    mail_runtime: Runtime, sink: SmtpSink, manager: Agent
) -> None:
    rt = mail_runtime
    # The CLI's service: it writes outbox rows but has no job queue to tell.
    offline = build_service(rt.settings, rt.engine, rt.clock)
    result = await offline.ingest(client_mail())
    await offline.add_message(manager, result.ticket.id, "Reply", internal=False)
    assert len(await outbox_rows(rt)) == 2
    assert await rt.redis.zcard("arq:queue") == 0

    sweep = [c for c in worker_settings(rt)["cron_jobs"] if c.name == "cron:sweep_outbox"]
    assert len(sweep) == 1
    await run_worker(rt, cron_jobs=sweep)

    received = await sink.wait_for(2)
    assert sorted(header(r.message, "Subject") for r in received) == sorted(
        [f"[#{result.ticket.id}] Принтер", f"Re: [#{result.ticket.id}] Принтер"]
    )
    assert all(r.status == OutboxStatus.sent for r in await outbox_rows(rt))


async def test_sweeper_takes_over_a_stale_claim_only(mail_runtime: Runtime, sink: SmtpSink) -> None:
    rt = mail_runtime
    offline = build_service(rt.settings, rt.engine, rt.clock)
    await offline.ingest(client_mail("<c1@client.example>"))
    await offline.ingest(client_mail("<c2@other.example>", sender="other@example.com"))
    stale, fresh = await outbox_rows(rt)
    now = rt.clock.now()
    async with rt.sessions.begin() as session:
        # One worker died mid-send 11 minutes ago; another is sending right now.
        await session.execute(update(Outbox).where(Outbox.id == stale.id).values(
            status=OutboxStatus.sending, attempts=1, updated_at=now - timedelta(minutes=11)))
        await session.execute(update(Outbox).where(Outbox.id == fresh.id).values(
            status=OutboxStatus.sending, attempts=1, updated_at=now))

    sweep = [c for c in worker_settings(rt)["cron_jobs"] if c.name == "cron:sweep_outbox"]
    await run_worker(rt, cron_jobs=sweep)

    [mail] = await sink.wait_for(1)
    assert mail.rcpt_tos == (CLIENT,)
    stale, fresh = await outbox_rows(rt)
    assert stale.status == OutboxStatus.sent and stale.attempts == 2
    assert fresh.status == OutboxStatus.sending and fresh.attempts == 1


async def test_sweeper_sends_a_row_whose_job_a_killed_worker_had_taken(mail_runtime: Runtime, sink: SmtpSink) -> None:
    """The fault suite's case: arq handed the job to a worker that was killed before it claimed the row. arq keeps
    that job marked in progress (and refuses its id) until the job timeout ends; the sweeper must not wait for it."""
    rt = mail_runtime
    await rt.service.ingest(client_mail())
    [row] = await outbox_rows(rt)
    # What arq leaves of a job a killed worker had started: the job, and its in-progress mark for the job timeout.
    await rt.redis.psetex(in_progress_key_prefix + job_id(row.id, 0), 600_000, b"1")
    async with rt.sessions.begin() as session:  # and the row has been due for longer than a claim may be stale
        await session.execute(update(Outbox).where(Outbox.id == row.id).values(
            next_attempt_at=rt.clock.now() - timedelta(minutes=11)))

    sweep = [c for c in worker_settings(rt)["cron_jobs"] if c.name == "cron:sweep_outbox"]
    worker = build_worker(rt, cron_jobs=sweep)  # not burst: the stuck job stays in the queue
    running = asyncio.create_task(worker.main())
    try:
        [mail] = await sink.wait_for(1)
        # The relay has the mail; the worker records that right after. Stopping it now would cancel the job, and
        # the record (shielded from that) could land after the read below.
        for _ in range(100):
            [row] = await outbox_rows(rt)
            if row.status != OutboxStatus.sending:
                break
            await asyncio.sleep(0.05)
    finally:
        running.cancel()
        await worker.close()
    assert mail.rcpt_tos == (CLIENT,)
    assert row.status == OutboxStatus.sent and row.attempts == 1


# --- no relay: the mail sink ---------------------------------------------------------------------------


async def test_without_a_relay_mail_lands_in_the_sink(settings: Settings, clock: Clock, add_agent: Any) -> None:
    assert settings.smtp.relay_url is None
    rt = await start(settings, clock)
    try:
        manager, _ = await add_agent(role=Role.manager)
        result = await rt.service.ingest(client_mail())
        await run_worker(rt)
        reply = await rt.service.add_message(manager, result.ticket.id, "Готово", internal=False)
        await run_worker(rt)

        entries = list_sink(settings.data_dir / "mail-sink")
        assert [e.subject for e in entries] == [f"[#{result.ticket.id}] Принтер", f"Re: [#{result.ticket.id}] Принтер"]
        assert all(e.to == CLIENT and e.sender == SUPPORT and e.date is not None for e in entries)
        view = await rt.service.get_ticket(manager, result.ticket.id)
        stored = next(m for m in view.messages if m.id == reply.id)
        assert entries[1].message_id == stored.external_id and stored.delivery_status == DeliveryStatus.sent
        raw = entries[1].path.read_bytes()
        assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
        parsed = BytesParser(policy=email.policy.default).parsebytes(raw)
        assert isinstance(parsed, EmailMessage)
        assert parts(parsed)[0].strip() == "Готово"
        assert not any(p.name.startswith(".") for p in entries[0].path.parent.iterdir())
        async with rt.sessions() as session:
            provider = await session.scalar(select(Outbox.provider_id).where(Outbox.message_id == reply.id))
        assert provider == entries[1].path.name
    finally:
        await rt.close()


# --- relay URLs (no I/O) -------------------------------------------------------------------------------


def test_relay_urls() -> None:
    plain = RelayConfig.from_url("smtp://mailer:p%40ss@relay.example:587")
    assert (plain.host, plain.port, plain.use_tls, plain.start_tls) == ("relay.example", 587, False, None)
    assert (plain.username, plain.password, plain.validate_certs) == ("mailer", "p@ss", True)
    no_tls = RelayConfig.from_url("smtp://127.0.0.1:2526?starttls=no")
    assert no_tls.start_tls is False and no_tls.username is None
    implicit = RelayConfig.from_url("smtps://relay.example?verify=no")
    assert (implicit.port, implicit.use_tls, implicit.start_tls, implicit.validate_certs) == (465, True, False, False)
    with pytest.raises(ValueError):
        RelayConfig.from_url("http://relay.example")
    with pytest.raises(ValueError):
        RelayConfig.from_url("smtp://relay.example?starttls=maybe")



async def test_a_delivery_cancelled_mid_send_still_records_it_and_never_sends_twice(
    mail_runtime: Runtime, sink: SmtpSink
) -> None:
    """arq cancels a running job when it loses Redis or stops. Cut between the send and its record, the row stayed
    `sending` for `stale_after` (600 s) and the acknowledgement, already out, was sent again."""
    result = await mail_runtime.service.ingest(client_mail())
    async with mail_runtime.sessions() as session:
        ack_id = await session.scalar(select(Outbox.id).where(Outbox.ticket_id == result.ticket.id,
                                                             Outbox.kind == "ack"))
    assert ack_id is not None and mail_runtime.deliverer is not None
    sink.hold()
    job = asyncio.create_task(mail_runtime.deliverer.deliver(ack_id))
    await sink.wait_for(1)  # the relay has the message; its answer is held
    job.cancel()
    sink.release()
    with pytest.raises(asyncio.CancelledError):
        await job
    await mail_runtime.deliverer.close()  # the send under way records its outcome
    async with mail_runtime.sessions() as session:
        row = await session.get_one(Outbox, ack_id)
    assert str(row.status) == "sent" and row.provider_id
    assert await mail_runtime.deliverer.deliver(ack_id) == "sent"  # a retried job sends nothing more
    assert len(sink.received) == 1
