"""Calendar flows through Pilot: recurring meeting in the boss's calendar, moving one
occurrence, overlaying the team calendar, answering an invitation on behalf, rights gating."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

from textual.widgets import Input, Select

from med.model import EventKind, ResponseType, Weekly
from tests.tui.conftest import settle
from tests.tui.fakeorg import NOW, FakeOrg
from tui.app import MedApp
from tui.screens.calendar import CalendarScreen
from tui.screens.dialogs import ChoiceScreen, PromptScreen
from tui.screens.event_form import EventFormScreen

SIZE = (150, 40)


async def open_calendar(pilot: object, app: MedApp) -> CalendarScreen:
    await settle(pilot)
    await pilot.press("2")  # type: ignore[attr-defined]
    await settle(pilot)
    screen = app.screen
    assert isinstance(screen, CalendarScreen)
    return screen


async def new_event_form(pilot: object, app: MedApp) -> EventFormScreen:
    """`n` in the open calendar: the new appointment's form."""
    await pilot.press("n")  # type: ignore[attr-defined]
    await settle(pilot)
    form = app.screen
    assert isinstance(form, EventFormScreen)
    return form


def fill(screen: object, **values: str) -> None:
    for name, value in values.items():
        screen.query_one(f"#e-{name}", Input).value = value  # type: ignore[attr-defined]


