"""Delivering one outbox row: claim it, send it, record the outcome — safe to run twice or concurrently.

The claim (`sending`, attempts + 1) is committed before anything goes out, so a second run of the same
job sees it and stays away; a claim older than `stale_after` means its worker died and may be taken over.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from notifier.render import NoticeRenderer, Rendered
from notifier.senders import EmailSender, PermanentFailure, TemporaryFailure, Unconfirmed
from tickets import audit
from tickets.attachments import AttachmentStore
from tickets.clock import Clock
from tickets.models import DeliveryStatus, EventKind, Message, Outbox, OutboxAttempt, OutboxStatus
from tickets.uow import Store

log = logging.getLogger(__name__)

CHANNEL = "email"
MISSING = "missing"
FINAL = (OutboxStatus.sent, OutboxStatus.delivered, OutboxStatus.failed, OutboxStatus.cancelled)
SKIP_IF_SEEN = "skip_if_seen"
"""A row header: a fallback (the email copy of a chat reply) that is cancelled once the client saw the message."""
# How early a job may run against the row's next_attempt_at (arq's timer and our clock are read apart).
EARLY_TOLERANCE = timedelta(seconds=1)
RECORD_RETRIES = (0.5, 2.0, 5.0)  # seconds between tries to record an outcome while the database is away
FINISH_SECONDS = 30.0
"""At shutdown, how long sends under way get to record their outcome."""
HEADERS_FROM_ROW = ("Message-ID", "In-Reply-To", "References", "Auto-Submitted", "X-Auto-Response-Suppress")
IDEMPOTENCY_KEY = "idempotency_key"
"""A chat sender's detail: the row's dedupe key, for providers that take an idempotency key."""
RESUMED = "resumed"
"""A chat sender's detail: set when an earlier attempt was abandoned mid-send (it may have gone out)."""


@dataclass(frozen=True)
class Attempt:
    """What one delivery run did, and when the caller should try again after a temporary failure."""

    outbox_id: int
    status: str
    """The row's status afterwards (an `OutboxStatus` value), or "missing"."""
    attempts: int
    retry_in: timedelta | None = None
    """Set when the row waits for another attempt: re-enqueue after this long."""
    error: str | None = None
    due_at: datetime | None = None
    """Set when the row was not due yet (nothing was tried): the job for its due time needs its own id."""


@dataclass(frozen=True)
class OutFile:
    """A file of an agent's reply, as a chat sender that can carry files reads it."""

    name: str
    content_type: str
    path: Path


class TextSender(Protocol):
    """A chat channel's sender (Telegram, web chat): one text to one chat, split as the channel needs."""

    async def send_text(self, chat_id: str, text: str, details: Mapping[str, Any],
                        files: Sequence[OutFile] = ()) -> str | None:
        """`details` are the row's headers: what the notifier stored for the channel and earlier attempts' progress.

        `files` are the reply's: a channel that carries files sends them after the text; one that cannot (SMS)
        or that links them from the text it was given (web chat) leaves them."""


@dataclass(frozen=True)
class _Claim:
    outbox_id: int
    attempts: int
    channel: str
    message: EmailMessage | None
    """The email to send (email rows)."""
    recipient: str = ""
    text: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    started_at: datetime | None = None
    template: _Template | None = None
    """A templated row, rendered after the claim commits (`_rendered`)."""
    rendered: Rendered | None = None
    files: tuple[dict[str, Any], ...] = ()
    """The agent's files to attach (a reply's), read from the attachment store just before sending."""


@dataclass(frozen=True)
class _Template:
    name: str
    params: Mapping[str, Any]
    ticket_id: int | None
    headers: Mapping[str, Any]
    created_at: datetime


def backoff(
    attempt: int, *, first: timedelta, cap: timedelta, jitter: Callable[[], float] = random.random
) -> timedelta:
    """Exponential from `first`, doubled per attempt, ±20 % jitter so a relay outage does not end in a stampede."""
    base = min(cap, first * (2 ** max(0, attempt - 1)))
    spread: timedelta = base * (0.8 + 0.4 * jitter())
    return min(cap, spread)


