"""Calls in the console: the pop an agent gets while a call rings for them (the caller's card, open tickets, last
contacts, and one click to put the call on a ticket), and the caller log (calls ringing and in progress, today's)."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from aiohttp import web

from desk.console.auth import Signed, console_path, form_of, require
from desk.console.pages import next_contact
from desk.console.render import page
from tickets.errors import DomainError
from tickets.numbers import as_id
from web.pages import reason
from web.runtime import runtime


def _call_id(request: web.Request) -> str:
    return request.match_info["call"]


async def pop(request: web.Request) -> web.Response:
    """The pop's markup for one call (the page puts it in its call panel)."""
    signed = await require(request)
    view = await runtime(request).service.call_pop(signed.agent, _call_id(request))
    return _pop(request, signed, view)


async def current(request: web.Request) -> web.Response:
    """The pop of the viewer's call ringing or in progress, if any (204): a page opened mid-call shows it again."""
    signed = await require(request)
    service = runtime(request).service
    call_id = await service.current_call(signed.agent)
    if call_id is None:
        return web.Response(status=204)
    return _pop(request, signed, await service.call_pop(signed.agent, call_id))


def _pop(request: web.Request, signed: Signed, view: Any, error: str | None = None, status: int = 200,
         recorded: bool = False) -> web.Response:
    return page(request, "call_pop.html", signed, status=status, pop=view, now=runtime(request).clock.now(),
                error=error, recorded=recorded, headers={"Cache-Control": "no-store"})


async def act(request: web.Request) -> web.Response:
    """Open a ticket for the call, put it on an open one, give an unknown number a card, or record the call."""
    signed = await require(request)
    form = await form_of(request, signed)
    service = runtime(request).service
    call_id, action = _call_id(request), form.get("action", "")
    try:
        if action == "ticket":
            number = await service.open_ticket_for_call(signed.agent, call_id)
            raise web.HTTPSeeOther(f"/desk/tickets/{number}")
        if action == "attach":
            chosen = as_id(form.get("ticket", ""))
            if chosen is None:
                raise web.HTTPBadRequest(text="choose a ticket")
            await service.put_call_on_ticket(signed.agent, call_id, chosen)
        elif action == "card":
            await service.card_for_call(signed.agent, call_id, name=form.get("name") or None)
        elif action == "link":
            customer = as_id(form.get("customer", ""))
            if customer is None:
                raise web.HTTPBadRequest(text="give the card's number")
            await service.card_for_call(signed.agent, call_id, customer_id=customer)
        elif action == "activity":
            view = await service.call_pop(signed.agent, call_id)
            if view.customer is None:
                raise web.HTTPBadRequest(text="the call is on no card yet")
            await service.record_activity(
                signed.agent, view.customer.id, form.get("type") or "call", outcome=form.get("outcome"),
                note=form.get("note"), ticket=view.call.ticket_id, call_id=call_id, next_contact=next_contact(form))
            return _pop(request, signed, await service.call_pop(signed.agent, call_id), recorded=True)
        else:
            raise web.HTTPBadRequest(text="action is ticket, attach, card, link or activity")
    except DomainError as exc:
        return _pop(request, signed, await service.call_pop(signed.agent, call_id), error=reason(exc), status=422)
    raise web.HTTPSeeOther(console_path(form.get("next")))


async def caller_log(request: web.Request) -> web.Response:
    signed = await require(request)
    rt = runtime(request)
    now = rt.clock.now()
    log = await rt.service.caller_log(datetime.combine(now.date(), time(), tzinfo=now.tzinfo))
    return page(request, "calls.html", signed, log=log, now=now)


def routes() -> list[Any]:
    return [web.get("/desk/calls", caller_log), web.get("/desk/calls/current", current),
            web.get("/desk/calls/{call}/pop", pop), web.post("/desk/calls/{call}", act)]
