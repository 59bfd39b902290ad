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
        fields.setdefault(name, error["msg"].removeprefix("Value error, "))  # our validators' words, as written
    return fields


MAX_DEPTH = 32
"""How deep a JSON body or frame may nest: ours nest three levels; a deeper one is refused before anything walks
it (a 100,000-deep one would exhaust the decoder's and every later walker's recursion)."""


def decode_json(text: str | bytes) -> Any:
    """The one JSON decoder for what clients send: `InvalidInput` for anything that is not JSON nested at most
    MAX_DEPTH deep, whatever it trips over (the decoder's recursion, a byte that is not UTF-8)."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise InvalidInput({"body": f"nested deeper than {MAX_DEPTH} levels"}) from None
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InvalidInput({"body": "not valid JSON"}) from None
    if _deeper_than(value, MAX_DEPTH):
        raise InvalidInput({"body": f"nested deeper than {MAX_DEPTH} levels"})
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and objects nest past `limit`, walked without recursion."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            if depth >= limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


async def read_json(request: web.Request) -> Any:
    """The request's JSON body: its declared charset must be one Python knows (else 422, as any other body that
    cannot be read), then `decode_json`."""
    charset = request.charset or "utf-8"
    try:
        text = (await request.read()).decode(charset)
    except LookupError:
        raise InvalidInput({"body": f"unknown charset {charset[:40]!r}"}) from None
    except UnicodeDecodeError:
        raise InvalidInput({"body": f"not {charset[:40]} text"}) from None
    return decode_json(text)


async def parse_json(request: web.Request, model: type[M]) -> M:
    payload = await read_json(request)
    try:
        return model.model_validate(clean(payload)[0])
    except ValidationError as exc:
        raise InvalidInput(validation_fields(exc)) from None
