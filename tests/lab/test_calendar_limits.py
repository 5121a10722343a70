"""Calendar views are bounded as on Exchange: two years at most, a limited number of entries,
and series without end are never walked from their beginning to the end of time."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from exchangelib import EWSDateTime, EWSTimeZone
from exchangelib.errors import ErrorCalendarViewRangeTooBig, ErrorExceededFindCountLimit
from exchangelib.items import CalendarItem
from exchangelib.recurrence import DailyPattern, Recurrence

from exlab.core.recurrence import Recurrence as LabRecurrence
from exlab.core.recurrence import expand, index_of
from tests.lab.conftest import LabServer
from tests.lab.test_folders import soap

CHEF = "chef@musterstadt.example"
BERLIN = EWSTimeZone("Europe/Berlin")

pytestmark = pytest.mark.timeout(60)


def test_view_over_centuries_is_refused_without_expanding(lab: LabServer) -> None:
    account = lab.account("chef")
    start = EWSDateTime(2026, 11, 25, tzinfo=BERLIN)
    with pytest.raises(ErrorCalendarViewRangeTooBig):
        list(account.calendar.view(start, start.replace(year=2296)))


def test_view_of_exactly_two_years_answers(lab: LabServer) -> None:
    body = soap(
        lab,
        CHEF,
        '<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>'
        '</m:ItemShape><m:CalendarView StartDate="2026-01-01T00:00:00Z"'
        ' EndDate="2028-01-01T00:00:00Z"/><m:ParentFolderIds>'
        '<t:DistinguishedFolderId Id="calendar"/></m:ParentFolderIds></m:FindItem>',
    )
    assert b'ResponseClass="Success"' in body and b"TotalItemsInView" in body


def _daily_series(lab: LabServer, subject: str) -> None:
    account = lab.account("chef")
    start = EWSDateTime(2027, 1, 1, 7, 0, tzinfo=BERLIN)
    CalendarItem(
        account=account,
        folder=account.calendar,
        subject=subject,
        start=start,
        end=start + timedelta(minutes=15),
        recurrence=Recurrence(pattern=DailyPattern(interval=1), start=start.date()),
    ).save()


def test_view_with_too_many_entries_answers_the_find_count_limit(lab: LabServer) -> None:
    _daily_series(lab, "Morgenlage")
    _daily_series(lab, "Postdurchsicht")
    account = lab.account("chef")
    start = EWSDateTime(2027, 1, 1, tzinfo=BERLIN)
    end = EWSDateTime(2028, 12, 31, tzinfo=BERLIN)
    with pytest.raises(ErrorExceededFindCountLimit):
        list(account.calendar.view(start, end))
    first = list(account.calendar.view(start, end, max_items=5))
    assert [o.subject for o in first[:2]] in (
        ["Morgenlage", "Postdurchsicht"],
        ["Postdurchsicht", "Morgenlage"],
    )
    assert len(first) == 5


def test_a_series_begun_decades_ago_still_shows_in_this_week() -> None:
    rec = LabRecurrence("daily", date(1990, 1, 1))
    first = datetime(1990, 1, 1, 8, 0)
    week = expand(
        rec,
        first,
        timedelta(hours=1),
        window_start=datetime(2026, 11, 23),
        window_end=datetime(2026, 11, 30),
    )
    assert [o.start.date() for o in week] == [
        date(2026, 11, 23) + timedelta(days=i) for i in range(7)
    ]
    assert week[0].index == (date(2026, 11, 23) - date(1990, 1, 1)).days + 1
    assert index_of(rec, date(2026, 11, 23)) == week[0].index


def test_weekly_series_index_survives_the_jump_to_the_window() -> None:
    rec = LabRecurrence("weekly", date(2001, 3, 7), days_of_week=("Monday", "Thursday"))
    full = {d: i for i, d in _walk_all(rec, date(2003, 1, 1))}
    quick = expand(
        rec,
        datetime(2001, 3, 7, 9, 0),
        timedelta(hours=1),
        window_start=datetime(2002, 12, 1),
        window_end=datetime(2003, 1, 1),
    )
    assert quick and all(full[o.start.date()] == o.index for o in quick)


def _walk_all(rec: LabRecurrence, until: date) -> list[tuple[int, date]]:
    from exlab.core.recurrence import occurrence_dates

    return list(occurrence_dates(rec, until=until))


def test_daily_series_near_the_end_of_the_calendar_stops_there() -> None:
    rec = LabRecurrence("daily", date(9999, 12, 1))
    last = expand(
        rec,
        datetime(9999, 12, 1, 8, 0),
        timedelta(hours=1),
        window_start=datetime(9999, 12, 20),
        window_end=datetime(9999, 12, 31, 23, 0),
    )
    assert last[-1].start.date() == date(9999, 12, 31)
