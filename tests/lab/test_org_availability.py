"""GetUserAvailability with the unmodified exchangelib: free/busy as each caller may see it."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from exchangelib import EWSDateTime, EWSTimeZone
from exchangelib.errors import ErrorMailRecipientNotFound

from exlab.demo import ASSISTENZ, CHEF
from tests.lab.conftest import LabServer

BERLIN = EWSTimeZone("Europe/Berlin")
DAYS = 9


def window(lab: LabServer) -> tuple[EWSDateTime, EWSDateTime]:
    today = lab.lab.now().astimezone(BERLIN).replace(hour=0, minute=0, second=0, microsecond=0)
    # A day of margin on each side: the demo calendar is laid out around the day it was seeded.
    start = EWSDateTime.from_datetime(datetime(today.year, today.month, today.day)).replace(
        tzinfo=BERLIN
    ) - timedelta(days=1)
    return start, start + timedelta(days=DAYS)


def views(lab: LabServer, user: str, *people: str, view: str = "DetailedMerged") -> list[object]:
    protocol = lab.account(user).protocol
    start, end = window(lab)
    return list(
        protocol.get_free_busy_info(
            accounts=[(p, "Required", False) for p in people],
            start=start,
            end=end,
            merged_free_busy_interval=30,
            requested_view=view,
        )
    )


def subjects(view: object) -> list[str | None]:
    return [
        e.details.subject if e.details else None
        for e in view.calendar_events  # type: ignore[attr-defined]
    ]


def test_default_free_busy_right_shows_times_without_details(lab: LabServer) -> None:
    [chef] = views(lab, "sachbearbeitung", CHEF)
    assert chef.view_type == "FreeBusyMerged"
    assert chef.calendar_events and all(e.details is None for e in chef.calendar_events)
    assert "2" in chef.merged and len(chef.merged) == DAYS * 48
    assert {e.busy_type for e in chef.calendar_events} <= {"Busy", "Tentative", "OOF", "Free"}


def test_delegate_sees_details_but_not_private_subjects(lab: LabServer) -> None:
    [chef] = views(lab, "assistenz", CHEF)
    assert chef.view_type == "DetailedMerged"
    names = subjects(chef)
    assert "Pressetermin Rettungswache" in names
    assert "Arzttermin" not in names
    private = [e for e in chef.calendar_events if e.details.is_private]
    assert private and all(e.details.subject is None for e in private)
    assert any(e.details.is_recurring for e in chef.calendar_events)


def test_owner_sees_private_subjects_and_several_people_answer_in_order(lab: LabServer) -> None:
    chef, assistant, nobody = views(lab, "chef", CHEF, ASSISTENZ, "niemand@musterstadt.example")
    assert "Arzttermin" in subjects(chef)
    assert assistant.view_type in ("FreeBusyMerged", "DetailedMerged")
    assert isinstance(nobody, ErrorMailRecipientNotFound)


def test_event_times_are_in_the_requested_zone(lab: LabServer) -> None:
    [chef] = views(lab, "chef", CHEF)
    presse = next(
        e for e in chef.calendar_events if e.details.subject == "Pressetermin Rettungswache"
    )
    assert presse.start.astimezone(BERLIN).hour == 14
    assert presse.end - presse.start == timedelta(minutes=90)


def test_request_zone_follows_daylight_saving_in_both_hemispheres() -> None:
    from datetime import UTC

    from exlab.ews.availability import RequestZone, Switch

    berlin = RequestZone(
        -60,
        Switch(0, time(3), 5, 10, 6),  # back to standard: last Sunday of October, 03:00
        Switch(-60, time(2), 5, 3, 6),  # daylight: last Sunday of March, 02:00
    )
    assert datetime(2026, 7, 1, 12, tzinfo=berlin).astimezone(UTC).hour == 10
    assert datetime(2026, 1, 15, 12, tzinfo=berlin).astimezone(UTC).hour == 11
    assert datetime(2026, 7, 1, 10, tzinfo=UTC).astimezone(berlin).hour == 12
    sydney = RequestZone(
        -600,
        Switch(0, time(3), 1, 4, 6),  # standard from the first Sunday of April
        Switch(-60, time(2), 1, 10, 6),  # daylight from the first Sunday of October
    )
    assert datetime(2026, 1, 15, 12, tzinfo=sydney).astimezone(UTC).hour == 1
    assert datetime(2026, 7, 15, 12, tzinfo=sydney).astimezone(UTC).hour == 2


def test_window_longer_than_62_days_is_refused(lab: LabServer) -> None:
    from exchangelib.errors import ErrorTimeIntervalTooBig

    protocol = lab.account("chef").protocol
    start, _ = window(lab)
    with pytest.raises(ErrorTimeIntervalTooBig):
        list(
            protocol.get_free_busy_info(
                accounts=[(CHEF, "Required", False)], start=start, end=start + timedelta(days=70)
            )
        )
