"""/healthz: what a load balancer or an operator needs to know — can this process reach its database and Redis."""

from __future__ import annotations

import asyncio

from aiohttp import web
from sqlalchemy import text

from desk import schemas
from web.endpoints import Endpoint
from web.errors import RETRY_AFTER_SECONDS
from web.http import json_ok
from web.runtime import runtime

CHECK_TIMEOUT = 3.0


async def _check(probe: asyncio.Future[object] | object) -> str:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return f"error: {exc.__class__.__name__}: {exc}"[:200]
    return "ok"


async def _database_ok(request: web.Request) -> None:
    async with runtime(request).engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def healthz(request: web.Request) -> web.Response:
    database = await _check(_database_ok(request))
    redis = await _check(runtime(request).redis.ping())
    healthy = database == "ok" and redis == "ok"
    body = schemas.HealthOut(status="ok" if healthy else "degraded", database=database, redis=redis)
    if healthy:
        return json_ok(body)
    return json_ok(body, status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


ENDPOINTS = [
    Endpoint("GET", "/healthz", healthz, "Database and Redis reachability (503 when either fails)", "operations",
             auth=False, response=schemas.HealthOut, errors=(503,)),
]
