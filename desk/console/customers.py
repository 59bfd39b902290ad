"""A client's card in the console: who they are, their tickets, the whole typed history of contacts across channels
(filterable by type: messages, calls, meetings, …), the contacts planned with them, and recording the next one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from desk.console.auth import Signed, form_of, require
from desk.console.pages import next_contact
from desk.console.render import page, words
from tickets.errors import DomainError
from tickets.queries.customers import HISTORY_PAGE
from web.http import path_id
from web.pages import reason
from web.runtime import runtime

FILTERS = ("message", "call")
"""The kinds the card filters by, before the activity types the admin keeps."""


async def card(request: web.Request) -> web.Response:
    return await _card(request, await require(request))


async def _card(request: web.Request, signed: Signed, *, error: str | None = None, status: int = 200) -> web.Response:
    service = runtime(request).service
    customer_id = path_id(request, "id")
    view = await service.get_customer(signed.agent, customer_id)
    types = await service.activity_types()
    said = words(request, signed)
    kinds = [(kind, said[f"history_{kind}"]) for kind in FILTERS] + [
        (kind.name, said.get(f"activity_{kind.name}", kind.name).capitalize()) for kind in types
        if kind.name not in FILTERS]
    chosen = request.query.get("type", "").strip().lower()
    if chosen not in {kind for kind, _ in kinds}:
        chosen = ""
    before = _before(request.query.get("before", ""))
    history = await service.customer_history(signed.agent, customer_id, [chosen] if chosen else (), HISTORY_PAGE,
                                             before)
    names = {a.id: a.name for a in await service.all_agents()}
    planned = await service.plan_of(signed.agent, customer_id=customer_id)
    return page(request, "customer.html", signed, status=status, card=view, history=history.contacts, kinds=kinds,
                chosen=chosen, older=history.next_before, names=names,
                activity_types=types, planned=planned, now=runtime(request).clock.now(), error=error,
                notice=request.query.get("done") if request.query.get("done") == "done_recorded" else None)


def _before(raw: str) -> datetime | None:
    try:
        at = datetime.fromisoformat(raw.strip()) if raw.strip() else None
    except ValueError:
        return None
    return at if at is None or at.tzinfo is not None else None


async def record(request: web.Request) -> web.Response:
    """Record a contact with the client (no ticket), optionally planning the next one."""
    signed = await require(request)
    form = await form_of(request, signed)
    customer_id = path_id(request, "id")
    try:
        await runtime(request).service.record_activity(
            signed.agent, customer_id, form.get("type", ""), outcome=form.get("outcome"), note=form.get("note"),
            next_contact=next_contact(form))
    except DomainError as exc:
        return await _card(request, signed, error=reason(exc)[:300], status=422)
    raise web.HTTPSeeOther(f"/desk/customers/{customer_id}?done=done_recorded")


def routes() -> list[Any]:
    return [web.get("/desk/customers/{id:\\d+}", card), web.post("/desk/customers/{id:\\d+}", record)]