class Deliverer:
    """Sends outbox rows through their channel's sender (email, or a chat sender), with retries and backoff."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        sender: EmailSender,
        *,
        max_attempts: int = 8,
        first_retry: timedelta = timedelta(seconds=30),
        max_retry: timedelta = timedelta(hours=1),
        stale_after: timedelta = timedelta(minutes=2),
        chat_senders: Mapping[str, TextSender] | None = None,
        renderer: NoticeRenderer | None = None,
        attachments: AttachmentStore | None = None,
    ) -> None:
        self.sender = sender
        self.renderer = renderer
        self.attachments = attachments
        """Where a reply's files are read from; without it a reply goes without them."""
        """Renders templated rows (acknowledgements, assignment notices) as they are delivered."""
        self.chat_senders: dict[str, TextSender] = dict(chat_senders or {})
        """Senders for the other channels by name ("telegram"); email rows use `sender`."""
        self._store = store
        self._clock = clock
        self.max_attempts = max_attempts
        self.first_retry = first_retry
        self.max_retry = max_retry
        self.stale_after = stale_after
        self._finishing: set[asyncio.Future[Attempt]] = set()

    async def deliver(self, outbox_id: int) -> str:
        """Deliver one row if it is due; returns its status afterwards (queued means: retry later)."""
        return (await self.attempt(outbox_id)).status

    async def attempt(self, outbox_id: int) -> Attempt:
        claimed = await self._claim(outbox_id)
        if isinstance(claimed, Attempt):
            return claimed
        # Once claimed, the send and the record of its outcome run to the end even if the job is cancelled (arq
        # cancels its jobs when it loses Redis or stops): cut between them, the row stayed `sending` until
        # `stale_after` and a message that was out was sent again.
        finishing = asyncio.ensure_future(self._send_and_record(outbox_id, claimed))
        self._finishing.add(finishing)
        finishing.add_done_callback(self._finishing.discard)
        return await asyncio.shield(finishing)

    async def _send_and_record(self, outbox_id: int, claimed: _Claim) -> Attempt:
        failure: TemporaryFailure | PermanentFailure | Unconfirmed | None = None
        provider_id: str | None = None
        try:
            if claimed.template is not None:
                claimed = self._rendered(claimed)
            if claimed.files and claimed.message is not None:
                await asyncio.to_thread(self._attach, claimed.message, claimed.files)
        except Exception as exc:  # noqa: BLE001 - a template that cannot render (a file gone from the store) will not
            # on a retry either
            return await self._record_failure(claimed, PermanentFailure(f"cannot build the message: {exc}"))
        try:
            if claimed.message is not None:
                provider_id = await self.sender.send(claimed.message)
            else:
                provider_id = await self.chat_senders[claimed.channel].send_text(
                    claimed.recipient, claimed.text, claimed.details, self._out_files(claimed.files)
                )
        except (TemporaryFailure, PermanentFailure, Unconfirmed) as exc:
            failure = exc
        except Exception as exc:  # noqa: BLE001 - a sender bug must not leave the row claimed till stale_after
            log.exception("sender crashed on outbox %s", outbox_id)
            failure = TemporaryFailure(f"sender error: {exc!r}")
        for pause in RECORD_RETRIES:
            try:
                if failure is None or isinstance(failure, Unconfirmed):
                    return await self._record_sent(claimed, provider_id, failure)
                return await self._record_failure(claimed, failure)
            except (DBAPIError, OSError) as exc:
                # The mail is out (or refused): losing that fact would mean sending it again after `stale_after`.
                log.warning("outbox %s: recording the outcome failed (%r); retrying in %s s", outbox_id, exc, pause)
                await asyncio.sleep(pause)
        if failure is None or isinstance(failure, Unconfirmed):
            return await self._record_sent(claimed, provider_id, failure)
        return await self._record_failure(claimed, failure)

    async def close(self) -> None:
        """Let sends under way record their outcome (bounded), then close the senders that hold connections (the
        SMS gateway's HTTP session)."""
        if self._finishing:
            await asyncio.wait(set(self._finishing), timeout=FINISH_SECONDS)
        for sender in self.chat_senders.values():
            close = getattr(sender, "close", None)
            if close is not None:
                await close()

    async def due(self, limit: int = 500) -> list[tuple[int, int, bool]]:
        """(outbox id, attempts so far, late) of rows a job should exist for: due ones and claims whose worker died.

        Late: due for longer than `stale_after` too, or a stale claim — a job for it should have run long ago, so
        one that exists may be a job a killed worker had taken before it claimed the row, which arq keeps (its
        id refused) until the job timeout ends."""
        now = self._clock.now()
        async with self._store.session() as session:
            rows = await session.execute(
                select(Outbox.id, Outbox.attempts, Outbox.status, Outbox.next_attempt_at)
                .where(
                    Outbox.channel.in_(self.channels),
                    or_(
                        and_(Outbox.status == OutboxStatus.queued, Outbox.next_attempt_at <= now),
                        and_(Outbox.status == OutboxStatus.sending, Outbox.updated_at < now - self.stale_after),
                    ),
                )
                .order_by(Outbox.next_attempt_at, Outbox.id)
                .limit(limit)
            )
            return [(row_id, attempts, status == OutboxStatus.sending or next_at < now - self.stale_after)
                    for row_id, attempts, status, next_at in rows]

    @property
    def channels(self) -> list[str]:
        """The outbox channels this deliverer sends; rows of other channels wait for a process that can."""
        return [CHANNEL, *self.chat_senders]

    # --- the two transactions around the send ----------------------------------------------------

    async def _claim(self, outbox_id: int) -> _Claim | Attempt:
        """Transaction 1: mark the row `sending` (committed) before anything leaves."""
        now = self._clock.now()
        async with self._store.session() as session:
            row = await session.get(Outbox, outbox_id, with_for_update=True)
            if row is None:
                return Attempt(outbox_id, MISSING, 0)
            if row.channel not in self.channels:
                log.warning("outbox %s is for channel %s; this deliverer sends %s", row.id, row.channel, self.channels)
                return Attempt(row.id, str(row.status), row.attempts)
            if row.status in FINAL:
                return Attempt(row.id, str(row.status), row.attempts)
            if row.status == OutboxStatus.sending and now - row.updated_at < self.stale_after:
                return Attempt(row.id, str(row.status), row.attempts)  # another run is on it
            if row.status == OutboxStatus.queued and row.next_attempt_at > now + EARLY_TOLERANCE:
                return Attempt(row.id, str(row.status), row.attempts, retry_in=row.next_attempt_at - now,
                               due_at=row.next_attempt_at)
            if (row.headers or {}).get(SKIP_IF_SEEN) and await self._seen(session, row):
                row.status = OutboxStatus.cancelled
                row.updated_at = now
                history(session, row, "cancelled", now, error="the client saw the message in the chat")
                log.info("outbox %s (%s) cancelled: the client saw the message", row.id, row.kind)
                return Attempt(row.id, str(row.status), row.attempts)
            details = {**(row.headers or {}), IDEMPOTENCY_KEY: row.dedupe_key}
            if row.status == OutboxStatus.sending:
                log.warning("outbox %s: attempt %d was abandoned; trying again", row.id, row.attempts)
                history(session, row, "abandoned", now, started_at=row.updated_at,
                        error=f"no outcome recorded within {self.stale_after}: the sending worker stopped")
                details[RESUMED] = True
            message: EmailMessage | None = None
            template = None if row.template is None else _Template(
                row.template, dict(row.params or {}), row.ticket_id, dict(row.headers or {}), row.created_at)
            try:
                if template is not None:
                    pass  # rendered once this claim has committed
                elif row.channel == CHANNEL:
                    message = build_email(row)
                elif not row.body_text.strip():
                    raise ValueError("the message is empty")
            except (ValueError, TypeError) as exc:
                row.attempts += 1
                error = f"cannot build the message: {exc}"
                self._fail(session, row, error, now, started_at=now)
                await self._mark_message_failed(session, row, error)
                return Attempt(row.id, str(row.status), row.attempts, error=error)
            row.status = OutboxStatus.sending
            row.attempts += 1
            row.updated_at = now
            files: tuple[dict[str, Any], ...] = ()
            if row.kind == "reply" and row.message_id is not None:
                files = tuple((await session.get_one(Message, row.message_id)).attachments or ())
            return _Claim(row.id, row.attempts, row.channel, message, row.recipient, row.body_text or "", details, now,
                          template, files=files)

    def _attach(self, message: EmailMessage, files: Sequence[Mapping[str, Any]]) -> None:
        """The reply's files as parts of the mail (read in a thread: they may be megabytes)."""
        if self.attachments is None:
            raise ValueError("this deliverer has no attachment store for the reply's files")
        for ref in files:
            data = self.attachments.open_path(str(ref["path"])).read_bytes()
            kind = str(ref.get("content_type") or "application/octet-stream")
            main, _, sub = kind.partition("/")
            message.add_attachment(data, maintype=main or "application", subtype=sub or "octet-stream",
                                   filename=str(ref.get("name") or "attachment"))

    def _out_files(self, files: Sequence[Mapping[str, Any]]) -> list[OutFile]:
        """Where a reply's files are, for a chat sender (which reads them as it sends)."""
        if not files:
            return []
        if self.attachments is None:
            raise PermanentFailure("this deliverer has no attachment store for the reply's files")
        try:
            return [OutFile(str(ref.get("name") or "attachment"),
                            str(ref.get("content_type") or "application/octet-stream"),
                            self.attachments.open_path(str(ref["path"]))) for ref in files]
        except (KeyError, ValueError) as exc:
            raise PermanentFailure(f"a file of the reply is not in the store: {exc}") from exc

    def _rendered(self, claim: _Claim) -> _Claim:
        """The claimed row's template rendered, outside any transaction, as the email or text to send."""
        template = claim.template
        assert template is not None
        if self.renderer is None:
            raise ValueError("this deliverer renders no templates")
        rendered = self.renderer.render(template.name, template.params, template.ticket_id, claim.channel)
        if claim.channel != CHANNEL:
            return replace(claim, text=rendered.text, rendered=rendered)
        message = compose_email(template.headers, claim.recipient, rendered.subject or "", template.created_at,
                                rendered.text, rendered.html)
        return replace(claim, message=message, rendered=rendered)

    async def _record_sent(self, claim: _Claim, provider_id: str | None, unconfirmed: Unconfirmed | None) -> Attempt:
        """Transaction 2 after success (or a send whose answer was lost and must not be repeated)."""
        now = self._clock.now()
        note = str(unconfirmed)[:1000] if unconfirmed is not None else None
        async with self._store.session() as session:
            row = await session.get_one(Outbox, claim.outbox_id, with_for_update=True)
            if row.status != OutboxStatus.delivered:  # a receipt may have come in while the answer was on its way
                row.status = OutboxStatus.sent
            row.sent_at = row.sent_at or now
            row.updated_at = now
            row.provider_id = provider_id[:255] if provider_id else row.provider_id  # a receipt may have named it
            row.last_error = note
            if claim.rendered is not None:  # what went out, for the row's history and the console
                row.subject, row.body_text, row.body_html = (
                    claim.rendered.subject, claim.rendered.text, claim.rendered.html
                )
            history(session, row, "unconfirmed" if note else "sent", now, started_at=claim.started_at, error=note)
            await self._set_message_status(session, row, DeliveryStatus.sent, None)
            log.info("outbox %s (%s) sent to %s", row.id, row.kind, row.recipient)
            return Attempt(row.id, str(row.status), row.attempts)

    async def _record_failure(self, claim: _Claim, failure: TemporaryFailure | PermanentFailure) -> Attempt:
        """Transaction 2 after a failure: back to the queue with a backoff, or failed for good."""
        now = self._clock.now()
        error = str(failure) or failure.__class__.__name__
        async with self._store.session() as session:
            row = await session.get_one(Outbox, claim.outbox_id, with_for_update=True)
            if row.status in FINAL:  # a run that took over a stale claim finished first
                return Attempt(row.id, str(row.status), row.attempts)
            if isinstance(failure, TemporaryFailure) and row.attempts < self.max_attempts:
                delay = backoff(row.attempts, first=self.first_retry, cap=self.max_retry)
                if failure.retry_after is not None:
                    delay = max(delay, failure.retry_after)
                row.status = OutboxStatus.queued
                row.next_attempt_at = now + delay
                row.updated_at = now
                row.last_error = error[:1000]
                if failure.progress:
                    row.headers = {**(row.headers or {}), **failure.progress}
                history(session, row, "retry", now, started_at=claim.started_at, error=error)
                log.warning("outbox %s attempt %d failed, retry in %s: %s", row.id, row.attempts, delay, error)
                return Attempt(row.id, str(row.status), row.attempts, retry_in=delay, error=error)
            if isinstance(failure, TemporaryFailure):
                error = f"gave up after {row.attempts} attempts: {error}"
            self._fail(session, row, error, now, started_at=claim.started_at)
            await self._mark_message_failed(session, row, error)
            return Attempt(row.id, str(row.status), row.attempts, error=error)

    def _fail(self, session: AsyncSession, row: Outbox, error: str, now: datetime, *,
              started_at: datetime | None) -> None:
        row.status = OutboxStatus.failed
        row.updated_at = now
        row.last_error = error[:1000]
        history(session, row, "failed", now, started_at=started_at, error=error)
        log.error("outbox %s (%s) to %s failed: %s", row.id, row.kind, row.recipient, error)
        if row.ticket_id is not None:
            audit.record(
                session, row.ticket_id, EventKind.delivery_failed, now, actor="notifier", reason=error[:500],
                outbox_id=row.id, notification=row.kind, message_id=row.message_id, recipient=row.recipient,
            )

    async def _mark_message_failed(self, session: AsyncSession, row: Outbox, error: str) -> None:
        await self._set_message_status(session, row, DeliveryStatus.failed, error[:1000])

    async def _set_message_status(
        self, session: AsyncSession, row: Outbox, status: DeliveryStatus, error: str | None
    ) -> None:
        """One conditional UPDATE: a `delivered` (the client's screen confirmed it, maybe a moment ago) is never
        undone."""
        if row.message_id is None:
            return
        await session.execute(
            update(Message)
            .where(
                Message.id == row.message_id,
                Message.delivery_open(),
            )
            .values(delivery_status=status, delivery_error=error)
            .execution_options(synchronize_session=False)
        )

    async def _seen(self, session: AsyncSession, row: Outbox) -> bool:
        message = await self._linked_message(session, row)
        return message is not None and message.delivery_status == DeliveryStatus.delivered

    async def _linked_message(self, session: AsyncSession, row: Outbox) -> Message | None:
        if row.message_id is None:
            return None
        return await session.get(Message, row.message_id)


