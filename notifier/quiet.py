"""Quiet hours: when a non-urgent SMS to an agent waits until morning instead of waking them."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


def quiet_window(text: str) -> tuple[time, time]:
    """`22:00-08:00` (may wrap past midnight) as its start and end."""
    start_text, separator, end_text = text.partition("-")
    try:
        if not separator:
            raise ValueError
        start, end = time.fromisoformat(start_text.strip()), time.fromisoformat(end_text.strip())
    except ValueError as exc:
        raise ValueError(f"quiet hours look like 22:00-08:00, got {text!r}") from exc
    if start == end:
        raise ValueError(f"quiet hours {text!r} start and end at the same time")
    return start, end


def quiet_until(now: datetime, window: tuple[time, time], zone: str) -> datetime | None:
    """When the quiet hours `now` falls in end (UTC-aware, as `now`), or None outside them."""
    start, end = window
    local = now.astimezone(ZoneInfo(zone))
    clock = local.time().replace(tzinfo=None)
    inside = start <= clock < end if start < end else clock >= start or clock < end
    if not inside:
        return None
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    ends = datetime.combine(day, end, tzinfo=local.tzinfo)
    return ends.astimezone(now.tzinfo)
