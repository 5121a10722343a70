"""Scheduling assistant, rooms and the day sheet over the REST API against the lab: the
assistant works for the boss, the colleague without rights gets 403 problems."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from exlab.demo import RAEUME, SITZUNGSSAAL
from tests.e2e.api.conftest import CHEF, SACHBEARBEITUNG, World
from tests.e2e.api.helpers import assert_problem
from tests.e2e.backends.test_scheduling import DAY, at, busy

# The module's world is shared: this module uses the afternoon of DAY after 13:00 only.


@pytest.fixture(scope="module")
def day(world: World) -> World:
    busy(world.lab.lab, CHEF, at(13), at(14), "Pressegespräch")
    busy(world.lab.lab, SITZUNGSSAAL, at(14), at(15), "Ausschuss Bau")
    return world


def _search(**more: object) -> dict[str, object]:
    return {
        "organizer": CHEF,
        "attendees": [SACHBEARBEITUNG],
        "rooms": [SITZUNGSSAAL],
        "start": at(13).isoformat(),
        "end": at(17).isoformat(),
        "minutes": 60,
        "time_zone": "Europe/Berlin",
        "room_required": True,
        **more,
    }


def test_assistant_finds_and_books_with_a_room(day: World) -> None:
    with day.client() as http:
        found = http.post("/v1/scheduling/find", json=_search())
        assert found.status_code == 200, found.text
        starts = [s["start"] for s in found.json()["suggestions"]]
        assert starts[0] == at(15).astimezone(UTC).isoformat()  # the room is taken until 15:00
        preferred = http.post(
            "/v1/scheduling/find",
            json=_search(preferred=[{"start": "15:30", "end": "17:00"}], minutes=90),
        ).json()["suggestions"]
        assert len(preferred) == 1
        booked = http.post(
            "/v1/scheduling/book",
            json={**_search(start=at(15).isoformat()), "subject": "Planung", "room": SITZUNGSSAAL},
        )
        assert booked.status_code == 201, booked.text
        assert booked.json()["location"] == "Sitzungssaal 1"
        twice = http.post(
            "/v1/scheduling/book",
            json={**_search(start=at(15).isoformat()), "subject": "Noch mal", "room": SITZUNGSSAAL},
        )
        assert_problem(twice, 409)


def test_rooms_and_which_are_free(day: World) -> None:
    with day.client() as http:
        lists = http.get("/v1/room-lists").json()["room_lists"]
        assert lists == [{"address": RAEUME, "name": "Räume Kreishaus"}]
        [room] = http.get("/v1/rooms", params={"room_list": RAEUME}).json()["rooms"]
        assert room["address"] == SITZUNGSSAAL
        window = {"start": at(14).isoformat(), "end": (at(14) + timedelta(hours=1)).isoformat()}
        [taken] = http.get("/v1/rooms", params=window).json()["rooms"]
        assert taken["free"] is False
        assert_problem(http.get("/v1/rooms", params={"start": at(14).isoformat()}), 422)


def test_day_sheet_as_json_and_printable_html(day: World) -> None:
    with day.client() as http:
        params = {"date": str(DAY), "time_zone": "Europe/Berlin"}
        sheet = http.get(f"/v1/mailboxes/{CHEF}/day-sheet", params=params)
        assert sheet.status_code == 200, sheet.text
        subjects = [e["subject"] for e in sheet.json()["events"]]
        assert "Pressegespräch" in subjects
        page = http.get(f"/v1/mailboxes/{CHEF}/day-sheet", params={**params, "format": "html"})
        assert page.headers["content-type"].startswith("text/html")
        assert "Pressegespräch" in page.text and "@media print" in page.text


def test_colleague_without_rights_gets_403_problems(day: World) -> None:
    with day.client("sachbearbeitung") as http:
        assert_problem(http.post("/v1/scheduling/find", json=_search()), 403)
        booking = {**_search(start=at(16).isoformat()), "subject": "x", "room": SITZUNGSSAAL}
        assert_problem(http.post("/v1/scheduling/book", json=booking), 403)
        assert_problem(http.get(f"/v1/mailboxes/{CHEF}/day-sheet", params={"date": str(DAY)}), 403)
    with day.client("reader") as http:  # an API key without the write scope
        assert_problem(http.post("/v1/scheduling/book", json=booking), 403)
