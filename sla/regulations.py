"""Regulations: which promise applies to a ticket, and the ladder of steps that enforces it.

A regulations file (YAML or TOML) is read and checked once at start; every mistake is reported with its line,
the field and why, so a bad file stops the process instead of silently weakening an escalation.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sla.calendar import AlwaysOpen, Calendar, parse_calendar
from sla.sources import SourceError, load_document

Condition = Literal["processed", "resolved", "replied"]
"""What keeps a step from acting: processed (first response or take-over), resolved, or replied (to the client's
latest message: the next-update target)."""
Since = Literal["creation", "previous", "client_message"]
Medium = Literal["email", "sms", "telegram"]
PRIORITIES = ("low", "normal", "high", "critical")
ROLES = ("assignee", "previous_assignee", "group_head", "production_manager")
"""Whom a step may notify besides a named contact, `agent:EMAIL`, or a literal address (email or +phone)."""
DEFAULT_CALENDAR = "default"
"""The calendar of the SWITCHBOARD_CALENDAR_* settings, which a file may use without defining it."""
CALLBACK = "callback"

_SPAN = re.compile(
    r"^\s*(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?|d|days?|w|weeks?)\s*$", re.I
)
_END_OF_DAY = re.compile(r"^\s*end\s+of\s+(?:business\s+|working\s+)?day\s+(?P<n>\d+)\s*$", re.I)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


# --- what the rest of Switchboard uses ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """A duration as written: days are the calendar's days (a working day in business time), the rest is exact."""

    seconds: float = 0.0
    days: float = 0.0

    def on(self, calendar: Calendar) -> timedelta:
        return timedelta(seconds=self.seconds) + self.days * calendar.day_length

    def scaled(self, share: float) -> Span:
        return Span(self.seconds * share, self.days * share)


@dataclass(frozen=True)
class Notify:
    to: tuple[str, ...]
    by: tuple[Medium, ...]


@dataclass(frozen=True)
class Step:
    """One rung of a ladder: when it is due, what makes it moot, and what it does if it is not."""

    name: str
    unless: Condition
    since: Since = "creation"
    after: Span | None = None
    end_of_day: int | None = None
    """Due at the close of this business day (1 = the day of registration), instead of `after`."""
    reassign: bool = False
    notify: tuple[Notify, ...] = ()
    raise_priority: str | None = None
    """A priority name, or "up" for one level higher."""
    breach: bool = False
    kind: Literal["step", "warning", "target"] = "step"
    time: Literal["business", "calendar"] | None = None
    """What its duration counts; None: the regulation's (business time when it names a calendar)."""


@dataclass(frozen=True)
class Match:
    category: frozenset[str] = frozenset()
    priority: frozenset[str] = frozenset()
    channel: frozenset[str] = frozenset()
    group: frozenset[str] = frozenset()
    tier: frozenset[str] = frozenset()

    def accepts(self, facts: TicketFacts) -> bool:
        return all(
            not allowed or (value or "") in allowed
            for allowed, value in ((self.category, facts.category), (self.priority, facts.priority),
                                   (self.channel, facts.channel), (self.group, facts.group), (self.tier, facts.tier))
        )


@dataclass(frozen=True)
class TicketFacts:
    category: str | None
    priority: str
    channel: str
    group: str
    tier: str | None = None


@dataclass(frozen=True)
class Contact:
    email: str | None = None
    phone: str | None = None
    language: str | None = None
    """The language alerts to this contact are written in (en, ru)."""


@dataclass(frozen=True)
class Regulation:
    name: str
    match: Match
    calendar_name: str
    calendar: Calendar
    business_time: bool
    """Steps count working time of `calendar`; otherwise every hour of the clock."""
    steps: tuple[Step, ...]
    version: str
    """A digest of what decides this regulation's deadlines: clock events name it, so a re-plan is explainable."""

    def step(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.name == name), None)

    def clock(self, step: Step) -> Calendar:
        """What `step`'s duration counts: the calendar's working time, or every hour of the clock."""
        business = self.business_time if step.time is None else step.time == "business"
        return self.calendar if business else AlwaysOpen(self.calendar.tz)


@dataclass(frozen=True)
class RegulationBook:
    """Regulations in file order: a ticket gets the first whose match accepts it."""

    regulations: tuple[Regulation, ...]
    contacts: Mapping[str, Contact]
    source: str
    """The file they came from, or "built-in"."""

    def for_ticket(self, facts: TicketFacts) -> Regulation | None:
        return next((r for r in self.regulations if r.match.accepts(facts)), None)

    def named(self, name: str) -> Regulation | None:
        return next((r for r in self.regulations if r.name == name), None)