async def test_recurring_meeting_in_chefs_calendar_then_one_occurrence_moved(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        cal = await open_calendar(pilot, app)
        assert cal.name_of(cal.active or "") == "Dr. Anna Berg"
        form = await new_event_form(pilot, app)
        fill(
            form,
            subject="Budgetrunde",
            location="Raum 204",
            date="2026-11-25",
            start="14:00",
            end="15:00",
            attendees="wolf@kreis.example",
            count="4",
        )
        form.query_one("#e-repeat", Select).value = "weekly"
        await pilot.press("ctrl+s")
        await settle(pilot)
        (series,) = [i for i in org.items.values() if i.subject == "Budgetrunde"]
        assert series.folder_id == "chef:calendar"
        assert series.recurrence is not None and series.recurrence.count == 4
        assert isinstance(series.recurrence.pattern, Weekly)
        assert series.is_meeting  # type: ignore[attr-defined]
        # The series appears every Wednesday; go to the second week and move that occurrence.
        await pilot.press("L")
        await settle(pilot)
        assert cal.select_event("Budgetrunde", date(2026, 12, 2))
        await pilot.press("M")
        await settle(pilot)
        prompt = app.screen
        assert isinstance(prompt, PromptScreen)
        prompt.query_one(Input).value = "2026-12-03 09:30"
        await pilot.press("enter")
        await settle(pilot)
        moved = org.exceptions[(series.id, date(2026, 12, 2))]
        assert moved.event_kind is EventKind.EXCEPTION
        assert moved.start == datetime(2026, 12, 3, 9, 30, tzinfo=NOW.tzinfo)
        subjects = [(s.event.subject, s.event.start.date()) for s in cal.shown]
        assert ("Budgetrunde", date(2026, 12, 3)) in subjects
        assert ("Budgetrunde", date(2026, 12, 2)) not in subjects
        # The other occurrences stay where they were.
        await pilot.press("L")
        await settle(pilot)
        assert cal.select_event("Budgetrunde", date(2026, 12, 9))


async def test_team_calendar_overlay_adds_its_events_in_another_colour(
    build_app: Callable[..., MedApp],
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        cal = await open_calendar(pilot, app)
        assert "Teambesprechung" not in [s.event.subject for s in cal.shown]
        await pilot.press("o")  # focus the calendar list
        options = [o.value for o in cal.query_one("#calendars")._options]  # type: ignore[attr-defined]
        team = next(f for f in options if f.startswith("teamkalender:"))
        cal.query_one("#calendars").highlighted = options.index(team)  # type: ignore[attr-defined]
        await pilot.press("space")
        await settle(pilot)
        assert cal.overlay[-1] == team and len(cal.overlay) == 2
        colours = {s.calendar: s.colour for s in cal.shown}
        assert colours["Teamkalender"] != colours["Dr. Anna Berg"]
        assert "Teambesprechung" in [s.event.subject for s in cal.shown]
        # Author on the team calendar: may create there, so "new" stays offered.
        assert cal.check_action("new_event", ()) is True


async def test_invitation_is_accepted_on_behalf_of_the_boss(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        cal = await open_calendar(pilot, app)
        assert cal.select_event("Einladung: Klinikum Aufsichtsrat")
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, ChoiceScreen)
        await pilot.press("enter")  # first choice: Accept
        await settle(pilot)
        ((item_id, response),) = org.responses
        assert org.items[item_id].subject == "Einladung: Klinikum Aufsichtsrat"
        assert response is ResponseType.ACCEPT


async def test_reviewer_calendar_hides_new_and_edit(build_app: Callable[..., MedApp]) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        cal = await open_calendar(pilot, app)
        public = next(f.id for _, f in app.workspace.calendars() if f.name == "Termine Kreistag")
        cal.set_overlay(public)
        cal.set_active(public)
        await settle(pilot)
        assert cal.select_event("Kreistag Sitzung")
        assert cal.check_action("new_event", ()) is False
        assert cal.check_action("edit_event", ()) is False
        assert cal.check_action("delete_event", ()) is False
        await pilot.press("n", "e")
        await settle(pilot)
        assert app.screen is cal


async def test_day_agenda_and_navigation_keys(build_app: Callable[..., MedApp]) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        cal = await open_calendar(pilot, app)
        await pilot.press("D")
        await settle(pilot)
        assert cal.view == "day" and cal.day == NOW.date()
        await pilot.press("l", "l")
        assert cal.day == NOW.date() + timedelta(days=2)
        await pilot.press("t")
        assert cal.day == NOW.date()
        await pilot.press("A")
        await settle(pilot)
        subjects = [s.event.subject for s in cal.shown]
        assert subjects.count("Jour fixe Dezernenten") == 2  # weekly, two Mondays in 14 days


async def test_features_the_backend_lacks_are_not_offered(
    session_factory: Callable[[FakeOrg], MedApp],
) -> None:
    org = FakeOrg()
    org.capabilities = frozenset(org.capabilities - {"free_busy", "meeting_responses"})
    app = session_factory(org)
    async with app.run_test(size=SIZE) as pilot:
        cal = await open_calendar(pilot, app)
        assert cal.select_event("Einladung: Klinikum Aufsichtsrat")
        assert cal.check_action("free_busy", ()) is False
        assert cal.check_action("respond", ()) is False
        await pilot.press("b", "r")
        await settle(pilot)
        assert app.screen is cal


async def test_free_busy_finder_books_the_first_free_slot(
    build_app: Callable[..., MedApp],
) -> None:
    from tui.screens.free_busy import FreeBusyScreen

    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_calendar(pilot, app)
        await pilot.press("b")
        await settle(pilot)
        finder = app.screen
        assert isinstance(finder, FreeBusyScreen)
        # chef has the Jour fixe 10:00-11:00 on Monday; it is 09:00 now, so the first free
        # hour is 09:00 (nothing earlier: the past is no proposal).
        slots = finder._slots
        assert slots and slots[0] == NOW
        assert all(not (s.hour == 10 or (s.hour == 9 and s.minute == 30)) for s in slots)
        finder.query_one("#fb-slots").focus()
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, EventFormScreen)
        assert app.screen.query_one("#e-start", Input).value == "09:00"


async def test_editing_an_occurrence_for_the_whole_series_renames_the_series(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        cal = await open_calendar(pilot, app)
        assert cal.select_event("Jour fixe Dezernenten")
        await pilot.press("e")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, EventFormScreen)
        form.query_one("#e-scope", Select).value = "all"
        fill(form, subject="Jour fixe Dezernat I")
        await pilot.press("ctrl+s")
        await settle(pilot)
        masters = [i for i in org.items.values() if i.subject == "Jour fixe Dezernat I"]
        assert len(masters) == 1 and masters[0].recurrence is not None
        assert not org.exceptions  # the series changed, no single occurrence
        await pilot.press("L")
        await settle(pilot)
        assert cal.select_event("Jour fixe Dezernat I")  # next week's occurrence too
