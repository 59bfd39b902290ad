"""A route table that both registers the handlers and describes them, so OpenAPI cannot drift from the code."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web
from pydantic import BaseModel

from web.http import Handler
from web.params import QueryParams


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # "query", "path" or "header"
    description: str
    schema: dict[str, object] = field(default_factory=lambda: {"type": "string"})
    required: bool = False


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    auth: bool = True
    body: type[BaseModel] | None = None
    body_media: str = "application/json"
    response: type[BaseModel] | None = None
    response_media: str = "application/json"
    status: int = 200
    params: tuple[Param, ...] = ()
    """Path and header parameters; query parameters are `query`."""
    query: type[QueryParams] | None = None
    """The query string's model: what the handler validates with `web.params.query` and the document lists."""
    errors: tuple[int, ...] = ()
    in_openapi: bool = True


def register(app: web.Application, endpoints: list[Endpoint]) -> None:
    for endpoint in endpoints:
        app.router.add_route(endpoint.method, endpoint.path, endpoint.handler)