class RegulationsError(ValueError):
    """The regulations file is wrong; each problem says where (line), what (field) and why."""

    def __init__(self, source: str, problems: Sequence[tuple[int | None, str, str]]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = [f"{source}{f':{line}' if line else ''}: {field}: {why}" for line, field, why in self.problems]
        super().__init__("invalid regulations:\n  " + "\n  ".join(lines))


# --- parsing -----------------------------------------------------------------------------------------------------


def parse_span(text: str) -> Span:
    """ "30s", "90 minutes", "1.5h", "2 days" (a day is a working day in business time)."""
    match = _SPAN.match(str(text))
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 30s, 90 minutes, 2h or 1 day")
    amount, unit = float(match["n"]), match["unit"].lower()
    if amount <= 0:
        raise ValueError(f"{text!r} must be longer than nothing")
    if unit[0] in "dw":
        return Span(days=amount * (7 if unit[0] == "w" else 1))
    return Span(seconds=amount * _UNIT_SECONDS[unit[0]])


def _names(value: object) -> object:
    return [value] if isinstance(value, str) else value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _by_email() -> list[Medium]:
    return ["email"]


class _NotifyIn(_Strict):
    to: list[str] = Field(min_length=1)
    by: list[Medium] = Field(default_factory=_by_email, min_length=1)

    _lists = field_validator("to", "by", mode="before")(classmethod(lambda cls, v: _names(v)))

    @field_validator("to")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        for name in value:
            if not (name in ROLES or name.startswith("agent:") or "@" in name or name.startswith("+")
                    or re.fullmatch(r"[a-z][a-z0-9_]*", name)):
                raise ValueError(f"{name!r} is not a role ({', '.join(ROLES)}), a contact, agent:EMAIL or an address")
        return value


class _StepIn(_Strict):
    name: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
    unless: Condition = "resolved"
    """What makes the step moot; without it, the ticket's resolution."""
    after: str | None = None
    at: str | None = None
    since: Literal["creation", "previous"] = "creation"
    time: Literal["business", "calendar"] | None = None
    reassign: bool = False
    notify: list[_NotifyIn] = Field(default_factory=list)
    raise_priority: str | None = None
    breach: bool = False

    @field_validator("after")
    @classmethod
    def _after(cls, value: str | None) -> str | None:
        if value is not None:
            parse_span(value)
        return value

    @field_validator("at")
    @classmethod
    def _at(cls, value: str | None) -> str | None:
        day = _END_OF_DAY.match(value) if value is not None else None
        if value is not None and (day is None or int(day["n"]) < 1):
            raise ValueError(f"{value!r} should look like 'end of business day 1'")
        return value

    @field_validator("raise_priority")
    @classmethod
    def _priority(cls, value: str | None) -> str | None:
        if value is not None and value not in (*PRIORITIES, "up"):
            raise ValueError(f"{value!r} is not a priority ({', '.join(PRIORITIES)}) or 'up'")
        return value

    @model_validator(mode="after")
    def _when(self) -> _StepIn:
        if (self.after is None) == (self.at is None):
            raise ValueError("give exactly one of after (a duration) or at ('end of business day N')")
        if not (self.reassign or self.notify or self.raise_priority or self.breach):
            raise ValueError("a step must do something: reassign, notify, raise_priority or breach")
        return self

    def build(self) -> Step:
        eod = _END_OF_DAY.match(self.at) if self.at else None
        return Step(
            name=self.name, unless=self.unless, since=self.since,
            after=parse_span(self.after) if self.after else None, end_of_day=int(eod["n"]) if eod else None,
            reassign=self.reassign, notify=tuple(Notify(tuple(n.to), tuple(n.by)) for n in self.notify),
            raise_priority=self.raise_priority, breach=self.breach, time=self.time,
        )


def _share(value: object) -> object:
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100
        except ValueError:
            raise ValueError(f"{value!r} is not a share like 80%") from None
    return value


class _TargetIn(_Strict):
    within: str
    warn_at: float | None = Field(None, gt=0, lt=1, description="share of `within`: 0.8 or '80%'")
    warn: list[str] = Field(default_factory=lambda: ["assignee"])
    warn_by: list[Medium] = Field(default_factory=_by_email)
    on_breach: list[_NotifyIn] = Field(default_factory=list)

    _pct = field_validator("warn_at", mode="before")(classmethod(lambda cls, v: _share(v)))
    _lists = field_validator("warn", "warn_by", mode="before")(classmethod(lambda cls, v: _names(v)))
    _within = field_validator("within")(classmethod(lambda cls, v: (parse_span(v), v)[1]))

    def build(self, name: str, unless: Condition, since: Since) -> list[Step]:
        span = parse_span(self.within)
        steps = []
        if self.warn_at is not None:
            steps.append(Step(name=f"{name}.warning", unless=unless, since=since, after=span.scaled(self.warn_at),
                              notify=(Notify(tuple(self.warn), tuple(self.warn_by)),), kind="warning"))
        steps.append(Step(name=name, unless=unless, since=since, after=span, breach=True, kind="target",
                          notify=tuple(Notify(tuple(n.to), tuple(n.by)) for n in self.on_breach)))
        return steps


class _TargetsIn(_Strict):
    first_response: _TargetIn | None = None
    next_update: _TargetIn | None = None
    resolution: _TargetIn | None = None

    def build(self) -> list[Step]:
        steps: list[Step] = []
        targets = (("first_response", "processed", "creation"), ("next_update", "replied", "client_message"),
                   ("resolution", "resolved", "creation"))
        for name, unless, since in targets:
            target: _TargetIn | None = getattr(self, name)
            if target is not None:
                steps.extend(target.build(name, unless, since))  # type: ignore[arg-type]
        return steps


class _MatchIn(_Strict):
    category: list[str] = Field(default_factory=list)
    priority: list[Literal["low", "normal", "high", "critical"]] = Field(default_factory=list)
    channel: list[Literal["email", "webform", "webchat", "telegram", "phone"]] = Field(default_factory=list)
    group: list[str] = Field(default_factory=list)
    tier: list[str] = Field(default_factory=list)

    _lists = field_validator("category", "priority", "channel", "group", "tier", mode="before")(
        classmethod(lambda cls, v: _names(v)))

    def build(self) -> Match:
        return Match(*(frozenset(getattr(self, f)) for f in ("category", "priority", "channel", "group", "tier")))


class _CalendarIn(_Strict):
    timezone: str = "UTC"
    hours: str | dict[str, str] = "09:00-18:00"
    days: str = "mon-fri"
    holidays: str | None = None
    days_off: list[str] = Field(default_factory=list)

    _days_off = field_validator("days_off", mode="before")(
        classmethod(lambda cls, v: [s.strip() for s in v.split(",") if s.strip()] if isinstance(v, str)
                    else [str(d) for d in v] if isinstance(v, list) else v))

    @model_validator(mode="after")
    def _valid(self) -> _CalendarIn:
        self.build()
        return self

    def build(self) -> Calendar:
        return parse_calendar(timezone_name=self.timezone, hours=self.hours, days=self.days, country=self.holidays,
                              extra_days_off=",".join(self.days_off))


class _ContactIn(_Strict):
    email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str | None = Field(None, pattern=r"^\+[1-9][0-9]{6,14}$", description="E.164, e.g. +74951234567")
    language: Literal["en", "ru"] | None = None


class _RegulationIn(_Strict):
    name: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
    match: _MatchIn = Field(default_factory=_MatchIn)
    calendar: str | None = None
    """A calendar of the file, or "default" (the SWITCHBOARD_CALENDAR_* one); unset → clock time."""
    steps: list[_StepIn] = Field(default_factory=list)
    targets: _TargetsIn = Field(default_factory=_TargetsIn)

    @model_validator(mode="after")
    def _unique(self) -> _RegulationIn:
        names = [s.name for s in self.steps] + [s.name for s in self.targets.build()]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"step names must be unique; repeated: {', '.join(repeated)}")
        if not names:
            raise ValueError("a regulation needs steps or targets")
        return self


