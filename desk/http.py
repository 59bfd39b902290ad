"""HTTP plumbing shared by the API and the channels' endpoints: JSON errors, auth, body parsing."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from tickets.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound, StoreUnavailable
from tickets.models import Agent, Role
from tickets.numbers import MAX_ID, as_id

if TYPE_CHECKING:  # the type only: what the application carries is assembled by `switchboard`, which imports us
    from switchboard.bootstrap import Runtime

log = logging.getLogger(__name__)

RUNTIME: web.AppKey[Runtime] = web.AppKey("runtime")
ADMINS = (Role.admin,)
MANAGERS = (Role.manager, Role.admin)
AGENT_KEY = "switchboard.agent"
RETRY_AFTER_SECONDS = 5
M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def runtime(request: web.Request) -> Runtime:
    return request.app[RUNTIME]


def error_response(status: int, code: str, message: str, fields: dict[str, str] | None = None, **kw: Any) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return web.json_response({"error": body}, status=status, **kw)


def json_ok(model: BaseModel | dict[str, Any], status: int = 200, **kw: Any) -> web.Response:
    text = model.model_dump_json() if isinstance(model, BaseModel) else json.dumps(model)
    return web.Response(text=text, status=status, content_type="application/json", **kw)


def int_param(request: web.Request, name: str, *, minimum: int = 1, maximum: int | None = None) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput({name: "must be a whole number"}) from None
    maximum = MAX_ID if maximum is None else maximum
    if value < minimum or value > maximum:
        bound = f"from {minimum} to {maximum}"
        raise InvalidInput({name: f"must be {bound}"})
    return value


def path_id(request: web.Request, name: str) -> int:
    """A number in the path (`/tickets/{number}`): anything that cannot be one of ours is simply not found."""
    number = as_id(request.match_info[name])
    if number is None:
        raise web.HTTPNotFound(text=f"no such {name}")
    return number


async def form_fields(request: web.Request) -> dict[str, str]:
    """The text fields of a urlencoded or multipart post; a body that is neither (a multipart without its
    boundary, bytes that are not UTF-8) is the sender's mistake, answered 400, never a 500."""
    try:
        return {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    except (ValueError, AssertionError) as exc:  # UnicodeDecodeError is a ValueError
        raise web.HTTPBadRequest(text=f"the form could not be read: {exc}") from None


def validation_fields(exc: ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "body"
        fields.setdefault(name, error["msg"])
    return fields


async def parse_json(request: web.Request, model: type[M]) -> M:
    try:
        payload = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidInput({"body": "not valid JSON"}) from None
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise InvalidInput(validation_fields(exc)) from None


def is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/") or request.path in ("/healthz",)


@web.middleware
async def domain_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn domain errors into HTTP answers; a database outage becomes 503 with Retry-After, never a 500."""
    try:
        return await handler(request)
    except StoreUnavailable as exc:
        log.warning("database unavailable while serving %s %s: %s", request.method, request.path, exc)
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        return error_response(503, "unavailable", "the ticket store is unavailable; retry shortly", headers=headers)
    except InvalidInput as exc:
        return error_response(422, "invalid", "the request has invalid fields", exc.fields)
    except NotFound as exc:
        return error_response(404, "not_found", str(exc))
    except Forbidden as exc:
        return error_response(403, "forbidden", str(exc))
    except Conflict as exc:
        return error_response(409, "conflict", str(exc))
    except DomainError as exc:  # pragma: no cover - every subclass is mapped above
        return error_response(400, "rejected", str(exc))
    except web.HTTPException as exc:
        if not is_api(request) or exc.content_type == "application/json" or exc.status < 400:
            raise
        # Keep headers such as Allow, but not the plain-text Content-Type/Length the JSON body replaces.
        headers = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
        return error_response(exc.status, exc.reason.lower().replace(" ", "_"), exc.text or exc.reason, headers=headers)


async def authenticate(request: web.Request, roles: tuple[Role, ...] | None = None) -> Agent:
    """The agent behind the Bearer token: 401 without a valid one, 403 when the role may not."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise web.HTTPUnauthorized(
            text=json.dumps({"error": {"code": "unauthorized", "message": "send Authorization: Bearer TOKEN"}}),
            content_type="application/json",
            headers={"WWW-Authenticate": 'Bearer realm="switchboard"'},
        )
    agent = await runtime(request).service.authenticate(token.strip())
    if agent is None:
        raise web.HTTPUnauthorized(
            text=json.dumps({"error": {"code": "unauthorized", "message": "unknown or revoked token"}}),
            content_type="application/json",
            headers={"WWW-Authenticate": 'Bearer realm="switchboard", error="invalid_token"'},
        )
    if roles is not None and agent.role not in roles:
        raise Forbidden(f"this needs the role {' or '.join(r.value for r in roles)}")
    return agent
