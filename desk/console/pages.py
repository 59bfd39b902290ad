"""The agent console's pages: the queue views with SLA countdowns, one ticket's timeline and its actions,
and the presence switch. Every page is server-rendered; every change is a POST with the session's CSRF token
and goes through the same ticket services as the API (post/redirect/get, so a reload never posts twice)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from markupsafe import Markup

from desk.console import live
from desk.console.auth import Signed, console_path, form_of, require
from desk.console.render import page
from tickets.attachments import safe_filename
from tickets.content import sanitize_html
from tickets.errors import DomainError
from tickets.models import OPEN_STATUSES, PRIORITY_RANK, Presence, Priority
from tickets.numbers import as_id, whole_number
from tickets.queries.tickets import NextStep, QueueTicket
from tickets.text import clean_text
from web.auth import MANAGERS
from web.http import path_id
from web.pages import reason
from web.runtime import runtime

STATIC = Path(__file__).parent / "static"
VIEWS = ("mine", "unassigned", "open", "overdue", "escalated")
CHANNELS = ("email", "webform", "webchat", "telegram", "phone", "portal")
"""What the queue's channel filter offers: every adapter's channel name."""
NOTICES = ("done_reply", "done_note", "done_saved", "done_taken", "done_returned", "done_linked", "done_unlinked",
           "done_merged")


@dataclass(frozen=True)
class Row:
    ticket: QueueTicket
    customer: str
    next: NextStep | None
    breached: bool

    def countdown(self, now: datetime) -> float | None:
        """Seconds to the next step (negative: late)."""
        return (self.next.due_at - now).total_seconds() if self.next is not None else None


SORTS: dict[str, Any] = {
    # Soonest deadline first (the late ones at the top), then the tickets without one, newest first.
    "deadline": lambda r: (r.next is None, r.next.due_at.timestamp() if r.next else 0.0, -r.ticket.id),
    "number": lambda r: -r.ticket.id,
    "waiting": lambda r: (r.ticket.created_at, r.ticket.id),
    "priority": lambda r: (-PRIORITY_RANK[r.ticket.priority], r.ticket.created_at),
}
"""How a queue may be ordered (`?sort=`): the table's headers link to each."""


async def queue(request: web.Request) -> web.Response:
    signed = await require(request)
    view = request.query.get("view", "mine")
    if view not in VIEWS or (view == "open" and signed.agent.role not in MANAGERS):
        view = "mine"
    arguments: dict[str, Any] = {"status": list(OPEN_STATUSES)}
    if view == "mine":
        arguments["assignee"] = signed.agent.id
    elif view == "unassigned":
        arguments["assignee"] = None
    elif view == "overdue":
        arguments["overdue"] = True
    elif view == "escalated":  # what the regulations took to a head: everyone they may see, whoever holds it
        arguments["escalated"] = True
    channel = request.query.get("channel", "")
    channel = channel if channel in CHANNELS else ""  # an unknown filter value filters nothing
    priority = request.query.get("priority", "")
    priority = priority if priority in PRIORITY_RANK else ""
    if channel:
        arguments["channel"] = channel
    if priority:
        arguments["priority"] = [Priority(priority)]
    query = clean_text(request.query.get("q", ""))[0].strip()[:200]
    if query:
        arguments.pop("assignee", None)  # a search looks through every ticket the agent may see
        arguments["status"] = None
    service = runtime(request).service
    lines = await service.queue_lines(signed.agent, limit=200, search=query or None, **arguments)
    rows = [Row(line.ticket, line.customer, line.deadlines.next, line.deadlines.breached) for line in lines]
    sort = request.query.get("sort", "deadline")
    if sort not in SORTS:
        sort = "deadline"
    rows.sort(key=SORTS[sort])
    kept = {k: v for k, v in (("view", view), ("q", query), ("channel", channel), ("priority", priority)) if v}
    return page(request, "queue.html", signed, rows=rows, view=view, q=query, now=runtime(request).clock.now(),
                sort=sort, kept=kept, channels=CHANNELS, priorities=list(PRIORITY_RANK),
                managers=signed.agent.role in MANAGERS)


async def ticket(request: web.Request) -> web.Response:
    signed = await require(request)
    notice = request.query.get("done")
    return await _ticket_page(request, signed, path_id(request, "number"),
                              notice=notice if notice in NOTICES else None)


async def _ticket_page(request: web.Request, signed: Signed, number: int, *, notice: str | None = None,
                       error: str | None = None, status: int = 200) -> web.Response:
    """The ticket page; a refused form shows it again with the reason, never from the address (an `?error=` in
    a link would let anyone put words on an agent's screen)."""
    service = runtime(request).service
    view = await service.get_ticket(signed.agent, number)
    card = await service.get_customer(signed.agent, view.customer.id)
    agents = [v.agent for v in await service.list_agents()] if signed.agent.role in MANAGERS else []
    # One timeline: messages and events by time (a message before the events it caused).
    timeline = sorted([("message", m) for m in view.messages] + [("event", e) for e in view.events],
                      key=lambda item: (item[1].created_at, item[0] != "message", item[1].id))
    html = {m.id: Markup(sanitize_html(m.body_html)) for m in view.messages if m.body_html}  # cleaned again
    fill = {"name": view.customer.name or "", "number": str(view.ticket.id)}
    canned = [(c.title, _filled(c.body, fill)) for c in await service.list_canned()]
    return page(request, "ticket.html", signed, status=status, view=view, now=view.as_of, timeline=timeline,
                card=card, html=html, canned=canned, agents=agents, managers=signed.agent.role in MANAGERS,
                notice=notice, error=error)


