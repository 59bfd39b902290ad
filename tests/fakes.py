"""Fakes of the external servers Switchboard talks to, running for real on 127.0.0.1.

- `SmtpSink`: an SMTP relay (aiosmtpd on the test's own event loop) that records every message and can be
  told to answer a given code, for the next N messages or until told otherwise.
"""

from __future__ import annotations

import asyncio
import email.policy
from collections import deque
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any, Literal

from aiosmtpd.smtp import SMTP, Envelope, Session

Stage = Literal["rcpt", "data"]


@dataclass(frozen=True)
class ReceivedMail:
    """One message the sink accepted: the SMTP envelope and the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    message: EmailMessage


@dataclass
class _Answer:
    reply: str
    stage: Stage
    remaining: int | None  # None: until cleared


class SmtpSink:
    """A relay for tests: `async with SmtpSink() as sink:` then point `smtp://127.0.0.1:{sink.port}` at it."""

    def __init__(self) -> None:
        self.received: list[ReceivedMail] = []
        self.refused: list[tuple[str, str]] = []
        """(stage, reply) of every refusal given, in order."""
        self.port = 0
        self._answers: deque[_Answer] = deque()
        self._server: asyncio.base_events.Server | None = None
        self._arrived = asyncio.Event()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def answer(self, reply: str, *, times: int | None = 1, stage: Stage = "data") -> None:
        """Refuse the next `times` messages (None: all, until `clear()`) with this reply, e.g. "451 4.3.0 busy"."""
        self._answers.append(_Answer(reply, stage, times))

    def clear(self) -> None:
        self._answers.clear()

    async def start(self) -> SmtpSink:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="sink.test", enable_SMTPUTF8=True, loop=loop), "127.0.0.1", 0
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> SmtpSink:
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        """Wait (bounded) until at least `count` messages were accepted."""
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.received

    def _refusal(self, stage: Stage) -> str | None:
        if not self._answers or self._answers[0].stage != stage:
            return None
        answer = self._answers[0]
        if answer.remaining is not None:
            answer.remaining -= 1
            if answer.remaining <= 0:
                self._answers.popleft()
        self.refused.append((stage, answer.reply))
        return answer.reply

    # --- aiosmtpd hooks ---------------------------------------------------------------------

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        refusal = self._refusal("rcpt")
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        refusal = self._refusal("data")
        if refusal is not None:
            return refusal
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        parsed = BytesParser(policy=email.policy.default).parsebytes(raw)
        assert isinstance(parsed, EmailMessage)
        self.received.append(
            ReceivedMail(str(envelope.mail_from or ""), tuple(envelope.rcpt_tos), raw, parsed)
        )
        self._arrived.set()
        return f"250 2.0.0 Ok: queued as SINK{len(self.received)}"
