"""When each step of a ladder is due, from the ticket's clock: pure, so the same history always gives the same plan."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sla.calendar import Calendar
from sla.regulations import Regulation, Step

Pause = tuple[datetime, datetime | None]
"""A stretch the clock did not run (pending, or resolved until reopened); an open end means it still stands."""


@dataclass(frozen=True)
class ClockState:
    """What the plan is measured from."""

    created_at: datetime
    pauses: Sequence[Pause] = ()
    awaiting_reply_since: datetime | None = None
    """The client's oldest message since the last public reply (what the next-update target counts from)."""


@dataclass(frozen=True)
class Planned:
    step: Step
    position: int
    reference: datetime | None
    """Where its time counts from: creation, the previous step's due time, or the client's message."""
    due_at: datetime | None
    """None: not due while the clock stands (paused), or nothing to count from (no client message waits)."""


def add_running(clock: Calendar, start: datetime, duration: timedelta, pauses: Sequence[Pause]) -> datetime | None:
    """`duration` of `clock` time after `start`, not counting the pauses; None if a standing pause is reached first."""
    cursor, remaining = start, duration
    for begin, end in sorted(pauses, key=lambda p: p[0]):
        if end is not None and end <= cursor:
            continue
        if begin <= cursor:
            if end is None:
                return None
            cursor = end
            continue
        candidate = clock.add(cursor, remaining)
        if candidate <= begin:
            return candidate
        remaining -= clock.between(cursor, begin)
        if end is None:
            return None
        cursor = end
    return clock.add(cursor, remaining)


def plan(regulation: Regulation, state: ClockState) -> list[Planned]:
    """Every step's due time; steps `since: previous` count from the ladder step before them in the file."""
    planned: list[Planned] = []
    previous: datetime | None = state.created_at
    for position, step in enumerate(regulation.steps):
        if step.since == "creation":
            reference: datetime | None = state.created_at
        elif step.since == "previous":
            reference = previous
        else:
            reference = state.awaiting_reply_since
        due = None if reference is None else _due(regulation, step, reference, state.pauses)
        planned.append(Planned(step, position, reference, due))
        if step.kind == "step":
            previous = due
    return planned


def _due(regulation: Regulation, step: Step, reference: datetime, pauses: Sequence[Pause]) -> datetime | None:
    clock = regulation.clock(step)
    if step.end_of_day is not None:
        # "End of business day N" is the office's close, whichever time the steps count; time paused moves it on.
        duration = clock.between(reference, regulation.calendar.end_of_day(reference, step.end_of_day))
    else:
        assert step.after is not None
        duration = step.after.on(clock)
    return add_running(clock, reference, duration, pauses)
