"""The agent REST API (/api/v1): thin handlers that authenticate, parse, call a ticket service and serialise."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from aiohttp import web
from pydantic import AwareDatetime, BeforeValidator, Field

from desk import schemas
from tickets.actions.staff import AgentChanges
from tickets.errors import Conflict, Forbidden, InvalidInput
from tickets.identities import InvalidAddress, email_identity, phone_identity
from tickets.models import Presence, Priority, Role, TicketStatus
from tickets.phone_numbers import extension_of
from tickets.queries.staff import GroupView
from tickets.telegram_link import link_code
from web.auth import ADMINS, MANAGERS, authenticate
from web.endpoints import Endpoint, Param
from web.http import json_ok, parse_json, path_id
from web.params import Id, QueryParams, query, split_commas
from web.runtime import runtime

MAX_PAGE = 200
MANAGER_MAY_SET = frozenset({"presence"})
"""What a manager may change about another agent (e.g. mark someone offline who left); the rest is an admin's."""


class TicketQuery(QueryParams):
    status: Annotated[list[TicketStatus], BeforeValidator(split_commas)] = Field(
        [], description="Comma-separated statuses (new, open, pending, resolved, closed).")
    assignee: Literal["me", "none"] | Id | None = Field(None, description="`me`, `none` (the queue) or an agent id.")
    group: str | None = Field(None, description="Group (department) name.")
    channel: str | None = Field(
        None, description="Only tickets that came in on this channel (email, webform, telegram, phone, …).")
    priority: Annotated[list[Priority], BeforeValidator(split_commas)] = Field(
        [], description="Comma-separated priorities (low, normal, high, critical).")
    q: str | None = Field(None, description="Search by number, subject, customer name or address, and message text.")
    overdue: bool = Field(False, description="`true`: only tickets with a deadline pending past its due time.")
    limit: int = Field(50, ge=1, le=MAX_PAGE, description=f"Page size, 1–{MAX_PAGE} (default 50).")
    cursor: Id | None = Field(None, description="`next_cursor` of the previous page.")
    escalated: bool = Field(False, description="`true`: only tickets a regulation took to the head of their group.")
    tag: str | None = Field(None, max_length=40, description="Only tickets with this tag.")


class HistoryQuery(QueryParams):
    type: Annotated[list[str], BeforeValidator(split_commas)] = Field(
        [], description="Comma-separated types: `message`, `call`, `activity`, a channel (email, telegram, webchat, "
                        "webform, portal) or an activity type (meeting, demonstration, …); none: everything.")
    limit: int = Field(100, ge=1, le=MAX_PAGE, description=f"Page size, 1–{MAX_PAGE} (default 100).")
    before: AwareDatetime | None = Field(None, description="`next_before` of the previous page (contacts at or "
                                                                 "before it).")


class ForecastQuery(QueryParams):
    hours: float = Field(24, gt=0, le=24 * 31, description="The window, in hours (default 24, at most 744).")
    all: bool = Field(False, description="true: every step coming due, not only breaches.")


def _refuse_nulls(changes: dict[str, object], names: tuple[str, ...]) -> None:
    nulls = {name: "must not be null" for name in names if name in changes and changes[name] is None}
    if nulls:
        raise InvalidInput(nulls)


async def list_tickets(request: web.Request) -> web.Response:
    agent = await authenticate(request)
    asked = query(request, TicketQuery)
    assignee: int | str | None
    match asked.assignee:
        case "me":
            assignee = agent.id
        case "none":
            assignee = None  # the queue
        case None:
            assignee = "any"
        case number:
            assignee = number
    page = await runtime(request).service.list_tickets(
        agent,
        status=asked.status or None,
        assignee=assignee,
        group=asked.group,
        overdue=asked.overdue,
        channel=asked.channel,
        priority=asked.priority or None,
        search=(asked.q or "").strip()[:200] or None,
        limit=asked.limit,
        before=asked.cursor,
        escalated=asked.escalated,
        tag=asked.tag.lower() if asked.tag else None,
    )
    items = [schemas.ticket_summary(t) for t in page.tickets]
    return json_ok(schemas.TicketList(items=items, next_cursor=page.next_cursor))


async def get_ticket(request: web.Request) -> web.Response:
    agent = await authenticate(request)
    view = await runtime(request).service.get_ticket(agent, path_id(request, "number"))
    return json_ok(schemas.ticket_detail(view))


