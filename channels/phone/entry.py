"""A call-log entry (from the API or a CDR row) becomes one phone `Inbound`: the client's number is its identity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, StrictStr

from channels.phone.cdr import CdrRow
from tickets import phone_numbers as numbers
from tickets.errors import InvalidInput
from tickets.identities import InvalidAddress, email_identity
from tickets.inbound import CallDetails, Identity, Inbound
from tickets.numbers import MAX_ID

CHANNEL = "phone"
MAX_NOTES = 100_000
CLOCK_SKEW = timedelta(minutes=5)
MAX_SECONDS = 2**31 - 1
"""The longest duration the calls table holds (a 32-bit column): about 68 years."""
"""How far in the future a PBX clock may be before its call times are refused."""


def _storable(value: datetime) -> datetime:
    """A moment the store can keep and count with: in UTC, between the years 1970 and 9000 (year 1 at +14:00 is
    before the year 1 in UTC, which no datetime can hold)."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the years 1970 to 9000") from None
    if not 1970 <= utc.year <= 9000:
        raise ValueError("is outside the years 1970 to 9000")
    return value


Moment = Annotated[AwareDatetime, AfterValidator(_storable)]


class CallEntry(BaseModel):
    """A phone-log entry as the PBX integration or an agent posts it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    call_id: str = Field(
        min_length=1, max_length=255, description="The PBX's unique id of the call; posting it again is harmless."
    )
    caller: str | None = Field(
        None, max_length=64, description="Calling number; empty, null or `anonymous` when withheld."
    )
    called: str | None = Field(None, max_length=64, description="Called number or extension.")
    caller_name: str | None = Field(None, max_length=200, description="Caller id name, if the PBX has one.")
    direction: Literal["in", "out"]
    started_at: Moment
    answered_at: Moment | None = None
    ended_at: Moment | None = None
    duration: int | None = Field(
        None, ge=0, le=MAX_SECONDS, description="Seconds from start to end; worked out from the times when absent."
    )
    talk_time: int | None = Field(
        None, ge=0, le=MAX_SECONDS, description="Seconds from answer to end; worked out from the times when absent."
    )
    disposition: Literal["answered", "missed", "busy", "failed", "voicemail"]
    agent: StrictInt | StrictStr | None = Field(
        None, description="The agent on the call: id (number), email, or PBX extension; unset → the token's agent."
    )
    notes: str | None = Field(
        None, max_length=MAX_NOTES, description="What was said; an answered call with notes becomes work on a ticket."
    )
    recording_url: str | None = Field(None, max_length=1000, pattern=r"^https?://\S+$")


def entry_inbound(entry: CallEntry, *, region: str | None, now: datetime, token_agent_id: int | None) -> Inbound:
    """Validate what the schema cannot (numbers, the order of times) and build the Inbound; errors name their field."""
    errors: dict[str, str] = {}
    client_field = "called" if entry.direction == "out" else "caller"
    caller = _party(entry.caller, region, "caller", errors, client=client_field == "caller")
    called = _party(entry.called, region, "called", errors, client=client_field == "called")
    if entry.direction == "out" and called is None and "called" not in errors:
        errors["called"] = "an outbound call needs the client's number"
    answered_at = entry.answered_at if entry.disposition == "answered" else None
    if entry.started_at > now + CLOCK_SKEW:
        errors["started_at"] = "is in the future"
    if entry.ended_at is not None and entry.ended_at < entry.started_at:
        errors["ended_at"] = "is before started_at"
    if answered_at is not None and (
        answered_at < entry.started_at or (entry.ended_at and answered_at > entry.ended_at)
    ):
        errors["answered_at"] = "must lie between started_at and ended_at"
    talk_time = entry.talk_time if entry.talk_time is not None else _seconds(answered_at, entry.ended_at)
    if entry.duration is not None:
        duration = entry.duration
    elif entry.ended_at is not None:
        duration = _seconds(entry.started_at, entry.ended_at)
    else:
        duration = talk_time  # only the talk time is known: the call lasted at least that long
    if talk_time > duration and not errors.keys() & {"answered_at", "ended_at"}:
        errors["talk_time"] = "is longer than the call's duration"
    agent_id, agent_email, extension = _agent(entry.agent, errors)
    if entry.agent is None:
        agent_id = token_agent_id
    if extension is None:  # the agent's phone is the party that is an extension: it finds the agent too
        ours = caller if entry.direction == "out" else called
        extension = numbers.extension_of(ours) if ours else None
    if errors:
        raise InvalidInput(errors)
    details = CallDetails(
        direction=entry.direction,
        disposition=entry.disposition,
        started_at=entry.started_at,
        caller=caller,
        called=called,
        answered_at=answered_at,
        ended_at=entry.ended_at,
        duration=duration,
        talk_time=talk_time,
        agent_id=agent_id,
        agent_email=agent_email,
        extension=extension,
        notes=entry.notes or None,
        recording_url=entry.recording_url,
        source="api",
    )
    return call_inbound(entry.call_id, details, entry.caller_name if entry.direction == "in" else None)


def cdr_inbound(row: CdrRow) -> Inbound:
    """A CDR row as a call: the extension names the agent when one has it."""
    outbound = row.direction == "out"
    details = CallDetails(
        direction=row.direction,
        disposition=row.disposition,
        started_at=row.started_at,
        caller=row.extension if outbound else row.caller,
        called=row.called if outbound else (row.called or row.extension),
        answered_at=row.answered_at,
        ended_at=row.ended_at,
        duration=row.duration,
        talk_time=row.talk_time,
        extension=row.extension,
        source="cdr",
    )
    return call_inbound(row.record_id, details, None if outbound else row.caller_name)


def call_inbound(call_id: str, details: CallDetails, caller_name: str | None) -> Inbound:
    client = details.called if details.direction == "out" else details.caller
    identities = (Identity("phone", client),) if client and client.startswith("+") else ()
    return Inbound(
        channel=CHANNEL,
        identities=identities,
        body_text=details.notes or "",
        external_id=call_id,
        customer_name=caller_name,
        call=details,
    )


def _party(raw: str | None, region: str | None, name: str, errors: dict[str, str], *, client: bool) -> str | None:
    """E.164 for an outside number, the extension as written, None when withheld; the client's must be a number."""
    if raw is None or numbers.is_withheld(raw):
        return None
    extension = numbers.extension_of(raw)
    if extension is not None:
        if client:
            errors[name] = f"{raw!r} is an internal extension, not the client's number"
        return extension
    try:
        return numbers.to_e164(raw, region)
    except InvalidAddress as exc:
        if client:
            errors[name] = str(exc)
            return None
        return raw  # our own line in some PBX-specific form: kept as written


def _seconds(start: datetime | None, end: datetime | None) -> int:
    if start is None or end is None or end < start:
        return 0
    return int((end - start).total_seconds())


def _agent(raw: int | str | None, errors: dict[str, str]) -> tuple[int | None, str | None, str | None]:
    """(id, email, extension): a number is an id, text with @ an email, other text an extension."""
    if raw is None:
        return None, None, None
    if isinstance(raw, int):
        if not 0 < raw <= MAX_ID:
            errors["agent"] = "no such agent id"
            return None, None, None
        return raw, None, None
    if "@" in raw:
        try:
            return None, email_identity(raw).address, None
        except InvalidAddress as exc:
            errors["agent"] = str(exc)
            return None, None, None
    extension = numbers.extension_of(raw)
    if extension is None:
        errors["agent"] = "give the agent's id (a number), email or extension (2–5 digits)"
    return None, None, extension
