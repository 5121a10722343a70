"""The alarm screen: alarms for you (answer them), alarms you raised or watch (who answered),
and raising a new alarm to one of the tenant's alarm lists."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Label

from messenger.client.alarms import LEVELS
from tui import messages as msg
from tui.actions import ALARM_ACTIONS, ALARM_STATUS_ACTIONS, bindings
from tui.alarm_board import (
    LEVEL_LABEL,
    WatchedAlarm,
    answer_rows,
    format_position,
    local_time,
)
from tui.screens.base import MedModal, MedScreen
from tui.widgets.context_bar import TopBar

__all__ = ["AlarmStatusScreen", "AlarmsScreen"]


class AlarmsScreen(MedScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = bindings(ALARM_ACTIONS)
    DEFAULT_CSS = """
    AlarmsScreen Label.heading { padding: 0 1; text-style: bold; margin-top: 1; }
    AlarmsScreen DataTable { height: auto; max-height: 10; }
    AlarmsScreen #alarms-hint { padding: 0 1; color: $text-muted; }
    AlarmsScreen #alarm-detail { padding: 0 1; height: auto; }
    """

    def __init__(self) -> None:
        super().__init__(id="alarms")

    def compose(self) -> ComposeResult:
        yield TopBar("Alarms")
        with Vertical():
            yield Label("For you", classes="heading")
            yield DataTable(id="received", cursor_type="row", zebra_stripes=True)
            yield Label("", id="alarm-detail")
            yield Label("Raised by you or watched by you", classes="heading")
            yield DataTable(id="watched", cursor_type="row", zebra_stripes=True)
            yield Label("", id="alarms-hint")
        yield Footer()

    def on_mount(self) -> None:
        received = self.query_one("#received", DataTable)
        received.add_columns("Level", "From", "Text", "Round", "Raised")
        watched = self.query_one("#watched", DataTable)
        watched.add_columns("Level", "List", "Text", "State", "Answers")
        self.alarms_changed()

    def on_screen_resume(self) -> None:
        self.alarms_changed()

    def alarms_changed(self) -> None:
        """Redraw both tables from the app's board (called on every alarm change)."""
        board = self.medapp.alarm_board
        received = self.query_one("#received", DataTable)
        received.clear()
        for alarm in reversed(list(board.received.values())):
            received.add_row(
                LEVEL_LABEL.get(alarm.level, alarm.level),
                board.name(alarm.sender_user_id),
                alarm.text[:60],
                str(alarm.round),
                local_time(alarm.raised_at, self.medapp.now().tzinfo, "%H:%M"),
                key=alarm.alarm_id,
            )
        watched = self.query_one("#watched", DataTable)
        watched.clear()
        for item in reversed(list(board.watched.values())):
            acks = sum(1 for a in item.answers if a.kind == "acknowledged")
            declines = sum(1 for a in item.answers if a.kind == "declined")
            watched.add_row(
                LEVEL_LABEL.get(item.level, item.level or "?"),
                item.list_name,
                item.text[:40],
                item.state,
                f"{acks} ack, {declines} declined",
                key=item.alarm_id,
            )
        self._show_detail()
        self.refresh_bindings()
        if isinstance(self.focused, DataTable) and not self.focused.row_count:
            other = watched if self.focused is received else received
            if other.row_count:
                other.focus()  # the table with something to act on
        hint = self.query_one("#alarms-hint", Label)
        if self.medapp.alarms is None:
            hint.update("The messenger is not connected: no alarms can be received or raised.")
        elif board.rejected:
            hint.update(f"{board.rejected} alarm event(s) could not be verified and are not shown.")
        else:
            hint.update("")

    @on(DataTable.RowHighlighted, "#received")
    def _show_detail(self) -> None:
        """The selected alarm in full: its text, the position with a map link, the voice."""
        alarm = self.medapp.alarm_board.received.get(self._selected("received") or "")
        lines: list[str] = []
        if alarm is not None:
            lines.append(alarm.text)
            if alarm.position is not None:
                lines.append("Position: " + format_position(alarm.position))
            if alarm.attachment is not None:
                seconds = (alarm.attachment.duration_ms or 0) / 1000
                lines.append(f"Voice message {seconds:.0f} s: p plays it")
        self.query_one("#alarm-detail", Label).update("\n".join(lines))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if not self.is_mounted:
            return True
        received = self.query_one("#received", DataTable).row_count > 0
        watched = self.query_one("#watched", DataTable).row_count > 0
        if action in ("answer_selected", "play_voice"):
            return received
        if action in ("alarm_status", "end_alarm"):
            return watched
        if action == "raise_alarm":
            return self.medapp.alarms is not None
        return True

    # ------------------------------------------------------------------ selection

    def _selected(self, table_id: str) -> str | None:
        table = self.query_one(f"#{table_id}", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return str(key) if key is not None else None

    def action_move(self, delta: int) -> None:
        focused = self.focused
        if isinstance(focused, DataTable):
            focused.action_cursor_down() if delta > 0 else focused.action_cursor_up()

    @on(DataTable.RowSelected, "#watched")
    def _watched_chosen(self, event: DataTable.RowSelected) -> None:
        self.action_alarm_status()

    def action_alarm_status(self) -> None:
        alarm_id = self._selected("watched")
        if alarm_id is None:
            self.notify("Raise an alarm first (n); its answers show here.")
            return
        self.app.push_screen(AlarmStatusScreen(alarm_id))

    def action_answer_selected(self, kind: str) -> None:
        alarm_id = self._selected("received")
        if alarm_id is None:
            return
        if kind == "acknowledged":
            self.medapp.answer_alarm(alarm_id, "acknowledged")
        else:
            self.medapp.ask_decline(alarm_id)

    def action_end_alarm(self) -> None:
        alarm_id = self._selected("watched")
        if alarm_id is not None:
            self.end_alarm(alarm_id)

    @work(group="alarm", exit_on_error=False)
    async def end_alarm(self, alarm_id: str) -> None:
        alarms = self.medapp.alarms_of(alarm_id)
        if alarms is None:
            return
        await alarms.end(alarm_id)
        self.notify("Alarm ended for everyone.")

    # ------------------------------------------------------------------ raising

    def action_raise_alarm(self) -> None:
        if self.medapp.alarms is None:
            self.notify("The messenger is not connected.", severity="error")
            return
        self.choose_list()

    @work(group="alarm", exit_on_error=False)
    async def choose_list(self) -> None:
        alarms = self.medapp.alarms
        assert alarms is not None
        lists = await alarms.client.alarm_lists()
        self.post_message(msg.AlarmListsLoaded(lists))

    def on_alarm_lists_loaded(self, message: msg.AlarmListsLoaded) -> None:
        """Ask list, level and text one after the other (Esc at any step raises nothing)."""
        from tui.screens.dialogs import ChoiceScreen, PromptScreen

        if not message.lists:
            self.notify("Your organisation has no alarm lists; its administrators set them up.")
            return
        choices = [
            (str(row["name"]) + (" (emergency)" if row.get("emergency") else ""), row)
            for row in message.lists
        ]
        levels = [(LEVEL_LABEL[name], name) for name in LEVELS if name != "panic"]

        def text_of(value: str) -> str:
            if not value.strip():
                raise ValueError("Say what happened; the recipients read it.")
            return value.strip()

        def list_chosen(chosen: dict[str, Any] | None) -> None:
            if chosen is None:
                return

            def level_chosen(level: str | None) -> None:
                if level is None:
                    return

                def text_given(text: str | None) -> None:
                    if text is not None:
                        self.raise_alarm(chosen, level, text)

                question = f"{LEVEL_LABEL[level]} to {chosen['name']}: what happened?"
                self.app.push_screen(PromptScreen(question, text_of), text_given)

            self.app.push_screen(ChoiceScreen("Level:", levels), level_chosen)

        self.app.push_screen(ChoiceScreen("Raise an alarm to:", choices), list_chosen)

    @work(group="alarm", exit_on_error=False)
    async def raise_alarm(self, chosen: dict[str, Any], level: str, text: str) -> None:
        alarms = self.medapp.alarms
        assert alarms is not None
        raised = await alarms.raise_alarm(str(chosen["list_id"]), text, level=level)
        self.medapp.alarm_board.raised(
            raised.alarm_id, text, level, str(chosen["name"]), self.medapp.raising_profile
        )
        self.notify(f"Alarm raised to {chosen['name']}; Enter shows who answered.")
        self.medapp.alarms_updated()

    # ------------------------------------------------------------------ voice

    def action_play_voice(self) -> None:
        alarm_id = self._selected("received")
        board = self.medapp.alarm_board
        alarm = board.received.get(alarm_id or "")
        if alarm is None or alarm.attachment is None:
            self.notify("This alarm has no voice message.")
            return
        self.play_voice(alarm_id)

    @work(group="attachment", exit_on_error=False)
    async def play_voice(self, alarm_id: str | None) -> None:
        from tui.screens.attachments import playback

        alarms = self.medapp.alarms_of(alarm_id or "")
        alarm = self.medapp.alarm_board.received.get(alarm_id or "")
        if alarms is None or alarm is None or alarm.attachment is None:
            return
        data = await alarms.fetch_attachment(alarm.attachment)
        suffix = ".wav" if alarm.attachment.mime == "audio/wav" else ".ogg"
        command, path = playback(data, suffix, self.medapp.config.audio_player)
        if command is None:
            self.notify(f"No audio player found; the voice message is saved at {path}.")
            return
        self.play_file(command, path)

    @work(thread=True, group="player", exit_on_error=False)
    def play_file(self, command: list[str], path: Path) -> None:
        from tui.screens.attachments import run_player

        run_player(command, path)


class AlarmStatusScreen(MedModal[None]):
    """Who was alarmed and who answered, updated live while it is open."""

    DEFAULT_CSS = """
    AlarmStatusScreen { align: center middle; }
    AlarmStatusScreen > Vertical {
        width: 96%; max-width: 110; height: auto; max-height: 90%;
        border: thick $error; background: $surface; padding: 0 1;
    }
    AlarmStatusScreen DataTable { height: auto; max-height: 14; }
    """
    BINDINGS: ClassVar[list[BindingType]] = bindings(ALARM_STATUS_ACTIONS)

    def __init__(self, alarm_id: str) -> None:
        super().__init__()
        self.alarm_id = alarm_id
        self.status: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("", id="status-head")
            yield DataTable(id="answers", cursor_type="row")
            yield Label("Esc closes · E ends the alarm for everyone", id="status-hint")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Recipient", "Tier", "Rounds", "Answer", "At", "Reason")
        self._draw()
        self.load()

    def alarms_changed(self) -> None:
        self.load()

    @work(exclusive=True, group="alarm-status", exit_on_error=False)
    async def load(self) -> None:
        alarms = self.medapp.alarms_of(self.alarm_id)
        if alarms is None:
            return
        status = await alarms.status(self.alarm_id)
        names = self.medapp.alarm_board.names
        unknown = [
            str(r["user_id"]) for r in status.get("recipients", []) if r["user_id"] not in names
        ]
        if unknown:
            self.medapp.resolve_names(unknown)
        self.post_message(msg.AlarmStatusLoaded(self.alarm_id, status))

    def on_alarm_status_loaded(self, message: msg.AlarmStatusLoaded) -> None:
        if message.alarm_id == self.alarm_id:
            self.status = message.status
            self._draw()

    def _draw(self) -> None:
        board = self.medapp.alarm_board
        watched = board.watched.get(self.alarm_id) or WatchedAlarm(self.alarm_id)
        state = self.status.get("state", watched.state)
        level = self.status.get("level", watched.level)
        head = f"{LEVEL_LABEL.get(level, level)} · {state}"
        if watched.list_name:
            head += f" · list {watched.list_name}"
        if watched.text:
            head += f"\n{watched.text}"
        self.query_one("#status-head", Label).update(head)
        table = self.query_one(DataTable)
        table.clear()
        for row in answer_rows(self.status, board.names, self.medapp.now().tzinfo):
            table.add_row(*row)

    def action_end_alarm(self) -> None:
        self.end_alarm()

    @work(group="alarm", exit_on_error=False)
    async def end_alarm(self) -> None:
        alarms = self.medapp.alarms_of(self.alarm_id)
        if alarms is not None:
            await alarms.end(self.alarm_id)
            self.load()
