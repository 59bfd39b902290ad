"""Business time decides every SLA deadline: "answer within 2 hours" must skip nights, weekends, public
holidays and the office's own days off, in the office's time zone and across DST changes, or customers
are promised (and agents blamed for) impossible deadlines. parse_calendar turns settings text into a
calendar and must say exactly which setting is wrong.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from sla.calendar import BusinessCalendar, parse_calendar

UTC = UTC
MOSCOW = ZoneInfo("Europe/Moscow")  # UTC+3 all year
LONDON = ZoneInfo("Europe/London")


def _moscow(days: str = "mon-fri", country: str | None = None, extra_days_off: str = "") -> BusinessCalendar:
    return parse_calendar(
        timezone_name="Europe/Moscow", hours="09:00-18:00", days=days, country=country, extra_days_off=extra_days_off
    )


def _msk(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=MOSCOW)


def _utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# 2026-03-02 is a Monday; 2026-03-06 a Friday. (2026-03-09 is a RU holiday, so country=None below.)


def test_time_within_one_working_day_is_plain_addition() -> None:
    assert _moscow().add(_msk(2026, 3, 2, 10), timedelta(hours=2)) == _utc(2026, 3, 2, 9)  # 12:00 MSK


def test_result_is_utc_whatever_the_input_zone() -> None:
    result = _moscow().add(_utc(2026, 3, 2, 7), timedelta(hours=2))  # 10:00 MSK given in UTC
    assert result == _utc(2026, 3, 2, 9)
    assert result.tzinfo == UTC
    new_york = datetime(2026, 3, 2, 2, 0, tzinfo=ZoneInfo("America/New_York"))  # 07:00 UTC = 10:00 MSK
    assert _moscow().add(new_york, timedelta(hours=2)) == _utc(2026, 3, 2, 9)


def test_hours_are_the_offices_local_hours_not_utc() -> None:
    # 06:30 UTC is 09:30 in Moscow: already open, so the clock runs straight away
    assert _moscow().add(_utc(2026, 3, 2, 6, 30), timedelta(minutes=30)) == _utc(2026, 3, 2, 7)
    # 15:30 UTC is 18:30 in Moscow: closed, so the work starts at 09:00 MSK next day
    assert _moscow().add(_utc(2026, 3, 2, 15, 30), timedelta(minutes=30)) == _utc(2026, 3, 3, 6, 30)


def test_work_that_ends_exactly_at_closing_time_is_due_at_closing_not_next_morning() -> None:
    assert _moscow().add(_msk(2026, 3, 2, 16), timedelta(hours=2)) == _msk(2026, 3, 2, 18)


def test_evening_remainder_continues_next_morning() -> None:
    # 17:00 + 2h: one hour today, one hour from 09:00 tomorrow
    assert _moscow().add(_msk(2026, 3, 2, 17), timedelta(hours=2)) == _msk(2026, 3, 3, 10)


def test_friday_afternoon_continues_on_monday() -> None:
    assert _moscow().add(_msk(2026, 3, 6, 17), timedelta(hours=2)) == _msk(2026, 3, 9, 10)


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (_msk(2026, 3, 3, 2), _msk(2026, 3, 3, 10)),  # at night
        (_msk(2026, 3, 2, 23), _msk(2026, 3, 3, 10)),  # late evening
        (_msk(2026, 3, 3, 8, 30), _msk(2026, 3, 3, 10)),  # before opening
        (_msk(2026, 3, 7, 12), _msk(2026, 3, 9, 10)),  # Saturday
        (_msk(2026, 3, 8, 20), _msk(2026, 3, 9, 10)),  # Sunday evening
    ],
)
def test_start_outside_working_hours_waits_for_the_next_opening(start: datetime, expected: datetime) -> None:
    assert _moscow().add(start, timedelta(hours=1)) == expected


def test_duration_longer_than_a_working_day_spans_several_days() -> None:
    # 20 working hours from Monday 09:00 on 9-hour days: 9 Mon + 9 Tue + 2 Wed
    assert _moscow().add(_msk(2026, 3, 2, 9), timedelta(hours=20)) == _msk(2026, 3, 4, 11)
    # a full working week from Monday opening ends Friday at closing time
    assert _moscow().add(_msk(2026, 3, 2, 9), timedelta(hours=45)) == _msk(2026, 3, 6, 18)


def test_zero_duration_during_working_hours_is_the_start_itself() -> None:
    start = _msk(2026, 3, 2, 11, 15)
    result = _moscow().add(start, timedelta(0))
    assert result == start
    assert result.tzinfo == UTC


def test_zero_duration_outside_working_hours_is_the_next_opening() -> None:
    assert _moscow().add(_msk(2026, 3, 7, 12), timedelta(0)) == _msk(2026, 3, 9, 9)


def test_public_holidays_of_the_country_are_skipped() -> None:
    # RU: 2026-12-31 and 2027-01-01..08 are days off, 09-10 a weekend: Wed 30 Dec 17:00 + 2h → Mon 11 Jan 10:00
    calendar = _moscow(country="RU")
    assert calendar.add(_msk(2026, 12, 30, 17), timedelta(hours=2)) == _msk(2027, 1, 11, 10)


def test_without_a_country_public_holidays_are_working_days() -> None:
    assert _moscow().add(_msk(2026, 12, 30, 17), timedelta(hours=2)) == _msk(2026, 12, 31, 10)


def test_extra_day_off_is_skipped_on_its_own() -> None:
    calendar = _moscow(extra_days_off="2026-03-03")
    assert calendar.add(_msk(2026, 3, 2, 17), timedelta(hours=2)) == _msk(2026, 3, 4, 10)


def test_extra_days_off_add_to_the_public_holidays() -> None:
    # Tue 29 Dec 17:00 + 2h: Wed 30 Dec is the office's own day off, then the RU New Year holidays
    calendar = _moscow(country="RU", extra_days_off=" 2026-12-30 , 2027-01-11,")
    assert calendar.add(_msk(2026, 12, 29, 17), timedelta(hours=2)) == _msk(2027, 1, 12, 10)


def test_country_code_is_case_insensitive() -> None:
    calendar = _moscow(country="ru")
    assert calendar.add(_msk(2026, 12, 30, 17), timedelta(hours=2)) == _msk(2027, 1, 11, 10)


def test_gb_christmas_and_observed_boxing_day_are_skipped() -> None:
    # 2026: Christmas is a Friday, Boxing Day a Saturday (observed Monday 28th)
    calendar = parse_calendar(timezone_name="Europe/London", hours="09:00-17:30", days="mon-fri", country="GB")
    start = datetime(2026, 12, 24, 16, 30, tzinfo=LONDON)
    assert calendar.add(start, timedelta(hours=2)) == _utc(2026, 12, 29, 10)  # GMT = UTC in winter


def test_spring_dst_day_opens_at_local_nine_which_is_eight_utc() -> None:
    # Europe/London moves to BST on Sunday 2027-03-28; the office works every day
    calendar = parse_calendar(timezone_name="Europe/London", hours="09:00-18:00", days="mon-sun")
    start = datetime(2027, 3, 27, 17, 0, tzinfo=LONDON)  # Saturday 17:00 GMT
    # one hour on Saturday, one hour from 09:00 BST (08:00 UTC) on Sunday
    assert calendar.add(start, timedelta(hours=2)) == _utc(2027, 3, 28, 9)


def test_autumn_dst_day_opens_at_local_nine_which_is_nine_utc() -> None:
    # Europe/London returns to GMT on Sunday 2026-10-25
    calendar = parse_calendar(timezone_name="Europe/London", hours="09:00-18:00", days="mon-sun")
    start = datetime(2026, 10, 24, 17, 0, tzinfo=LONDON)  # Saturday 17:00 BST = 16:00 UTC
    assert calendar.add(start, timedelta(hours=2)) == _utc(2026, 10, 25, 10)


def test_spring_dst_night_counts_real_elapsed_time_not_the_skipped_hour() -> None:
    # Round-the-clock office: Saturday 23:00 GMT + 2h = 59 min to 23:59, then 61 min from Sunday 00:00 GMT.
    # 01:01 UTC is 02:01 BST on the wall clock: the hour that does not exist is not counted.
    calendar = parse_calendar(timezone_name="Europe/London", hours="00:00-23:59", days="mon-sun")
    start = datetime(2027, 3, 27, 23, 0, tzinfo=LONDON)
    result = calendar.add(start, timedelta(hours=2))
    assert result == _utc(2027, 3, 28, 1, 1)
    assert result.astimezone(LONDON).replace(tzinfo=None) == datetime(2027, 3, 28, 2, 1)


def test_autumn_dst_night_counts_the_repeated_hour() -> None:
    # Saturday 23:00 BST (22:00 UTC) + 2h = 59 min, then 61 min from Sunday 00:00 BST (Sat 23:00 UTC)
    calendar = parse_calendar(timezone_name="Europe/London", hours="00:00-23:59", days="mon-sun")
    start = datetime(2026, 10, 24, 23, 0, tzinfo=LONDON)
    result = calendar.add(start, timedelta(hours=2))
    assert result == _utc(2026, 10, 25, 0, 1)
    assert result.astimezone(LONDON).replace(tzinfo=None) == datetime(2026, 10, 25, 1, 1)  # the first 01:01


def test_wrap_around_day_range_runs_through_the_weekend() -> None:
    calendar = _moscow(days="fri-mon")
    assert set(calendar.hours) == {4, 5, 6, 0}
    # Monday 17:00 + 2h: Tue..Thu are closed, so it continues on Friday
    assert calendar.add(_msk(2026, 3, 2, 17), timedelta(hours=2)) == _msk(2026, 3, 6, 10)
    # Saturday is a working day
    assert calendar.add(_msk(2026, 3, 7, 17), timedelta(hours=2)) == _msk(2026, 3, 8, 10)


@pytest.mark.parametrize(
    ("days", "weekdays"),
    [
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("mon-sun", {0, 1, 2, 3, 4, 5, 6}),
        ("sat", {5}),
        ("Mon,WED, sat", {0, 2, 5}),
        ("mon-tue,thu-fri", {0, 1, 3, 4}),
        ("sun-mon", {6, 0}),
    ],
)
def test_day_lists_and_ranges_choose_those_weekdays(days: str, weekdays: set[int]) -> None:
    calendar = _moscow(days=days)
    assert set(calendar.hours) == weekdays
    assert all(hours == (time(9, 0), time(18, 0)) for hours in calendar.hours.values())


def test_parsed_calendar_keeps_the_time_zone() -> None:
    assert _moscow().tz == MOSCOW


def test_hours_may_be_spaced_around_the_dash() -> None:
    calendar = parse_calendar(timezone_name="UTC", hours=" 08:30 - 17:00 ", days="mon")
    assert calendar.hours == {0: (time(8, 30), time(17, 0))}


def test_calendar_without_any_working_time_refuses_instead_of_looping() -> None:
    with pytest.raises(ValueError, match="no working time"):
        BusinessCalendar(UTC, {}).add(_utc(2026, 3, 2, 9), timedelta(hours=1))


def test_calendar_whose_every_working_day_is_a_holiday_refuses() -> None:
    calendar = BusinessCalendar(UTC, {0: (time(9), time(18))}, holidays=_EveryDay())
    with pytest.raises(ValueError, match="no working time"):
        calendar.add(_utc(2026, 3, 2, 9), timedelta(minutes=1))


class _EveryDay:
    def __contains__(self, day: object) -> bool:
        return isinstance(day, date)


# -- parse_calendar errors: each names the setting that is wrong --------------------------------------


def _parse(**overrides: str) -> BusinessCalendar:
    settings = {"timezone_name": "Europe/Moscow", "hours": "09:00-18:00", "days": "mon-fri", "extra_days_off": ""}
    settings.update(overrides)
    return parse_calendar(**settings)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "Moscow", "../etc/passwd"])
def test_unknown_time_zone_is_named(zone: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone") as error:
        _parse(timezone_name=zone)
    assert repr(zone) in str(error.value)


@pytest.mark.parametrize("hours", ["9-6", "18:00-09:00", "09:00-09:00", "09:00", "09:00-", "-18:00", "nine-five",
                                   "25:00-26:00"])
def test_bad_working_hours_are_named(hours: str) -> None:
    with pytest.raises(ValueError) as error:
        _parse(hours=hours)
    assert str(error.value) == f"working hours {hours!r} should look like 09:00-18:00"


@pytest.mark.parametrize("days", ["mon-xyz", "xyz", "monday-friday", "-fri", "mon,,funday"])
def test_bad_working_days_are_named(days: str) -> None:
    with pytest.raises(ValueError) as error:
        _parse(days=days)
    assert str(error.value) == f"working days {days!r} should look like mon-fri or mon,tue,sat"


@pytest.mark.parametrize("days", ["", " , ,"])
def test_no_working_days_is_refused(days: str) -> None:
    with pytest.raises(ValueError, match="at least one working day"):
        _parse(days=days)


@pytest.mark.parametrize("day", ["2026-13-01", "31.12.2026", "tomorrow"])
def test_bad_day_off_is_named(day: str) -> None:
    with pytest.raises(ValueError) as error:
        _parse(extra_days_off=f"2026-12-30,{day}")
    assert str(error.value) == f"day off {day!r} is not a date like 2026-12-31"


def test_unknown_country_is_named() -> None:
    with pytest.raises(ValueError, match="no public holidays known for country 'XX'"):
        parse_calendar(timezone_name="Europe/Moscow", hours="09:00-18:00", days="mon-fri", country="XX")


@pytest.mark.parametrize("hours", ["09:00-18:00-20:00", "09:00+03:00-18:00"])
def test_hours_with_an_offset_or_extra_dash_are_refused_with_a_value_error(hours: str) -> None:
    with pytest.raises(ValueError, match="working hours"):
        _parse(hours=hours)


def test_day_range_may_be_spaced_around_the_dash_like_hours() -> None:
    assert set(_parse(days="mon - fri").hours) == {0, 1, 2, 3, 4}
