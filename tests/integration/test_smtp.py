"""Real SMTP conversations (aiosmtplib as the client) with the inbound server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.policy import SMTPUTF8
from email.utils import make_msgid

import aiosmtplib
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from channels.email.smtp import InboundMailHandler, MailboxConfig, start_smtp_server
from switchboard.bootstrap import Runtime, build_service
from switchboard.settings import Settings
from tests.proxy import TcpProxy
from tickets.db import create_engine
from tickets.models import Customer, CustomerIdentity, Group, Message, Role, Ticket
from web.ratelimit import RateLimiter

ADDRESSES = {"support@example.com": "Support", "sales@example.com": "Sales"}


@dataclasses.dataclass
class Mailbox:
    port: int
    runtime: Runtime

    async def send(self, message: EmailMessage | bytes, *, sender: str = "client@example.org",
                   to: tuple[str, ...] = ("support@example.com",)) -> tuple[int, str]:
        """One SMTP conversation; returns the final reply to DATA."""
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=self.port, timeout=10) as client:
            raw = message if isinstance(message, bytes) else message.as_bytes()
            errors, reply = await client.sendmail(sender, list(to), raw)
            assert not errors, errors
            return 250, reply

    async def tickets(self) -> list[Ticket]:
        async with self.runtime.sessions() as session:
            return list(await session.scalars(select(Ticket).order_by(Ticket.id)))


def mail(subject: str = "Принтер не печатает", body: str = "Здравствуйте! Принтер снова не печатает.",
         sender: str = "Иван Петров <ivan@example.org>", to: str = "support@example.com",
         **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = headers.pop("message_id", make_msgid(domain="example.org"))
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


async def serve(runtime: Runtime, addresses: dict[str, str], *, max_bytes: int = 25 * 1024 * 1024,
                sender_limit: int = 0) -> tuple[Mailbox, object]:
    async with runtime.sessions.begin() as session:
        for name in set(addresses.values()):
            if await session.scalar(select(Group).where(Group.name == name)) is None:
                session.add(Group(name=name, created_at=runtime.clock.now()))
    limiter = RateLimiter(runtime.redis, sender_limit, prefix="ratelimit:mail", window_seconds=3600)
    handler = InboundMailHandler(runtime.service, runtime.attachments, MailboxConfig(addresses, max_bytes), limiter)
    server = await start_smtp_server(handler, "127.0.0.1", 0, max_bytes=max_bytes)
    return Mailbox(server.sockets[0].getsockname()[1], runtime), server


@pytest.fixture
async def mailbox(runtime: Runtime) -> AsyncIterator[Mailbox]:
    box, server = await serve(runtime, ADDRESSES)
    try:
        yield box
    finally:
        server.close()  # type: ignore[attr-defined]
        await server.wait_closed()  # type: ignore[attr-defined]


async def test_russian_mail_opens_a_ticket_on_the_senders_card(mailbox: Mailbox, add_agent) -> None:
    agent, _ = await add_agent("Alice")
    status, reply = await mailbox.send(mail())
    assert status == 250 and "opened ticket #1" in reply

    [ticket] = await mailbox.tickets()
    assert ticket.subject == "Принтер не печатает"
    assert ticket.channel == "email" and ticket.assignee_id == agent.id
    view = await mailbox.runtime.service.get_ticket(agent, ticket.id)
    assert view.customer.name == "Иван Петров"
    assert [(i.kind, i.address) for i in view.identities] == [("email", "ivan@example.org")]
    message = view.messages[0]
    assert "Принтер снова не печатает" in message.body_text
    assert message.meta["recipient"] == "support@example.com"
    assert message.raw is not None
    assert mailbox.runtime.attachments.open_path(message.raw["path"]).read_bytes().startswith(b"From:")


async def test_recipient_decides_the_group_and_unknown_ones_are_refused(mailbox: Mailbox, add_agent) -> None:
    await add_agent("Seller", groups=["Sales"])
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await mailbox.send(mail(to="nobody@example.com"), to=("nobody@example.com",))
    assert refused.value.recipients[0].code == 550
    await mailbox.send(mail(to="sales@example.com"), to=("sales@example.com",))
    [ticket] = await mailbox.tickets()
    async with mailbox.runtime.sessions() as session:
        assert (await session.get_one(Group, ticket.group_id)).name == "Sales"


async def test_without_a_mapping_every_recipient_goes_to_the_default_group(runtime: Runtime) -> None:
    box, server = await serve(runtime, {})
    try:
        await box.send(mail(to="anything@anywhere.example"), to=("anything@anywhere.example",))
    finally:
        server.close()  # type: ignore[attr-defined]
    [ticket] = await box.tickets()
    async with runtime.sessions() as session:
        assert (await session.get_one(Group, ticket.group_id)).name == runtime.settings.default_group


async def test_redelivery_and_two_addresses_make_one_ticket(mailbox: Mailbox) -> None:
    message = mail(message_id="<once@example.org>", to="support@example.com, sales@example.com")
    await mailbox.send(message, to=("support@example.com", "sales@example.com"))
    _, again = await mailbox.send(message)
    assert "duplicate of ticket #1" in again
    assert len(await mailbox.tickets()) == 1
    async with mailbox.runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Message)) == 1


async def test_oversized_mail_is_refused_with_552_and_nothing_stored(runtime: Runtime) -> None:
    box, server = await serve(runtime, ADDRESSES, max_bytes=20_000)
    try:
        with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
            await box.send(mail(body="x" * 50_000))
        assert refused.value.code == 552
        await box.send(mail(body="small enough"))  # the server keeps working
    finally:
        server.close()  # type: ignore[attr-defined]
    assert len(await box.tickets()) == 1


async def test_out_of_office_creates_nothing(mailbox: Mailbox) -> None:
    status, reply = await mailbox.send(mail(subject="Out of office: Принтер", body="I am away until Monday.",
                                            Auto_Submitted="auto-replied"))
    assert status == 250
    assert await mailbox.tickets() == []


async def test_malformed_mail_is_kept_with_its_problem(mailbox: Mailbox, add_agent) -> None:
    manager, _ = await add_agent(role=Role.manager)
    raw = (b"From: broken@example.org\r\nTo: support@example.com\r\nSubject: Broken\r\n"
           b"Message-ID: <broken@example.org>\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed\r\n\r\nthere is no boundary here\r\n")
    await mailbox.send(raw, sender="broken@example.org")
    [ticket] = await mailbox.tickets()
    view = await mailbox.runtime.service.get_ticket(manager, ticket.id)
    assert view.messages[0].problems
    assert "no boundary" in view.messages[0].body_text


async def test_mail_storm_from_one_sender_is_deferred(runtime: Runtime) -> None:
    box, server = await serve(runtime, ADDRESSES, sender_limit=3)
    try:
        for n in range(3):
            await box.send(mail(subject=f"loop {n}"))
        with pytest.raises(aiosmtplib.SMTPResponseException) as deferred:
            await box.send(mail(subject="loop 4"))
        assert deferred.value.code == 451
        await box.send(mail(subject="someone else", sender="other@example.org"), sender="other@example.org")
    finally:
        server.close()  # type: ignore[attr-defined]
    assert len(await box.tickets()) == 4


@pytest.mark.postgresql_only
async def test_database_outage_answers_451_and_the_retry_stores_once(runtime: Runtime, settings: Settings) -> None:
    url = make_url(settings.database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    engine = create_engine(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
    service = build_service(settings, engine, runtime.clock)
    limiter = RateLimiter(runtime.redis, 0, prefix="ratelimit:mail")
    handler = InboundMailHandler(service, runtime.attachments, MailboxConfig({}, 10_000_000), limiter)
    server = await start_smtp_server(handler, "127.0.0.1", 0, max_bytes=10_000_000)
    box = Mailbox(server.sockets[0].getsockname()[1], runtime)
    message = mail(message_id="<during-outage@example.org>")
    try:
        await box.send(mail(subject="before the outage"))
        await proxy.cut()
        with pytest.raises(aiosmtplib.SMTPResponseException) as deferred:
            await box.send(message)
        assert deferred.value.code == 451
        await proxy.start()  # the database is back; the sending server retries
        status, reply = await box.send(message)
        assert status == 250 and "opened ticket" in reply
        await box.send(message)  # and a second retry of the same mail changes nothing
    finally:
        server.close()
        await proxy.cut()
        await engine.dispose()
    subjects = [t.subject for t in await box.tickets()]
    assert subjects == ["before the outage", "Принтер не печатает"]
    async with runtime.sessions() as session:
        cards = await session.scalar(select(func.count()).select_from(Customer))
        identities = await session.scalar(select(func.count()).select_from(CustomerIdentity))
    assert (cards, identities) == (1, 1)


async def test_ehlo_advertises_8bitmime_smtputf8_and_the_size_limit(mailbox: Mailbox) -> None:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=mailbox.port, timeout=10) as client:
        await client.ehlo()
        assert client.supports_extension("8bitmime")
        assert client.supports_extension("smtputf8")
        assert client.esmtp_extensions["size"] == str(25 * 1024 * 1024)
        # an internationalised sender address is accepted too
        errors, _ = await client.sendmail("иван@пример.рф", ["support@example.com"],
                                          mail(sender="Иван <иван@пример.рф>").as_bytes(policy=SMTPUTF8),
                                          mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        assert not errors
    [ticket] = await mailbox.tickets()
    assert ticket.subject == "Принтер не печатает"


async def test_attachments_and_inline_images_are_stored_with_their_names(mailbox: Mailbox, add_agent) -> None:
    from pathlib import Path

    manager, headers = await add_agent(role=Role.manager)
    corpus = Path(__file__).resolve().parents[1] / "corpus" / "email"
    for name in ("related-inline-images.eml", "attachment-rfc2231-names.eml"):
        await mailbox.send((corpus / name).read_bytes(), sender="someone@example.com")
    inline_ticket, files_ticket = await mailbox.tickets()

    inline = (await mailbox.runtime.service.get_ticket(manager, inline_ticket.id)).messages[0]
    assert [(a["name"], a["content_id"], a["inline"]) for a in inline.attachments] == [
        ("image001.png", "image001.png@01DC52F1.8E1B2C40", True), ("attachment-2.jpg", "logo.jpg@example.com", True)]
    png = mailbox.runtime.attachments.open_path(inline.attachments[0]["path"]).read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")

    files = (await mailbox.runtime.service.get_ticket(manager, files_ticket.id)).messages[0]
    assert [(a["name"], a["content_type"], a["inline"]) for a in files.attachments] == [
        ("Акт сверки.txt", "text/plain", False), ("Договор № 17 от 01.11.2026.pdf", "application/pdf", False)]
    assert files.attachments[1]["size"] == 1540


async def test_a_client_ending_lines_with_a_bare_lf_is_read_as_postfix_reads_it(mailbox: Mailbox) -> None:
    """A long paragraph of bare-LF lines was one line past 1000 bytes to aiosmtpd (500: the mail bounced), and a
    dot-stuffed line after a bare LF kept its extra dot."""
    body = b"".join(b"line %d of a long paragraph that a sloppy client ends with a bare LF\n" % n for n in range(40))
    raw = (b"From: Sloppy <sloppy@example.org>\r\nTo: support@example.com\r\nSubject: Bare LF\r\n"
           b"Message-ID: <bare-lf@example.org>\r\n\r\n" + body + b"..dotted after a bare LF\n\r\n")
    reader, writer = await asyncio.open_connection("127.0.0.1", mailbox.port)
    try:
        async def say(line: bytes) -> bytes:
            writer.write(line)
            await writer.drain()
            reply = await reader.readline()
            while reply[3:4] == b"-":  # a multi-line answer (EHLO)
                reply = await reader.readline()
            return reply

        assert (await reader.readline()).startswith(b"220")
        assert (await say(b"EHLO client.example.org\r\n")).startswith(b"250")
        assert (await say(b"MAIL FROM:<sloppy@example.org>\r\n")).startswith(b"250")
        assert (await say(b"RCPT TO:<support@example.com>\r\n")).startswith(b"250")
        assert (await say(b"DATA\r\n")).startswith(b"354")
        reply = await say(raw + b".\r\n")
        assert reply.startswith(b"250"), reply
        assert (await say(b"X" * 2000 + b"\r\n")).startswith(b"500")  # commands keep their size limit
    finally:
        writer.close()
    [ticket] = await mailbox.tickets()
    async with mailbox.runtime.sessions() as session:
        [message] = list(await session.scalars(select(Message).where(Message.ticket_id == ticket.id)))
    assert "line 39 of a long paragraph" in message.body_text
    assert ".dotted after a bare LF" in message.body_text and "..dotted" not in message.body_text


async def test_fifty_sessions_at_once_with_the_same_attachment_are_all_stored(mailbox: Mailbox) -> None:
    """They shared one temporary file name for the attachment: one in fifty was answered 451."""
    def with_attachment(n: int) -> EmailMessage:
        message = mail(subject=f"Invoice {n}", sender=f"client{n}@example.org")
        message.add_attachment(b"%PDF-1.4 the same invoice" * 2000, maintype="application", subtype="pdf",
                               filename="invoice.pdf")
        return message

    replies = await asyncio.gather(*(mailbox.send(with_attachment(n), sender=f"client{n}@example.org")
                                     for n in range(50)))
    assert all(status == 250 for status, _ in replies)
    assert len(await mailbox.tickets()) == 50