async def forecast(request: web.Request) -> web.Response:
    agent = await authenticate(request)
    if agent.role not in MANAGERS:
        raise Forbidden("the breach forecast is for managers")
    asked = query(request, ForecastQuery)
    hours = asked.hours
    rt = runtime(request)
    assert rt.escalations is not None
    found = await rt.escalations.forecast(timedelta(hours=hours), breaches_only=not asked.all)
    now = rt.clock.now()
    return json_ok(schemas.Forecast(hours=hours, items=[
        schemas.ForecastItem(
            number=f.ticket.id, subject=f.ticket.subject, status=f.ticket.status.value,
            priority=f.ticket.priority.value, assignee_id=f.ticket.assignee_id, regulation=f.deadline.regulation,
            step=f.deadline.step, due_at=f.deadline.due_at, late=f.deadline.due_at < now, breach=f.breach,
        ) for f in found]))


async def add_message(request: web.Request) -> web.Response:
    agent = await authenticate(request)
    payload = await parse_json(request, schemas.MessageIn)
    message = await runtime(request).service.add_message(agent, path_id(request, "number"), payload.body,
                                                         internal=payload.internal)
    return json_ok(schemas.message_out(message), status=201)


async def update_ticket(request: web.Request) -> web.Response:
    agent = await authenticate(request)
    payload = await parse_json(request, schemas.TicketPatch)
    changes = payload.model_dump(include=payload.model_fields_set)
    _refuse_nulls(changes, ("status", "priority", "group", "skills"))
    view = await runtime(request).service.update_ticket(agent, path_id(request, "number"), changes)
    return json_ok(schemas.ticket_detail(view))


async def merge_ticket(request: web.Request) -> web.Response:
    agent = await authenticate(request)
    payload = await parse_json(request, schemas.MergeIn)
    service = runtime(request).service
    await service.merge_ticket(agent, path_id(request, "number"), payload.into)
    return json_ok(schemas.ticket_detail(await service.get_ticket(agent, payload.into)))


async def link_ticket(request: web.Request) -> web.Response:
    agent = await authenticate(request)
    payload = await parse_json(request, schemas.LinkIn)
    service = runtime(request).service
    await service.link_tickets(agent, path_id(request, "number"), payload.ticket)
    return json_ok(schemas.ticket_detail(await service.get_ticket(agent, path_id(request, "number"))))


async def unlink_ticket(request: web.Request) -> web.Response:
    agent = await authenticate(request)
    await runtime(request).service.unlink_tickets(agent, path_id(request, "number"), path_id(request, "other"))
    return web.Response(status=204)


async def get_customer(request: web.Request) -> web.Response:
    agent = await authenticate(request)
    view = await runtime(request).service.get_customer(agent, path_id(request, "id"))
    return json_ok(schemas.customer_out(view))


async def customer_history(request: web.Request) -> web.Response:
    agent = await authenticate(request)
    asked = query(request, HistoryQuery)
    page = await runtime(request).service.customer_history(
        agent, path_id(request, "id"), [t.strip().lower() for t in asked.type if t.strip()], asked.limit, asked.before)
    return json_ok(schemas.ContactPage(
        items=[schemas.ContactOut.model_validate(contact, from_attributes=True) for contact in page.contacts],
        next_before=page.next_before))


async def update_customer(request: web.Request) -> web.Response:
    agent = await authenticate(request)
    if agent.role not in MANAGERS:
        raise Forbidden("only a manager may change a customer's tier")
    payload = await parse_json(request, schemas.CustomerPatch)
    view = await runtime(request).service.set_customer_tier(agent, path_id(request, "id"), payload.tier)
    return json_ok(schemas.customer_out(view))


async def add_identity(request: web.Request) -> web.Response:
    agent = await authenticate(request)
    payload = await parse_json(request, schemas.IdentityIn)
    try:
        if payload.kind == "email":
            identity = email_identity(payload.address)
        else:
            identity = phone_identity(payload.address, runtime(request).settings.phone_region)
    except InvalidAddress as exc:
        raise InvalidInput({"address": str(exc)}) from None
    view = await runtime(request).service.add_identity(agent, path_id(request, "id"), identity, merge=payload.merge)
    return json_ok(schemas.customer_out(view))


async def list_agents(request: web.Request) -> web.Response:
    await authenticate(request)
    views = await runtime(request).service.list_agents()
    return json_ok(schemas.AgentList(items=[schemas.agent_out(v) for v in views]))


