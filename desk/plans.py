"""The API of the CRM practice: record a contact with a client (typed, with its outcome) and plan the next one; an
agent's plan; the activity types the admin keeps."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from desk.schemas import ActivityBrief, activity_out
from tickets.actions.plans import NextContact, Recorded
from tickets.errors import InvalidInput
from tickets.models import ActivityType, PlannedContact
from web.auth import ADMINS, authenticate
from web.endpoints import Endpoint, Param
from web.http import json_ok, parse_json, path_id
from web.runtime import runtime


class ActivityIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: str = Field(min_length=1, max_length=40, description="An activity type: call, meeting, demonstration, …")
    outcome: str | None = Field(None, max_length=200)
    note: str | None = Field(None, max_length=20_000)
    ticket: int | None = Field(None, ge=1, description="The ticket it was about (the client's).")
    call_id: str | None = Field(None, max_length=255, description="The call it records.")
    next_at: AwareDatetime | None = Field(None, description="When to contact the client next (reminded then).")
    next_what: str | None = Field(None, max_length=300, description="What the next contact is for.")


class PlannedOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    customer: str | None = None
    agent_id: int
    ticket_id: int | None
    due_at: datetime
    what: str
    status: str
    reminded_at: datetime | None
    overdue: bool = False


class RecordedOut(BaseModel):
    activity: ActivityBrief
    planned: PlannedOut | None
    kept: int = Field(description="Planned contacts with this client the activity kept.")


class PlanList(BaseModel):
    items: list[PlannedOut]


class ActivityTypeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=40)


class ActivityTypeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str


class ActivityTypeList(BaseModel):
    items: list[ActivityTypeOut]


class OutcomeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    needs_reason: bool


class OutcomeList(BaseModel):
    outcomes: list[OutcomeOut]
    reasons: list[str] = Field(description="The reasons a refusal may give.")


def _planned_out(planned: PlannedContact, now: datetime, customer: str | None = None) -> PlannedOut:
    out = PlannedOut.model_validate(planned)
    return out.model_copy(update={"customer": customer,
                                  "overdue": planned.status == "pending" and planned.due_at <= now})


async def record(request: web.Request) -> web.Response:
    agent = await authenticate(request)
    payload = await parse_json(request, ActivityIn)
    if (payload.next_at is None) != (payload.next_what is None):
        raise InvalidInput({"next_at" if payload.next_at is None else "next_what":
                            "a next contact needs both next_at and next_what"})
    rt = runtime(request)
    done: Recorded = await rt.service.record_activity(
        agent, path_id(request, "id"), payload.type, outcome=payload.outcome, note=payload.note,
        ticket=payload.ticket, call_id=payload.call_id,
        next_contact=NextContact(payload.next_at, payload.next_what or "") if payload.next_at else None)
    now = rt.clock.now()
    return json_ok(RecordedOut(activity=activity_out(done.activity, payload.type.strip().lower()),
                             planned=_planned_out(done.planned, now) if done.planned else None, kept=done.kept),
                   status=201)


async def plan(request: web.Request) -> web.Response:
    """The caller's pending planned contacts due by the end of today (UTC), overdue first."""
    agent = await authenticate(request)
    rt = runtime(request)
    lines = await rt.service.todays_plan(agent)
    now = rt.clock.now()
    return json_ok(PlanList(items=[_planned_out(line.planned, now, line.customer) for line in lines]))


async def list_types(request: web.Request) -> web.Response:
    await authenticate(request)
    kinds: list[ActivityType] = await runtime(request).service.activity_types()
    return json_ok(ActivityTypeList(items=[ActivityTypeOut.model_validate(k) for k in kinds]))


async def add_type(request: web.Request) -> web.Response:
    await authenticate(request, roles=ADMINS)
    payload = await parse_json(request, ActivityTypeIn)
    kind = await runtime(request).service.add_activity_type(payload.name)
    return json_ok(ActivityTypeOut.model_validate(kind), status=201)


async def list_outcomes(request: web.Request) -> web.Response:
    await authenticate(request)
    known = await runtime(request).service.outcomes()
    return json_ok(OutcomeList(outcomes=[OutcomeOut.model_validate(o) for o in known.outcomes],
                               reasons=[r.name for r in known.reasons]))


ENDPOINTS = [
    Endpoint("POST", "/api/v1/customers/{id}/activities", record,
             "Record a contact with the client (typed, with its outcome and note) and plan the next one", "customers",
             body=ActivityIn, response=RecordedOut, status=201, errors=(401, 404, 409, 422, 503),
             params=(Param("id", "path", "Customer id.", {"type": "integer"}, True),)),
    Endpoint("GET", "/api/v1/plan", plan, "Your planned contacts due today and overdue", "customers",
             response=PlanList, errors=(401, 503)),
    Endpoint("GET", "/api/v1/activity-types", list_types, "The activity types agents record contacts as",
             "customers", response=ActivityTypeList, errors=(401, 503)),
    Endpoint("GET", "/api/v1/outcomes", list_outcomes, "How a ticket can end (PATCH its outcome when resolving) and "
             "the reasons a refusal may give", "tickets", response=OutcomeList, errors=(401, 503)),
    Endpoint("POST", "/api/v1/activity-types", add_type, "Admins: add an activity type", "customers",
             body=ActivityTypeIn, response=ActivityTypeOut, status=201, errors=(401, 403, 409, 422, 503)),
]
