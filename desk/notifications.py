"""Notifications in the API: managers read every one with its delivery history; the SMS gateway posts receipts."""

from __future__ import annotations

import logging

from aiohttp import web
from pydantic import Field

from desk import schemas
from notifier import receipts
from notifier.history import notifications
from tickets.errors import InvalidInput, NotFound
from tickets.models import OutboxStatus, Ticket
from web.auth import MANAGERS, authenticate
from web.endpoints import Endpoint, Param
from web.forms import form_fields
from web.http import error_response, json_ok, path_id, read_json
from web.params import Id, QueryParams, query
from web.runtime import runtime

log = logging.getLogger(__name__)
MAX_LIMIT = 500


class NotificationQuery(QueryParams):
    channel: str | None = Field(None, description="email, sms, telegram or webchat.")
    status: OutboxStatus | None = Field(None, description="queued, sending, sent, delivered, failed or cancelled.")
    limit: int = Field(50, ge=1, le=MAX_LIMIT,
                       description=f"At most this many, newest first (1–{MAX_LIMIT}, default 50).")


class AllNotificationQuery(NotificationQuery):
    ticket: Id | None = Field(None, description="Only this ticket's.")


async def _listed(request: web.Request, ticket: int | None, asked: NotificationQuery) -> web.Response:
    async with runtime(request).store.session() as session:
        if ticket is not None and await session.get(Ticket, ticket) is None:
            raise NotFound(f"no ticket #{ticket}")
        found = await notifications(session, ticket=ticket, channel=asked.channel, status=asked.status,
                                    limit=asked.limit)
    return json_ok(schemas.NotificationList(items=[schemas.notification_out(n.row, n.attempts) for n in found]))


async def list_notifications(request: web.Request) -> web.Response:
    await authenticate(request, MANAGERS)
    asked = query(request, AllNotificationQuery)
    return await _listed(request, asked.ticket, asked)


async def ticket_notifications(request: web.Request) -> web.Response:
    await authenticate(request, MANAGERS)
    return await _listed(request, path_id(request, "number"), query(request, NotificationQuery))


async def sms_status(request: web.Request) -> web.Response:
    """A delivery receipt from the SMS gateway: signed (twilio) or with the bearer status token (json)."""
    rt = runtime(request)
    sms = rt.settings.sms
    if request.content_type == "application/json":
        body = await read_json(request)
        if not isinstance(body, dict):
            raise InvalidInput({"body": "expected a JSON object"})
        fields = {k: str(v) for k, v in body.items() if v is not None}  # as strings: Twilio signs strings
    else:
        fields = await form_fields(request)
    signature = request.headers.get("X-Twilio-Signature")
    url = f"{rt.settings.public_url}{receipts.SMS_STATUS_PATH}"
    if sms.profile == "twilio" and sms.auth_token:
        trusted = receipts.signed_by_twilio(sms.auth_token, url, fields, signature)
    elif sms.status_token:
        trusted = receipts.bearer_matches(sms.status_token, request.headers.get("Authorization"))
    else:
        return error_response(403, "forbidden",
                              "receipts are off: set SWITCHBOARD_SMS_STATUS_TOKEN (json) or the twilio auth token")
    if not trusted:
        log.warning("SMS receipt refused from %s: bad signature or token", request.remote)
        return error_response(401, "unauthorized", "bad signature or token")
    receipt = receipts.from_twilio(fields) if "MessageStatus" in fields else receipts.from_json(fields)
    try:
        row = await receipts.record(rt.store, rt.clock, receipt)
    except ValueError as exc:
        raise InvalidInput({"body": str(exc)}) from None
    if row is None:
        raise NotFound(f"no SMS with id {receipt.provider_id or receipt.reference!r}")
    return json_ok(schemas.ReceiptOut(id=row.id, status=str(row.status)))



ENDPOINTS = [
    Endpoint(
        "GET", "/api/v1/notifications", list_notifications,
        "Managers: notifications (outbox), newest first, each with every delivery attempt and receipt",
        "notifications", response=schemas.NotificationList,
        query=AllNotificationQuery,
        errors=(401, 403, 422, 503),
    ),
    Endpoint(
        "GET", "/api/v1/tickets/{number}/notifications", ticket_notifications,
        "Managers: the ticket's notifications with their delivery history", "notifications",
        response=schemas.NotificationList,
        params=(Param("number", "path", "Ticket number.", {"type": "integer"}, True),), query=NotificationQuery,
        errors=(401, 403, 404, 422, 503),
    ),
    Endpoint(
        "POST", receipts.SMS_STATUS_PATH, sms_status,
        "The SMS gateway's delivery receipt (JSON with Authorization: Bearer SWITCHBOARD_SMS_STATUS_TOKEN, or "
        "Twilio's signed form)", "notifications", auth=False, response=schemas.ReceiptOut,
        errors=(401, 403, 404, 422, 503),
    ),
]