async def update_me(request: web.Request) -> web.Response:
    agent = await authenticate(request)
    payload = await parse_json(request, schemas.AgentPatch)
    service = runtime(request).service
    if payload.remind_by is not None:
        await service.set_remind_by(agent.id, payload.remind_by)
    presence = Presence(payload.presence) if payload.presence is not None else None
    view = await service.update_agent(agent.id, AgentChanges(presence=presence))
    return json_ok(schemas.agent_out(view))


async def telegram_link(request: web.Request) -> web.Response:
    agent = await authenticate(request)
    rt = runtime(request)
    if not rt.settings.telegram.token:
        raise Conflict("Telegram is off on this server (SWITCHBOARD_TELEGRAM_TOKEN)")
    code, expires = link_code(rt.settings.telegram.token, agent.id, rt.clock.now())
    return json_ok(schemas.TelegramLink(command=f"/link {code}", expires_at=expires))


async def add_agent(request: web.Request) -> web.Response:
    await authenticate(request, roles=ADMINS)
    payload = await parse_json(request, schemas.AgentIn)
    rt = runtime(request)
    errors: dict[str, str] = {}
    email = phone = extension = None
    try:
        email = email_identity(payload.email).address
    except InvalidAddress as exc:
        errors["email"] = str(exc)
    if payload.phone:
        try:
            phone = phone_identity(payload.phone, rt.settings.phone_region).address
        except InvalidAddress as exc:
            errors["phone"] = str(exc)
    if payload.extension:
        extension = extension_of(payload.extension)
        if extension is None:
            errors["extension"] = "an extension is 2–5 digits"
    if errors or email is None:
        raise InvalidInput(errors)
    agent, token = await rt.service.add_agent(
        payload.name, email, phone=phone, extension=extension, role=Role(payload.role),
        groups=payload.groups or None, skills=payload.skills, capacity=payload.capacity, language=payload.language,
    )
    # Listed after the commit: joining may already have given the new agent waiting tickets.
    view = next(v for v in await rt.service.list_agents() if v.agent.id == agent.id)
    created = schemas.AgentCreated(**schemas.agent_out(view).model_dump(), token=token)
    return json_ok(created, status=201)


async def update_agent(request: web.Request) -> web.Response:
    viewer = await authenticate(request, roles=MANAGERS)
    payload = await parse_json(request, schemas.AgentChangesIn)
    changes = payload.model_dump(include=payload.model_fields_set)
    _refuse_nulls(changes, ("presence", "capacity", "skills", "groups"))
    if not changes:
        raise InvalidInput({"body": "give at least one of presence, capacity, skills, groups"})
    if viewer.role != Role.admin and set(changes) - MANAGER_MAY_SET:
        refused = ", ".join(sorted(set(changes) - MANAGER_MAY_SET))
        raise Forbidden(f"only an admin may change an agent's {refused}; a manager may set presence")
    agent_id = path_id(request, "id")
    view = await runtime(request).service.update_agent(
        agent_id,
        AgentChanges(
            presence=Presence(payload.presence) if payload.presence else None,
            capacity=payload.capacity,
            skills=payload.skills,
            groups=payload.groups,
        ),
        reason=None if agent_id == viewer.id else f"set by {viewer.name}",
    )
    return json_ok(schemas.agent_out(view))


async def list_groups(request: web.Request) -> web.Response:
    await authenticate(request)
    views = await runtime(request).service.list_groups()
    return json_ok(schemas.GroupList(items=[schemas.group_out(v) for v in views]))


def _head(address: str | None) -> str | None:
    try:
        return email_identity(address).address if address is not None else None
    except InvalidAddress as exc:
        raise InvalidInput({"head_email": str(exc)}) from None


async def add_group(request: web.Request) -> web.Response:
    await authenticate(request, roles=ADMINS)
    payload = await parse_json(request, schemas.GroupIn)
    group = await runtime(request).service.add_group(payload.name, _head(payload.head_email),
                                                     acknowledge=payload.acknowledge)
    return json_ok(schemas.group_out(GroupView(group, agents=0, waiting=0)), status=201)


async def update_group(request: web.Request) -> web.Response:
    await authenticate(request, roles=ADMINS)
    payload = await parse_json(request, schemas.GroupPatch)
    changes = payload.model_dump(exclude_unset=True)
    if "head_email" in changes:
        changes["head_email"] = _head(changes["head_email"])
    service = runtime(request).service
    group = await service.update_group(str(path_id(request, "id")), changes)
    view = next(v for v in await service.list_groups() if v.group.id == group.id)
    return json_ok(schemas.group_out(view))


