"""The calendar as an assistant uses it all day: which calendars show and where new ones go,
conflicts, the appointment dialog's fields, answers with a comment or without sending, and
free/busy that proposes no time already past."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from textual.widgets import Checkbox, Input, Select, SelectionList

from med import DelegateSession
from med.model import BusyStatus, Event, ResponseType, Sensitivity
from tests.tui.conftest import settle
from tests.tui.fakeorg import NOW, FakeOrg
from tests.tui.test_calendar_flows import SIZE, fill, new_event_form, open_calendar
from tui.app import MedApp, make_app
from tui.config import TuiConfig
from tui.screens.dialogs import ChoiceScreen, ConfirmScreen, PromptScreen
from tui.widgets.context_bar import ContextBar


def _prompts(cal: object) -> dict[str, str]:
    listing = cal.query_one("#calendars", SelectionList)  # type: ignore[attr-defined]
    out = {}
    for index in range(listing.option_count):
        option = listing.get_option_at_index(index)
        out[option.value] = option.prompt
    return out


async def test_showing_a_calendar_is_not_choosing_where_new_ones_go(
    build_app: Callable[..., MedApp],
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        cal = await open_calendar(pilot, app)
        chef = cal.active
        assert chef is not None
        await pilot.press("o")
        listing = cal.query_one("#calendars", SelectionList)
        team = next(v for v in _prompts(cal) if v.startswith("teamkalender:"))
        listing.highlighted = [o.value for o in listing._options].index(team)
        await pilot.press("space")  # show the team calendar
        await settle(pilot)
        assert team in cal.overlay and cal.active == chef  # still goes to the boss
        prompts = _prompts(cal)
        shown, hidden = prompts[team], next(p for v, p in prompts.items() if v not in cal.overlay)
        assert str(shown).startswith("■ ") and str(hidden).startswith("□ ")
        assert "strike" in str(hidden.spans) and "strike" not in str(shown.spans)
        assert "← new" in str(prompts[chef])
        await pilot.press("T")  # new ones go to the team calendar from now on
        await settle(pilot)
        assert cal.active == team
        assert "new appointments go to: Teamkalender" in str(cal.query_one(ContextBar).render())
        await pilot.press("space")  # hiding it keeps it the target
        await settle(pilot)
        assert team not in cal.overlay and cal.active == team
        assert "← new" in str(_prompts(cal)[team])


async def test_an_overlapping_appointment_asks_before_it_is_saved(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_calendar(pilot, app)
        await pilot.press("n")
        await settle(pilot)
        fill(
            app.screen, subject="Überschneidung", date=f"{NOW:%Y-%m-%d}", start="10:30", end="11:30"
        )
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        assert "Jour fixe Dezernenten" in str(app.screen.question)
        await pilot.press("n")
        await settle(pilot)
        assert not [i for i in org.items.values() if i.subject == "Überschneidung"]
        await pilot.press("n")
        await settle(pilot)
        fill(app.screen, subject="Frei davor", date=f"{NOW:%Y-%m-%d}", start="08:00", end="09:00")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert [i.subject for i in org.items.values() if i.subject == "Frei davor"] == [
            "Frei davor"
        ]


async def test_the_dialog_sets_all_day_private_reminder_show_as_and_categories(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_calendar(pilot, app)
        form = await new_event_form(pilot, app)
        fill(
            form, subject="Klausur", date="2026-11-27", reminder="60", categories="Kreistag, Intern"
        )
        form.query_one("#e-all-day", Checkbox).value = True
        form.query_one("#e-private", Checkbox).value = True
        form.query_one("#e-show-as", Select).value = "oof"
        await pilot.press("ctrl+s")
        await settle(pilot)
    (made,) = [i for i in org.items.values() if i.subject == "Klausur"]
    assert isinstance(made, Event)
    assert made.is_all_day and made.start.date() == date(2026, 11, 27)
    assert made.end - made.start == timedelta(days=1)
    assert made.sensitivity is Sensitivity.PRIVATE and made.show_as is BusyStatus.OOF
    assert made.reminder_minutes == 60 and made.categories == ("Kreistag", "Intern")


async def test_answers_with_a_comment_or_without_telling_the_organizer(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        cal = await open_calendar(pilot, app)
        assert cal.select_event("Einladung: Klinikum Aufsichtsrat")
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, ChoiceScreen)
        await pilot.press("down", "enter")  # Accept with a comment
        await settle(pilot)
        assert isinstance(app.screen, PromptScreen)
        app.screen.query_one(Input).value = "Frau Dr. Berg kommt etwas später."
        await pilot.press("enter")
        await settle(pilot)
        assert cal.select_event("Einladung: Klinikum Aufsichtsrat")
        await pilot.press("r")
        await settle(pilot)
        await pilot.press(*["down"] * 8, "enter")  # Decline without sending a reply
        await settle(pilot)
    (_, accept, comment, sent), (_, decline, no_comment, told) = org.answers
    assert (accept, comment, sent) == (
        ResponseType.ACCEPT,
        "Frau Dr. Berg kommt etwas später.",
        True,
    )
    assert (decline, no_comment, told) == (ResponseType.DECLINE, None, False)


async def test_free_busy_starts_on_the_selected_day_and_proposes_no_past_time(
    build_app: Callable[..., MedApp],
) -> None:
    from tui.screens.free_busy import FreeBusyScreen

    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        cal = await open_calendar(pilot, app)
        await pilot.press("l")  # tomorrow
        await settle(pilot)
        await pilot.press("b")
        await settle(pilot)
        finder = app.screen
        assert isinstance(finder, FreeBusyScreen)
        tomorrow = NOW.date() + timedelta(days=1)
        assert finder.query_one("#fb-day", Input).value == f"{tomorrow:%Y-%m-%d}"
        assert finder._slots and finder._slots[0].date() == tomorrow
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("t", "b")
        await settle(pilot)
        today = app.screen
        assert isinstance(today, FreeBusyScreen)
        assert today._slots and all(s >= NOW for s in today._slots)
        assert cal.day == NOW.date()


def _rendered(renderable: object, width: int = 120) -> list[str]:
    from rich.console import Console

    console = Console(width=width, color_system=None, record=True)
    console.print(renderable)
    return console.export_text().splitlines()


def test_week_view_is_a_time_grid_with_a_now_line() -> None:
    from tui.calendar_render import Shown, week_view

    monday = NOW.replace(hour=0)
    boss = Shown(
        Event(subject="Jour fixe", start=monday.replace(hour=10), end=monday.replace(hour=11)),
        "Berg",
        "blue",
    )
    wednesday = Shown(
        Event(
            subject="Kreistag",
            start=monday.replace(hour=14) + timedelta(days=2),
            end=monday.replace(hour=15) + timedelta(days=2),
        ),
        "Berg",
        "blue",
    )
    lines = _rendered(week_view([boss, wednesday], NOW.date(), None, NOW.replace(minute=10)))
    head = lines[0]
    assert head.index("Mo 23.11") < head.index("Mi 25.11") < head.index("So 29.11")
    hours = [ln[:5] for ln in lines if ln[:2].isdigit() and ln[2] == ":"]
    assert "07:00" in hours and "19:00" in hours
    ten = next(ln for ln in lines if ln.startswith("10:00"))
    assert ten.index("10:00", 5) < head.index("Di 24.11")  # in Monday's column
    two = next(ln for ln in lines if ln.startswith("14:00"))
    assert head.index("Mi 25.11") - 1 <= two.index("14:00", 5) < head.index("Do 26.11")
    (now_line,) = [ln for ln in lines if "━" in ln]
    assert now_line.startswith("09:10")  # the time now, in the hour column
    assert now_line.rindex("━") < head.index("Di 24.11")  # only in today's column


async def test_declines_proposing_a_new_time(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    day = date.today() + timedelta(days=10)
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        cal = await open_calendar(pilot, app)
        assert cal.select_event("Einladung: Klinikum Aufsichtsrat")
        await pilot.press("r")
        await settle(pilot)
        await pilot.press(*["down"] * 10, "enter")  # Decline, proposing a new time
        await settle(pilot)
        assert isinstance(app.screen, PromptScreen)
        prompt = app.screen.query_one(Input)
        prompt.value = "morgen 9"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, PromptScreen), "a bad entry keeps the prompt open"
        prompt.value = f"{day:%d.%m.%Y} 09:00 10:30"
        await pilot.press("enter")
        await settle(pilot)
    ((_, response, (start, end)),) = org.proposals
    assert response is ResponseType.DECLINE
    assert (start.date(), start.hour, end - start) == (day, 9, timedelta(minutes=90))


async def test_a_new_appointment_late_in_the_evening_starts_at_23_and_ends_at_midnight(
    session: DelegateSession, config: TuiConfig, org: FakeOrg
) -> None:
    """Its default start was the next full hour: after 23:00 that is hour 24, and pressing n
    ended the TUI with a ValueError (seen in CI at 23:04)."""
    late = NOW.replace(hour=23, minute=30)
    app = make_app(session, config, clock=lambda: late)
    async with app.run_test(size=SIZE) as pilot:
        await open_calendar(pilot, app)
        form = await new_event_form(pilot, app)
        assert form.query_one("#e-start", Input).value == "23:00"
        assert form.query_one("#e-end", Input).value == "00:00"
        fill(form, subject="Spätdienst", date=f"{late:%Y-%m-%d}")
        await pilot.press("ctrl+s")
        await settle(pilot)
        (made,) = [i for i in org.items.values() if i.subject == "Spätdienst"]
        assert isinstance(made, Event) and made.end - made.start == timedelta(hours=1)
