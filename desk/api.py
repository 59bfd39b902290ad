"""The agent REST API (/api/v1): thin handlers that authenticate, parse, call a ticket service and serialise."""

from __future__ import annotations

from aiohttp import web

from desk import schemas
from desk.endpoints import Endpoint, Param
from desk.http import authenticate, json_ok, parse_json, runtime
from tickets.errors import InvalidInput
from tickets.identities import InvalidAddress, email_identity, phone_identity
from tickets.models import Presence, TicketStatus

MAX_PAGE = 200


def _int_param(request: web.Request, name: str, *, minimum: int = 1, maximum: int | None = None) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput({name: "must be a whole number"}) from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
        raise InvalidInput({name: f"must be {bound}"})
    return value


def _flag(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise InvalidInput({name: "must be true or false"})


def _number(request: web.Request, name: str = "number") -> int:
    try:
        return int(request.match_info[name])
    except ValueError:
        raise web.HTTPNotFound(text=f"no such {name}") from None


async def list_tickets(request: web.Request) -> web.Response:
    agent = await authenticate(request)
    statuses: list[TicketStatus] = []
    for raw in filter(None, request.query.get("status", "").split(",")):
        try:
            statuses.append(TicketStatus(raw.strip()))
        except ValueError:
            raise InvalidInput({"status": f"unknown status {raw!r}; one of {', '.join(TicketStatus)}"}) from None
    assignee: int | None | str = "any"
    raw_assignee = request.query.get("assignee")
    if raw_assignee == "me":
        assignee = agent.id
    elif raw_assignee == "none":
        assignee = None
    elif raw_assignee:
        assignee = _int_param(request, "assignee")
    page = await runtime(request).service.list_tickets(
        agent,
        status=statuses or None,
        assignee=assignee,
        group=request.query.get("group") or None,
        overdue=_flag(request, "overdue"),
        limit=_int_param(request, "limit", maximum=MAX_PAGE) or 50,
        before=_int_param(request, "cursor"),
    )
    return json_ok(schemas.TicketList(items=[schemas.ticket_summary(t) for t in page.tickets], next_cursor=page.next_cursor))


async def get_ticket(request: web.Request) -> web.Response:
    agent = await authenticate(request)
    view = await runtime(request).service.get_ticket(agent, _number(request))
    return json_ok(schemas.ticket_detail(view))


async def add_message(request: web.Request) -> web.Response:
    agent = await authenticate(request)
    payload = await parse_json(request, schemas.MessageIn)
    message = await runtime(request).service.add_message(agent, _number(request), payload.body, internal=payload.internal)
    return json_ok(schemas.message_out(message), status=201)


async def update_ticket(request: web.Request) -> web.Response:
    agent = await authenticate(request)
    payload = await parse_json(request, schemas.TicketPatch)
    changes = payload.model_dump(include=payload.model_fields_set)
    for name in ("status", "priority"):
        if name in changes and changes[name] is None:
            raise InvalidInput({name: "must not be null"})
    view = await runtime(request).service.update_ticket(agent, _number(request), changes)
    return json_ok(schemas.ticket_detail(view))


async def get_customer(request: web.Request) -> web.Response:
    agent = await authenticate(request)
    view = await runtime(request).service.get_customer(agent, _number(request, "id"))
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
    view = await runtime(request).service.add_identity(agent, _number(request, "id"), identity, merge=payload.merge)
    return json_ok(schemas.customer_out(view))


async def list_agents(request: web.Request) -> web.Response:
    await authenticate(request)
    views = await runtime(request).service.list_agents()
    return json_ok(schemas.AgentList(items=[schemas.agent_out(v) for v in views]))


async def update_me(request: web.Request) -> web.Response:
    agent = await authenticate(request)
    payload = await parse_json(request, schemas.AgentPatch)
    view = await runtime(request).service.set_presence(agent.id, Presence(payload.presence))
    return json_ok(schemas.agent_out(view))


_AUTH_ERRORS = (401, 403, 404, 422, 503)

ENDPOINTS = [
    Endpoint(
        "GET", "/api/v1/tickets", list_tickets, "List tickets, newest first", "tickets",
        response=schemas.TicketList,
        params=(
            Param("status", "query", "Comma-separated statuses (new, open, pending, resolved, closed)."),
            Param("assignee", "query", "`me`, `none` (the queue) or an agent id."),
            Param("group", "query", "Group (department) name."),
            Param("overdue", "query", "`true`: only tickets with a deadline pending past its due time.", {"type": "boolean"}),
            Param("limit", "query", f"Page size, 1–{MAX_PAGE} (default 50).", {"type": "integer"}),
            Param("cursor", "query", "`next_cursor` of the previous page.", {"type": "integer"}),
        ),
        errors=(401, 422, 503),
    ),
    Endpoint(
        "GET", "/api/v1/tickets/{number}", get_ticket, "A ticket with its messages and audit events", "tickets",
        response=schemas.TicketDetail,
        params=(Param("number", "path", "Ticket number.", {"type": "integer"}, True),),
        errors=_AUTH_ERRORS,
    ),
    Endpoint(
        "POST", "/api/v1/tickets/{number}/messages", add_message,
        "Reply to the client through the ticket's channel, or add an internal note", "tickets",
        body=schemas.MessageIn, response=schemas.MessageOut, status=201,
        params=(Param("number", "path", "Ticket number.", {"type": "integer"}, True),),
        errors=_AUTH_ERRORS,
    ),
    Endpoint(
        "PATCH", "/api/v1/tickets/{number}", update_ticket,
        "Change status, priority, category or assignee (null returns it to the queue)", "tickets",
        body=schemas.TicketPatch, response=schemas.TicketDetail,
        params=(Param("number", "path", "Ticket number.", {"type": "integer"}, True),),
        errors=(*_AUTH_ERRORS, 409),
    ),
    Endpoint(
        "GET", "/api/v1/customers/{id}", get_customer, "A customer card with identities and every ticket", "customers",
        response=schemas.CustomerOut,
        params=(Param("id", "path", "Customer id.", {"type": "integer"}, True),),
        errors=(401, 404, 503),
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
        "PATCH", "/api/v1/agents/me", update_me, "Set your presence; becoming available takes queued tickets", "agents",
        body=schemas.AgentPatch, response=schemas.AgentOut, errors=(401, 422, 503),
    ),
]
