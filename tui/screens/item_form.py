"""Create or edit a task, contact or note in a small form; returns the item to save."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, TextArea

from med.model import Contact, FolderKind, Item, Note, Task, TaskStatus
from tui.dates import parse_due

#: (field id, label) per kind; values are strings in the form.
_FIELDS: dict[FolderKind, list[tuple[str, str]]] = {
    FolderKind.TASKS: [
        ("subject", "Subject"),
        ("due", "Due (YYYY-MM-DD)"),
        ("percent_complete", "% complete"),
    ],
    FolderKind.CONTACTS: [
        ("display_name", "Name"),
        ("given_name", "Given name"),
        ("surname", "Surname"),
        ("company", "Company"),
        ("job_title", "Job title"),
        ("emails", "E-mail (comma separated)"),
        ("business", "Phone (business)"),
        ("mobile", "Phone (mobile)"),
    ],
    FolderKind.NOTES: [("subject", "Title")],
}


class ItemFormScreen(ModalScreen[Item | None]):
    DEFAULT_CSS = """
    ItemFormScreen { align: center middle; }
    ItemFormScreen > Vertical {
        width: 76; height: 90%; border: thick $accent; background: $surface; padding: 1 2;
    }
    ItemFormScreen VerticalScroll { height: 1fr; }
    ItemFormScreen TextArea { height: 8; }
    ItemFormScreen Horizontal { height: auto; }
    ItemFormScreen Button { margin-right: 2; }
    ItemFormScreen .error { color: $error; }
    """
    # Typing starts in the first field; without this the scroll container took the focus.
    AUTO_FOCUS = "Input"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save", priority=True, id="form-save"),
        Binding("escape", "cancel", "Cancel", priority=True),
    ]

    def __init__(self, kind: FolderKind, item: Item | None) -> None:
        super().__init__()
        self.kind = kind if kind in _FIELDS else FolderKind.NOTES
        self.item = item

    def _value(self, name: str) -> str:
        item = self.item
        if item is None:
            return ""
        if isinstance(item, Task) and name == "due":
            return item.due.strftime("%Y-%m-%d") if item.due else ""
        if isinstance(item, Contact) and name == "emails":
            return ", ".join(item.emails)
        if isinstance(item, Contact) and name in ("business", "mobile"):
            return item.phones.get(name, "")
        return str(getattr(item, name, "") or "")

    def compose(self) -> ComposeResult:
        verb = "Edit" if self.item else "New"
        noun = {FolderKind.TASKS: "task", FolderKind.CONTACTS: "contact"}.get(self.kind, "note")
        with Vertical():
            yield Label(f"[b]{verb} {noun}[/b]  (ctrl+s saves, Esc cancels)")
            with VerticalScroll():
                for name, label in _FIELDS[self.kind]:
                    yield Label(label)
                    yield Input(self._value(name), id=f"f-{name}")
                if self.kind is FolderKind.TASKS:
                    status = self.item.status if isinstance(self.item, Task) else None
                    yield Label("Status")
                    yield Select(
                        [(s.value.replace("_", " "), s) for s in TaskStatus],
                        value=status or TaskStatus.NOT_STARTED,
                        allow_blank=False,
                        id="f-status",
                    )
                yield Label("Notes" if self.kind is not FolderKind.NOTES else "Text")
                yield TextArea(self.item.body or "" if self.item else "", id="f-body")
            yield Label("", id="form-error", classes="error")
            with Horizontal():
                yield Button("Save (ctrl+s)", id="save", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _get(self, name: str) -> str:
        return self.query_one(f"#f-{name}", Input).value.strip()

    def action_save(self) -> None:
        try:
            item = self._build()
        except ValueError as exc:
            self.query_one("#form-error", Label).update(str(exc))
            return
        self.dismiss(item)

    def _due(self) -> datetime | None:
        """The due date; an unchanged date keeps its time of day."""
        text = self._get("due")
        if isinstance(self.item, Task) and text == self._value("due"):
            return self.item.due
        return parse_due(text)

    def _build(self) -> Item:

        body = self.query_one("#f-body", TextArea).text
        values: dict[str, Any] = {"body": body or None}
        if self.kind is FolderKind.TASKS:
            subject = self._get("subject")
            if not subject:
                raise ValueError("A task needs a subject.")
            percent_text = self._get("percent_complete") or "0"
            if not percent_text.isdigit() or int(percent_text) > 100:
                raise ValueError("% complete is a whole number from 0 to 100.")
            status = self.query_one("#f-status", Select).value
            assert isinstance(status, TaskStatus)
            values |= {
                "subject": subject,
                "due": self._due(),
                "percent_complete": int(percent_text),
                "status": status,
            }
            base: Item = self.item if isinstance(self.item, Task) else Task()
        elif self.kind is FolderKind.CONTACTS:
            name = self._get("display_name") or " ".join(
                p for p in (self._get("given_name"), self._get("surname")) if p
            )
            if not name:
                raise ValueError("A contact needs a name.")
            emails = tuple(e.strip() for e in self._get("emails").split(",") if e.strip())
            if any("@" not in e for e in emails):
                raise ValueError("An e-mail address is missing its @.")
            phones = {k: self._get(k) for k in ("business", "mobile") if self._get(k)}
            values |= {
                "display_name": name,
                "subject": name,
                "given_name": self._get("given_name"),
                "surname": self._get("surname"),
                "company": self._get("company"),
                "job_title": self._get("job_title"),
                "emails": emails,
                "phones": phones,
            }
            base = self.item if isinstance(self.item, Contact) else Contact()
        else:
            title = self._get("subject") or body.strip().split("\n", 1)[0]
            if not title:
                raise ValueError("A note needs a title or some text.")
            values |= {"subject": title}
            base = self.item if isinstance(self.item, Note) else Note()
        return dataclasses.replace(base, **values)
