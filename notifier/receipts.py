"""Delivery receipts the SMS gateway posts back, and who may post them.

The JSON profile's receipts carry a bearer token (SWITCHBOARD_SMS_STATUS_TOKEN); Twilio's are signed
(X-Twilio-Signature: HMAC-SHA1 of the callback URL and the sorted form fields, keyed by the auth token).
A receipt finds its row by the provider's message id, or by our reference (the dedupe key) when the
answer carrying the id was lost.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import or_, select

from notifier.delivery import history
from notifier.sms import CHANNEL
from tickets.clock import Clock
from tickets.models import Outbox, OutboxStatus
from tickets.uow import Store

log = logging.getLogger(__name__)

SMS_STATUS_PATH = "/api/v1/notifier/sms/status"
DELIVERED = frozenset({"delivered", "read"})
UNDELIVERED = frozenset({"failed", "undelivered", "rejected", "expired", "canceled", "cancelled"})


@dataclass(frozen=True)
class Receipt:
    provider_id: str | None
    status: str
    """The provider's word, lower-cased (delivered, undelivered, failed, sent, queued…)."""
    error: str | None = None
    reference: str | None = None
    """Our dedupe key, when the gateway echoes it."""


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """What Twilio puts in X-Twilio-Signature for a form POST to `url`."""
    payload = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signed_by_twilio(auth_token: str, url: str, params: Mapping[str, str], signature: str | None) -> bool:
    return bool(signature) and hmac.compare_digest(twilio_signature(auth_token, url, params), signature or "")


def bearer_matches(expected: str, header: str | None) -> bool:
    scheme, _, token = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected.encode())


def from_twilio(form: Mapping[str, str]) -> Receipt:
    code = form.get("ErrorCode")
    error = f"provider error {code}" + (f": {form['ErrorMessage']}" if form.get("ErrorMessage") else "") \
        if code else None
    return Receipt(form.get("MessageSid") or form.get("SmsSid"), (form.get("MessageStatus") or "").lower(), error)


def from_json(body: Mapping[str, object]) -> Receipt:
    def text(*names: str) -> str | None:
        value = next((body[n] for n in names if body.get(n) not in (None, "")), None)
        return str(value) if value is not None else None

    return Receipt(text("id", "message_id", "sid"), (text("status") or "").lower(), text("error", "error_message"),
                   text("reference"))


async def record(store: Store, clock: Clock, receipt: Receipt) -> Outbox | None:
    """Apply one receipt; None when no SMS of ours has that id. A receipt only ever moves a row forward."""
    if not receipt.status or not (receipt.provider_id or receipt.reference):
        raise ValueError("a receipt needs a status and the message id")
    now = clock.now()
    found = [Outbox.provider_id == receipt.provider_id] if receipt.provider_id else []
    if receipt.reference:
        found.append(Outbox.dedupe_key == receipt.reference)
    async with store.session() as session:
        row = await session.scalar(select(Outbox).where(Outbox.channel == CHANNEL, or_(*found))
                                   .order_by(Outbox.id).limit(1).with_for_update())
        if row is None:
            return None
        if receipt.provider_id and not row.provider_id:
            row.provider_id = receipt.provider_id[:255]
        outcome = receipt.status[:16]
        if receipt.status in DELIVERED and row.status != OutboxStatus.delivered:
            row.status, row.last_error = OutboxStatus.delivered, None
            row.sent_at = row.sent_at or now
        elif receipt.status in UNDELIVERED and row.status != OutboxStatus.delivered:
            row.status = OutboxStatus.failed
            row.last_error = f"the gateway reports {receipt.status}" + (f": {receipt.error}" if receipt.error else "")
        elif row.status in (OutboxStatus.queued, OutboxStatus.sending):
            # Accepted by the gateway although our request timed out: it is out; do not send it again.
            row.status, row.sent_at = OutboxStatus.sent, row.sent_at or now
        row.updated_at = now
        history(session, row, outcome, now, error=receipt.error)
        log.info("SMS receipt for outbox %s: %s", row.id, receipt.status)
        return row
