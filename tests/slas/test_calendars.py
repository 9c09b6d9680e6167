"""Business-time arithmetic against a brute-force, minute-by-minute count (no database)."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slas.calendars import (
    BusinessTimeline,
    CalendarClock,
    CalendarError,
    WorkCalendar,
    business_add,
    business_elapsed,
    format_working_hours,
    parse_working_hours,
    working_ranges,
)

OFFICE = {day: [["08:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
LUNCH = {day: [["09:00", "12:30"], ["13:30", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
# Hours that cross the DST gap and repetition in Europe (02:00-03:00 local) and the US.
NIGHT = {day: [["00:30", "04:00"], ["22:00", "24:00"]] for day in ("sat", "sun", "mon")}

BERLIN = WorkCalendar.from_data(time_zone="Europe/Berlin", working_hours=OFFICE)
NEW_YORK = WorkCalendar.from_data(time_zone="America/New_York", working_hours=OFFICE)


def brute_force_minutes(cal: WorkCalendar, start: datetime, end: datetime) -> int:
    """Count the minutes [t, t+1min) in [start, end) whose local wall-clock time is working time."""
    zone = ZoneInfo(cal.time_zone)
    count = 0
    moment = start
    while moment < end:
        local = moment.astimezone(zone)
        minute = local.hour * 60 + local.minute
        day = local.date()
        if day not in cal.holidays and any(s <= minute < e for s, e in cal.weekly[day.weekday()]):
            count += 1
        moment += timedelta(minutes=1)
    return count


def brute_force_add(cal: WorkCalendar, start: datetime, minutes: int) -> datetime:
    zone = ZoneInfo(cal.time_zone)
    moment = start
    while minutes > 0:
        local = moment.astimezone(zone)
        minute = local.hour * 60 + local.minute
        day = local.date()
        if day not in cal.holidays and any(s <= minute < e for s, e in cal.weekly[day.weekday()]):
            minutes -= 1
        moment += timedelta(minutes=1)
    return moment


# Periods around the 2026 DST changes in Europe (29 Mar, 25 Oct) and the US (8 Mar, 1 Nov), and a quiet one.
ANCHORS = [
    datetime(2026, 3, 6, tzinfo=UTC),
    datetime(2026, 3, 27, tzinfo=UTC),
    datetime(2026, 10, 23, tzinfo=UTC),
    datetime(2026, 10, 30, tzinfo=UTC),
    datetime(2026, 6, 10, tzinfo=UTC),
]
ZONES = ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney", "UTC"]


@st.composite
def calendars(draw: st.DrawFn) -> WorkCalendar:
    weekly = []
    for _ in range(7):
        # Up to three non-overlapping intervals on 30-minute marks (24:00 allowed as an end).
        marks = sorted(draw(st.sets(st.integers(min_value=0, max_value=48), max_size=6)))
        if len(marks) % 2:
            marks = marks[:-1]
        weekly.append(tuple((marks[i] * 30, marks[i + 1] * 30) for i in range(0, len(marks), 2)))
    if not any(weekly):
        weekly[0] = ((8 * 60, 17 * 60),)
    anchor = draw(st.sampled_from(ANCHORS))
    holidays = draw(st.sets(st.integers(min_value=-2, max_value=12), max_size=3))
    return WorkCalendar(
        time_zone=draw(st.sampled_from(ZONES)),
        weekly=tuple(weekly),
        holidays=frozenset((anchor + timedelta(days=d)).date() for d in holidays),
    )


@st.composite
def periods(draw: st.DrawFn) -> tuple[datetime, datetime]:
    anchor = draw(st.sampled_from(ANCHORS))
    start = anchor + timedelta(minutes=draw(st.integers(min_value=0, max_value=6 * 1440)))
    return start, start + timedelta(minutes=draw(st.integers(min_value=0, max_value=8 * 1440)))


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(cal=calendars(), period=periods())
def test_elapsed_matches_brute_force(cal: WorkCalendar, period: tuple[datetime, datetime]) -> None:
    start, end = period
    assert business_elapsed(cal, start, end) == timedelta(minutes=brute_force_minutes(cal, start, end))


@FAST
@given(cal=calendars(), period=periods(), minutes=st.integers(min_value=0, max_value=3 * 600))
def test_add_matches_brute_force_and_inverts_elapsed(
    cal: WorkCalendar, period: tuple[datetime, datetime], minutes: int
) -> None:
    start, _ = period
    deadline = business_add(cal, start, timedelta(minutes=minutes))
    assert deadline == brute_force_add(cal, start, minutes)
    assert business_elapsed(cal, start, deadline) == timedelta(minutes=minutes)


@FAST
@given(cal=calendars(), period=periods(), cut=st.integers(min_value=0, max_value=8 * 1440))
def test_elapsed_is_additive(cal: WorkCalendar, period: tuple[datetime, datetime], cut: int) -> None:
    start, end = period
    middle = min(start + timedelta(minutes=cut), end)
    whole = business_elapsed(cal, start, end)
    assert whole == business_elapsed(cal, start, middle) + business_elapsed(cal, middle, end)
    # One timeline for a whole period answers the same as the one-off functions (the evaluation pass relies on it).
    timeline = BusinessTimeline(cal, start, end)
    assert timeline.elapsed(start, end) == whole
    assert timeline.elapsed(start, middle) == business_elapsed(cal, start, middle)


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo("Europe/Berlin"))


def new_york(*args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo("America/New_York"))


def test_weekend_is_skipped() -> None:
    # Friday 17:00 + 2 h of business time = Monday 09:00.
    assert business_add(BERLIN, berlin(2026, 6, 12, 17), timedelta(hours=2)) == berlin(2026, 6, 15, 9)
    assert business_elapsed(BERLIN, berlin(2026, 6, 12, 17), berlin(2026, 6, 15, 9)) == timedelta(hours=2)


def test_holiday_is_skipped() -> None:
    cal = WorkCalendar.from_data(
        time_zone="Europe/Berlin", working_hours=OFFICE, holidays=[date(2026, 10, 5)]
    )  # a Monday
    assert business_add(cal, berlin(2026, 10, 2, 17), timedelta(hours=2)) == berlin(2026, 10, 6, 9)
    assert business_elapsed(cal, berlin(2026, 10, 2, 8), berlin(2026, 10, 7, 8)) == timedelta(hours=20)


def test_lunch_break_is_not_counted() -> None:
    cal = WorkCalendar.from_data(time_zone="Europe/Berlin", working_hours=LUNCH)
    assert business_elapsed(cal, berlin(2026, 6, 10, 12), berlin(2026, 6, 10, 14)) == timedelta(hours=1)
    # The earliest instant with 15 minutes done is the start of the break, not its end.
    assert business_add(cal, berlin(2026, 6, 10, 12, 15), timedelta(minutes=15)) == berlin(2026, 6, 10, 12, 30)
    assert business_add(cal, berlin(2026, 6, 10, 12, 15), timedelta(minutes=16)) == berlin(2026, 6, 10, 13, 31)


def test_berlin_spring_forward_night_hours() -> None:
    # 29 March 2026: 02:00 CET jumps to 03:00 CEST, so 00:30-04:00 holds 2.5 real hours.
    cal = WorkCalendar.from_data(time_zone="Europe/Berlin", working_hours=NIGHT)
    day = (berlin(2026, 3, 29, 0), berlin(2026, 3, 29, 6))
    assert business_elapsed(cal, *day) == timedelta(hours=2, minutes=30)
    assert business_add(cal, berlin(2026, 3, 29, 1), timedelta(hours=1, minutes=30)) == berlin(2026, 3, 29, 3, 30)


def test_berlin_fall_back_night_hours_count_the_repeated_hour() -> None:
    # 25 October 2026: 03:00 CEST goes back to 02:00 CET, so 00:30-04:00 holds 4.5 real hours.
    cal = WorkCalendar.from_data(time_zone="Europe/Berlin", working_hours=NIGHT)
    assert business_elapsed(cal, berlin(2026, 10, 25, 0), berlin(2026, 10, 25, 6)) == timedelta(hours=4, minutes=30)


def test_office_hours_keep_ten_real_hours_across_dst_in_berlin() -> None:
    # The change happens at night: Friday and Monday around it each hold exactly 10 hours in UTC.
    assert business_elapsed(BERLIN, berlin(2026, 3, 27, 0), berlin(2026, 3, 31, 0)) == timedelta(hours=20)
    assert business_elapsed(BERLIN, berlin(2026, 10, 23, 0), berlin(2026, 10, 27, 0)) == timedelta(hours=20)
    # Friday 17:00 CET + 2 h = Monday 09:00 CEST, which is 7:00 UTC (one hour earlier in UTC than a week before).
    deadline = business_add(BERLIN, berlin(2026, 3, 27, 17), timedelta(hours=2))
    assert deadline == datetime(2026, 3, 30, 7, tzinfo=UTC)


def test_new_york_dst_changes() -> None:
    assert business_add(NEW_YORK, new_york(2026, 3, 6, 17), timedelta(hours=2)) == datetime(
        2026, 3, 9, 13, tzinfo=UTC
    )  # Monday 09:00 EDT
    assert business_add(NEW_YORK, new_york(2026, 10, 30, 17), timedelta(hours=2)) == datetime(
        2026, 11, 2, 14, tzinfo=UTC
    )  # Monday 09:00 EST
    cal = WorkCalendar.from_data(time_zone="America/New_York", working_hours=NIGHT)
    # 8 March 2026 (a Sunday): 02:00 EST jumps to 03:00 EDT.
    assert business_elapsed(cal, new_york(2026, 3, 8, 0), new_york(2026, 3, 8, 6)) == timedelta(hours=2, minutes=30)


def test_time_zones_shift_the_working_day() -> None:
    moment = datetime(2026, 6, 10, 12, tzinfo=UTC)  # 14:00 in Berlin, 08:00 in New York
    assert business_elapsed(BERLIN, moment, moment + timedelta(hours=6)) == timedelta(hours=4)
    assert business_elapsed(NEW_YORK, moment, moment + timedelta(hours=6)) == timedelta(hours=6)


def test_working_ranges_are_utc() -> None:
    ranges = working_ranges(BERLIN, berlin(2026, 6, 12, 0), berlin(2026, 6, 16, 0))
    assert ranges == [
        (datetime(2026, 6, 12, 6, tzinfo=UTC), datetime(2026, 6, 12, 16, tzinfo=UTC)),
        (datetime(2026, 6, 15, 6, tzinfo=UTC), datetime(2026, 6, 15, 16, tzinfo=UTC)),
    ]


def test_round_trip_of_the_stored_form() -> None:
    assert format_working_hours(parse_working_hours(LUNCH)) == LUNCH


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ({}, "at least one working interval"),
        ({"mon": []}, "at least one working interval"),
        ({"monday": [["08:00", "17:00"]]}, "unknown weekday"),
        ({"mon": [["17:00", "08:00"]]}, "must start before it ends"),
        ({"mon": [["08:00", "12:00"], ["11:00", "13:00"]]}, "overlap"),
        ({"mon": [["8am", "17:00"]]}, "HH:MM"),
        ({"mon": [["08:00", "24:30"]]}, "past 24:00"),
        ({"mon": ["08:00"]}, "pair"),
    ],
)
def test_bad_working_hours_are_refused_with_a_reason(hours: dict, message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        parse_working_hours(hours)


def test_unknown_time_zone_is_refused() -> None:
    with pytest.raises(CalendarError, match="unknown time zone"):
        WorkCalendar.from_data(time_zone="Mars/Olympus", working_hours=OFFICE)


def test_a_calendar_of_only_holidays_gives_up_instead_of_looping() -> None:
    start = date(2026, 1, 1)
    cal = WorkCalendar.from_data(
        time_zone="UTC",
        working_hours={"mon": [["08:00", "09:00"]]},
        holidays=[start + timedelta(days=i) for i in range(366 * 12)],
    )
    with pytest.raises(CalendarError, match="no working time"):
        business_add(cal, datetime(2026, 1, 1, tzinfo=UTC), timedelta(hours=1))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cal=calendars(),
    queries=st.lists(
        st.tuples(st.integers(min_value=-20 * 1440, max_value=40 * 1440), st.integers(min_value=0, max_value=5 * 600)),
        min_size=1,
        max_size=12,
    ),
)
def test_a_growing_calendar_clock_answers_like_the_one_off_functions(cal: WorkCalendar, queries: list) -> None:
    """The minute pass asks one CalendarClock about many clocks in any order; its timeline grows as needed."""
    clock = CalendarClock(cal)
    anchor = ANCHORS[1]
    for offset, minutes in queries:
        start = anchor + timedelta(minutes=offset)
        end = start + timedelta(minutes=minutes * 7)
        assert clock.elapsed_seconds(start, end) == business_elapsed(cal, start, end).total_seconds()
        assert clock.deadline(start, minutes * 60) == business_add(cal, start, timedelta(minutes=minutes))
