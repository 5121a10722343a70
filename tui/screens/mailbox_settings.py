"""Out of office and inbox rules of one mailbox (own, the boss's, a functional one).

Both are the mailbox's settings: Exchange lets the owner and holders of FullAccess change
them; for anyone else the screen shows the server's refusal and nothing else. Rules are
listed in the order the server applies them; Enter switches the highlighted one on or off,
ctrl+n adds a common one ("flag WORD", "move SENDER FOLDER", "forward [SENDER]"), ctrl+x
removes one after asking.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, time
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Input, Label, OptionList, Select, Static, TextArea
from textual.widgets.option_list import Option

from med import (
    AutoReplies,
    AutoReplyState,
    ExternalAudience,
    InboxRule,
    Mailbox,
    MedError,
)
from tui.dates import parse_clock, parse_day
from tui.screens.base import MedModal
from tui.screens.dialogs import ConfirmScreen, PromptScreen

TIME_FORMAT = "%Y-%m-%d %H:%M"
RULE_HINT = "flag WORD · move SENDER FOLDER · forward [SENDER]"


@dataclass
class SettingsLoaded(Message):
    """The mailbox's automatic replies and rules, or why they cannot be shown."""

    replies: AutoReplies | None
    rules: list[InboxRule]
    error: str = ""
    note: str = ""


def parse_time(text: str) -> datetime | None:
    """ "2026-12-21 08:00" or "21.12.2026 08:00" (local time; the day alone means 00:00);
    empty is None."""
    parts = text.split()
    if not parts:
        return None
    if len(parts) > 2:
        raise ValueError("Write a day and a time: 2026-12-21 08:00.")
    clock = parse_clock(parts[1]) if len(parts) == 2 else time(0)
    return datetime.combine(parse_day(parts[0]), clock).astimezone()


