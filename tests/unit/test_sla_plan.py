"""Where a deadline falls decides who is woken and who is blamed: the plan must skip nights, weekends and holidays
in the office's time zone (across DST), stand still while the client is being waited on, and give the same answer
for the same history every time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sla.calendar import AlwaysOpen, parse_calendar
from sla.plan import ClockState, add_running, plan
from sla.regulations import build_book, builtin_book

UTC = UTC
MOSCOW = ZoneInfo("Europe/Moscow")
LONDON = ZoneInfo("Europe/London")
OFFICE = {"timezone": "Europe/Moscow", "hours": "09:00-18:00", "days": "mon-fri", "holidays": "RU", "days_off": ""}


def msk(*args: int) -> datetime:
    return datetime(*args, tzinfo=MOSCOW)  # type: ignore[misc]


def dues(regulation_name: str, state: ClockState, calendar: dict[str, object] = OFFICE) -> dict[str, datetime | None]:
    regulation = builtin_book(calendar).named(regulation_name)
    assert regulation is not None
    return {p.step.name: p.due_at for p in plan(regulation, state)}


def test_a_request_on_friday_afternoon_is_reassigned_on_monday_afternoon() -> None:
    # 2026-12-04 is a Friday: 1 business day = one working day (9 h) → Monday 16:00; 2 days → Tuesday 16:00.
    got = dues("request", ClockState(msk(2026, 12, 4, 16)))
    assert got == {"reassign": msk(2026, 12, 7, 16), "head_alert": msk(2026, 12, 8, 16)}


def test_a_request_at_night_counts_from_the_next_opening() -> None:
    got = dues("request", ClockState(msk(2026, 12, 1, 23, 30)))
    assert got["reassign"] == msk(2026, 12, 2, 18)  # Wednesday 09:00 + 9 h


def test_public_holidays_do_not_count() -> None:
    # Russia's New Year holidays: 30 Dec (Wed) is a working day; 31 Dec 2026 (a substituted day off) and
    # 1–8 Jan 2027 are not, then the weekend: 6 h on the 30th, 3 h on Monday the 11th.
    got = dues("request", ClockState(msk(2026, 12, 30, 12)))
    assert got["reassign"] == msk(2027, 1, 11, 12)


def test_a_critical_defect_alerts_at_the_close_of_its_first_business_day() -> None:
    got = dues("critical_defect", ClockState(msk(2026, 12, 1, 10)))
    assert got["unprocessed_day_1"] == msk(2026, 12, 1, 18)
    assert got["resolution"] == msk(2026, 12, 3, 10)
    # Registered after closing on Friday: day one is Monday.
    late = dues("critical_defect", ClockState(msk(2026, 12, 4, 19)))
    assert late["unprocessed_day_1"] == msk(2026, 12, 7, 18)


def test_time_waiting_on_the_client_does_not_count() -> None:
    start = msk(2026, 12, 1, 10)
    pauses = [(msk(2026, 12, 1, 12), msk(2026, 12, 1, 15))]  # pending for 3 working hours
    got = dues("request", ClockState(start, pauses))
    # 9 working hours: 10–12 and 15–18 on Tuesday (5 h), then 09:00–13:00 on Wednesday; 10:00 without the pause.
    assert got["reassign"] == msk(2026, 12, 2, 13)
    # Still pending: nothing is due until the client answers.
    standing = dues("request", ClockState(start, [(msk(2026, 12, 1, 12), None)]))
    assert standing == {"reassign": None, "head_alert": None}
    # A pause overnight costs nothing: the office was closed anyway.
    overnight = dues("request", ClockState(start, [(msk(2026, 12, 1, 19), msk(2026, 12, 2, 8))]))
    assert overnight["reassign"] == msk(2026, 12, 2, 10)


def test_reopening_resumes_the_clock_where_it_stopped() -> None:
    start = msk(2026, 12, 1, 10)
    # Resolved at 11:00, reopened by the client at 14:00: the three hours between do not count.
    got = dues("critical_defect", ClockState(start, [(msk(2026, 12, 1, 11), msk(2026, 12, 1, 14))]))
    assert got["resolution"] == msk(2026, 12, 3, 13)


def test_business_time_follows_dst_in_the_office_time_zone() -> None:
    london = {**OFFICE, "timezone": "Europe/London", "holidays": None}
    # Friday 2027-03-26 16:00 GMT; clocks go forward on Sunday the 28th: Monday 09:00 is 08:00 UTC.
    got = dues("request", ClockState(datetime(2027, 3, 26, 16, tzinfo=LONDON)), london)
    assert got["reassign"] == datetime(2027, 3, 29, 16, tzinfo=LONDON)
    assert got["reassign"].astimezone(UTC).hour == 15


def test_steps_since_the_previous_one_chain_and_clock_time_ignores_the_office() -> None:
    book = build_book({"regulations": [{"name": "fast", "steps": [
        {"name": "one", "after": "10s", "unless": "processed", "reassign": True},
        {"name": "two", "after": "10s", "since": "previous", "unless": "resolved", "breach": True},
        {"name": "eod", "at": "end of business day 1", "unless": "processed", "breach": True},
    ]}]}, "test", OFFICE)
    regulation = book.named("fast")
    start = datetime(2026, 12, 5, 23, 0, 0, tzinfo=UTC)  # Saturday night: clock time does not care
    got = {p.step.name: p.due_at for p in plan(regulation, ClockState(start))}
    assert got["one"] == start + timedelta(seconds=10)
    assert got["two"] == start + timedelta(seconds=20)
    assert got["eod"] == msk(2026, 12, 7, 18)  # the office's close still decides "end of business day"


def test_the_next_update_target_counts_from_the_clients_oldest_unanswered_message() -> None:
    book = build_book({"regulations": [{"name": "chat", "targets": {
        "next_update": {"within": "2h", "warn_at": "50%"}}}]}, "test", OFFICE)
    regulation = book.named("chat")
    start = datetime(2026, 12, 1, 9, tzinfo=UTC)
    quiet = {p.step.name: p.due_at for p in plan(regulation, ClockState(start))}
    assert quiet == {"next_update.warning": None, "next_update": None}
    asked = datetime(2026, 12, 1, 13, tzinfo=UTC)
    waiting = {p.step.name: p.due_at for p in plan(regulation, ClockState(start, awaiting_reply_since=asked))}
    assert waiting == {"next_update.warning": asked + timedelta(hours=1), "next_update": asked + timedelta(hours=2)}


def test_the_same_history_gives_the_same_plan() -> None:
    state = ClockState(msk(2026, 12, 1, 10), [(msk(2026, 12, 1, 12), msk(2026, 12, 2, 11))])
    assert dues("request", state) == dues("request", state)


def test_adding_running_time_across_several_pauses() -> None:
    calendar = parse_calendar(timezone_name="UTC", hours="09:00-17:00")
    start = datetime(2026, 12, 1, 9, tzinfo=UTC)
    pauses = [(datetime(2026, 12, 1, 10, tzinfo=UTC), datetime(2026, 12, 1, 11, tzinfo=UTC)),
              (datetime(2026, 12, 1, 12, tzinfo=UTC), datetime(2026, 12, 1, 13, tzinfo=UTC))]
    assert add_running(calendar, start, timedelta(hours=3), pauses) == datetime(2026, 12, 1, 14, tzinfo=UTC)
    assert add_running(AlwaysOpen(), start, timedelta(hours=3), pauses) == datetime(2026, 12, 1, 14, tzinfo=UTC)
    assert add_running(calendar, start, timedelta(minutes=30), pauses) == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def test_a_step_may_count_clock_time_in_a_business_regulation() -> None:
    book = build_book({"regulations": [{"name": "mixed", "calendar": "default", "steps": [
        {"name": "page", "after": "30 minutes", "time": "calendar", "unless": "processed", "breach": True},
        {"name": "office", "after": "2h", "unless": "processed", "breach": True},
    ]}]}, "test", OFFICE)
    friday_evening = msk(2026, 12, 4, 20)
    got = {p.step.name: p.due_at for p in plan(book.named("mixed"), ClockState(friday_evening))}
    assert got == {"page": msk(2026, 12, 4, 20, 30), "office": msk(2026, 12, 7, 11)}
