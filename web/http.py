"""Answers and request parts every endpoint shares: JSON bodies and errors, query and path numbers."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from tickets.errors import InvalidInput
from tickets.numbers import as_id
from tickets.text import clean

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(
    status: int, code: str, message: str, fields: dict[str, str] | None = None, **kw: Any
) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return web.json_response({"error": body}, status=status, **kw)


def json_ok(model: BaseModel | dict[str, Any], status: int = 200, **kw: Any) -> web.Response:
    text = model.model_dump_json() if isinstance(model, BaseModel) else json.dumps(model)
    return web.Response(text=text, status=status, content_type="application/json", **kw)


def path_id(request: web.Request, name: str) -> int:
    """A number in the path (`/tickets/{number}`): anything that cannot be one of ours is simply not found."""
    number = as_id(request.match_info[name])
    if number is None:
        raise web.HTTPNotFound(text=f"no such {name}")
    return number


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
        return model.model_validate(clean(payload)[0])
    except ValidationError as exc:
        raise InvalidInput(validation_fields(exc)) from None
