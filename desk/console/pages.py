"""The agent console's pages: the queue views with SLA countdowns, one ticket's timeline and its actions,
and the presence switch. Every page is server-rendered; every change is a POST with the session's CSRF token
and goes through the same ticket services as the API (post/redirect/get, so a reload never posts twice)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from markupsafe import Markup
from yarl import URL

from desk.console import live, timeline
from desk.console.auth import Signed, console_path, form_of, require
from desk.console.render import page, words
from tickets.actions.plans import NextContact
from tickets.content import sanitize_html
from tickets.errors import DomainError, InvalidInput
from tickets.inbound import AttachmentRef
from tickets.models import OPEN_STATUSES, PRIORITY_RANK, Agent, Presence, Priority, TicketStatus
from tickets.numbers import as_id, whole_number
from tickets.queries.tickets import Activity, NextStep, QueueTicket, TicketView
from tickets.text import clean_text
from web.auth import MANAGERS
from web.files import attachment_response
from web.http import path_id
from web.pages import reason
from web.runtime import runtime

STATIC = Path(__file__).parent / "static"
VIEWS = ("mine", "unassigned", "open", "overdue", "escalated")
CHANNELS = ("email", "webform", "webchat", "telegram", "phone", "portal")
"""What the queue's channel filter offers: every adapter's channel name."""
NOTICES = ("done_reply", "done_note", "done_saved", "done_taken", "done_returned", "done_linked", "done_unlinked",
           "done_merged", "done_recorded")


@dataclass(frozen=True)
class Row:
    ticket: QueueTicket
    customer: str
    next: NextStep | None
    breached: bool
    assignee: str
    group: str
    activity: Activity
    tags: list[str]

    def countdown(self, now: datetime) -> float | None:
        """Seconds to the next step (negative: late)."""
        return (self.next.due_at - now).total_seconds() if self.next is not None else None


def _by_deadline(r: Row) -> tuple[bool, float, int]:
    """Soonest deadline first (the late ones at the top), then the tickets without one, newest first."""
    return (r.next is None, r.next.due_at.timestamp() if r.next else 0.0, -r.ticket.id)


SORTS: dict[str, Any] = {
    # What needs an agent first: critical tickets, then those whose client wrote back, then by deadline.
    "attention": lambda r: (r.ticket.priority != Priority.critical, not r.activity.client_replied, _by_deadline(r)),
    "deadline": _by_deadline,
    "number": lambda r: -r.ticket.id,
    "waiting": lambda r: (r.ticket.created_at, r.ticket.id),
    "priority": lambda r: (-PRIORITY_RANK[r.ticket.priority], r.ticket.created_at),
}
"""How a queue may be ordered (`?sort=`): the table's headers link to each."""

STATUSES = ("new", "open", "pending", "resolved", "closed")


@dataclass(frozen=True)
class Named:
    """An agent as the queue's filters and bulk transfer offer them."""

    id: int
    name: str


@dataclass(frozen=True)
class Filters:
    """The queue's filters as the address carries them; an unknown value filters nothing."""

    view: str
    q: str = ""
    status: str = ""
    assignee: str = ""
    group: str = ""
    channel: str = ""
    priority: str = ""
    since: str = ""
    until: str = ""
    tag: str = ""

    @classmethod
    def read(cls, query: Any, signed: Signed, groups: list[str], tags: list[str]) -> Filters:
        def chosen(name: str, allowed: Any) -> str:
            value = query.get(name, "")
            return value if value in allowed else ""

        view = query.get("view", "mine")
        if view not in VIEWS or (view == "open" and signed.agent.role not in MANAGERS):
            view = "mine"
        assignee = query.get("assignee", "")
        if assignee not in ("me", "none") and as_id(assignee) is None:
            assignee = ""
        return cls(view=view, q=clean_text(query.get("q", ""))[0].strip()[:200], status=chosen("status", STATUSES),
                   assignee=assignee, group=chosen("group", groups), channel=chosen("channel", CHANNELS),
                   priority=chosen("priority", PRIORITY_RANK), since=_day(query.get("since", "")),
                   until=_day(query.get("until", "")), tag=chosen("tag", tags))

    def arguments(self, me: Agent) -> dict[str, Any]:
        """The queue query: the view's own narrowing, then each filter."""
        arguments: dict[str, Any] = {"status": list(OPEN_STATUSES)}
        if self.view == "mine":
            arguments["assignee"] = me.id
        elif self.view == "unassigned":
            arguments["assignee"] = None
        elif self.view == "overdue":
            arguments["overdue"] = True
        elif self.view == "escalated":  # what the regulations took to a head: everyone they may see, whoever holds it
            arguments["escalated"] = True
        if self.status:
            arguments["status"] = [TicketStatus(self.status)]
        if self.assignee:
            arguments["assignee"] = {"me": me.id, "none": None}.get(self.assignee, as_id(self.assignee))
        if self.group:
            arguments["group"] = self.group
        if self.channel:
            arguments["channel"] = self.channel
        if self.priority:
            arguments["priority"] = [Priority(self.priority)]
        if self.since:
            arguments["created_since"] = datetime.fromisoformat(self.since).replace(tzinfo=UTC)
        if self.tag:
            arguments["tag"] = self.tag
        if self.until:
            arguments["created_before"] = datetime.fromisoformat(self.until).replace(tzinfo=UTC) + timedelta(days=1)
        if self.q:
            arguments.pop("assignee", None)  # a search looks through every ticket the agent may see
            arguments["status"] = [TicketStatus(self.status)] if self.status else None
        return arguments

    def kept(self) -> dict[str, str]:
        """The filters to keep in a link (a header that sorts, a view): those set."""
        return {k: v for k, v in vars(self).items() if v}

    @property
    def narrowed(self) -> bool:
        return any(v for k, v in vars(self).items() if k not in ("view", "q"))


