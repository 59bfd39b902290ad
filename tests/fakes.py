"""Fakes of the external servers Switchboard talks to, running for real on 127.0.0.1.

- `SmtpSink`: an SMTP relay (aiosmtpd on the test's own event loop) that records every message and can be
  told to answer a given code, for the next N messages or until told otherwise.
- `FakeTelegram`: a Telegram Bot API server (aiohttp) that aiogram talks to unmodified: getMe, getUpdates
  (a queue of pushed updates, offset confirms), sendMessage (recorded; 429/403/500 injectable), getFile and
  file downloads, setWebhook/deleteWebhook.
"""

from __future__ import annotations

import asyncio
import email.policy
from collections import deque
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any, Literal

from aiohttp import web
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
        self._gate: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def answer(self, reply: str, *, times: int | None = 1, stage: Stage = "data") -> None:
        """Refuse the next `times` messages (None: all, until `clear()`) with this reply, e.g. "451 4.3.0 busy"."""
        self._answers.append(_Answer(reply, stage, times))

    def clear(self) -> None:
        self._answers.clear()

    def hold(self) -> None:
        """Keep the next messages (they count as received) but hold the answer to their DATA until `release()`:
        the message is out, the sender does not know it yet."""
        self._gate = asyncio.Event()

    def release(self) -> None:
        if self._gate is not None:
            self._gate.set()
            self._gate = None

    async def start(self) -> SmtpSink:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="sink.test", enable_SMTPUTF8=True, loop=loop), "127.0.0.1", self.port
        )  # port 0 the first time; a restarted sink listens where it did, like a relay back from an outage
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
        if self._gate is not None:
            await self._gate.wait()
        return f"250 2.0.0 Ok: queued as SINK{len(self.received)}"


# --- Telegram Bot API -----------------------------------------------------------------------------------


@dataclass
class _TelegramError:
    status: int
    description: str
    remaining: int
    retry_after: int | None = None
    after: int = 0
    """sendMessage calls still to answer normally before this error starts."""