async def list_skills(request: web.Request) -> web.Response:
    await authenticate(request)
    views = await runtime(request).service.list_skills()
    return json_ok(schemas.SkillList(items=[schemas.skill_out(v.skill, v.agents) for v in views]))


async def add_skill(request: web.Request) -> web.Response:
    await authenticate(request, roles=ADMINS)
    payload = await parse_json(request, schemas.SkillIn)
    skill = await runtime(request).service.add_skill(payload.name, payload.description)
    return json_ok(schemas.skill_out(skill), status=201)


async def list_rules(request: web.Request) -> web.Response:
    await authenticate(request, roles=MANAGERS)
    views = await runtime(request).service.list_rules()
    return json_ok(schemas.RuleList(items=[schemas.rule_out(v) for v in views]))


async def add_rule(request: web.Request) -> web.Response:
    await authenticate(request, roles=ADMINS)
    payload = await parse_json(request, schemas.RuleIn)
    view = await runtime(request).service.add_rule(
        channel=payload.channel,
        category=payload.category,
        language=payload.language,
        from_group=payload.from_group,
        group=payload.group,
        skills=payload.skills,
        priority=Priority(payload.priority) if payload.priority else None,
        tags=payload.tags,
        position=payload.position,
    )
    return json_ok(schemas.rule_out(view), status=201)


async def remove_rule(request: web.Request) -> web.Response:
    await authenticate(request, roles=ADMINS)
    await runtime(request).service.remove_rule(path_id(request, "id"))
    return web.Response(status=204)


_AUTH_ERRORS = (401, 403, 404, 422, 503)
_ID = Param("id", "path", "Agent id.", {"type": "integer"}, True)
_NUMBER = Param("number", "path", "Ticket number.", {"type": "integer"}, True)