def _day(text: str) -> str:
    """A date as the date field sends it (YYYY-MM-DD) in the years a ticket can have, else nothing (the day after
    9999-12-31, which "until" asks for, does not exist)."""
    try:
        day = date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return ""
    return day.isoformat() if day is not None and 1970 <= day.year <= 9000 else ""


PAGE_ROWS = 100
"""A queue page: the newest this many matching tickets, sorted (by attention, by default) among themselves; the
next page holds the older ones."""


async def queue(request: web.Request) -> web.Response:
    signed = await require(request)
    service = runtime(request).service
    managers = signed.agent.role in MANAGERS
    context = await service.queue_context(signed.agent, with_agents=managers)
    groups, tags = context.groups, context.tags
    filters = Filters.read(request.query, signed, groups, tags)
    before = as_id(request.query.get("before", ""))
    lines = await service.queue_lines(signed.agent, limit=PAGE_ROWS + 1, search=filters.q or None, before=before,
                                      **filters.arguments(signed.agent))
    older = lines[PAGE_ROWS - 1].ticket.id if len(lines) > PAGE_ROWS else None
    lines = lines[:PAGE_ROWS]
    rows = [Row(line.ticket, line.customer, line.deadlines.next, line.deadlines.breached, line.assignee, line.group,
                line.activity, line.tags) for line in lines]
    sort = request.query.get("sort", "attention")
    if sort not in SORTS:
        sort = "attention"
    rows.sort(key=SORTS[sort])
    agents = [Named(agent_id, name) for agent_id, name in context.agents]
    outcome = request.query.get("bulk")
    bulk_notice = {"done": "bulk_done", "nothing": "bulk_nothing"}.get(outcome or "")
    bulk_notice = bulk_notice or {"done": "view_saved", "refused": "view_refused"}.get(request.query.get("saved", ""))
    counts = {k: whole_number(request.query.get(k, "0"), maximum=200) or 0 for k in ("changed", "refused")}
    saved = context.views
    here = urlencode({**filters.kept(), "sort": sort})
    now = runtime(request).clock.now()
    plan = await service.todays_plan(signed.agent)
    return page(request, "queue.html", signed, rows=rows, view=filters.view, q=filters.q, filters=filters,
                bulk_notice=bulk_notice, counts=counts, saved=saved, here=here,
                now=now, plan=plan, sort=sort, kept=filters.kept(), channels=CHANNELS,
                priorities=list(PRIORITY_RANK), statuses=STATUSES, groups=groups, agents=agents, managers=managers,
                tags=tags, older=older, paged=before is not None, page_rows=PAGE_ROWS)


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
    await service.mark_opened(signed.agent, number)
    card = await service.get_customer(signed.agent, view.customer.id)
    everyone = await service.all_agents()
    agents = everyone if signed.agent.role in MANAGERS else []
    said = words(request, signed)
    client = view.customer.name or next((i.address for i in view.identities), "")
    names = {a.id: a.name for a in everyone}
    history = timeline.read(view.messages, view.events, names, client, said)
    html = {m.id: Markup(sanitize_html(m.body_html)) for m in view.messages if m.body_html}  # cleaned again
    fill = {"name": view.customer.name or "", "number": str(view.ticket.id)}
    canned = [(c.title, _filled(c.body, fill)) for c in await service.list_canned()]
    pending = [d for d in view.deadlines if d.status == "pending"]
    known_tags = await service.all_tags()
    activity_types = await service.activity_types()
    outcomes = await service.outcomes()
    planned = await service.plan_of(signed.agent, customer_id=view.customer.id)
    return page(request, "ticket.html", signed, status=status, view=view, now=view.as_of, timeline=history,
                card=card, html=html, canned=canned, agents=agents, managers=signed.agent.role in MANAGERS,
                notice=notice, error=error, names=names,
                calls_by_message={c.message_id: c for c in view.calls if c.message_id is not None},
                known_tags=known_tags, activity_types=activity_types, planned=planned, outcomes=outcomes,
                where=_reply_goes(view), next_step=min(
                    pending, key=lambda d: d.due_at, default=None))


