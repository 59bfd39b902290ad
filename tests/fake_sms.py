"""A fake SMS gateway, a real HTTP server on 127.0.0.1, for tests, benchmarks and trying the product by hand.

`FakeSmsGateway` speaks one of two provider profiles:

- "json": a generic JSON gateway, `POST /sms` with `Authorization: Bearer <token>`, `{"to", "text", ...}` in,
  `{"id", "status": "accepted"}` out, `Idempotency-Key` honoured, receipts POSTed as JSON with a bearer token.
- "twilio": the Twilio Messages API, `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` with basic auth and
  a form body (To, From/MessagingServiceSid, Body, StatusCallback), 201 `{"sid": "SM…", "status": "queued"}`,
  Twilio's error codes, `I-Twilio-Idempotency-Token`, and status callbacks signed with `X-Twilio-Signature`.

It records what it delivered (and every answer it gave), can be told to fail or stall the next requests — a
stall that accepts the SMS and answers late is the case that makes a client without idempotency send twice —
and sends delivery receipts back, by hand or automatically.

By hand: `uv run python -m tests.fake_sms --port 9099 --profile json` (see `--help`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import logging
import re
import signal
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any, Literal, Self

import aiohttp
from aiohttp import web

Profile = Literal["json", "twilio"]

log = logging.getLogger(__name__)

_E164 = re.compile(r"\+[0-9]{8,15}")
TWILIO_API = "/2010-04-01/Accounts/{account_sid}/Messages.json"


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """`X-Twilio-Signature` as Twilio's RequestValidator computes it, so the app's check can be tested against it.

    base64(HMAC-SHA1(auth_token, url + every "name" + "value" of the POST params in name order)).
    """
    payload = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@dataclass(frozen=True)
class DeliveredSms:
    """One SMS the gateway accepted (duplicates suppressed by idempotency are not delivered again)."""

    id: str
    to: str
    text: str
    sender: str | None
    """The "from" field (json) / From (twilio); None when the provider picks it (MessagingServiceSid)."""
    key: str | None
    """The idempotency key the request carried."""
    fields: dict[str, Any]
    """Every body field, as sent."""
    received_at: datetime


@dataclass
class _Fault:
    kind: Literal["fail", "stall"]
    remaining: int
    status: int = 503
    retry_after: int | None = None
    seconds: float = 0.0
    accept: bool = True


@dataclass
class _Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] | None = None


class FakeSmsGateway:
    """`async with FakeSmsGateway() as gateway:` then `SWITCHBOARD_SMS_GATEWAY_URL=gateway.url`."""

    def __init__(
        self,
        profile: Profile = "json",
        *,
        token: str = "test-token",
        to_field: str = "to",
        text_field: str = "text",
        from_field: str = "from",
        callback_field: str = "callback_url",
        account_sid: str = "ACtest",
        auth_token: str = "twilio-secret",
        receipt_token: str = "receipt-token",
        honour_idempotency: bool = True,
        auto_receipt: float | None = None,
        log_path: Path | None = None,
        port: int = 0,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        if profile not in ("json", "twilio"):
            raise ValueError(f"unknown profile {profile!r}")
        self.profile: Profile = profile
        self.token = token
        self.to_field = to_field
        self.text_field = text_field
        self.from_field = from_field
        self.callback_field = callback_field
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.receipt_token = receipt_token
        self.honour_idempotency = honour_idempotency
        self.auto_receipt = auto_receipt
        self.log_path = log_path
        self.port = port
        self.echo = echo
        """Called with one human-readable line per delivery, duplicate, refusal and receipt (the CLI prints)."""
        self.delivered: list[DeliveredSms] = []
        self.requests: list[tuple[int, dict[str, Any]]] = []
        """(HTTP status answered, body fields) of every request, failed and duplicate ones included."""
        self.receipts: list[tuple[str, str, int]] = []
        """(message id, status, HTTP status our server answered) of every receipt sent."""
        self.duplicates_suppressed = 0
        self._faults: deque[_Fault] = deque()
        self._by_id: dict[str, DeliveredSms] = {}
        self._by_key: dict[str, _Answer] = {}
        self._arrived = asyncio.Event()
        self._closing = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        """What to configure: the send endpoint (json) or the API base (twilio)."""
        base = f"http://127.0.0.1:{self.port}"
        return f"{base}/sms" if self.profile == "json" else base

    # --- what tests do ------------------------------------------------------------------------------

    def fail(self, status: int = 503, times: int = 1, retry_after: int | None = None) -> None:
        """Answer the next `times` requests with `status` (4xx or 5xx) without accepting them."""
        self._faults.append(_Fault("fail", _positive(times), status=status, retry_after=retry_after))

    def stall(self, seconds: float, times: int = 1, accept: bool = True) -> None:
        """Delay the answer to the next `times` requests by `seconds`.

        accept=True: the SMS is accepted (delivered, key remembered) before the wait — the gateway got it, but
        the client times out before hearing so. accept=False: wait first, then handle the request normally.
        """
        self._faults.append(_Fault("stall", _positive(times), seconds=seconds, accept=accept))

    def clear(self) -> None:
        """Drop pending faults."""
        self._faults.clear()

    def to(self, phone: str) -> list[DeliveredSms]:
        return [sms for sms in self.delivered if sms.to == phone]

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[DeliveredSms]:
        """Wait (bounded) until at least `count` SMS were delivered; AssertionError says what did arrive."""
        try:
            async with asyncio.timeout(timeout):
                while len(self.delivered) < count:
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            arrived = [(sms.to, sms.text) for sms in self.delivered]
            raise AssertionError(f"expected {count} SMS within {timeout}s, {len(arrived)} arrived: {arrived}") from None
        return self.delivered

    async def send_receipt(self, message_id: str, status: str = "delivered", error: str | None = None,
                           url: str | None = None) -> int:
        """Call us back as the provider would about `message_id`; returns the HTTP status our server answered.

        The URL is `url` or the one the message carried (json: `callback_field`; twilio: StatusCallback).
        """
        sms = self._by_id.get(message_id)
        if sms is None and url is None:
            raise LookupError(f"no delivered SMS {message_id!r} and no url given")
        target = url or (self._callback_url(sms) if sms is not None else None)
        if not target:
            raise ValueError(f"SMS {message_id!r} carried no callback URL; pass url=")
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        if self.profile == "json":
            payload = {"id": message_id, "status": status, "error": error, "to": sms.to if sms else None}
            headers = {"Authorization": f"Bearer {self.receipt_token}"}
            async with self._session.post(target, json=payload, headers=headers) as response:
                answered = response.status
        else:
            params = {"MessageSid": message_id, "MessageStatus": status, "AccountSid": self.account_sid}
            if error is not None:
                params["ErrorCode"] = error
            if sms is not None:
                params["To"] = sms.to
                if sms.sender is not None:
                    params["From"] = sms.sender
                elif sms.fields.get("MessagingServiceSid"):
                    params["MessagingServiceSid"] = sms.fields["MessagingServiceSid"]
            headers = {"X-Twilio-Signature": twilio_signature(self.auth_token, target, params)}
            async with self._session.post(target, data=params, headers=headers) as response:
                answered = response.status
        self.receipts.append((message_id, status, answered))
        self._say(f"RECEIPT {message_id} {status} -> {target}: HTTP {answered}")
        return answered

    # --- the server ---------------------------------------------------------------------------------

    async def start(self) -> Self:
        app = web.Application()
        if self.profile == "json":
            app.router.add_post("/sms", self._handle)
        else:
            app.router.add_post(TWILIO_API.format(account_sid="{account_sid}"), self._handle)
        self._closing.clear()
        # A short shutdown: a stalled answer must not hold up the end of a test.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        self._closing.set()  # wakes stalled handlers
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handle(self, request: web.Request) -> web.Response:
        fields = await self._fields(request)
        fault = self._next_fault()
        if fault is not None and fault.kind == "fail":
            answer = self._fault_answer(fault)
        else:
            if fault is not None and not fault.accept:
                await self._pause(fault.seconds)
            answer = self._process(request, fields)
        recorded = fields if fields is not None else {}
        self.requests.append((answer.status, recorded))
        if answer.status >= 400:
            to = recorded.get(self.to_field if self.profile == "json" else "To") or "-"
            reason = answer.body.get("error") or answer.body.get("message")
            self._say(f"REFUSED {answer.status} to {to}: {reason}")
        if fault is not None and fault.kind == "stall" and fault.accept:
            await self._pause(fault.seconds)
        return web.json_response(answer.body, status=answer.status, headers=answer.headers)

    async def _fields(self, request: web.Request) -> dict[str, Any] | None:
        """The body's fields; None for a json-profile body that is not a JSON object."""
        if self.profile == "twilio":
            return {name: str(value) for name, value in (await request.post()).items()}
        try:
            body = json.loads(await request.text() or "null")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def _next_fault(self) -> _Fault | None:
        if not self._faults:
            return None
        fault = self._faults[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            self._faults.popleft()
        return fault

    def _fault_answer(self, fault: _Fault) -> _Answer:
        try:
            phrase = HTTPStatus(fault.status).phrase
        except ValueError:
            phrase = "Error"
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
        if self.profile == "json":
            return _Answer(fault.status, {"error": phrase.lower()}, headers)
        return _Answer(fault.status, {"code": 20000 + fault.status, "message": phrase, "status": fault.status},
                       headers)

    async def _pause(self, seconds: float) -> None:
        """Sleep, cut short when the gateway stops."""
        try:
            await asyncio.wait_for(self._closing.wait(), seconds)
        except TimeoutError:
            pass

    def _process(self, request: web.Request, fields: dict[str, Any] | None) -> _Answer:
        if self.profile == "json":
            return self._process_json(request, fields)
        return self._process_twilio(request, fields or {})

    def _process_json(self, request: web.Request, fields: dict[str, Any] | None) -> _Answer:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _Answer(401, {"error": "unauthorized"})
        if fields is None:
            return _Answer(400, {"error": "body must be a JSON object"})
        to, text = fields.get(self.to_field), fields.get(self.text_field)
        for name, value in ((self.to_field, to), (self.text_field, text)):
            if value is None or value == "":
                return _Answer(400, {"error": f"missing '{name}'"})
        if not isinstance(to, str) or not _E164.fullmatch(to):
            return _Answer(400, {"error": "invalid number"})
        if not isinstance(text, str):
            return _Answer(400, {"error": f"'{self.text_field}' must be a string"})
        sender = fields.get(self.from_field)
        return self._accept(f"msg-{uuid.uuid4().hex[:20]}", to, text, None if sender is None else str(sender),
                            request.headers.get("Idempotency-Key"), fields,
                            lambda sms: _Answer(200, {"id": sms.id, "status": "accepted"}))

    def _process_twilio(self, request: web.Request, fields: dict[str, Any]) -> _Answer:
        credentials = _basic_auth(request)
        if (request.match_info["account_sid"] != self.account_sid
                or credentials != (self.account_sid, self.auth_token)):
            return _Answer(401, {"code": 20003, "message": "Authenticate", "status": 401},
                           {"WWW-Authenticate": 'Basic realm="Twilio API"'})
        to, body, sender = fields.get("To", ""), fields.get("Body", ""), fields.get("From") or None
        if not to:
            return _twilio_error(21604, "A 'To' phone number is required.")
        if not _E164.fullmatch(to):
            return _twilio_error(21211, f"The 'To' number {to} is not a valid phone number.")
        if sender is None and not fields.get("MessagingServiceSid"):
            return _twilio_error(21603, "A 'From' phone number is required.")
        if not body:
            return _twilio_error(21602, "Message body is required.")

        def created(sms: DeliveredSms) -> _Answer:
            return _Answer(201, {"sid": sms.id, "status": "queued", "to": sms.to, "from": sms.sender,
                                 "body": sms.text, "account_sid": self.account_sid,
                                 "messaging_service_sid": fields.get("MessagingServiceSid")})

        return self._accept(f"SM{uuid.uuid4().hex}", to, body, sender,
                            request.headers.get("I-Twilio-Idempotency-Token"), fields, created)

    def _accept(self, message_id: str, to: str, text: str, sender: str | None, key: str | None,
                fields: dict[str, Any], answer: Callable[[DeliveredSms], _Answer]) -> _Answer:
        """Deliver (record, log, schedule the receipt) unless the key was already accepted."""
        if key and self.honour_idempotency and key in self._by_key:
            self.duplicates_suppressed += 1
            first = self._by_key[key]
            self._say(f"DUPLICATE key {key}: {first.body.get('id') or first.body.get('sid')} not delivered again")
            return _Answer(200, first.body, first.headers)
        sms = DeliveredSms(message_id, to, text, sender, key or None, dict(fields), datetime.now(UTC))
        self.delivered.append(sms)
        self._by_id[sms.id] = sms
        self._arrived.set()
        result = answer(sms)
        if key:
            self._by_key[key] = result
        if self.log_path is not None:
            line = {"id": sms.id, "to": sms.to, "text": sms.text, "from": sms.sender, "key": sms.key,
                    "at": sms.received_at.isoformat()}
            with self.log_path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
        self._say(f"SMS {sms.id} to {sms.to}: {sms.text}")
        if self.auto_receipt is not None:
            task = asyncio.create_task(self._receipt_later(sms))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return result

    async def _receipt_later(self, sms: DeliveredSms) -> None:
        """The auto_receipt: fire and forget, a failure is logged (the app may well not be listening)."""
        assert self.auto_receipt is not None
        await asyncio.sleep(self.auto_receipt)
        if not self._callback_url(sms):
            log.debug("SMS %s carried no callback URL; no receipt", sms.id)
            return
        try:
            await self.send_receipt(sms.id)
        except Exception:  # fire and forget: the app may not be listening
            log.warning("receipt for SMS %s failed", sms.id, exc_info=True)
            self._say(f"RECEIPT {sms.id} failed")

    def _callback_url(self, sms: DeliveredSms) -> str | None:
        value = sms.fields.get(self.callback_field if self.profile == "json" else "StatusCallback")
        return str(value) if value else None

    def _say(self, line: str) -> None:
        if self.echo is not None:
            self.echo(line)


def _positive(times: int) -> int:
    if times < 1:
        raise ValueError(f"times must be at least 1, got {times}")
    return times


def _twilio_error(code: int, message: str) -> _Answer:
    return _Answer(400, {"code": code, "message": message, "status": 400})


def _basic_auth(request: web.Request) -> tuple[str, str] | None:
    """(user, password) of a basic Authorization header, decoded here: aiohttp deprecates BasicAuth."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, colon, password = base64.b64decode(encoded.strip(), validate=True).decode("latin-1").partition(":")
    except ValueError:  # binascii.Error is one
        return None
    return (user, password) if colon else None


# --- command line ---------------------------------------------------------------------------------------


def _arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fake_sms",
                                     description="A fake SMS gateway that prints every SMS it gets.")
    parser.add_argument("--port", type=int, default=9099, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--profile", choices=["json", "twilio"], default="json")
    parser.add_argument("--token", default="test-token", help="json: the bearer token required")
    parser.add_argument("--to-field", default="to", help="json: the phone number's field")
    parser.add_argument("--text-field", default="text", help="json: the text's field")
    parser.add_argument("--from-field", default="from", help="json: the sender's field")
    parser.add_argument("--callback-field", default="callback_url", help="json: the receipt URL's field")
    parser.add_argument("--account-sid", default="ACtest", help="twilio: AccountSid (basic auth user)")
    parser.add_argument("--auth-token", default="twilio-secret", help="twilio: auth token (password, signing key)")
    parser.add_argument("--receipt-token", default="receipt-token", help="json: bearer token sent with receipts")
    parser.add_argument("--fail", type=int, metavar="STATUS", help="answer the first requests with this status")
    parser.add_argument("--times", type=int, default=1, help="how many requests --fail applies to")
    parser.add_argument("--retry-after", type=int, help="Retry-After header for --fail")
    parser.add_argument("--no-idempotency", action="store_true", help="deliver repeated idempotency keys again")
    parser.add_argument("--log", type=Path, help="append one JSON line per delivered SMS to this file")
    parser.add_argument("--auto-receipt", type=float, metavar="SECONDS",
                        help="send a 'delivered' receipt this long after accepting")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    gateway = FakeSmsGateway(
        args.profile, token=args.token, to_field=args.to_field, text_field=args.text_field,
        from_field=args.from_field, callback_field=args.callback_field,
        account_sid=args.account_sid, auth_token=args.auth_token, receipt_token=args.receipt_token,
        honour_idempotency=not args.no_idempotency, auto_receipt=args.auto_receipt, log_path=args.log,
        port=args.port, echo=lambda line: print(line, flush=True),
    )
    if args.fail is not None:
        gateway.fail(args.fail, times=args.times, retry_after=args.retry_after)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    except (NotImplementedError, RuntimeError):  # not on this platform
        pass
    async with gateway:
        print(f"SWITCHBOARD_SMS_GATEWAY_URL={gateway.url}", flush=True)
        if args.profile == "twilio":
            print(f"# Twilio API base; account {gateway.account_sid}, auth token {gateway.auth_token}", flush=True)
        else:
            print(f"# bearer token {gateway.token}; fields {gateway.to_field!r}, {gateway.text_field!r}", flush=True)
        print("# Ctrl-C to stop", flush=True)
        await stop.wait()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        asyncio.run(_serve(_arguments()))
    except KeyboardInterrupt:
        pass