class _FileIn(_Strict):
    calendars: dict[str, _CalendarIn] = Field(default_factory=dict)
    contacts: dict[str, _ContactIn] = Field(default_factory=dict)
    regulations: list[_RegulationIn] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> _FileIn:
        names = [r.name for r in self.regulations]
        if len(set(names)) < len(names):
            repeated = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"regulation names must be unique; repeated: {repeated}")
        return self


def _problems_in(book: _FileIn) -> list[tuple[tuple[Any, ...], str]]:
    """What pydantic cannot see field by field: names that must exist elsewhere in the file."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    for r, regulation in enumerate(book.regulations):
        if regulation.calendar is not None and regulation.calendar != DEFAULT_CALENDAR \
                and regulation.calendar not in book.calendars:
            problems.append((("regulations", r, "calendar"),
                             f"no calendar {regulation.calendar!r} (define it under calendars, or use 'default')"))
        for s, step in enumerate(regulation.steps):
            for n, notify in enumerate(step.notify):
                for name in notify.to:
                    if "@" in name or name.startswith(("+", "agent:")) or name in ROLES or name in book.contacts:
                        continue
                    problems.append((("regulations", r, "steps", s, "notify", n, "to"),
                                     f"{name!r} is neither a role ({', '.join(ROLES)}) nor a contact of the file"))
    return problems


def build_book(document: Mapping[str, Any], source: str, default_calendar: Mapping[str, Any],
               lines: Mapping[tuple[Any, ...], int] | None = None) -> RegulationBook:
    """Check a parsed regulations document and build the book; raises RegulationsError listing every problem.

    `default_calendar` is the SWITCHBOARD_CALENDAR_* settings (timezone, hours, days, holidays, days_off): the
    calendar a regulation means by "default" unless the file defines its own of that name.
    """
    lines = lines or {}
    calendars = {DEFAULT_CALENDAR: dict(default_calendar), **(document.get("calendars") or {})}
    document = {**document, "calendars": calendars}

    def line_of(path: tuple[Any, ...]) -> int | None:
        while path:
            if path in lines:
                return lines[path]
            path = path[:-1]
        return None

    try:
        parsed = _FileIn.model_validate(document)
    except ValidationError as error:
        raise RegulationsError(source, [
            (line_of(tuple(e["loc"])), ".".join(str(p) for p in e["loc"]) or "(file)",
             e["msg"].removeprefix("Value error, ")) for e in error.errors()
        ]) from None
    problems = _problems_in(parsed)
    if problems:
        raise RegulationsError(source, [(line_of(path), ".".join(map(str, path)), why) for path, why in problems])
    calendars = {name: c.build() for name, c in parsed.calendars.items()}
    regulations = []
    for regulation in parsed.regulations:
        steps = (*(s.build() for s in regulation.steps), *regulation.targets.build())
        calendar_name = regulation.calendar or DEFAULT_CALENDAR
        digest = hashlib.sha256(json.dumps(
            [regulation.model_dump(mode="json"), parsed.calendars[calendar_name].model_dump(mode="json")],
            sort_keys=True).encode()).hexdigest()[:12]
        regulations.append(Regulation(
            name=regulation.name, match=regulation.match.build(), calendar_name=calendar_name,
            calendar=calendars[calendar_name], business_time=regulation.calendar is not None, steps=steps,
            version=digest,
        ))
    contacts = {name: Contact(c.email, c.phone, c.language) for name, c in parsed.contacts.items()}
    return RegulationBook(tuple(regulations), contacts, source)


def load_book(path: Path, default_calendar: Mapping[str, Any]) -> RegulationBook:
    """Read a YAML (.yaml/.yml) or TOML (.toml) regulations file."""
    try:
        document, lines = load_document(path)
    except SourceError as error:
        raise RegulationsError(str(path), [(error.line, "(file)", error.why)]) from None
    return build_book(document, str(path), default_calendar, lines)


def builtin_book(calendar: Mapping[str, Any], callback_hours: float = 2) -> RegulationBook:
    """Our regulation, in the same form as a file (and checked the same way): see README "Regulations"."""
    document = {
        "regulations": [
            {"name": CALLBACK, "match": {"category": CALLBACK}, "calendar": DEFAULT_CALENDAR,
             "steps": [{"name": "call_back", "after": f"{callback_hours} hours", "unless": "processed",
                        "breach": True, "notify": [{"to": "assignee", "by": "email"}]}]},
            {"name": "critical_defect", "match": {"category": "defect", "priority": "critical"},
             "calendar": DEFAULT_CALENDAR,
             "steps": [
                 {"name": "unprocessed_day_1", "at": "end of business day 1", "unless": "processed",
                  "notify": [{"to": "production_manager", "by": ["email", "sms"]}]},
             ],
             "targets": {"resolution": {"within": "2 days", "on_breach": [
                 {"to": ["production_manager", "group_head"], "by": ["email", "sms"]}]}}},
            {"name": "request", "calendar": DEFAULT_CALENDAR,
             "steps": [
                 # The seed's rule: left unsatisfied (not resolved) for a day, to the least-loaded other agent; not
                 # worked out within another day, to the head of the department. An answer in time does not stop
                 # the ladder: only resolving does (`unless: processed` on the first step reads it the other way).
                 {"name": "reassign", "after": "1 day", "unless": "resolved", "reassign": True,
                  "notify": [{"to": ["assignee", "previous_assignee"], "by": "email"}]},
                 {"name": "head_alert", "after": "1 day", "since": "previous", "unless": "resolved", "breach": True,
                  "notify": [{"to": "group_head", "by": ["email", "sms"]}]},
             ]},
        ],
    }
    return build_book(document, "built-in", calendar)
