"""The web form channel: an HTML contact page and a JSON endpoint, both turning a submission into `Inbound`."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp_cors
from aiohttp import web
from pydantic import BaseModel, Field

from channels.poison import ParkedItem, store_or_park
from channels.webform.form import CATEGORIES, CHANNEL, HONEYPOT, ContactForm, to_inbound, validate
from channels.webform.words import WORDS, refusal
from tickets.errors import DomainError, InvalidInput, StoreUnavailable
from tickets.inbound import Inbound
from tickets.ingest import IngestResult
from tickets.language import from_accept_language
from tickets.text import clean, clean_inbound, clean_text
from web.endpoints import Endpoint, Param
from web.forms import FormErrors, read_form
from web.http import error_response, json_ok, read_json
from web.pages import Pages, reader_language
from web.ratelimit import RateLimiter
from web.runtime import RUNTIME, runtime

LIMITER = web.AppKey("webform.limiter", RateLimiter)
MAX_KEY = 200

_pages = Pages(Path(__file__).parent / "templates", WORDS)
FORM_TOKEN = re.compile(r"[A-Za-z0-9_-]{8,100}")
"""What a contact page puts in its form: a retried post with the same token is the same submission."""


class WebformCreated(BaseModel):
    number: int = Field(description="The ticket number to quote in any follow-up.")
    status: str
    created: bool = Field(description="False when the message joined an existing ticket.")
    duplicate: bool = Field(description="True when this Idempotency-Key was seen before: nothing new was stored.")


def client_ip(request: web.Request) -> str:
    """The submitting client's address; X-Forwarded-For is believed only from a trusted proxy."""
    remote = request.remote or "unknown"
    if remote in runtime(request).settings.http.trusted_proxies:
        forwarded = request.headers.get("X-Forwarded-For", "")
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if hops:
            return hops[-1]
    return remote


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        return None
    if len(key) > MAX_KEY:
        raise FormErrors({"Idempotency-Key": f"longer than {MAX_KEY} characters"})
    return f"key:{key}"


async def _limited(request: web.Request) -> int | None:
    return await request.app[LIMITER].retry_after(client_ip(request))


def _language(request: web.Request) -> str:
    """The page's language: the one the reader chose on it (`?lang=`), else their browser's."""
    chosen = request.query.get("lang", "")
    return reader_language(request, chosen if chosen in WORDS else None)


def _render(request: web.Request, name: str, status: int = 200, headers: dict[str, str] | None = None,
            **context: Any) -> web.Response:
    lang = _language(request)
    return _pages.render(name, lang, status=status, headers=headers, categories=list(CATEGORIES),
                         honeypot=HONEYPOT, say=lambda field, problem: refusal(lang, field, problem), **context)


async def contact_page(request: web.Request) -> web.Response:
    return _render(request, "contact.html", values={"form_token": uuid.uuid4().hex}, errors={})


async def contact_submit(request: web.Request) -> web.Response:
    settings = runtime(request).settings
    if (retry := await _limited(request)) is not None:
        return _render(request, "contact.html", 429, {"Retry-After": str(retry)},
                       values={"form_token": uuid.uuid4().hex}, errors={"form": WORDS[_language(request)]["too_many"]})
    values: dict[str, str] = {}
    try:
        files = await read_form(request, values)
        token = values.get("form_token", "")
        if not FORM_TOKEN.fullmatch(token):  # the page's own hex token; anything else (line breaks…) is replaced
            token = uuid.uuid4().hex
        values["form_token"] = token  # a re-shown form keeps its token, so fixing and re-sending stays idempotent
        form, identities = validate(
            {k: v for k, v in values.items() if k in ContactForm.model_fields}, settings.phone_region
        )
        stored = tuple([await runtime(request).attachments.save(n, t, d) for n, t, d in files])
        inbound = to_inbound(form, identities, idempotency_key=f"form:{token[:100]}", attachments=stored,
                             language=from_accept_language(request.headers.get("Accept-Language", "")))
        outcome = await _store(request, inbound, json.dumps({k: v for k, v in values.items() if k != HONEYPOT}))
        if isinstance(outcome, ParkedItem):
            return _render(request, "submitted.html", number=None, duplicate=False, portal=None)
        result = outcome
        if result.duplicate and result.message.body_text != clean_text(form.message)[0]:
            # An old page sent again with a new message (the back button): a new submission, not a retry.
            result = await runtime(request).service.ingest(replace(inbound, external_id=f"form:{uuid.uuid4().hex}"))
    except FormErrors as exc:
        values.setdefault("form_token", uuid.uuid4().hex)
        values.pop(HONEYPOT, None)
        return _render(request, "contact.html", status=422, values=values, errors=exc.fields)
    except StoreUnavailable:
        return _render(request, "contact.html", 503, {"Retry-After": "5"}, values=values,
                       errors={"form": WORDS[_language(request)]["not_saved"]})
    key = result.ticket.portal_key
    return _render(request, "submitted.html", number=result.ticket.id, duplicate=result.duplicate,
                   portal=f"/portal/{key}" if key else None)