class MailboxSettingsScreen(MedModal[None]):
    DEFAULT_CSS = """
    MailboxSettingsScreen { align: center middle; }
    MailboxSettingsScreen > Vertical {
        width: 100; height: 95%; border: thick $accent; background: $surface; padding: 0 1;
    }
    MailboxSettingsScreen Horizontal { height: auto; }
    MailboxSettingsScreen Horizontal Label { width: 10; padding: 1 0 0 0; }
    MailboxSettingsScreen Horizontal Input { width: 24; }
    MailboxSettingsScreen TextArea { height: 4; }
    MailboxSettingsScreen #ms-status { color: $warning; height: auto; }
    MailboxSettingsScreen #ms-rules { height: 1fr; min-height: 4; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save out of office", priority=True),
        Binding("ctrl+n", "add_rule", "Add rule", priority=True),
        Binding("ctrl+x", "delete_rule", "Delete rule", priority=True),
        Binding("escape", "close", "Close", priority=True),
    ]

    def __init__(self, mailbox: Mailbox) -> None:
        super().__init__()
        self.mailbox = mailbox
        self.replies: AutoReplies | None = None
        self.rules: list[InboxRule] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(
                f"[b]Out of office and rules[/b] — {self.mailbox.display_name} "
                f"<{self.mailbox.address}>"
            )
            yield Static("Loading…", id="ms-status", markup=False)
            with VerticalScroll():
                with Horizontal():
                    yield Label("State")
                    yield Select(
                        [
                            ("off", AutoReplyState.DISABLED.value),
                            ("on", AutoReplyState.ENABLED.value),
                            ("scheduled", AutoReplyState.SCHEDULED.value),
                        ],
                        allow_blank=False,
                        id="oof-state",
                    )
                    yield Label("Outside")
                    yield Select(
                        [
                            ("nobody", ExternalAudience.NONE.value),
                            ("contacts", ExternalAudience.KNOWN.value),
                            ("everyone", ExternalAudience.ALL.value),
                        ],
                        allow_blank=False,
                        value=ExternalAudience.ALL.value,
                        id="oof-audience",
                    )
                with Horizontal():
                    yield Label("From")
                    yield Input(placeholder="2026-12-21 08:00", id="oof-start")
                    yield Label("Until")
                    yield Input(placeholder="2027-01-04 08:00", id="oof-end")
                yield Label("Reply inside the organisation")
                yield TextArea(id="oof-internal")
                yield Label("Reply to senders outside")
                yield TextArea(id="oof-external")
                yield Label(f"Inbox rules (Enter: on/off · ctrl+n: {RULE_HINT})")
                yield OptionList(id="ms-rules")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    # ------------------------------------------------------------------ loading

    @work(exclusive=True, group="settings", exit_on_error=False)
    async def load(self, note: str = "") -> None:
        session = self.medapp.session
        address = self.mailbox.address
        try:
            replies = await session.auto_replies(address)
            rules = await session.inbox_rules(address)
        except MedError as exc:
            self.post_message(SettingsLoaded(None, [], str(exc)))
            return
        self.post_message(SettingsLoaded(replies, rules, note=note))

    def on_settings_loaded(self, message: SettingsLoaded) -> None:
        status = self.query_one("#ms-status", Static)
        if message.replies is None:
            status.update(message.error)
            for widget in self.query("Select, Input, TextArea, OptionList"):
                widget.disabled = True
            return
        status.update(message.note)
        self.replies, self.rules = message.replies, message.rules
        r = message.replies
        self.query_one("#oof-state", Select).value = r.state.value
        self.query_one("#oof-audience", Select).value = r.audience.value
        start = r.start.astimezone().strftime(TIME_FORMAT) if r.start else ""
        end = r.end.astimezone().strftime(TIME_FORMAT) if r.end else ""
        self.query_one("#oof-start", Input).value = start
        self.query_one("#oof-end", Input).value = end
        self.query_one("#oof-internal", TextArea).text = r.internal_reply
        self.query_one("#oof-external", TextArea).text = r.external_reply
        self._show_rules()

    def _show_rules(self) -> None:
        listing = self.query_one("#ms-rules", OptionList)
        before = listing.highlighted or 0
        listing.clear_options()
        listing.add_options(
            [
                Option(
                    f"{'on ' if rule.enabled else 'off'}  {rule.name}  — {rule.describe()}",
                    id=rule.id,
                )
                for rule in self.rules
            ]
            or [Option("(no rules)", disabled=True)]
        )
        if self.rules:  # the highlight stays where it was across a reload
            listing.highlighted = min(before, len(self.rules) - 1)

    # ------------------------------------------------------------------ out of office

    def _wanted(self) -> AutoReplies:
        assert self.replies is not None
        return dataclasses.replace(
            self.replies,
            state=AutoReplyState(str(self.query_one("#oof-state", Select).value)),
            audience=ExternalAudience(str(self.query_one("#oof-audience", Select).value)),
            start=parse_time(self.query_one("#oof-start", Input).value),
            end=parse_time(self.query_one("#oof-end", Input).value),
            internal_reply=self.query_one("#oof-internal", TextArea).text,
            external_reply=self.query_one("#oof-external", TextArea).text,
        )

    def action_save(self) -> None:
        if self.replies is None:
            return
        try:
            wanted = self._wanted()
        except ValueError as exc:
            self.notify(str(exc), severity="warning")
            return
        self.save(wanted)

    @work(exclusive=True, group="settings-save", exit_on_error=False)
    async def save(self, wanted: AutoReplies) -> None:
        kept = await self.medapp.session.set_auto_replies(self.mailbox.address, wanted)
        self.notify(f"Out of office for {self.mailbox.address}: {kept.state.value}.")
        self.load(note="Saved.")

    # ------------------------------------------------------------------ rules

    def _highlighted(self) -> InboxRule | None:
        listing = self.query_one("#ms-rules", OptionList)
        if listing.highlighted is None:
            return None
        option = listing.get_option_at_index(listing.highlighted)
        return next((r for r in self.rules if r.id == option.id), None)

    @on(OptionList.OptionSelected, "#ms-rules")
    def _toggle(self, event: OptionList.OptionSelected) -> None:
        rule = next((r for r in self.rules if r.id == event.option.id), None)
        if rule is not None:
            self.change_rule(rule, delete=False)

    def action_delete_rule(self) -> None:
        rule = self._highlighted()
        if rule is None:
            return

        def answered(yes: bool | None) -> None:
            if yes and rule is not None:
                self.change_rule(rule, delete=True)

        self.app.push_screen(ConfirmScreen(f"Delete the rule “{rule.name}”?"), answered)

    @work(exclusive=True, group="settings-save", exit_on_error=False)
    async def change_rule(self, rule: InboxRule, *, delete: bool) -> None:
        session = self.medapp.session
        if delete:
            await session.delete_rule(self.mailbox.address, rule.id)
            note = f"Deleted “{rule.name}”."
        else:
            changed = await session.enable_rule(self.mailbox.address, rule.id, not rule.enabled)
            note = f"“{changed.name}” is {'on' if changed.enabled else 'off'}."
        self.load(note=note)

    def action_add_rule(self) -> None:
        if self.replies is None:
            return

        def parsed(text: str) -> InboxRule:
            return self.parse_rule(text)

        def chosen(rule: InboxRule | None) -> None:
            if rule is not None:
                self.add_rule(rule)

        self.app.push_screen(PromptScreen("New rule", parsed, placeholder=RULE_HINT), chosen)

    def parse_rule(self, text: str) -> InboxRule:
        """A common rule from "flag WORD", "move SENDER FOLDER" or "forward [SENDER]"."""
        verb, _, rest = text.strip().partition(" ")
        rest = rest.strip()
        verb = verb.lower()
        if verb == "flag" and rest:
            return InboxRule.flag_by_keyword(rest)
        if verb == "forward":
            senders = tuple(rest.split()) if rest else ()
            return InboxRule.forward_to_assistant(self.medapp.workspace.user, senders=senders)
        if verb == "move" and len(rest.split(maxsplit=1)) == 2:
            sender, name = rest.split(maxsplit=1)
            tree = self.medapp.workspace.trees.get(self.mailbox.key)
            folders = [f for f in (tree.walk() if tree else []) if f.name.lower() == name.lower()]
            if not folders:
                raise ValueError(f"{self.mailbox.display_name} has no folder {name!r}.")
            return InboxRule.move_by_sender(sender, folders[0])
        raise ValueError(f"Write one of: {RULE_HINT}")

    @work(exclusive=True, group="settings-save", exit_on_error=False)
    async def add_rule(self, rule: InboxRule) -> None:
        made = await self.medapp.session.create_rule(self.mailbox.address, rule)
        self.load(note=f"Added “{made.name}”.")

    def action_close(self) -> None:
        self.dismiss(None)
