"""`POST /api/v1/cti/{token}`: Zammad's generic CTI events (`newCall`, `answer`, `hangup`), so PBX scripts written
for Zammad work unchanged.

The fields are Zammad's (`from`, `to`, `direction`, `callId`, `user[]`, `queue`, `cause`, `answeringNumber`), sent
form-encoded or as JSON. Each event updates the call's row (`TicketService.record_call_event`) and is told on the
call feed, which pops the caller's card in the consoles of the agents it rings for; at hang-up the call is logged
as `POST /api/v1/calls` logs one (same call id: a CDR import of it later is a duplicate).
"""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from channels.phone.call_events import apply_call_event, read_number
from tickets import phone_numbers as numbers
from tickets.actions.live_calls import CallEvent
from tickets.errors import InvalidInput
from web.endpoints import Endpoint, Param
from web.forms import form_values
from web.http import json_ok, read_json, validation_fields
from web.runtime import runtime

KINDS = {"newCall": "ring", "answer": "answer", "hangup": "hangup"}


class CtiFields(BaseModel):
    """One generic CTI event as Zammad documents it."""

    model_config = ConfigDict(populate_by_name=True, str_strip_whitespace=True, extra="ignore")

    event: Literal["newCall", "answer", "hangup"]
    from_: str | None = Field(None, alias="from", max_length=64, description="The calling number, or `anonymous`.")
    to: str | None = Field(None, max_length=64, description="The called number (an extension, or the client's).")
    direction: Literal["in", "out"]
    callId: str = Field(min_length=1, max_length=250, description="One id for every event of the call.")  # noqa: N815
    user: list[str] = Field(default_factory=list, max_length=20,
                            description="`user[]`: agents by name (those it rings for, or who dial).")
    queue: str | None = Field(None, max_length=100)
    cause: str | None = Field(None, max_length=32, description="Why it ended: normalClearing, busy, cancel, …")
    answeringNumber: str | None = Field(None, max_length=320,  # noqa: N815
                                        description="Who answered: an agent's id, email or extension.")

    @field_validator("user")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        if any(len(n) > 200 for n in names):
            raise ValueError("a user name is at most 200 characters")
        return [n.strip() for n in names if n.strip()]


async def _fields(request: web.Request) -> CtiFields:
    """The event, form-encoded (`user[]` repeated) or JSON (`user` or `user[]` a list or one name)."""
    if request.content_type == "application/json":
        raw = await read_json(request)
        if not isinstance(raw, dict):
            raise InvalidInput({"body": "send a JSON object"})
        sent: dict[str, Any] = dict(raw)
    else:
        values = await form_values(request)
        sent = {name: sent_values[-1] for name, sent_values in values.items()}
        sent["user"] = values.get("user[]", []) + values.get("user", [])
        sent.pop("user[]", None)
    if "user[]" in sent:
        sent["user"] = sent.pop("user[]")
    if isinstance(sent.get("user"), str):
        sent["user"] = [sent["user"]]
    try:
        return CtiFields.model_validate(sent)
    except ValidationError as exc:
        raise InvalidInput(validation_fields(exc)) from None


def call_event(fields: CtiFields, region: str | None) -> CallEvent:
    caller, caller_e164 = read_number(fields.from_, region)
    called, called_e164 = read_number(fields.to, region)
    inbound = fields.direction == "in"
    ours = called if inbound else caller
    return CallEvent(
        call_id=fields.callId, kind=KINDS[fields.event],  # type: ignore[arg-type]
        direction=fields.direction, caller=caller, called=called,
        client_number=caller_e164 if inbound else called_e164, users=tuple(fields.user),
        extensions=(ours,) if ours and numbers.extension_of(ours) else (), answering=fields.answeringNumber,
        queue=fields.queue or None, cause=fields.cause or None,
    )


async def cti(request: web.Request) -> web.Response:
    rt = runtime(request)
    if not await rt.service.cti_token_valid(request.match_info["token"]):
        raise web.HTTPUnauthorized(text="this CTI endpoint's token is not valid (`switchboard calls cti-rotate`)")
    fields = await _fields(request)
    return json_ok(await apply_call_event(rt, call_event(fields, rt.settings.phone_region)))


ENDPOINTS = [
    Endpoint(
        "POST", "/api/v1/cti/{token}", cti,
        "Zammad-compatible generic CTI: newCall, answer and hangup events (form-encoded or JSON, Zammad's field "
        "names); the token in the path is the installation's (`switchboard calls cti-rotate`)", "calls",
        auth=False, body=CtiFields, errors=(401, 422, 503),
        params=(Param("token", "path", "The installation's CTI token", required=True),),
    ),
]