def history(session: AsyncSession, row: Outbox, outcome: str, now: datetime, *, started_at: datetime | None = None,
            error: str | None = None) -> None:
    """One line of the row's delivery history, in the transaction that changes the row."""
    session.add(OutboxAttempt(outbox_id=row.id, attempt=row.attempts, outcome=outcome, started_at=started_at, at=now,
                              error=error[:1000] if error else None, provider_id=row.provider_id))


def build_email(row: Outbox) -> EmailMessage:
    """The row as a MIME message: its headers, the text part and the HTML alternative."""
    return compose_email(row.headers or {}, row.recipient, row.subject or "", row.created_at, row.body_text or "",
                         row.body_html)


def compose_email(headers: Mapping[str, Any], recipient: str, subject: str, created_at: datetime, text: str,
                  html: str | None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = headers.get("From") or ""
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = format_datetime(created_at)
    for name in HEADERS_FROM_ROW:
        if headers.get(name):
            message[name] = headers[name]
    message.set_content(text, cte=_transfer_encoding(text))
    if html:
        message.add_alternative(html, subtype="html", cte=_transfer_encoding(html))
    return message


def _transfer_encoding(body: str) -> str:
    # 8bit bodies need the relay's 8BITMIME, which aiosmtplib does not declare: encode anything non-ASCII.
    return "7bit" if body.isascii() and all(len(line) <= 998 for line in body.splitlines()) else "base64"
