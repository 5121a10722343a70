"""The calendar screen: day, week and agenda views with several calendars overlaid in colours;
create, edit and move appointments and occurrences, answer meetings on behalf, free/busy."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, SelectionList, Static
from textual.widgets.selection_list import Selection

from med import DelegateSession
from med.errors import MedError
from med.model import BusyStatus, Event, EventKind, Feature, Folder, MailboxKind, ResponseType
from tui import messages as msg
from tui.actions import CALENDAR_ACTIONS, bindings
from tui.calendar_render import PALETTE, Shown, range_for, render
from tui.dates import parse_clock, parse_day, parse_span
from tui.presenter import header_lines, rights_summary
from tui.rights import allows
from tui.screens.base import MedScreen
from tui.screens.dialogs import ChoiceScreen, ConfirmScreen, PromptScreen
from tui.screens.event_form import EventEdit, EventFormScreen
from tui.widgets.context_bar import ContextBar, TopBar

if TYPE_CHECKING:
    from collections.abc import Callable


class CalendarScreen(MedScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = bindings(CALENDAR_ACTIONS)

    DEFAULT_CSS = """
    CalendarScreen #cal-panes { height: 1fr; }
    CalendarScreen SelectionList { width: 34; border-right: solid $panel-lighten-2; }
    CalendarScreen #cal-view { height: 1fr; padding: 0 1; }
    CalendarScreen #cal-detail { height: auto; max-height: 10; border-top: solid $panel-lighten-2;
                                 padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__(id="calendar")
        self.view = "week"
        self.day: date = date.today()
        # Calendars are named by key: the folder id, with several profiles open the profile
        # and the folder id (`calendar_key`), as two organisations may use the same ids.
        self.overlay: list[str] = []  # keys of the calendars shown, in the order switched on
        self.active: str | None = None  # calendar new appointments go to
        self.shown: list[Shown] = []
        self._shown_keys: list[str] = []  # the calendar of each shown event
        self.selected: int | None = None
        self.generation = 0
        #: An event to select once its day is loaded (opened from a bridge card).
        self._reveal: Event | None = None

    def compose(self) -> ComposeResult:
        yield TopBar("Calendar")
        with Horizontal(id="cal-panes"):
            yield SelectionList[str](id="calendars")
            with Vertical():
                with VerticalScroll(id="cal-view"):
                    yield Static(id="cal-body")
                yield Static(id="cal-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.day = self.medapp.now().date()
        self._fill_calendars()
        if self._reveal is not None:  # opened for an event before the screen was shown
            self.call_after_refresh(self.reveal, self._reveal)

    def on_screen_resume(self) -> None:
        self.workspace_ready()

    def workspace_ready(self) -> None:
        """Fill the calendar list once the mailboxes are known (it may open before that)."""
        # Again when another profile's calendars arrive (several profiles open).
        if self.query_one(SelectionList).option_count != len(self._calendars()):
            self._fill_calendars()

    # ------------------------------------------------------------------ calendars

    def calendar_key(self, profile: str, folder_id: str) -> str:
        """How the screen names a calendar: its folder id, prefixed by the profile's name
        while several profiles are open."""
        return f"{profile}\x1f{folder_id}" if self.medapp.multi else folder_id

    def _split(self, key: str) -> tuple[str, str]:
        """(profile, folder id) of a calendar key."""
        if self.medapp.multi and "\x1f" in key:
            profile, _, folder_id = key.partition("\x1f")
            return profile, folder_id
        return self.medapp.active, key

    def _calendars(self) -> list[tuple[str, str, Folder]]:
        """(key, name, folder) of every calendar of every ready profile; with several
        profiles the name starts with the organisation."""
        out = []
        for profile in self.medapp.profiles.values():
            org = self.medapp.organisation_prefix(profile.name)
            for mailbox, folder in profile.workspace.calendars():
                if mailbox.kind is MailboxKind.PUBLIC:
                    name = f"Public: {folder.name}"
                else:
                    name = (
                        mailbox.display_name
                        if folder.distinguished == "calendar"
                        else (f"{mailbox.display_name}: {folder.name}")
                    )
                out.append((self.calendar_key(profile.name, folder.id), f"{org}{name}", folder))
        return out

    def colour_of(self, key: str) -> str:
        keys = [k for k, _, _ in self._calendars()]
        return PALETTE[keys.index(key) % len(PALETTE)] if key in keys else "white"

    def name_of(self, key: str) -> str:
        return next((n for k, n, _ in self._calendars() if k == key), key)

    def session_of(self, key: str | None) -> DelegateSession:
        """The session of the profile a calendar belongs to."""
        profile = self._split(key)[0] if key else self.medapp.active
        session = self.medapp.profiles[profile].session
        assert session is not None  # only ready profiles have calendars
        return session

    def event_key(self, event: Event) -> str:
        """The calendar key of a shown event (its own folder's, in its own profile)."""
        for shown, key in zip(self.shown, self._shown_keys, strict=True):
            if shown.event is event or shown.event.id == event.id:
                return key
        return self.calendar_key(self.medapp.active, event.folder_id or "")

    def _fill_calendars(self) -> None:
        calendars = self._calendars()
        if not calendars:
            self.query_one("#cal-body", Static).update(Text("Loading calendars…", style="dim"))
            return

        def delegated(key: str, folder: Folder) -> bool:
            ws = self.medapp.profiles[self._split(key)[0]].workspace
            mailbox = ws.mailbox_of(folder)
            return mailbox is not None and mailbox.kind is MailboxKind.DELEGATED

        # Start with the boss's calendar when working for someone, else one's own; with
        # several profiles, that calendar of each (the agenda spans the organisations).
        ranked = sorted(
            calendars,
            key=lambda c: (not delegated(c[0], c[2]), c[2].distinguished != "calendar"),
        )
        preferred = [ranked[0][0]]
        if self.medapp.multi:
            firsts: dict[str, str] = {}
            for key, _, _ in ranked:
                firsts.setdefault(self._split(key)[0], key)
            preferred = [firsts[p] for p in self.medapp.profiles if p in firsts]
        self.overlay = list(preferred)
        self.active = preferred[0]
        self.medapp.use_profile(self._split(self.active)[0])
        selection = self.query_one(SelectionList)
        selection.clear_options()
        selection.add_options(
            [
                Selection(self._prompt(name, key), key, key in preferred)
                for key, name, _ in calendars
            ]
        )
        self.reload()

    def _prompt(self, name: str, folder_id: str) -> Text:
        """A calendar's line: shown ones in their colour, hidden ones dim and struck through;
        the target of new appointments marked, whether shown or not."""
        target = " ← new" if folder_id == self.active else ""
        if folder_id in self.overlay:
            return Text.assemble(("■ ", self.colour_of(folder_id)), name, (target, "bold"))
        return Text.assemble(("□ ", "dim"), (name, "dim strike"), (target, "bold"))

    def _refresh_prompts(self) -> None:
        selection = self.query_one(SelectionList)
        for index, (key, name, _) in enumerate(self._calendars()):
            if index < selection.option_count:
                selection.replace_option_prompt_at_index(index, self._prompt(name, key))

    @on(SelectionList.SelectedChanged)
    def _overlay_changed(self, event: SelectionList.SelectedChanged[str]) -> None:
        selected = set(event.selection_list.selected)
        self.overlay = [f for f in self.overlay if f in selected] + [
            f for f in event.selection_list.selected if f not in self.overlay
        ]
        self._refresh_prompts()
        self.reload()

    def action_target_calendar(self) -> None:
        """New appointments go to the highlighted calendar (showing or hiding one does not
        change where they go)."""
        selection = self.query_one(SelectionList)
        if selection.highlighted is None:
            return
        self.set_active(selection.get_option_at_index(selection.highlighted).value)
        self.notify(f"New appointments go to {self.name_of(self.active or '')}.")

    def set_overlay(self, folder_id: str, on: bool = True) -> None:
        """Show or hide one calendar in the overlay (what space does in the list)."""
        selection = self.query_one(SelectionList)
        if on:
            selection.select(folder_id)
        else:
            selection.deselect(folder_id)

    def set_active(self, key: str) -> None:
        self.active = key
        # What follows (new appointments, free/busy, scheduling) uses that calendar's profile.
        self.medapp.use_profile(self._split(key)[0])
        self._refresh_prompts()
        self._update_context()
        self.refresh_bindings()

    def _folder(self, key: str | None) -> Folder | None:
        if not key:
            return None
        profile, folder_id = self._split(key)
        if profile not in self.medapp.profiles:
            return None
        return self.medapp.profiles[profile].workspace.folders.get(folder_id)

    # ------------------------------------------------------------------ loading

    def reload(self) -> None:
        self.generation += 1
        first, after = range_for(self.view, self.day)
        tz = self.medapp.now().tzinfo
        start = datetime.combine(first, time(0), tz)
        end = datetime.combine(after, time(0), tz)
        keys = [k for k in self.overlay if self._folder(k) is not None]
        self._update_context()
        if not keys:
            self.shown = []
            self._shown_keys = []
            self._redraw()
            return
        self.load_events(keys, start, end, self.generation)

    @work(exclusive=True, group="calendar", exit_on_error=False)
    async def load_events(
        self, keys: list[str], start: datetime, end: datetime, generation: int
    ) -> None:
        """Each profile's calendars from its own session, side by side; a profile that fails
        says so and the others still show."""
        by_profile: dict[str, list[Folder]] = {}
        for key in keys:
            folder = self._folder(key)
            if folder is not None:
                by_profile.setdefault(self._split(key)[0], []).append(folder)

        async def one(profile: str, folders: list[Folder]) -> list[tuple[str, Event]]:
            session = self.session_of(self.calendar_key(profile, folders[0].id))
            try:
                events = await session.calendar_view(folders, start, end)
            except MedError as exc:
                if not self.medapp.multi:
                    raise
                where = self.medapp.organisation_prefix(profile)
                self.notify(f"{where}{exc}", title=exc.title, severity="warning")
                return []
            return [(self.calendar_key(profile, e.folder_id or ""), e) for e in events]

        results = await asyncio.gather(*(one(p, f) for p, f in by_profile.items()))
        by_calendar: dict[str, list[Event]] = {}
        for key, event in (pair for result in results for pair in result):
            by_calendar.setdefault(key, []).append(event)
        self.post_message(msg.EventsLoaded(start, end, by_calendar, generation))

    def on_events_loaded(self, message: msg.EventsLoaded) -> None:
        if message.generation != self.generation:
            return
        previous = (
            self.shown[self.selected].event.id
            if self.selected is not None and self.selected < len(self.shown)
            else None
        )
        pairs = [
            (Shown(event, self.name_of(key), self.colour_of(key)), key)
            for key, events in message.events.items()
            for event in events
        ]
        pairs.sort(key=lambda p: (p[0].event.start, p[0].event.end, p[0].calendar))
        self.shown = [shown for shown, _ in pairs]
        self._shown_keys = [key for _, key in pairs]
        shown = self.shown
        ids = [s.event.id for s in shown]
        if self._reveal is not None:
            reveal, tz = self._reveal, self.medapp.now().tzinfo
            found = next(
                (
                    s.event.id
                    for s in shown
                    if s.event.id == reveal.id
                    or (
                        s.event.subject == reveal.subject
                        and s.event.start.astimezone(tz) == reveal.start.astimezone(tz)
                    )
                ),
                None,
            )
            if found is not None:
                previous, self._reveal = found, None
        if previous in ids:
            self.selected = ids.index(previous)
        else:
            self.selected = self._first_from_cursor()
        self._redraw()

    def _first_from_cursor(self) -> int | None:
        tz = self.medapp.now().tzinfo
        for index, s in enumerate(self.shown):
            if s.event.start.astimezone(tz).date() >= self.day:
                return index
        return 0 if self.shown else None

    # ------------------------------------------------------------------ showing

    def _redraw(self) -> None:
        now = self.medapp.now()
        self.query_one("#cal-body", Static).update(
            render(self.view, self.shown, self.day, self.selected, now)
        )
        detail = self.query_one("#cal-detail", Static)
        event = self.current_event()
        if event is None:
            detail.update(Text("No appointment selected.", style="dim"))
        else:
            text = Text()
            text.append(f"{event.subject}\n", style="bold")
            for label, value in header_lines(event):
                text.append(f"{label}: ", style="bold").append(f"{value}\n")
            detail.update(text)
        self._update_context()
        self.refresh_bindings()

    def _update_context(self) -> None:
        active = self._folder(self.active)
        first, after = range_for(self.view, self.day)
        span = (
            f"{first:%d.%m.}–{(after - timedelta(days=1)):%d.%m.%Y}"
            if self.view != "day"
            else f"{first:%a %d.%m.%Y}"
        )
        rights = rights_summary(active.rights) if active else "-"
        owner = self.name_of(self.active) if self.active else "-"
        self.query_one(ContextBar).show_fitting(
            f"Calendar · {self.view} · {span}  ·  new appointments go to: {owner}"
            f"  ·  your rights: {rights}",
            f"{owner} · {self.view} {span} · your rights: {rights}",
            f"{owner} · {span} · rights: {rights}",
            f"{owner} · rights: {rights}",
        )

    def current_event(self) -> Event | None:
        if self.selected is None or not 0 <= self.selected < len(self.shown):
            return None
        return self.shown[self.selected].event

    def _rights_of(self, event: Event | None) -> object:
        folder = self._folder(self.event_key(event) if event else self.active)
        return folder.rights if folder else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # What the backend cannot do at all is not offered (Graph has no free/busy API here).
        needs = {"free_busy": Feature.FREE_BUSY, "respond": Feature.MEETING_RESPONSES}
        if action in needs and not self.session_of(self.active).supports(needs[action]):
            return False
        if action == "new_event":
            folder = self._folder(self.active)
            return folder is not None and allows(folder.rights, "new_event")
        if action in ("edit_event", "move_event", "delete_event", "respond"):
            event = self.current_event()
            folder = self._folder(self.event_key(event)) if event else None
            if folder is None or not allows(folder.rights, action):
                return False if folder is not None else None
            if action == "respond":
                return event is not None and event.is_meeting and not self._is_organizer(event)
            return True
        return True

    def _is_organizer(self, event: Event) -> bool:
        return event.organizer is not None and event.organizer.email == event.mailbox

    # ------------------------------------------------------------------ navigation

    def action_today(self) -> None:
        self.day = self.medapp.now().date()
        self.reload()

    def action_shift_days(self, days: int) -> None:
        self.day += timedelta(days=days)
        self.reload()

    def action_set_view(self, view: str) -> None:
        self.view = view
        self.reload()

    def action_goto_date(self) -> None:
        def done(day: date | None) -> None:
            if day is not None:
                self.day = day
                self.reload()

        self.app.push_screen(
            PromptScreen("Go to date:", parse_day, value=f"{self.day:%Y-%m-%d}"), done
        )

    def action_next_event(self) -> None:
        if self.shown:
            self.selected = (
                0 if self.selected is None else min(self.selected + 1, len(self.shown) - 1)
            )
            self._redraw()

    def action_prev_event(self) -> None:
        if self.shown:
            self.selected = 0 if self.selected is None else max(self.selected - 1, 0)
            self._redraw()

    def action_calendars(self) -> None:
        self.query_one(SelectionList).focus()

    def reveal(self, event: Event) -> None:
        """Show the day of `event` with its calendar overlaid and the event selected."""
        self._reveal = event
        if not self.is_mounted:
            return  # on_mount comes back here
        self.day = event.start.astimezone(self.medapp.now().tzinfo).date()
        folder = self._folder(event.folder_id)
        if folder is not None and folder.id not in self.overlay:
            self.set_overlay(folder.id)  # reloads once the list has taken it
        else:
            self.reload()

    def select_event(self, subject: str, day: date | None = None) -> bool:
        """Select the first shown event with that subject (on `day`); True if found."""
        tz = self.medapp.now().tzinfo
        for index, s in enumerate(self.shown):
            if s.event.subject == subject and (
                day is None or s.event.start.astimezone(tz).date() == day
            ):
                self.selected = index
                self._redraw()
                return True
        return False

    # ------------------------------------------------------------------ changes

    def action_new_event(self, start: datetime | None = None) -> None:
        key = self.active
        folder = self._folder(key)
        if folder is None or key is None:
            return
        tz = self.medapp.now().tzinfo
        assert tz is not None
        # The next full hour, from 08:00, at the latest 23:00 (after 23:00 the next hour is 24).
        hour = min(max(self.medapp.now().hour + 1, 8), 23)
        default = start or datetime.combine(self.day, time(hour), tz)

        def done(edit: EventEdit | None) -> None:
            if edit is not None:
                self.after_conflict_check(
                    key, edit.event, lambda: self.create_event(key, edit.event)
                )

        self.app.push_screen(EventFormScreen(self.name_of(key), None, tz=tz, start=default), done)

    @work(group="conflicts", exit_on_error=False)
    async def after_conflict_check(
        self, key: str, event: Event, proceed: Callable[[], object]
    ) -> None:
        """Save at once when nothing else is booked then in that calendar; else ask first."""
        clashes: list[Event] = []
        folder = self._folder(key)
        if folder is not None and event.show_as is not BusyStatus.FREE and event.end > event.start:
            found = await self.session_of(key).calendar_view([folder], event.start, event.end)
            clashes = [
                other
                for other in found
                if other.id != event.id
                and not other.is_cancelled
                and other.show_as is not BusyStatus.FREE
                and other.start < event.end
                and other.end > event.start
            ]
        if not clashes:
            proceed()
            return
        tz = self.medapp.now().tzinfo
        names = "; ".join(
            f"“{c.subject}” {c.start.astimezone(tz):%H:%M}–{c.end.astimezone(tz):%H:%M}"
            for c in clashes[:3]
        )
        more = f" and {len(clashes) - 3} more" if len(clashes) > 3 else ""

        def answered(yes: bool | None) -> None:
            if yes:
                proceed()

        self.app.push_screen(
            ConfirmScreen(
                f"Conflict: this overlaps {names}{more} in {self.name_of(key)}. Save anyway?",
                yes="Save anyway",
            ),
            answered,
        )

    @work(group="update", exit_on_error=False)
    async def create_event(self, key: str, event: Event) -> None:
        folder = self._folder(key)
        assert folder is not None
        created = await self.session_of(key).create(folder, event)
        self.post_message(msg.ItemCreated(created, f"Created in {self.name_of(key)}."))

    def on_item_created(self, message: msg.ItemCreated) -> None:
        self.notify(message.note)
        self.reload()

    def action_edit_event(self) -> None:
        event = self.current_event()
        if event is None:
            return
        tz = self.medapp.now().tzinfo
        assert tz is not None
        key = self.event_key(event)
        folder = self._folder(key)

        def done(edit: EventEdit | None) -> None:
            if edit is None or not edit.fields:
                return
            if {"start", "end"} & set(edit.fields) and folder is not None:
                self.after_conflict_check(
                    key,
                    edit.event,
                    lambda: self.save_event(edit.event, list(edit.fields), edit.series),
                )
            else:
                self.save_event(edit.event, list(edit.fields), edit.series)

        self.app.push_screen(EventFormScreen(self.name_of(key), event, tz=tz), done)

    def action_move_event(self) -> None:
        """Move the selected appointment (or this one occurrence) to another day and time."""
        event = self.current_event()
        if event is None:
            return
        tz = self.medapp.now().tzinfo

        def parse(text: str) -> datetime:
            day_text, _, clock = text.strip().partition(" ")
            return datetime.combine(parse_day(day_text), parse_clock(clock or "00:00"), tz)

        def done(start: datetime | None) -> None:
            if start is None:
                return
            moved = dataclasses.replace(event, start=start, end=start + (event.end - event.start))
            key = self.event_key(event)
            if self._folder(key) is None:
                self.save_event(moved, ["start", "end"], False)
                return
            self.after_conflict_check(
                key, moved, lambda: self.save_event(moved, ["start", "end"], False)
            )

        local = event.start.astimezone(tz)
        self.app.push_screen(
            PromptScreen("Move to (date and time):", parse, value=f"{local:%Y-%m-%d %H:%M}"),
            done,
        )

    @work(group="update", exit_on_error=False)
    async def save_event(self, event: Event, fields: list[str], series: bool) -> None:
        changed = await self.session_of(self.event_key(event)).update(event, fields, series=series)
        what = (
            "Series"
            if series
            else (
                "Occurrence"
                if event.event_kind in (EventKind.OCCURRENCE, EventKind.EXCEPTION)
                else "Appointment"
            )
        )
        self.post_message(msg.ItemChanged(changed, f"{what} saved."))

    def on_item_changed(self, message: msg.ItemChanged) -> None:
        if message.note:
            self.notify(message.note)
        self.reload()

    def action_delete_event(self) -> None:
        event = self.current_event()
        if event is None:
            return
        if event.event_kind in (EventKind.OCCURRENCE, EventKind.EXCEPTION):

            def chosen(scope: str | None) -> None:
                if scope is not None:
                    self.delete_event(event, scope == "all")

            self.app.push_screen(
                ChoiceScreen(
                    f"Delete “{event.subject}”:",
                    [("this occurrence only", "one"), ("the whole series", "all")],
                ),
                chosen,
            )
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.delete_event(event, False)

        self.app.push_screen(ConfirmScreen(f"Delete “{event.subject}”?", yes="Delete"), confirmed)

    @work(group="update", exit_on_error=False)
    async def delete_event(self, event: Event, series: bool) -> None:
        await self.session_of(self.event_key(event)).delete(event, series=series)
        self.post_message(msg.ItemRemoved(event.id, "Deleted."))

    def on_item_removed(self, message: msg.ItemRemoved) -> None:
        self.notify(message.note)
        self.reload()

    def action_respond(self) -> None:
        """Accept, tentative or decline for the owner; with a comment, or without telling the
        organizer."""
        event = self.current_event()
        if event is None:
            return
        owner = self.name_of(self.event_key(event))
        answers = [
            ("Accept", ResponseType.ACCEPT),
            ("Tentative", ResponseType.TENTATIVE),
            ("Decline", ResponseType.DECLINE),
        ]
        choices = [
            (f"{label}{how}", (response, mode))
            for label, response in answers
            for how, mode in (
                ("", "send"),
                (" with a comment", "comment"),
                (" without sending a reply", "silent"),
            )
        ]
        choices += [
            (f"{label}, proposing a new time", (response, "propose"))
            for label, response in answers[1:]
        ]

        def chosen(answer: tuple[ResponseType, str] | None) -> None:
            if answer is None:
                return
            response, mode = answer
            if mode == "propose":

                def proposed(span: tuple[datetime, datetime] | None) -> None:
                    if span is not None:
                        self.respond(event, response, None, True, span)

                self.app.push_screen(
                    PromptScreen(
                        "Propose a new time (day, start, end):",
                        parse_span,
                        value=f"{event.start.astimezone():%Y-%m-%d %H:%M} "
                        f"{event.end.astimezone():%H:%M}",
                    ),
                    proposed,
                )
                return
            if mode != "comment":
                self.respond(event, response, None, mode == "send")
                return

            def commented(text: str | None) -> None:
                if text is not None:
                    self.respond(event, response, text or None, True)

            self.app.push_screen(PromptScreen("Comment to the organizer:", str), commented)

        self.app.push_screen(
            ChoiceScreen(f"Answer “{event.subject}” for {owner}:", choices), chosen
        )

    @work(group="update", exit_on_error=False)
    async def respond(
        self,
        event: Event,
        response: ResponseType,
        comment: str | None,
        send: bool,
        proposal: tuple[datetime, datetime] | None = None,
    ) -> None:
        await self.session_of(self.event_key(event)).respond(
            event, response, comment, send=send, proposal=proposal
        )
        changed = dataclasses.replace(event, my_response=response)
        told = "" if send else " (the organizer was not told)"
        if proposal is not None:
            told = f", proposing {proposal[0]:%d.%m. %H:%M}–{proposal[1]:%H:%M}"
        self.post_message(msg.ItemChanged(changed, f"Answered: {response.value}{told}."))

    def action_schedule_meeting(self) -> None:
        from tui.screens.scheduling import SchedulingScreen

        folder = self._folder(self.active)
        ws = self.medapp.workspace
        mailbox = ws.mailbox_of(folder) if folder else None
        owner = mailbox.address if mailbox and mailbox.kind is not MailboxKind.PUBLIC else ws.user

        def booked(event: Event | None) -> None:
            if event is not None:
                self.post_message(msg.ItemChanged(event, f"Booked {event.subject!r}."))

        self.app.push_screen(SchedulingScreen(owner, self.day), booked)

    def action_free_busy(self) -> None:
        from tui.screens.free_busy import FreeBusyScreen

        folder = self._folder(self.active)
        ws = self.medapp.workspace
        mailbox = ws.mailbox_of(folder) if folder else None
        owner = mailbox.address if mailbox and mailbox.kind is not MailboxKind.PUBLIC else ws.user

        def chosen(start: datetime | None) -> None:
            if start is not None:
                self.action_new_event(start)

        self.app.push_screen(FreeBusyScreen(owner, self.day), chosen)
