"""Bearer-token authentication for the API and the endpoints agents' tools call (a PBX logging calls)."""

from __future__ import annotations

import json

from aiohttp import web

from tickets.errors import Forbidden
from tickets.models import Agent, Role
from web.runtime import runtime

ADMINS = (Role.admin,)
MANAGERS = (Role.manager, Role.admin)


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
