"""Inbound SMTP: aiosmtpd on the application's own event loop, acknowledging only what the store committed.

The whole protocol is reduced to two hooks: RCPT decides which support addresses we accept, DATA parses,
stores and answers with a named status code.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from channels.email.inbound import CHANNEL, to_inbound
from channels.email.parse import ParsedMail, parse_mail
from channels.poison import ParkedItem, store_or_park
from tickets.attachments import AttachmentStore
from tickets.errors import NotStored, StoreUnavailable
from tickets.service import TicketService
from web.ratelimit import RateLimiter

log = logging.getLogger(__name__)

OK = "250 2.0.0 OK"
UNKNOWN_RECIPIENT = "550 5.1.1 No such support address here"
TRY_LATER = "451 4.3.0 Cannot store the message right now; try again later"
TOO_MANY = "451 4.7.1 Too many messages from this sender; try again later"
CANNOT_KEEP = "554 5.3.0 This message cannot be stored here; please send it another way"
_STUFFED_AFTER_BARE_LF = re.compile(rb"((?:^|[^\r])\n)\.\.")
PARSE_IN_THREAD_BYTES = 256 * 1024  # parsing costs ~0.05 ms/KB: bigger messages would stall the loop


@dataclass(frozen=True)
class MailboxConfig:
    addresses: dict[str, str]
    """Support address → group; empty accepts every recipient into the default group."""
    max_bytes: int


class InboundMailHandler:
    """aiosmtpd handler: one message in, one `Inbound` to the ticket service, a status code out."""

    def __init__(
        self, service: TicketService, attachments: AttachmentStore, config: MailboxConfig, limiter: RateLimiter
    ) -> None:
        self._service = service
        self._attachments = attachments
        self._config = config
        self._limiter = limiter

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self._config.addresses and address.lower() not in self._config.addresses:
            return UNKNOWN_RECIPIENT
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        raw = unstuff_bare_lf_lines(raw)
        sender = (envelope.mail_from or "").lower()
        message_id: list[str] = []

        async def receive() -> str:
            if len(raw) > PARSE_IN_THREAD_BYTES:
                parsed = await asyncio.to_thread(parse_mail, raw, sender)
            else:
                parsed = parse_mail(raw, sender)
            message_id[:] = [_id(parsed)]
            limited_by = parsed.sender.address if parsed.sender else sender
            if limited_by and await self._limiter.retry_after(limited_by) is not None:
                log.warning("mail from %s refused for now: sender rate limit", limited_by)
                return TOO_MANY
            inbound = await to_inbound(parsed, envelope.rcpt_tos, self._config.addresses, self._attachments)
            try:
                result = await self._service.ingest(inbound)
            except NotStored as reason:
                log.info("mail %s accepted and not stored: %s", _id(parsed), reason)
                return OK
            verb = "duplicate of" if result.duplicate else ("opened" if result.created else "added to")
            return f"250 2.0.0 OK: {verb} ticket #{result.ticket.id}"

        async def park(error: str, attempts: int) -> int:
            kept = await self._attachments.save("message.eml", "message/rfc822", raw)
            reference = message_id[0] if message_id else None
            return await self._service.park(CHANNEL, reference, error, raw=kept, attempts=attempts)

        try:
            outcome = await store_or_park(receive, park, what=f"mail from {sender or '<>'}")
        except StoreUnavailable:
            return TRY_LATER
        except Exception:  # noqa: BLE001 - it could not even be parked: refuse it for good, never 451 forever
            log.exception("mail from %s could neither be stored nor parked", sender)
            return CANNOT_KEEP
        if isinstance(outcome, ParkedItem):
            return f"250 2.0.0 OK: kept for review as parked item {outcome.number}"
        return outcome


def _id(parsed: ParsedMail) -> str:
    return parsed.message_id or "(no Message-ID)"


class LenientSMTP(SMTP):
    """aiosmtpd, as lenient as Postfix with clients that end lines with a bare LF. aiosmtpd ends a line only at
    CRLF, so a paragraph of bare-LF lines was one line past the 1000-byte limit (answered 500: the mail bounced)
    and a dot-stuffed line after a bare LF kept its extra dot. Commands keep their size limits."""

    def __init__(self, handler: Any, *, data_size_limit: int, **kwargs: Any) -> None:
        self.line_length_limit = max(SMTP.line_length_limit, data_size_limit + 2)  # read before the reader is made
        super().__init__(handler, data_size_limit=data_size_limit, **kwargs)


def unstuff_bare_lf_lines(raw: bytes) -> bytes:
    """Undo the dot-stuffing of lines that begin after a bare LF (aiosmtpd undoes it after CRLF only)."""
    return _STUFFED_AFTER_BARE_LF.sub(b"\\1.", raw)


async def start_smtp_server(
    handler: InboundMailHandler, host: str, port: int, *, max_bytes: int, hostname: str | None = None
) -> asyncio.AbstractServer:
    """Serve SMTP on the running loop, so handlers share the app's database pool (not aiosmtpd's Controller thread)."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: LenientSMTP(handler, data_size_limit=max_bytes, enable_SMTPUTF8=True, decode_data=False,
                            hostname=hostname, ident="Switchboard ESMTP"),
        host,
        port,
    )
