"""Outbound mail as a small port: a real relay (aiosmtplib) or a directory of .eml files when none is set.

A sender answers with a provider id or raises `TemporaryFailure` (try again later) or `PermanentFailure`
(this message will never go through); the deliverer records the outcome, senders never touch the store.
"""

from __future__ import annotations

import asyncio
import email.policy
import hashlib
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
_QUEUED_AS = re.compile(r"queued as\s+<?([^\s>]+)", re.IGNORECASE)


class DeliveryFailure(Exception):
    """A message did not go out; the subclass says whether trying again can help."""


class TemporaryFailure(DeliveryFailure):
    """Try again later: the relay is unreachable, timed out, or answered 4xx."""

    def __init__(
        self, message: str = "", *, retry_after: timedelta | None = None, progress: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        """The earliest the provider will accept another attempt (Telegram's 429 retry_after), if it said."""
        self.progress = progress or {}
        """What already went out (pieces of a split text): kept in the row's headers for the next attempt."""


class PermanentFailure(DeliveryFailure):
    """Never retry: the relay answered 5xx or the message cannot be addressed."""


class Unconfirmed(DeliveryFailure):
    """The request went out and its answer was lost, and resending could make a second copy: recorded as sent,
    with this as the note, for a delivery receipt to settle."""


class EmailSender(Protocol):
    async def send(self, message: EmailMessage) -> str | None:
        """Hand one message on; returns the provider's id for it when there is one."""


@dataclass(frozen=True)
class RelayConfig:
    """What an `smtp://` / `smtps://` relay URL means, parsed once."""

    host: str
    port: int
    use_tls: bool
    start_tls: bool | None
    """True: require STARTTLS; None: use it when the server offers it; False: never."""
    username: str | None
    password: str | None
    validate_certs: bool

    @classmethod
    def from_url(cls, url: str) -> RelayConfig:
        """`smtp://[user:pass@]host[:port][?starttls=no|yes][&verify=no]`, or `smtps://` for implicit TLS."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("smtp", "smtps"):
            raise ValueError(f"relay URL must start with smtp:// or smtps://, got {url!r}")
        if not parts.hostname:
            raise ValueError(f"relay URL has no host: {url!r}")
        query = {key.lower(): values[-1].lower() for key, values in parse_qs(parts.query).items()}
        use_tls = scheme == "smtps"
        start_tls: bool | None = None
        if use_tls:
            start_tls = False
        elif "starttls" in query:
            start_tls = _flag(query["starttls"], "starttls", allow_auto=True)
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if use_tls else 25),
            use_tls=use_tls,
            start_tls=start_tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            validate_certs=_flag(query.get("verify", "yes"), "verify") is not False,
        )


def _flag(value: str, name: str, *, allow_auto: bool = False) -> bool | None:
    if value in ("yes", "true", "1", "on", "require"):
        return True
    if value in ("no", "false", "0", "off"):
        return False
    if allow_auto and value == "auto":
        return None
    raise ValueError(f"relay URL: {name}={value!r} is not yes/no")


class RelaySender:
    """Sends through an SMTP relay, one connection per message, STARTTLS whenever the relay offers it."""

    def __init__(self, relay_url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.config = RelayConfig.from_url(relay_url)
        self._timeout = timeout

    async def send(self, message: EmailMessage) -> str | None:
        config = self.config
        try:
            _errors, response = await aiosmtplib.send(
                message,
                hostname=config.host,
                port=config.port,
                username=config.username,
                password=config.password,
                use_tls=config.use_tls,
                start_tls=config.start_tls,
                validate_certs=config.validate_certs,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            if codes and all(code >= 500 for code in codes):
                raise PermanentFailure(f"recipient refused: {detail}") from exc
            raise TemporaryFailure(f"recipient deferred: {detail}") from exc
        except aiosmtplib.SMTPAuthenticationError as exc:
            # The mail is fine and the relay's credentials are not: failing clients' mail for good over an
            # operator's typo would be worse than retrying until the configuration is fixed.
            raise TemporaryFailure(f"relay login refused: {exc.code} {exc.message}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            text = f"relay answered {exc.code} {exc.message}"
            if exc.code >= 500:
                raise PermanentFailure(text) from exc
            raise TemporaryFailure(text) from exc
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            raise TemporaryFailure(f"relay {config.host}:{config.port} unreachable: {exc!r}") from exc
        except ValueError as exc:  # no or malformed recipient: this message can never be sent
            raise PermanentFailure(f"cannot address the message: {exc}") from exc
        return provider_id(response)


def provider_id(response: str) -> str | None:
    """The relay's queue id from its 250 answer ("2.0.0 Ok: queued as 4B3F1"), else the whole answer."""
    queued = _QUEUED_AS.search(response)
    return (queued.group(1) if queued else response.strip())[:255] or None


class SinkSender:
    """The zero-config default: every message becomes an .eml file an operator can read or forward."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    async def send(self, message: EmailMessage) -> str | None:
        data = message.as_bytes(policy=email.policy.SMTP)
        digest = hashlib.sha256(str(message.get("Message-ID", "")).encode()).hexdigest()[:16]
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        name = f"{stamp}-{digest}.eml"
        try:
            await asyncio.to_thread(_write_atomically, self.directory, name, data)
        except OSError as exc:
            raise TemporaryFailure(f"cannot write {self.directory / name}: {exc}") from exc
        return name


def _write_atomically(directory: Path, name: str, data: bytes) -> None:
    """Readers see a whole file or none: write a hidden temporary file, then rename it into place."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, directory / name)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class SinkEntry:
    """One message in the mail sink, as `switchboard mail outbox` lists it."""

    path: Path
    date: datetime | None
    sender: str
    """The From header."""
    to: str
    subject: str
    message_id: str


def list_sink(directory: Path) -> list[SinkEntry]:
    """The messages written by `SinkSender`, oldest first (newest last), headers only."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    parser = BytesHeaderParser(policy=email.policy.default)
    entries = []
    for path in sorted(directory.glob("*.eml")):
        if path.name.startswith("."):
            continue
        try:
            with path.open("rb") as handle:
                headers = parser.parse(handle)
        except OSError as exc:
            log.warning("cannot read %s: %s", path, exc)
            continue
        entries.append(
            SinkEntry(
                path=path,
                date=parse_date(headers.get("Date")),
                sender=str(headers.get("From", "")),
                to=str(headers.get("To", "")),
                subject=str(headers.get("Subject", "")),
                message_id=str(headers.get("Message-ID", "")).strip(),
            )
        )
    return entries


def parse_date(value: object) -> datetime | None:
    """An RFC 5322 / HTTP date as an aware datetime (UTC when it names no zone), or None."""
    if value is None:
        return None
    try:
        parsed = parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
