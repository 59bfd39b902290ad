"""`POST /api/v1/calls`: a PBX integration or an agent logs a call; posting the same call_id again is harmless."""

from __future__ import annotations

from aiohttp import web

from channels.phone import cti
from channels.phone.entry import CHANNEL, CallEntry, entry_inbound
from channels.poison import ParkedItem, store_or_park
from tickets.errors import DomainError
from tickets.models import Role
from web.auth import authenticate
from web.endpoints import Endpoint
from web.http import json_ok, parse_json
from web.runtime import runtime
from web.schemas import CallLogged, call_out, ticket_summary


async def log_call(request: web.Request) -> web.Response:
    agent = await authenticate(request)
    entry = await parse_json(request, CallEntry)
    rt = runtime(request)
    inbound = entry_inbound(
        entry,
        region=rt.settings.phone_region,
        now=rt.clock.now(),
        token_agent_id=agent.id if agent.role == Role.agent else None,
    )

    async def park(error: str, attempts: int) -> int:
        return await rt.service.park(CHANNEL, entry.call_id, error, payload=entry.model_dump_json(),
                                     attempts=attempts)

    outcome = await store_or_park(lambda: rt.service.log_calls([inbound]), park, passes=(DomainError,),
                                  what=f"call {entry.call_id}")  # a refusal is the caller's to fix: 4xx
    if isinstance(outcome, ParkedItem):
        return json_ok({"status": "kept", "parked": outcome.number}, status=202)
    (result,) = outcome
    assert result.call is not None  # one call a request: never the same call twice in one batch
    body = CallLogged(
        call=call_out(result.call),
        ticket=ticket_summary(result.ticket) if result.ticket else None,
        ticket_created=result.created,
        duplicate=result.duplicate,
    )
    return json_ok(body, status=200 if result.duplicate else 201)


ENDPOINTS = [
    Endpoint(
        "POST", "/api/v1/calls", log_call,
        "Log a phone call: missed ones become callback tickets, notes become work on the client's ticket", "calls",
        body=CallEntry, response=CallLogged, status=201, errors=(401, 422, 503),
    ),
    *cti.ENDPOINTS,
]