def _reply_goes(view: TicketView) -> tuple[str, str]:
    """Where a public reply on this ticket is sent: (the words' key, the address)."""
    channel = view.ticket.channel
    if channel in ("email", "webform"):
        latest = next((str(m.meta.get("from") or "") for m in reversed(view.messages)
                       if m.direction == "in" and (m.meta or {}).get("from")), "")
        address = latest or next((i.address for i in view.identities if i.kind == "email"), "")
        return ("goes_email", address) if address else ("goes_nowhere", "")
    if channel in ("telegram", "webchat"):
        return (f"goes_{channel}", "")
    return ("goes_portal", "")


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
            files = await _files(request)
            await service.add_message(signed.agent, number, body, internal=action == "note", attachments=files)
            done = "done_reply" if action == "reply" else "done_note"
        elif action == "save":
            changes = _status_and_priority(form)
            if changes.get("status") in ("resolved", "closed") or "outcome" in form:
                if changes.get("status") in ("resolved", "closed") and not form.get("outcome"):
                    raise _Back("choose how it ended (the outcome)")
                changes["outcome"] = form.get("outcome") or None
                changes["outcome_reason"] = form.get("outcome_reason") or None
            if "category" in form:
                changes["category"] = form["category"].strip() or None
            if "tags" in form:
                changes["tags"] = [t for t in form["tags"].replace(";", ",").split(",") if t.strip()]
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
        elif action == "activity":
            view = await service.get_ticket(signed.agent, number)
            await service.record_activity(
                signed.agent, view.customer.id, form.get("type", ""), outcome=form.get("outcome"),
                note=form.get("note"), ticket=number, next_contact=next_contact(form))
            done = "done_recorded"
        else:
            raise web.HTTPBadRequest(text=f"unknown action {action!r}")
    except DomainError as exc:
        return await _ticket_page(request, signed, number, error=reason(exc)[:300], status=422)
    except _Back as refused:
        return await _ticket_page(request, signed, number, error=str(refused), status=422)
    raise web.HTTPSeeOther(f"/desk/tickets/{number}?done={done}")


def next_contact(form: dict[str, str]) -> NextContact | None:
    """The next contact from the form: a local date and time (`datetime-local`) and the browser's offset from UTC in
    minutes (`tz`, as `Date.getTimezoneOffset` gives it; 0 without script)."""
    raw, what = form.get("next_at", "").strip(), form.get("next_what", "").strip()
    if not raw and not what:
        return None
    if not raw:
        raise InvalidInput({"next_at": "say when the next contact is"})
    try:
        local = datetime.fromisoformat(raw)
        offset = int(form.get("tz", "0") or 0)
    except ValueError:
        raise InvalidInput({"next_at": "not a date and time"}) from None
    if local.tzinfo is None:
        local = local.replace(tzinfo=UTC) + timedelta(minutes=max(-840, min(840, offset)))
    if not 1970 <= local.year <= 9000:
        raise InvalidInput({"next_at": "not a date and time"})
    return NextContact(local, what)


MAX_FILES = 10


async def _files(request: web.Request) -> list[AttachmentRef]:
    """The files attached to a reply or note (the whole post is within SWITCHBOARD_HTTP_MAX_UPLOAD_MB), stored."""
    posted = [v for v in (await request.post()).getall("files", []) if isinstance(v, web.FileField) and v.filename]
    if len(posted) > MAX_FILES:
        raise _Back(f"at most {MAX_FILES} files at once")
    store = runtime(request).attachments
    stored = []
    for part in posted:
        data = await asyncio.to_thread(part.file.read)
        stored.append(await store.save(part.filename, part.content_type, data))
    return stored


def _status_and_priority(form: dict[str, str]) -> dict[str, Any]:
    """The status and priority a form asks for; a value the console never offers is refused, not a 500."""
    changes: dict[str, Any] = {}
    if status := form.get("status"):
        if status not in STATUSES:
            raise _Back(f"unknown status {status[:20]!r}")
        changes["status"] = status
    if priority := form.get("priority"):
        if priority not in PRIORITY_RANK:
            raise _Back(f"unknown priority {priority[:20]!r}")
        changes["priority"] = priority
    return changes


class _Back(Exception):
    """A form the page shows again, with this reason."""


