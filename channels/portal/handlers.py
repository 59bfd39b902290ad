"""The customer portal at /portal/{key}: the ticket's status and public history, a reply box, and the rating
asked for once it is resolved. The key in the link is the only credential, so every post is limited per key."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from aiohttp import web

from channels.portal.words import WORDS
from tickets.actions.portal import check_reply
from tickets.errors import Conflict, InvalidInput, NotFound
from web.files import attachment_response
from web.forms import FormErrors, form_fields, read_form
from web.pages import Pages, reader_language, reason
from web.ratelimit import RateLimiter
from web.runtime import runtime

POSTS_PER_MINUTE = 10
_pages = Pages(Path(__file__).parent / "templates", WORDS)


def _key(request: web.Request) -> str:
    return request.match_info["key"]


async def _limited(request: web.Request) -> None:
    wait = await RateLimiter(runtime(request).redis, POSTS_PER_MINUTE, prefix="ratelimit:portal") \
        .retry_after(_key(request))
    if wait:
        raise web.HTTPTooManyRequests(text="Too many messages: wait a minute.", headers={"Retry-After": str(wait)})


async def show(request: web.Request) -> web.Response:
    notice = request.query.get("done")
    return await _page(request, notice=notice if notice in ("sent", "rated") else None)


async def _page(request: web.Request, *, notice: str | None = None, error: str | None = None,
                status: int = 200) -> web.Response:
    """The portal page; a refused post shows it again with the reason, never from the address (an `?error=` in
    a link would let anyone put words on the client's page)."""
    try:
        view = await runtime(request).service.portal_view(_key(request))
    except NotFound:
        raise web.HTTPNotFound(text="This link does not lead to a ticket.") from None
    return _pages.render("portal.html", reader_language(request, view.customer.language), status=status, view=view,
                         key=_key(request), idempotency=secrets.token_urlsafe(12), notice=notice, error=error)


async def reply(request: web.Request) -> web.Response:
    """A message and up to ten files, within the same upload budget as the contact form."""
    await _limited(request)
    rt = runtime(request)
    fields: dict[str, str] = {}
    try:
        await rt.service.portal_number(_key(request))  # the link first: nothing is read for one leading nowhere
        files = await read_form(request, fields)
        check_reply(fields.get("body", ""), files=len(files))  # and the text, before any file is kept
        stored = tuple([await rt.attachments.save(n, t, d) for n, t, d in files])
        await rt.service.portal_reply(_key(request), fields.get("body", ""), fields.get("idempotency") or None,
                                      attachments=stored)
    except NotFound:
        raise web.HTTPNotFound(text="This link does not lead to a ticket.") from None
    except (InvalidInput, Conflict, FormErrors) as exc:
        return await _page(request, error=reason(exc), status=422)
    raise web.HTTPSeeOther(f"/portal/{_key(request)}?done=sent")


async def rate(request: web.Request) -> web.Response:
    await _limited(request)
    form = await form_fields(request)
    raw = form.get("score", "")
    try:
        score = int(raw) if raw in ("1", "2", "3", "4", "5") else 0
        await runtime(request).service.rate(_key(request), score, form.get("comment"))
    except NotFound:
        raise web.HTTPNotFound(text="This link does not lead to a ticket.") from None
    except (InvalidInput, Conflict) as exc:
        return await _page(request, error=reason(exc), status=422)
    raise web.HTTPSeeOther(f"/portal/{_key(request)}?done=rated")


async def download(request: web.Request) -> web.StreamResponse:
    """A file of a message the page shows (the client's own or an agent's reply; never a note's)."""
    rt = runtime(request)
    try:
        view = await rt.service.portal_view(_key(request))
    except NotFound:
        raise web.HTTPNotFound(text="This link does not lead to a ticket.") from None
    message = next((m for m in view.messages if str(m.id) == request.match_info["message"]), None)
    return attachment_response(rt.attachments, message.attachments if message else None, request.match_info["index"])


def routes() -> list[Any]:
    return [web.get("/portal/{key}", show), web.post("/portal/{key}", reply), web.post("/portal/{key}/rate", rate),
            web.get("/portal/{key}/files/{message}/{index}", download)]
