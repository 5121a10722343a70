"""Create or edit an appointment or meeting, single or recurring; for an occurrence, choose
whether the change applies to it alone or to the whole series."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, TextArea

from med.model import (
    Address,
    Attendee,
    BusyStatus,
    Daily,
    Event,
    EventKind,
    MonthlyByDate,
    Recurrence,
    RecurrencePattern,
    Sensitivity,
    Weekday,
    Weekly,
    YearlyByDate,
)
from tui.dates import parse_clock, parse_day

if TYPE_CHECKING:
    pass

_WEEKDAYS = list(Weekday)
#: What an appointment may show as (no data is the server's answer, not a choice).
_SHOW_AS = [s for s in BusyStatus if s is not BusyStatus.NO_DATA]


@dataclass(frozen=True)
class EventEdit:
    """What the form returns: the event, the fields that changed, and the series choice."""

    event: Event
    fields: tuple[str, ...]
    series: bool


def pattern_for(kind: str, start: date, interval: int) -> RecurrencePattern | None:
    if kind == "daily":
        return Daily(interval=interval)
    if kind == "weekly":
        return Weekly(weekdays=(_WEEKDAYS[start.weekday()],), interval=interval)
    if kind == "monthly":
        return MonthlyByDate(day_of_month=start.day, interval=interval)
    if kind == "yearly":
        return YearlyByDate(month=start.month, day_of_month=start.day)
    return None


def _pattern_kind(event: Event | None) -> str:
    if event is None or event.recurrence is None:
        return "none"
    names: dict[type, str] = {
        Daily: "daily",
        Weekly: "weekly",
        MonthlyByDate: "monthly",
        YearlyByDate: "yearly",
    }
    return names.get(type(event.recurrence.pattern), "none")


_EDITABLE = (
    "subject",
    "location",
    "start",
    "end",
    "attendees",
    "recurrence",
    "body",
    "is_meeting",
    "is_all_day",
    "sensitivity",
    "show_as",
    "reminder_minutes",
    "categories",
)


class EventFormScreen(ModalScreen[EventEdit | None]):
    DEFAULT_CSS = """
    EventFormScreen { align: center middle; }
    EventFormScreen > Vertical {
        width: 80; height: 90%; border: thick $accent; background: $surface; padding: 1 2;
    }
    EventFormScreen VerticalScroll { height: 1fr; }
    EventFormScreen .pair { height: auto; }
    EventFormScreen .pair > Vertical { width: 1fr; height: auto; }
    EventFormScreen TextArea { height: 5; }
    EventFormScreen Horizontal.buttons { height: auto; margin-top: 1; }
    EventFormScreen Button { margin-right: 2; }
    EventFormScreen .error { color: $error; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save", priority=True, id="event-save"),
        Binding("escape", "cancel", "Cancel", priority=True),
    ]

    def __init__(
        self, calendar_name: str, event: Event | None, *, tz: tzinfo, start: datetime | None = None
    ) -> None:
        super().__init__()
        self.calendar_name = calendar_name
        self.event = event
        self.tz = tz
        self.default_start = start

    def compose(self) -> ComposeResult:
        e = self.event
        start = (e.start if e else self.default_start or datetime.now(self.tz)).astimezone(self.tz)
        end = e.end.astimezone(self.tz) if e else start + timedelta(hours=1)
        rec = e.recurrence if e else None
        occurrence = e is not None and e.event_kind in (EventKind.OCCURRENCE, EventKind.EXCEPTION)
        verb = "Edit" if e else "New"
        with Vertical():
            yield Label(
                f"[b]{verb} appointment in {self.calendar_name}[/b]  (ctrl+s saves, Esc cancels)"
            )
            with VerticalScroll():
                if occurrence:
                    yield Label("Apply changes to")
                    yield Select(
                        [("this occurrence only", "one"), ("the whole series", "all")],
                        value="one",
                        allow_blank=False,
                        id="e-scope",
                    )
                yield Label("Subject")
                yield Input(e.subject if e else "", id="e-subject")
                yield Label("Location")
                yield Input(e.location if e else "", id="e-location")
                with Horizontal(classes="pair"):
                    with Vertical():
                        yield Label("Date")
                        yield Input(f"{start:%Y-%m-%d}", id="e-date")
                    with Vertical():
                        yield Label("Start")
                        yield Input(f"{start:%H:%M}", id="e-start")
                    with Vertical():
                        yield Label("End")
                        yield Input(f"{end:%H:%M}", id="e-end")
                yield Label("Attendees (comma separated; makes it a meeting)")
                yield Input(
                    ", ".join(a.address.email for a in e.attendees) if e else "", id="e-attendees"
                )
                with Horizontal(classes="pair"):
                    yield Checkbox("All day", e.is_all_day if e else False, id="e-all-day")
                    yield Checkbox(
                        "Private",
                        e is not None and e.sensitivity is not Sensitivity.NORMAL,
                        id="e-private",
                    )
                with Horizontal(classes="pair"):
                    with Vertical():
                        yield Label("Show as")
                        yield Select(
                            [(s.value.replace("_", " "), s.value) for s in _SHOW_AS],
                            value=(e.show_as if e else BusyStatus.BUSY).value,
                            allow_blank=False,
                            id="e-show-as",
                        )
                    with Vertical():
                        yield Label("Reminder (minutes before; empty: none)")
                        yield Input(
                            str(e.reminder_minutes)
                            if e and e.reminder_minutes is not None
                            else ("" if e else "15"),
                            id="e-reminder",
                        )
                yield Label("Categories (comma separated)")
                yield Input(", ".join(e.categories) if e else "", id="e-categories")
                if not occurrence:
                    with Horizontal(classes="pair"):
                        with Vertical():
                            yield Label("Repeats")
                            yield Select(
                                [(k, k) for k in ("none", "daily", "weekly", "monthly", "yearly")],
                                value=_pattern_kind(e),
                                allow_blank=False,
                                id="e-repeat",
                            )
                        with Vertical():
                            yield Label("Every")
                            yield Input(
                                str(getattr(rec.pattern, "interval", 1) if rec else 1),
                                id="e-interval",
                            )
                        with Vertical():
                            yield Label("Until (date)")
                            yield Input(
                                f"{rec.end:%Y-%m-%d}" if rec and rec.end else "", id="e-until"
                            )
                        with Vertical():
                            yield Label("or times")
                            yield Input(str(rec.count) if rec and rec.count else "", id="e-count")
                yield Label("Notes")
                yield TextArea(e.body or "" if e else "", id="e-body")
            yield Label("", id="e-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Save (ctrl+s)", id="save", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#e-subject", Input).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _text(self, name: str) -> str:
        return self.query_one(f"#e-{name}", Input).value.strip()

    def action_save(self) -> None:
        try:
            result = self._build()
        except ValueError as exc:
            self.query_one("#e-error", Label).update(str(exc))
            return
        self.dismiss(result)

    def _build(self) -> EventEdit:
        subject = self._text("subject")
        if not subject:
            raise ValueError("An appointment needs a subject.")
        day = parse_day(self._text("date"))
        all_day = self.query_one("#e-all-day", Checkbox).value
        if all_day:
            start = datetime.combine(day, time(0), self.tz)
            days = (
                self.event.end - self.event.start if self.event and self.event.is_all_day else None
            )
            end = start + (days if days and days.days >= 1 else timedelta(days=1))
        else:
            start = datetime.combine(day, parse_clock(self._text("start")), self.tz)
            end = datetime.combine(day, parse_clock(self._text("end")), self.tz)
            if end <= start:
                end += timedelta(days=1)  # ends after midnight
        reminder_text = self._text("reminder")
        if reminder_text and not reminder_text.isdigit():
            raise ValueError("The reminder is a number of minutes (or empty for none).")
        private = self.query_one("#e-private", Checkbox).value
        kept = self.event.sensitivity if self.event else Sensitivity.NORMAL
        if not private:
            sensitivity = Sensitivity.NORMAL
        else:  # a confidential or personal one stays so
            sensitivity = kept if kept is not Sensitivity.NORMAL else Sensitivity.PRIVATE
        categories = tuple(c.strip() for c in self._text("categories").split(",") if c.strip())
        emails = [a.strip() for a in self._text("attendees").split(",") if a.strip()]
        if any("@" not in a for a in emails):
            raise ValueError("An attendee address is missing its @.")
        attendees = tuple(Attendee(Address(a)) for a in emails)
        body = self.query_one("#e-body", TextArea).text or None
        recurrence = self.event.recurrence if self.event else None
        if self.query("#e-repeat"):
            kind = str(self.query_one("#e-repeat", Select).value)
            interval_text = self._text("interval") or "1"
            if not interval_text.isdigit() or int(interval_text) < 1:
                raise ValueError("'Every' is a whole number from 1.")
            until = parse_day(self._text("until")) if self._text("until") else None
            count_text = self._text("count")
            if count_text and not count_text.isdigit():
                raise ValueError("'times' is a whole number.")
            if until and count_text:
                raise ValueError("End the series by a date or after a number of times, not both.")
            pattern = pattern_for(kind, day, int(interval_text))
            recurrence = (
                Recurrence(pattern, day, end=until, count=int(count_text) if count_text else None)
                if pattern
                else None
            )
        values = {
            "subject": subject,
            "location": self._text("location"),
            "start": start,
            "end": end,
            "attendees": attendees,
            "recurrence": recurrence,
            "body": body,
            "is_meeting": bool(attendees),
            "is_all_day": all_day,
            "sensitivity": sensitivity,
            "show_as": BusyStatus(str(self.query_one("#e-show-as", Select).value)),
            "reminder_minutes": int(reminder_text) if reminder_text else None,
            "categories": categories,
        }
        series = bool(self.query("#e-scope")) and self.query_one("#e-scope", Select).value == "all"
        if self.event is None:
            return EventEdit(Event(**values), tuple(values), series=False)  # type: ignore[arg-type]
        changed = tuple(k for k in _EDITABLE if getattr(self.event, k) != values[k])
        if self.event.event_kind in (EventKind.OCCURRENCE, EventKind.EXCEPTION):
            changed = tuple(c for c in changed if c != "recurrence")
        return EventEdit(dataclasses.replace(self.event, **values), changed, series)  # type: ignore[arg-type]
