"""Expansion of recurring series in the lab, pattern by pattern."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exlab.core.recurrence import (
    DAYS,
    Recurrence,
    RecurrenceError,
    date_of,
    expand,
    index_of,
    last_date,
    occurrence_dates,
)

BERLIN = ZoneInfo("Europe/Berlin")


def dates(rec: Recurrence, until: date | None = None) -> list[date]:
    return [d for _, d in occurrence_dates(rec, until=until)]


def test_daily_every_second_day_ends_by_count() -> None:
    rec = Recurrence("daily", date(2026, 3, 1), "numbered", interval=2, count=4)
    assert dates(rec) == [date(2026, 3, 1), date(2026, 3, 3), date(2026, 3, 5), date(2026, 3, 7)]


def test_weekly_on_two_days_starts_on_first_matching_day_and_ends_by_date() -> None:
    # 2026-03-03 is a Tuesday: the first occurrence is Wednesday, Monday comes next week.
    rec = Recurrence(
        "weekly",
        date(2026, 3, 3),
        "end_date",
        days_of_week=("Monday", "Wednesday"),
        end_date=date(2026, 3, 16),
    )
    assert dates(rec) == [date(2026, 3, 4), date(2026, 3, 9), date(2026, 3, 11), date(2026, 3, 16)]


def test_weekly_interval_counts_whole_weeks_from_first_day_of_week() -> None:
    rec = Recurrence(
        "weekly", date(2026, 3, 2), "numbered", interval=2, days_of_week=("Friday",), count=3
    )
    assert dates(rec) == [date(2026, 3, 6), date(2026, 3, 20), date(2026, 4, 3)]


def test_absolute_monthly_on_the_31st_falls_back_to_the_last_day_of_short_months() -> None:
    rec = Recurrence("absolute_monthly", date(2026, 1, 1), "numbered", day_of_month=31, count=3)
    assert dates(rec) == [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31)]


def test_relative_monthly_second_tuesday_and_last_weekday() -> None:
    second_tue = Recurrence(
        "relative_monthly",
        date(2026, 1, 1),
        "numbered",
        days_of_week=("Tuesday",),
        day_of_week_index="Second",
        count=3,
    )
    assert dates(second_tue) == [date(2026, 1, 13), date(2026, 2, 10), date(2026, 3, 10)]
    last_weekday = Recurrence(
        "relative_monthly",
        date(2026, 1, 1),
        "numbered",
        interval=3,
        days_of_week=("Weekday",),
        day_of_week_index="Last",
        count=2,
    )
    # 2026-01-31 is a Saturday, so the last weekday of January is Friday the 30th.
    assert dates(last_weekday) == [date(2026, 1, 30), date(2026, 4, 30)]


def test_yearly_patterns() -> None:
    absolute = Recurrence(
        "absolute_yearly", date(2026, 5, 1), "numbered", day_of_month=15, month="March", count=2
    )
    assert dates(absolute) == [date(2027, 3, 15), date(2028, 3, 15)]
    relative = Recurrence(
        "relative_yearly",
        date(2026, 1, 1),
        "end_date",
        days_of_week=("Monday",),
        day_of_week_index="First",
        month="May",
        end_date=date(2028, 1, 1),
    )
    assert dates(relative) == [date(2026, 5, 4), date(2027, 5, 3)]


def test_series_without_end_stops_at_the_window() -> None:
    rec = Recurrence("daily", date(2026, 1, 1))
    assert len(dates(rec, until=date(2026, 1, 10))) == 10
    assert last_date(rec) is None


def test_expansion_keeps_local_time_across_daylight_saving() -> None:
    rec = Recurrence("weekly", date(2026, 3, 23), "numbered", days_of_week=("Monday",), count=2)
    first = datetime(2026, 3, 23, 9, 0, tzinfo=BERLIN)
    occ = expand(
        rec,
        first,
        timedelta(hours=1),
        window_start=datetime(2026, 3, 1, tzinfo=BERLIN),
        window_end=datetime(2026, 4, 30, tzinfo=BERLIN),
    )
    utc_hours = [o.start.astimezone(ZoneInfo("UTC")).hour for o in occ]
    assert utc_hours == [8, 7]  # CET then CEST, 09:00 local both times


def test_expansion_leaves_out_deleted_and_modified_indexes_and_respects_window() -> None:
    rec = Recurrence("daily", date(2026, 6, 1), "numbered", count=10)
    first = datetime(2026, 6, 1, 14, 0)
    occ = expand(
        rec,
        first,
        timedelta(minutes=30),
        window_start=datetime(2026, 6, 3),
        window_end=datetime(2026, 6, 8),
        deleted=frozenset({4}),
        modified=frozenset({6}),
    )
    assert [o.index for o in occ] == [3, 5, 7]
    assert occ[0].start == datetime(2026, 6, 3, 14, 0)


def test_index_and_date_lookup_are_inverse() -> None:
    rec = Recurrence("weekly", date(2026, 1, 5), "numbered", days_of_week=("Tuesday",), count=5)
    assert index_of(rec, date(2026, 1, 20)) == 3
    assert date_of(rec, 3) == date(2026, 1, 20)
    assert index_of(rec, date(2026, 1, 21)) is None
    assert date_of(rec, 6) is None
    assert last_date(rec) == date(2026, 2, 3)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "weekly"},
        {"kind": "daily", "interval": 0},
        {"kind": "daily", "range_kind": "numbered"},
        {"kind": "daily", "range_kind": "end_date", "end_date": date(2025, 1, 1)},
        {"kind": "relative_monthly", "days_of_week": ("Monday", "Friday")},
        {"kind": "absolute_yearly", "month": "Smarch"},
    ],
)
def test_invalid_definitions_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(RecurrenceError):
        Recurrence(start_date=date(2026, 1, 1), **kwargs)  # type: ignore[arg-type]


def test_json_round_trip() -> None:
    rec = Recurrence(
        "relative_yearly",
        date(2026, 1, 1),
        "numbered",
        days_of_week=("Thursday",),
        day_of_week_index="Fourth",
        month="November",
        count=3,
    )
    assert Recurrence.from_json(rec.to_json()) == rec


@settings(max_examples=60, deadline=None)
@given(
    start=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)),
    interval=st.integers(1, 4),
    days=st.sets(st.sampled_from(DAYS), min_size=1, max_size=7),
    count=st.integers(1, 40),
)
def test_weekly_occurrences_are_ascending_on_chosen_days_and_counted(
    start: date, interval: int, days: set[str], count: int
) -> None:
    rec = Recurrence(
        "weekly", start, "numbered", interval=interval, days_of_week=tuple(days), count=count
    )
    got = dates(rec)
    assert len(got) == count
    assert got == sorted(set(got))
    assert got[0] >= start
    assert all(DAYS[d.weekday()] in days for d in got)
    # Occurrences fall in weeks that are a multiple of the interval apart.
    monday0 = got[0] - timedelta(days=got[0].weekday())
    assert all(((d - monday0).days // 7) % interval == 0 for d in got)


@settings(max_examples=60, deadline=None)
@given(
    start=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)),
    day=st.integers(1, 31),
    interval=st.integers(1, 6),
    span=st.integers(0, 800),
)
def test_monthly_end_date_range_never_overshoots(
    start: date, day: int, interval: int, span: int
) -> None:
    end = start + timedelta(days=span)
    rec = Recurrence(
        "absolute_monthly", start, "end_date", interval=interval, day_of_month=day, end_date=end
    )
    got = dates(rec)
    assert all(start <= d <= end for d in got)
    assert all(d.day == day or d.day < day for d in got)
    months = [d.year * 12 + d.month for d in got]
    assert all((b - a) == interval for a, b in itertools.pairwise(months))


_PATTERNS = st.one_of(
    st.builds(lambda i: {"kind": "daily", "interval": i}, st.integers(1, 5)),
    st.builds(
        lambda i, d: {"kind": "weekly", "interval": i, "days_of_week": sorted(d)},
        st.integers(1, 3),
        st.sets(st.sampled_from(DAYS), min_size=1, max_size=3),
    ),
    st.builds(
        lambda i, d: {"kind": "absolute_monthly", "interval": i, "day_of_month": d},
        st.integers(1, 4),
        st.integers(1, 28),
    ),
    st.builds(
        lambda i, d, x: {
            "kind": "relative_monthly",
            "interval": i,
            "days_of_week": [d],
            "day_of_week_index": x,
        },
        st.integers(1, 4),
        st.sampled_from([*DAYS, "Day", "Weekday", "WeekendDay"]),
        st.sampled_from(["First", "Second", "Third", "Fourth", "Last"]),
    ),
    st.builds(
        lambda m, d: {"kind": "absolute_yearly", "month": m, "day_of_month": d},
        st.sampled_from(["January", "March", "June", "October"]),
        st.integers(1, 28),
    ),
    st.builds(
        lambda m, d, x: {
            "kind": "relative_yearly",
            "month": m,
            "days_of_week": [d],
            "day_of_week_index": x,
        },
        st.sampled_from(["February", "May", "November"]),
        st.sampled_from(DAYS),
        st.sampled_from(["First", "Second", "Last"]),
    ),
)


@settings(max_examples=80, deadline=None)
@given(
    pattern=_PATTERNS,
    start=st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)),
    count=st.integers(1, 25),
)
def test_expansion_agrees_with_dateutil_on_the_rrule_the_lab_exports(
    pattern: dict[str, object], start: date, count: int
) -> None:
    """Cross-check with an independent implementation: the iCalendar RRULE the lab writes
    in MimeContent, expanded by python-dateutil, gives the same dates."""
    from dateutil.rrule import rrulestr

    from exlab.core.mime import rrule

    data = {**pattern, "start_date": start.isoformat(), "range_kind": "numbered", "count": count}
    rec = Recurrence.from_json(data)
    ours = [d for _, d in occurrence_dates(rec)]
    theirs = [
        d.date()
        for d in rrulestr(
            rrule(rec.to_json()), dtstart=datetime.combine(start, datetime.min.time())
        )
    ]
    assert ours == theirs