ENDPOINTS = [
    Endpoint(
        "GET", "/api/v1/tickets", list_tickets, "List tickets, newest first", "tickets",
        response=schemas.TicketList,
        query=TicketQuery,
        errors=(401, 422, 503),
    ),
    Endpoint(
        "GET", "/api/v1/regulations/forecast", forecast,
        "Tickets that will breach their regulation in the next N hours at the current pace (managers)", "regulations",
        response=schemas.Forecast,
        query=ForecastQuery,
        errors=_AUTH_ERRORS,
    ),
    Endpoint(
        "GET", "/api/v1/tickets/{number}", get_ticket, "A ticket with its messages and audit events", "tickets",
        response=schemas.TicketDetail,
        params=(_NUMBER,),
        errors=_AUTH_ERRORS,
    ),
    Endpoint(
        "POST", "/api/v1/tickets/{number}/messages", add_message,
        "Reply to the client through the ticket's channel, or add an internal note", "tickets",
        body=schemas.MessageIn, response=schemas.MessageOut, status=201,
        params=(_NUMBER,),
        errors=_AUTH_ERRORS,
    ),
    Endpoint(
        "PATCH", "/api/v1/tickets/{number}", update_ticket,
        "Change status, priority, category, assignee (null: back to the queue), required skills or (managers) group",
        "tickets",
        body=schemas.TicketPatch, response=schemas.TicketDetail,
        params=(_NUMBER,),
        errors=(*_AUTH_ERRORS, 409),
    ),
    Endpoint(
        "POST", "/api/v1/tickets/{number}/merge", merge_ticket,
        "Merge the ticket into another of the same client: messages, calls and links move there, this one is closed",
        "tickets", body=schemas.MergeIn, response=schemas.TicketDetail, params=(_NUMBER,), errors=(*_AUTH_ERRORS, 409),
    ),
    Endpoint(
        "POST", "/api/v1/tickets/{number}/links", link_ticket,
        "Link the ticket to another of the same client (shown on both; linking twice is not an error)", "tickets",
        body=schemas.LinkIn, response=schemas.TicketDetail, params=(_NUMBER,), errors=(*_AUTH_ERRORS, 409),
    ),
    Endpoint(
        "DELETE", "/api/v1/tickets/{number}/links/{other}", unlink_ticket, "Remove a link between two tickets",
        "tickets", status=204,
        params=(_NUMBER, Param("other", "path", "The linked ticket's number.", {"type": "integer"}, True)),
        errors=_AUTH_ERRORS,
    ),
    Endpoint(
        "GET", "/api/v1/customers/{id}", get_customer, "A customer card with identities and every ticket", "customers",
        response=schemas.CustomerOut,
        params=(Param("id", "path", "Customer id.", {"type": "integer"}, True),),
        errors=(401, 404, 503),
    ),
    Endpoint(
        "GET", "/api/v1/customers/{id}/history", customer_history,
        "The client's whole history across channels, newest first: messages, calls and recorded contacts, "
        "filterable by type", "customers", query=HistoryQuery, response=schemas.ContactPage,
        params=(Param("id", "path", "Customer id.", {"type": "integer"}, True),),
        errors=(401, 404, 422, 503),
    ),
    Endpoint(
        "PATCH", "/api/v1/customers/{id}", update_customer,
        "Managers: set the customer's tier (what regulations match on); their open tickets are planned again",
        "customers", body=schemas.CustomerPatch, response=schemas.CustomerOut,
        params=(Param("id", "path", "Customer id.", {"type": "integer"}, True),),
        errors=_AUTH_ERRORS,
    ),
    Endpoint(
        "POST", "/api/v1/customers/{id}/identities", add_identity,
        "Add an email or phone the client gave you to their card; with merge, join the card that already has it",
        "customers", body=schemas.IdentityIn, response=schemas.CustomerOut,
        params=(Param("id", "path", "Customer id.", {"type": "integer"}, True),),
        errors=(401, 404, 409, 422, 503),
    ),
    Endpoint(
        "GET", "/api/v1/agents", list_agents, "Agents with presence, capacity and current load", "agents",
        response=schemas.AgentList, errors=(401, 503),
    ),
    Endpoint(
        "PATCH", "/api/v1/agents/me", update_me,
        "Set your presence (becoming available takes queued tickets) or how planned contacts remind you", "agents",
        body=schemas.AgentPatch, response=schemas.AgentOut, errors=(401, 422, 503),
    ),
    Endpoint(
        "POST", "/api/v1/agents/me/telegram", telegram_link,
        "A code to send the bot as /link CODE (within 15 minutes): your alerts and notices then come to that chat",
        "agents", response=schemas.TelegramLink, errors=(401, 409, 503),
    ),
    Endpoint(
        "PATCH", "/api/v1/agents/{id}", update_agent,
        "Admins: set an agent's presence, capacity, skills or groups; managers: presence only", "agents",
        body=schemas.AgentChangesIn, response=schemas.AgentOut, params=(_ID,), errors=_AUTH_ERRORS,
    ),
    Endpoint(
        "POST", "/api/v1/agents", add_agent, "Admins: add an agent; the answer shows their API token once", "agents",
        body=schemas.AgentIn, response=schemas.AgentCreated, status=201, errors=(401, 403, 409, 422, 503),
    ),
    Endpoint(
        "GET", "/api/v1/groups", list_groups, "Groups (departments) with their agents and waiting tickets", "routing",
        response=schemas.GroupList, errors=(401, 503),
    ),
    Endpoint(
        "POST", "/api/v1/groups", add_group, "Admins: add a group (department)", "routing",
        body=schemas.GroupIn, response=schemas.GroupOut, status=201, errors=(401, 403, 409, 422, 503),
    ),
    Endpoint(
        "PATCH", "/api/v1/groups/{id}", update_group, "Admins: set a group's head or whether it acknowledges",
        "routing",
        body=schemas.GroupPatch, response=schemas.GroupOut,
        params=(Param("id", "path", "Group id.", {"type": "integer"}, True),), errors=_AUTH_ERRORS,
    ),
    Endpoint(
        "GET", "/api/v1/skills", list_skills, "Skills tickets may require, with how many agents have each", "routing",
        response=schemas.SkillList, errors=(401, 503),
    ),
    Endpoint(
        "POST", "/api/v1/skills", add_skill, "Admins: add a skill", "routing",
        body=schemas.SkillIn, response=schemas.SkillOut, status=201, errors=(401, 403, 409, 422, 503),
    ),
    Endpoint(
        "GET", "/api/v1/routing/rules", list_rules, "Managers: routing rules in the order they are checked", "routing",
        response=schemas.RuleList, errors=(401, 403, 503),
    ),
    Endpoint(
        "POST", "/api/v1/routing/rules", add_rule,
        "Admins: add a rule setting new tickets' group, skills or priority by channel, category, language or group",
        "routing", body=schemas.RuleIn, response=schemas.RuleOut, status=201, errors=(401, 403, 422, 503),
    ),
    Endpoint(
        "DELETE", "/api/v1/routing/rules/{id}", remove_rule, "Admins: remove a routing rule", "routing",
        status=204, params=(Param("id", "path", "Rule id.", {"type": "integer"}, True),), errors=(401, 403, 404, 503),
    ),
]