async def _store(request: web.Request, inbound: Inbound, payload: str) -> IngestResult | ParkedItem:
    """The receipt, or the submission parked after its retries (`channels.poison`)."""
    service = runtime(request).service

    async def park(error: str, attempts: int) -> int:
        return await service.park(CHANNEL, inbound.external_id, error, payload=payload, attempts=attempts)

    # A refusal (a field the store rejects) is the client's to fix, answered 4xx; anything else is poison.
    return await store_or_park(lambda: service.ingest(inbound), park, passes=(DomainError,), what="web form")


async def webform_json(request: web.Request) -> web.Response:
    settings = runtime(request).settings
    if (retry := await _limited(request)) is not None:
        return error_response(429, "rate_limited", "too many submissions from this address",
                              headers={"Retry-After": str(retry)})
    try:
        key = _idempotency_key(request)
        try:
            payload = await read_json(request)
        except InvalidInput as exc:
            raise FormErrors(exc.fields) from None
        if not isinstance(payload, dict):
            raise FormErrors({"body": "expected a JSON object"})
        payload, cleaned = clean(payload)  # before validating: pydantic refuses an unpaired surrogate
        form, identities = validate(payload, settings.phone_region)
    except FormErrors as exc:
        return error_response(422, "invalid", "the form has invalid fields", exc.fields)
    inbound = to_inbound(form, identities, idempotency_key=key,
                         language=from_accept_language(request.headers.get("Accept-Language", "")))
    outcome = await _store(request, clean_inbound(inbound, cleaned), json.dumps(payload))
    if isinstance(outcome, ParkedItem):
        # Refused by the store every time: kept whole for the staff, so the client's words are not lost.
        return json_ok({"status": "kept", "parked": outcome.number}, status=202)
    result = outcome
    if result.duplicate and result.message.body_text != clean_text(form.message)[0]:
        # A reused key with another message would silently drop that message: refuse it instead.
        return error_response(422, "idempotency_key_reused", "this Idempotency-Key was used for a different message",
                              {"Idempotency-Key": f"already used for ticket #{result.ticket.id} with another message"})
    body = WebformCreated(number=result.ticket.id, status=result.ticket.status.value, created=result.created,
                          duplicate=result.duplicate)
    headers = {"Location": f"/api/v1/tickets/{result.ticket.id}"}
    if result.duplicate:
        headers["Idempotent-Replayed"] = "true"
    return json_ok(body, status=201, headers=headers)


ENDPOINTS = [
    Endpoint("GET", "/contact", contact_page, "The contact form (HTML)", "webform", auth=False,
             response_media="text/html", in_openapi=True),
    Endpoint("POST", "/contact", contact_submit, "Submit the contact form (HTML, multipart with attachments)",
             "webform", auth=False, body=ContactForm, body_media="multipart/form-data", response_media="text/html",
             errors=(422, 429, 503)),
    Endpoint(
        "POST", "/api/v1/webform", webform_json, "Submit the contact form as JSON (public, CORS-enabled)", "webform",
        auth=False, body=ContactForm, response=WebformCreated, status=201,
        params=(Param("Idempotency-Key", "header", "A retried post with the same key returns the same ticket."),),
        errors=(422, 429, 503),
    ),
]


def setup(app: web.Application) -> None:
    """Register the channel's routes, its rate limiter and CORS for the JSON endpoint."""
    rt = app[RUNTIME]
    app[LIMITER] = RateLimiter(rt.redis, rt.settings.http.form_rate_limit, prefix="ratelimit:webform")
    for endpoint in ENDPOINTS:
        route = app.router.add_route(endpoint.method, endpoint.path, endpoint.handler)
        if endpoint.handler is webform_json and rt.settings.http.cors_origins:
            options = aiohttp_cors.ResourceOptions(allow_headers=("Content-Type", "Idempotency-Key"),
                                                   expose_headers=("Location", "Idempotent-Replayed", "Retry-After"))
            cors = aiohttp_cors.setup(app, defaults={origin: options for origin in rt.settings.http.cors_origins})
            cors.add(route)