def _filled(body: str, values: dict[str, str]) -> str:
    """`{name}` and `{number}` replaced; any other brace stays as written."""
    for key, value in values.items():
        body = body.replace("{" + key + "}", value)
    return body


async def act(request: web.Request) -> web.Response:
    """One form on the ticket page: reply, note, status/priority, take, return, link, unlink, merge."""
    signed = await require(request)
    form = await form_of(request, signed)
    number, service, action = path_id(request, "number"), runtime(request).service, form.get("action", "")
    try:
        if action in ("reply", "note"):
            body = form.get("body", "").strip()
            if not body:
                raise _Back("empty")
            await service.add_message(signed.agent, number, body, internal=action == "note")
            done = "done_reply" if action == "reply" else "done_note"
        elif action == "save":
            changes: dict[str, Any] = {k: form[k] for k in ("status", "priority") if form.get(k)}
            if "category" in form:
                changes["category"] = form["category"].strip() or None
            await service.update_ticket(signed.agent, number, changes)
            done = "done_saved"
        elif action == "transfer":
            assignee = as_id(form.get("assignee", ""))
            if assignee is None:
                raise _Back("choose an agent")
            await service.update_ticket(signed.agent, number, {"assignee": assignee})
            done = "done_saved"
        elif action == "take":
            await service.update_ticket(signed.agent, number, {"assignee": signed.agent.id})
            done = "done_taken"
        elif action == "return":
            await service.update_ticket(signed.agent, number, {"assignee": None})
            done = "done_returned"
        elif action in ("link", "unlink", "merge"):
            other = as_id(form.get("other", "").strip().lstrip("#"))
            if other is None:
                raise _Back("choose a ticket")
            if action == "merge":
                await service.merge_ticket(signed.agent, number, other)
                raise web.HTTPSeeOther(f"/desk/tickets/{other}?done=done_merged")
            if action == "link":
                await service.link_tickets(signed.agent, number, other)
            else:
                await service.unlink_tickets(signed.agent, number, other)
            done = f"done_{action}ed"
        else:
            raise web.HTTPBadRequest(text=f"unknown action {action!r}")
    except DomainError as exc:
        return await _ticket_page(request, signed, number, error=reason(exc)[:300], status=422)
    except _Back as refused:
        return await _ticket_page(request, signed, number, error=str(refused), status=422)
    raise web.HTTPSeeOther(f"/desk/tickets/{number}?done={done}")


class _Back(Exception):
    """A form the page shows again, with this reason."""


async def presence(request: web.Request) -> web.Response:
    signed = await require(request)
    form = await form_of(request, signed)
    try:
        chosen = Presence(form.get("presence", ""))
    except ValueError:
        raise web.HTTPBadRequest(text="presence is available, away or offline") from None
    await runtime(request).service.set_presence(signed.agent.id, chosen, reason="set in the console")
    raise web.HTTPSeeOther(console_path(form.get("next")))


async def attachment(request: web.Request) -> web.StreamResponse:
    """A file of a message on a ticket the agent may open; always a download, never rendered as a page."""
    signed = await require(request)
    rt = runtime(request)
    view = await rt.service.get_ticket(signed.agent, path_id(request, "number"))
    message = next((m for m in view.messages if str(m.id) == request.match_info["message"]), None)
    index = whole_number(request.match_info["index"], maximum=len(message.attachments or []) - 1) \
        if message is not None else None
    if message is None or index is None:
        raise web.HTTPNotFound(text="no such attachment")
    ref = message.attachments[index]
    try:
        path = rt.attachments.open_path(str(ref.get("path", "")))
    except ValueError:
        raise web.HTTPNotFound(text="no such attachment") from None
    if not path.is_file():
        raise web.HTTPNotFound(text="the file is missing from the attachment store")
    kind = str(ref.get("content_type") or "application/octet-stream")
    if not kind.startswith(("image/", "application/pdf", "text/plain")) or kind == "image/svg+xml":
        kind = "application/octet-stream"  # HTML, SVG and the like could run script on our origin
    name = safe_filename(str(ref.get("name") or "attachment"))
    return web.FileResponse(path, headers={"Content-Type": kind, "X-Content-Type-Options": "nosniff",
                                           "Content-Disposition": f'attachment; filename="{name}"',
                                           "Content-Security-Policy": "default-src 'none'; sandbox"})


def routes() -> list[Any]:
    return [web.get("/desk", queue), web.get("/desk/tickets/{number}", ticket),
            web.get("/desk/tickets/{number}/files/{message}/{index}", attachment),
            web.post("/desk/tickets/{number}", act), web.post("/desk/presence", presence),
            web.get("/desk/events", live.events), web.static("/desk/static", STATIC, append_version=True)]