async def bulk(request: web.Request) -> web.Response:
    """The queue's bulk actions: status, priority and (managers) assignee of the chosen tickets, or take them all.
    Each ticket is changed on its own, with the same checks as one at a time; those refused are counted."""
    signed = await require(request)
    form = await form_of(request, signed)
    chosen = (await request.post()).getall("ticket", [])  # read once by form_of; aiohttp keeps it
    numbers = [n for n in (as_id(v) for v in chosen if isinstance(v, str)) if n is not None][:200]
    try:
        changes = _status_and_priority(form)
    except _Back:
        raise web.HTTPSeeOther(_with(console_path(form.get("back")), bulk="nothing")) from None
    if form.get("action") == "take":
        changes = {"assignee": signed.agent.id}
    elif form.get("assignee"):
        changes["assignee"] = as_id(form["assignee"])
    back = console_path(form.get("back"))
    if not numbers or not changes:
        raise web.HTTPSeeOther(_with(back, bulk="nothing"))
    service, done, refused = runtime(request).service, 0, 0
    for number in numbers:
        try:
            await service.update_ticket(signed.agent, number, changes)
            done += 1
        except DomainError:
            refused += 1
    raise web.HTTPSeeOther(_with(back, bulk="done", changed=str(done), refused=str(refused)))


def _with(path: str, **values: str) -> str:
    """`path` with these query values set (the bulk outcome) and any earlier outcome dropped."""
    url = URL(path)
    kept = {k: v for k, v in url.query.items() if k not in ("bulk", "changed", "refused")}
    return str(url.with_query({**kept, **values}))


async def save_view(request: web.Request) -> web.Response:
    """Name the queue as it is now (its view, filters and order) to open it again from the views bar."""
    signed = await require(request)
    form = await form_of(request, signed)
    service = runtime(request).service
    context = await service.queue_context(signed.agent, with_agents=False)
    asked = URL("/desk?" + form.get("query", "")).query
    filters = Filters.read(asked, signed, context.groups, context.tags)  # only what the queue understands
    sort = asked.get("sort", "attention")
    query = urlencode({**filters.kept(), "sort": sort if sort in SORTS else "attention"})
    try:
        await service.save_view(signed.agent, form.get("name", ""), query)
    except DomainError:  # the page says so in its own words, never the address's
        raise web.HTTPSeeOther(f"/desk?{query}&saved=refused") from None
    raise web.HTTPSeeOther(f"/desk?{query}&saved=done")


async def remove_view(request: web.Request) -> web.Response:
    signed = await require(request)
    await form_of(request, signed)
    view_id = as_id(request.match_info["id"])
    if view_id is not None:
        with contextlib.suppress(DomainError):  # removed already, or not theirs: the bar shows what is left
            await runtime(request).service.remove_view(signed.agent, view_id)
    raise web.HTTPSeeOther("/desk")


async def presence(request: web.Request) -> web.Response:
    signed = await require(request)
    form = await form_of(request, signed)
    try:
        chosen = Presence(form.get("presence", ""))
    except ValueError:
        raise web.HTTPBadRequest(text="presence is available, away or offline") from None
    await runtime(request).service.set_presence(signed.agent.id, chosen, reason="set in the console")
    raise web.HTTPSeeOther(console_path(form.get("next")))


async def remind_by(request: web.Request) -> web.Response:
    """How the agent's planned contacts remind them besides the console notice."""
    signed = await require(request)
    form = await form_of(request, signed)
    try:
        await runtime(request).service.set_remind_by(signed.agent.id, form.get("remind_by", ""))
    except DomainError as exc:
        raise web.HTTPUnprocessableEntity(text=reason(exc)) from None
    raise web.HTTPSeeOther(console_path(form.get("next")))


async def attachment(request: web.Request) -> web.StreamResponse:
    """A file of a message on a ticket the agent may open; always a download, never rendered as a page."""
    signed = await require(request)
    rt = runtime(request)
    view = await rt.service.get_ticket(signed.agent, path_id(request, "number"))
    message = next((m for m in view.messages if str(m.id) == request.match_info["message"]), None)
    return attachment_response(rt.attachments, message.attachments if message else None, request.match_info["index"])


def routes() -> list[Any]:
    return [web.get("/desk", queue), web.get("/desk/tickets/{number}", ticket),
            web.get("/desk/tickets/{number}/files/{message}/{index}", attachment),
            web.post("/desk/tickets/{number}", act), web.post("/desk/presence", presence), web.post("/desk/bulk", bulk),
            web.post("/desk/me/remind-by", remind_by),
            web.post("/desk/tickets/{number}/typing", live.typing), web.post("/desk/views", save_view),
            web.post("/desk/views/{id}/remove", remove_view),
            web.get("/desk/events", live.events), web.static("/desk/static", STATIC, append_version=True)]

