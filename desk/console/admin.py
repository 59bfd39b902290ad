"""Admin pages of the console (admin role): agents, groups and skills, support addresses, the regulations in
effect (and a checker for a changed file), and the notification history with every delivery attempt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from desk.console.auth import Signed, form_of, require
from desk.console.render import page, refused
from notifier.history import notifications
from sla.describe import describe_book
from sla.regulations import RegulationsError, build_book
from sla.sources import SourceError, parse_yaml
from tickets.errors import Conflict, InvalidInput, NotFound
from tickets.models import OutboxStatus, Role
from tickets.numbers import as_id
from web.auth import MANAGERS
from web.pages import reason
from web.runtime import runtime

MAX_CHECKED = 200_000
NOTICE_CHANNELS = ("email", "sms", "telegram", "webchat")
"""The channels notifications go out on (the list's filter)."""


PAGE = 50
"""Notifications a page lists."""


async def _admin(request: web.Request) -> Signed:
    """Admins change the settings."""
    signed = await require(request)
    if signed.agent.role != Role.admin:
        raise refused(request, signed, "only_admins")
    return signed


async def _reader(request: web.Request) -> Signed:
    """Managers read them too: who is on the team, the regulations in effect, what was sent and what was parked."""
    signed = await require(request)
    if signed.agent.role not in MANAGERS:
        raise refused(request, signed, "only_managers")
    return signed


@dataclass(frozen=True)
class Shown:
    """The notification list's filters and page, as the address carries them."""

    channel: str = ""
    status: str = ""
    before: int | None = None

    @classmethod
    def read(cls, query: Any) -> Shown:
        channel = query.get("channel", "")
        status = query.get("status", "")
        return cls(channel if channel in NOTICE_CHANNELS else "",
                   status if status in OutboxStatus.__members__ else "", as_id(query.get("before", "")))


async def _context(request: web.Request) -> dict[str, Any]:
    rt = runtime(request)
    shown = Shown.read(request.query)
    async with rt.store.session() as session:
        history = await notifications(session, limit=PAGE + 1, channel=shown.channel or None,
                                      status=OutboxStatus(shown.status) if shown.status else None,
                                      before=shown.before)
    more = len(history) > PAGE
    history = history[:PAGE]
    return {
        "shown": shown, "next_page": history[-1].row.id if more else None, "notice_channels": NOTICE_CHANNELS,
        "notice_statuses": list(OutboxStatus.__members__),
        "agents": await rt.service.list_agents(), "groups": await rt.service.list_groups(),
        "skills": await rt.service.list_skills(), "addresses": rt.settings.smtp.addresses,
        "regulations": describe_book(rt.settings.regulation_book()), "history": history,
        "canned": await rt.service.list_canned(), "parked": await rt.service.parked(limit=100),
    }


async def admin(request: web.Request) -> web.Response:
    signed = await _reader(request)
    return page(request, "admin.html", signed, checked=None, problems=[], draft="", error=None,
                **await _context(request))


async def check_regulations(request: web.Request) -> web.Response:
    """Validate a regulations file (YAML) pasted in, as the server would at start: every problem with its line."""
    signed = await _reader(request)  # checking changes nothing
    form = await form_of(request, signed)
    draft = form.get("draft", "")[:MAX_CHECKED]
    problems: list[str] = []
    checked = None
    try:
        document, lines = parse_yaml(draft)
        checked = describe_book(build_book(document, "draft", runtime(request).settings.calendar.spec(), lines))
    except SourceError as error:
        problems = [f"draft:{error.line or '?'}: {error.why}"]
    except RegulationsError as error:
        problems = [f"draft{f':{line}' if line else ''}: {field}: {why}" for line, field, why in error.problems]
    return page(request, "admin.html", signed, checked=checked, problems=problems, draft=draft, error=None,
                status=200 if checked else 422, **await _context(request))


async def add_canned(request: web.Request) -> web.Response:
    signed = await _admin(request)
    form = await form_of(request, signed)
    try:
        await runtime(request).service.add_canned(form.get("title", ""), form.get("text", ""))
    except (InvalidInput, Conflict) as exc:  # shown again with the reason, never from the address
        return page(request, "admin.html", signed, status=422, checked=None, problems=[], draft="",
                    error=reason(exc), **await _context(request))
    raise web.HTTPSeeOther("/desk/admin#canned")


async def remove_canned(request: web.Request) -> web.Response:
    signed = await _admin(request)
    await form_of(request, signed)
    canned_id = as_id(request.match_info["id"])
    if canned_id is not None:
        try:
            await runtime(request).service.remove_canned(canned_id)
        except NotFound:
            pass  # removed already: the page shows what is left
    raise web.HTTPSeeOther("/desk/admin#canned")


def routes() -> list[Any]:
    return [web.get("/desk/admin", admin), web.post("/desk/admin/regulations", check_regulations),
            web.post("/desk/admin/canned", add_canned), web.post("/desk/admin/canned/{id}/remove", remove_canned)]
