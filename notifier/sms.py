"""SMS: texts kept within a number of segments, and the senders — an HTTP gateway or, with none set, a log file.

Two gateway shapes: a generic JSON one (URL, bearer token, field names from settings) and the
Twilio-compatible Messages API (form-encoded, basic auth, status callback). Both carry the outbox row's
dedupe key as the provider's idempotency key, because a gateway that stalls past our timeout may have
sent the SMS already (STACK-NOTES: retrying a timed-out POST delivered three copies). When the gateway
honours no such key, an answer lost after the request went out is not retried: the row is recorded as
sent, unconfirmed, and a delivery receipt settles it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import aiohttp
import phonenumbers

from notifier.delivery import IDEMPOTENCY_KEY, RESUMED, OutFile
from notifier.senders import PermanentFailure, TemporaryFailure, Unconfirmed, parse_date

log = logging.getLogger(__name__)

CHANNEL = "sms"
LOG_FILE = "sms-log.jsonl"

# GSM 03.38: the basic set costs one septet, the extension table two (escape + char); anything else → UCS-2.
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True)
class Segments:
    encoding: Literal["gsm7", "ucs2"]
    units: int
    """Septets (GSM-7) or UTF-16 code units (UCS-2)."""
    count: int


def segments(text: str) -> Segments:
    """How many SMS a text is sent as: 160/153 septets in GSM-7, 70/67 UTF-16 units in UCS-2."""
    if all(ch in _GSM7_BASIC or ch in _GSM7_EXTENDED for ch in text):
        units = sum(2 if ch in _GSM7_EXTENDED else 1 for ch in text)
        return Segments("gsm7", units, 1 if units <= 160 else math.ceil(units / 153))
    units = len(text.encode("utf-16-le")) // 2
    return Segments("ucs2", units, 1 if units <= 70 else math.ceil(units / 67))


def fit(text: str, max_segments: int) -> str:
    """The longest start of `text` (ending in an ellipsis) sent within `max_segments`; whole when it fits."""
    text = " ".join(text.split())
    if segments(text).count <= max_segments:
        return text
    ellipsis = "..." if segments(text).encoding == "gsm7" else "…"
    low, high = 0, len(text)
    while low < high:  # the largest cut that fits
        middle = (low + high + 1) // 2
        if segments(text[:middle].rstrip() + ellipsis).count <= max_segments:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + ellipsis


def e164(raw: str, region: str | None = None) -> str:
    """The number as the gateway wants it (+countrycode...); a number no SMS can reach is a permanent failure."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise PermanentFailure(f"invalid number {raw!r}: {exc}") from exc
    if not phonenumbers.is_possible_number(number):
        raise PermanentFailure(f"invalid number {raw!r}: not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@dataclass(frozen=True)
class GatewayProfile:
    """How to talk to one provider; built from `SmsSettings`."""

    kind: Literal["json", "twilio"]
    url: str
    """json: the endpoint to POST to; twilio: the API base (https://api.twilio.com) or the full Messages URL."""
    sender: str | None = None
    """The From number or alphanumeric sender id (Twilio: a MessagingServiceSid MG… works too)."""
    token: str | None = None
    """json: the bearer token."""
    account_sid: str | None = None
    auth_token: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)
    """json: our names (to, text, from, reference, callback_url) → the gateway's body field names."""
    id_field: str = "id"
    """json: the field of the gateway's answer that holds its message id."""
    idempotency_header: str | None = "Idempotency-Key"
    """The header the dedupe key travels in; None when the gateway honours none (no retry after a lost answer)."""

    def endpoint(self) -> str:
        if self.kind == "json" or self.url.endswith(".json"):
            return self.url
        return f"{self.url.rstrip('/')}/2010-04-01/Accounts/{self.account_sid}/Messages.json"