class FakeTelegram:
    """`async with FakeTelegram(token) as tg:` then `SWITCHBOARD_TELEGRAM_API_BASE=tg.base_url`.

    Updates pushed with `push(...)` are served by getUpdates until a call with a higher offset confirms them,
    as Telegram does.
    """

    BOT_ID = 777000

    def __init__(self, token: str = "123456:TEST-token") -> None:
        self.token = token
        self.port = 0
        self.updates: list[dict[str, Any]] = []
        self.get_updates_offsets: list[int | None] = []
        self.sent: list[dict[str, Any]] = []
        """sendMessage calls that succeeded (chat_id, text) and sendDocument calls (chat_id, document, data)."""
        self.send_attempts = 0
        self.webhook: dict[str, Any] | None = None
        self.webhook_deleted = 0
        self.files: dict[str, tuple[str, bytes]] = {}
        self._errors: deque[_TelegramError] = deque()
        self._next_update = 1
        self._next_message = 1000
        self._pushed = asyncio.Event()
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- what tests do ------------------------------------------------------------------------------

    def user(self, user_id: int = 42, *, first_name: str = "Ivan", last_name: str | None = "Petrov",
             language_code: str | None = "ru") -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if language_code:
            user["language_code"] = language_code
        return user

    def message(self, text: str | None = None, *, user: dict[str, Any] | None = None, message_id: int | None = None,
                **content: Any) -> dict[str, Any]:
        """A private-chat message update (not queued); `content` adds photo=…, document=…, sticker=…, contact=…"""
        user = user or self.user()
        if message_id is None:
            self._next_message += 1
            message_id = self._next_message
        message: dict[str, Any] = {
            "message_id": message_id, "date": 1_790_000_000, "from": user,
            "chat": {"id": user["id"], "type": "private", "first_name": user["first_name"]},
        }
        if text is not None:
            message["text"] = text
        message.update(content)
        update_id = self._next_update
        self._next_update += 1
        return {"update_id": update_id, "message": message}

    def push(self, *updates: dict[str, Any]) -> list[dict[str, Any]]:
        """Queue updates for getUpdates (each keeps the update_id it was made with)."""
        self.updates.extend(updates)
        self._pushed.set()
        return list(updates)

    def add_file(self, file_id: str, data: bytes, path: str | None = None) -> None:
        self.files[file_id] = (path or f"files/{file_id}", data)

    def fail_next(self, status: int, *, times: int = 1, retry_after: int | None = None, description: str = "",
                  after: int = 0) -> None:
        """The next `times` sendMessage calls answer with this error (429 takes `retry_after`).

        `after` lets that many calls succeed first: `after=1` fails the second piece of a split reply.
        """
        text = description or {429: f"Too Many Requests: retry after {retry_after}",
                               403: "Forbidden: bot was blocked by the user",
                               500: "Internal Server Error"}.get(status, "error")
        self._errors.append(_TelegramError(status, text, times, retry_after, after))

    async def wait_sent(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout):
            while len(self.sent) < count:
                await asyncio.sleep(0.02)
        return self.sent

    # --- the server ---------------------------------------------------------------------------------

    async def start(self) -> FakeTelegram:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    @staticmethod
    def _ok(result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    async def _params(self, request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            return dict(await request.json())
        params: dict[str, Any] = {}
        for key, value in (await request.post()).items():
            params[key] = value  # a file (sendDocument's document) stays a FileField
        return params

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"].lower()
        params = await self._params(request)
        if method == "getme":
            return self._ok({"id": self.BOT_ID, "is_bot": True, "first_name": "Support", "username": "support_bot"})
        if method == "getupdates":
            return await self._get_updates(params)
        if method in ("sendmessage", "senddocument"):
            return self._send_message(params)
        if method == "getfile":
            path, data = self.files[params["file_id"]]
            return self._ok({"file_id": params["file_id"], "file_unique_id": f"u{params['file_id']}",
                             "file_size": len(data), "file_path": path})
        if method == "setwebhook":
            self.webhook = {"url": params.get("url"), "secret_token": params.get("secret_token"),
                            "allowed_updates": params.get("allowed_updates")}
            return self._ok(True)
        if method == "deletewebhook":
            self.webhook = None
            self.webhook_deleted += 1
            return self._ok(True)
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found: method"}, status=404)

    async def _get_updates(self, params: dict[str, Any]) -> web.Response:
        offset = int(params["offset"]) if params.get("offset") not in (None, "") else None
        timeout = float(params.get("timeout") or 0)
        self.get_updates_offsets.append(offset)
        if offset is not None:  # a higher offset confirms everything below it
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        if not self.updates and timeout:
            self._pushed.clear()
            try:
                await asyncio.wait_for(self._pushed.wait(), min(timeout, 0.5))
            except TimeoutError:
                pass
        return self._ok(list(self.updates[:100]))

    def _send_message(self, params: dict[str, Any]) -> web.Response:
        self.send_attempts += 1
        if self._errors and self._errors[0].after > 0:
            self._errors[0].after -= 1
        elif self._errors:
            error = self._errors[0]
            error.remaining -= 1
            if error.remaining <= 0:
                self._errors.popleft()
            body: dict[str, Any] = {"ok": False, "error_code": error.status, "description": error.description}
            if error.retry_after is not None:
                body["parameters"] = {"retry_after": error.retry_after}
            return web.json_response(body, status=error.status)
        self._next_message += 1
        chat_id = int(params["chat_id"])
        document = params.get("document")
        if isinstance(document, str) and document.startswith("attach://"):  # how aiogram uploads a file
            document = params.get(document.removeprefix("attach://"))
        if isinstance(document, web.FileField):
            self.sent.append({"chat_id": chat_id, "document": document.filename, "data": document.file.read(),
                              "content_type": document.content_type})
            content: dict[str, Any] = {"document": {"file_id": f"d{self._next_message}", "file_name": document.filename,
                                                    "file_unique_id": f"u{self._next_message}"}}
        else:
            self.sent.append({"chat_id": chat_id, "text": params["text"]})
            content = {"text": params["text"]}
        return self._ok({"message_id": self._next_message, "date": 1_790_000_000,
                         "chat": {"id": chat_id, "type": "private"}, **content,
                         "from": {"id": self.BOT_ID, "is_bot": True, "first_name": "Support"}})

    async def _file(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        for stored_path, data in self.files.values():
            if stored_path == path:
                return web.Response(body=data, content_type="application/octet-stream")
        return web.Response(status=404)
