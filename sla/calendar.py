"""Business time: what "two hours" means when the office works 9 to 6 on weekdays and not on holidays."""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as public_holidays

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_DAYS = 3660
"""Search at most ten years ahead for working time (`parse_calendar` refuses a calendar with no working day)."""


class Calendar(Protocol):
    """What a regulation measures its steps in: working time, or every hour of the clock."""

    @property
    def tz(self) -> tzinfo:
        """The zone its days and hours are in."""

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The moment `duration` of counted time after `start` has passed (UTC)."""

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Counted time from `start` to `end` (zero when `end` is not after `start`)."""

    def end_of_day(self, start: datetime, n: int) -> datetime:
        """The close of the `n`th day counted from `start` (day 1 is `start`'s own day while it is still open)."""

    @property
    def day_length(self) -> timedelta:
        """What "1 day" of this calendar's time is."""


@dataclass(frozen=True)
class AlwaysOpen:
    """Calendar time: nights, weekends and holidays count; days end at midnight in `tz`."""

    tz: tzinfo = UTC

    def add(self, start: datetime, duration: timedelta) -> datetime:
        return (start + duration).astimezone(UTC)

    def between(self, start: datetime, end: datetime) -> timedelta:
        return max(end - start, timedelta(0))

    def end_of_day(self, start: datetime, n: int) -> datetime:
        day = start.astimezone(self.tz).date() + timedelta(days=n)
        return datetime.combine(day, time(0), tzinfo=self.tz).astimezone(UTC)

    @property
    def day_length(self) -> timedelta:
        return timedelta(days=1)


@dataclass(frozen=True)
class BusinessCalendar:
    """Working hours per weekday (0 = Monday) in one time zone, minus public holidays and extra days off."""

    tz: tzinfo
    hours: Mapping[int, tuple[time, time]]
    holidays: Container[date] = field(default_factory=frozenset)

    def _window(self, day: date) -> tuple[datetime, datetime] | None:
        hours = self.hours.get(day.weekday())
        if hours is None or day in self.holidays:
            return None
        start, end = (datetime.combine(day, t, tzinfo=self.tz).astimezone(UTC) for t in hours)
        return start, end

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The moment `duration` of working time after `start` has passed (UTC)."""
        remaining = duration
        cursor = start.astimezone(UTC)
        day = start.astimezone(self.tz).date()
        for _ in range(MAX_DAYS):
            window = self._window(day)
            if window is not None:
                begin = max(cursor, window[0])
                if begin < window[1]:
                    if remaining <= window[1] - begin:
                        return begin + remaining
                    remaining -= window[1] - begin
            day += timedelta(days=1)
        raise ValueError("the calendar has no working time in the next ten years")

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Working time from `start` to `end`."""
        total = timedelta(0)
        if end <= start:
            return total
        day = start.astimezone(self.tz).date()
        last = end.astimezone(self.tz).date()
        while day <= last:
            window = self._window(day)
            if window is not None:
                total += max(min(end, window[1]) - max(start, window[0]), timedelta(0))
            day += timedelta(days=1)
        return total

    def end_of_day(self, start: datetime, n: int) -> datetime:
        """Closing time of the `n`th working day; a ticket registered after closing counts from the next one."""
        day = start.astimezone(self.tz).date()
        for _ in range(MAX_DAYS):
            window = self._window(day)
            if window is not None and window[1] > start:
                n -= 1
                if n <= 0:
                    return window[1]
            day += timedelta(days=1)
        raise ValueError("the calendar has no working time in the next ten years")

    @property
    def day_length(self) -> timedelta:
        """The longest working day: "1 day" of business time is a whole working day (Fri 17:00 + 1 day = Mon 17:00)."""
        return max((datetime.combine(date.min, b) - datetime.combine(date.min, a) for a, b in self.hours.values()),
                   default=timedelta(0))


def parse_calendar(
    *, timezone_name: str, hours: str | Mapping[str, str], days: str = "mon-fri", country: str | None = None,
    extra_days_off: str = "",
) -> BusinessCalendar:
    """Build a calendar from settings text ("09:00-18:00", "mon-fri", "RU", "2026-12-31,2027-01-08").

    `hours` may instead map days to their own hours ({"mon-fri": "09:00-18:00", "sat": "10:00-14:00"}); then
    `days` is not used. Raises ValueError naming the part that is wrong.
    """
    try:
        tz: tzinfo = ZoneInfo(timezone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {timezone_name!r} (e.g. Europe/Moscow, UTC)") from None
    if isinstance(hours, str):
        opening = _hours(hours)
        week = {weekday: opening for weekday in _weekdays(days)}
    else:
        week = {weekday: _hours(text) for spec, text in hours.items() for weekday in _weekdays(spec)}
        if not week:
            raise ValueError("a calendar needs at least one working day")
    off: set[date] = set()
    for item in filter(None, (part.strip() for part in extra_days_off.split(","))):
        try:
            off.add(date.fromisoformat(item))
        except ValueError:
            raise ValueError(f"day off {item!r} is not a date like 2026-12-31") from None
    holidays: Container[date] = frozenset(off)
    if country:
        try:
            public = public_holidays.country_holidays(country.upper())
        except NotImplementedError:
            raise ValueError(
                f"no public holidays known for country {country!r} (use an ISO code, e.g. RU, GB)"
            ) from None
        holidays = _Either(public, frozenset(off))
    return BusinessCalendar(tz, week, holidays)


@dataclass(frozen=True)
class _Either:
    first: Container[date]
    second: Container[date]

    def __contains__(self, day: object) -> bool:
        return day in self.first or day in self.second


def _hours(text: str) -> tuple[time, time]:
    start, separator, end = text.partition("-")
    try:
        opening = (time.fromisoformat(start.strip()), time.fromisoformat(end.strip()))
    except ValueError:
        opening = None
    if not separator or opening is None or any(t.tzinfo for t in opening) or opening[0] >= opening[1]:
        raise ValueError(f"working hours {text!r} should look like 09:00-18:00")
    return opening


def _weekdays(text: str) -> set[int]:
    chosen: set[int] = set()
    for part in filter(None, (p.strip().lower() for p in text.split(","))):
        first, _, last = (side.strip() for side in part.partition("-"))
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            raise ValueError(f"working days {text!r} should look like mon-fri or mon,tue,sat")
        a, b = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        chosen.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    if not chosen:
        raise ValueError("a calendar needs at least one working day")
    return chosen