class GatewaySender:
    """`TextSender` for the "sms" outbox channel over HTTP; one aiohttp session per process, opened on first use."""

    def __init__(self, profile: GatewayProfile, *, callback_url: str | None = None, timeout: float = 15.0,
                 region: str | None = None) -> None:
        self.profile = profile
        self.callback_url = callback_url
        """Where the provider posts delivery receipts (our POST /api/v1/notifier/sms/status)."""
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._region = region
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send_text(self, chat_id: str, text: str, details: Mapping[str, Any],
                        files: Sequence[OutFile] = ()) -> str | None:
        to = e164(chat_id, self._region)
        if not text.strip():
            raise PermanentFailure("the SMS is empty")
        key = details.get(IDEMPOTENCY_KEY)
        if details.get(RESUMED) and not self.profile.idempotency_header:
            raise Unconfirmed("an earlier attempt stopped mid-send and the gateway honours no idempotency key: "
                              "not resent, it may have gone out")
        headers: dict[str, str] = {}
        if key and self.profile.idempotency_header:
            headers[self.profile.idempotency_header] = str(key)
        if self.profile.kind == "json" and self.profile.token:
            headers["Authorization"] = f"Bearer {self.profile.token}"
        elif self.profile.kind == "twilio":
            headers["Authorization"] = aiohttp.encode_basic_auth(self.profile.account_sid or "",
                                                                 self.profile.auth_token or "")
        request = self._twilio_request(to, text, details) if self.profile.kind == "twilio" \
            else self._json_request(to, text, details)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(self.profile.endpoint(), headers=headers, **request) as response:
                body = await response.read()
                status = response.status
                retry_after = _retry_after(response.headers.get("Retry-After"))
        except aiohttp.ClientConnectorError as exc:  # nothing reached the gateway: trying again is always safe
            raise TemporaryFailure(f"SMS gateway unreachable: {exc}") from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            what = f"SMS gateway did not answer ({exc.__class__.__name__}); the request may have gone out"
            if self.profile.idempotency_header and key:
                raise TemporaryFailure(f"{what}: retried with the same idempotency key") from exc
            raise Unconfirmed(f"{what}: not resent, the gateway honours no idempotency key") from exc
        return self._outcome(status, body, retry_after)

    def _json_request(self, to: str, text: str, details: Mapping[str, Any]) -> dict[str, Any]:
        names = {"to": "to", "text": "text", "from": "from", "reference": "reference",
                 "callback_url": "callback_url", **self.profile.fields}
        values = {"to": to, "text": text, "from": self.profile.sender, "reference": details.get(IDEMPOTENCY_KEY),
                  "callback_url": self.callback_url}
        return {"json": {names[name]: value for name, value in values.items() if value and names[name]}}

    def _twilio_request(self, to: str, text: str, details: Mapping[str, Any]) -> dict[str, Any]:
        sender = self.profile.sender or ""
        form = {"To": to, "Body": text, ("MessagingServiceSid" if sender.startswith("MG") else "From"): sender}
        if self.callback_url:
            form["StatusCallback"] = self.callback_url
        return {"data": form}

    def _outcome(self, status: int, body: bytes, retry_after: timedelta | None) -> str | None:
        answer = _json(body)
        if 200 <= status < 300:
            id_field = "sid" if self.profile.kind == "twilio" else self.profile.id_field
            provider_id = answer.get(id_field) or answer.get("id") or answer.get("message_id")
            return str(provider_id) if provider_id else None
        reason = answer.get("message") or answer.get("error") or body[:200].decode("utf-8", "replace").strip()
        code = f" (code {answer['code']})" if answer.get("code") else ""
        text = f"SMS gateway answered {status}{code}: {reason}".rstrip(": ")
        if status in (408, 425, 429) or status >= 500:
            raise TemporaryFailure(text, retry_after=retry_after)
        if status in (401, 403):
            # Our credentials, not this SMS: failing alerts for good over a configuration slip would lose them.
            raise TemporaryFailure(f"{text} — check SWITCHBOARD_SMS_* credentials", retry_after=retry_after)
        raise PermanentFailure(text)


class LogSender:
    """The zero-config default: each SMS is one JSON line in DATA_DIR/sms-log.jsonl, listed by the CLI."""

    def __init__(self, path: Path, *, region: str | None = None) -> None:
        self.path = Path(path)
        self._region = region

    async def send_text(self, chat_id: str, text: str, details: Mapping[str, Any],
                        files: Sequence[OutFile] = ()) -> str | None:
        to = e164(chat_id, self._region)
        key = str(details.get(IDEMPOTENCY_KEY) or "")
        provider_id = "log-" + hashlib.sha256(key.encode()).hexdigest()[:16] if key else None
        line = json.dumps({"at": datetime.now(UTC).isoformat(), "id": provider_id, "to": to, "text": text,
                           "segments": segments(text).count}, ensure_ascii=False)
        try:
            await asyncio.to_thread(_append, self.path, line)
        except OSError as exc:
            raise TemporaryFailure(f"cannot write {self.path}: {exc}") from exc
        return provider_id


def read_log(path: Path) -> list[dict[str, Any]]:
    """The SMS `LogSender` wrote, oldest first."""
    if not Path(path).is_file():
        return []
    entries = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            log.warning("skipping a broken line of %s", path)
    return entries


def _append(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()


def _json(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _retry_after(value: str | None) -> timedelta | None:
    """Retry-After as seconds or an HTTP date."""
    if not value:
        return None
    try:
        return timedelta(seconds=max(0.0, float(value)))
    except ValueError:
        pass
    when = parse_date(value)
    return max(timedelta(0), when - datetime.now(UTC)) if when is not None else None
