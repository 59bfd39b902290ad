"""The JSON shapes more than one package answers with: a ticket's summary and a logged call (the desk's API and
the phone channel's `POST /api/v1/calls` both return them). Read straight from the ORM rows (`from_attributes`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tickets.models import Call, Ticket, skill_set

Status = Literal["new", "open", "pending", "resolved", "closed"]
PriorityName = Literal["low", "normal", "high", "critical"]


class FromRow(BaseModel):
    """A response read from an ORM row; fields named apart from their column say so with `validation_alias`."""

    model_config = ConfigDict(from_attributes=True, validate_by_name=True, validate_by_alias=True)


class TicketSummary(FromRow):
    number: int = Field(validation_alias="id")
    subject: str
    status: Status
    priority: PriorityName
    category: str | None
    channel: str
    customer_id: int
    group_id: int
    assignee_id: int | None
    skills: list[str] = Field(description="Skills its agent must have; empty: anyone in the group.")
    follows_up: int | None = Field(validation_alias="follows_up_id")
    merged_into: int | None = Field(
        validation_alias="merged_into_id", description="Set once the ticket was merged into that one (and closed)."
    )
    created_at: datetime
    updated_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    escalated_at: datetime | None = Field(
        None, description="When a regulation's step took it to the head of its department.")
    escalated_to: int | None = Field(None, validation_alias="escalated_to_id",
                                     description="The head it went to, when they are an agent here.")

    @field_validator("skills", mode="before")
    @classmethod
    def _skill_list(cls, value: Any) -> Any:
        """The row keeps skills as one sorted, comma-joined key."""
        return sorted(skill_set(value)) if value is None or isinstance(value, str) else value


class CallOut(FromRow):
    id: int
    call_id: str
    direction: Literal["in", "out"]
    disposition: Literal["answered", "missed", "busy", "failed", "voicemail"]
    caller: str | None = Field(description="E.164 number, an extension, or null when withheld.")
    called: str | None
    caller_name: str | None
    customer_id: int | None = Field(description="Null for a withheld number.")
    ticket: int | None = Field(
        validation_alias="ticket_id", description="Number of the ticket the call landed on, if any."
    )
    agent_id: int | None
    extension: str | None
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    duration: int = Field(description="Seconds from start to end.")
    talk_time: int = Field(description="Seconds from answer to end.")
    notes: str | None
    recording_url: str | None
    source: Literal["api", "cdr", "cti", "ami"] = Field(
        description="Who logged it: api (POST /api/v1/calls), cdr (an import), cti (the CTI endpoint's events), ami "
                    "(the Asterisk manager session).")


class CallLogged(BaseModel):
    call: CallOut
    ticket: TicketSummary | None = Field(
        description="The ticket the call landed on; null when it went on the card only."
    )
    ticket_created: bool = Field(description="The call opened this ticket (a callback, or notes with no open ticket).")
    duplicate: bool = Field(description="This call_id was logged before: nothing new was stored.")


def ticket_summary(ticket: Ticket) -> TicketSummary:
    return TicketSummary.model_validate(ticket)


def call_out(call: Call) -> CallOut:
    return CallOut.model_validate(call)
