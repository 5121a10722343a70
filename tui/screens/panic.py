"""The panic dialog: confirm, and position plus voice message go to the emergency list.

The position comes from `[tui] panic_position` or is typed here; the voice message is the file
`[tui] panic_voice` or a recording made here with the system recorder. Nothing is sent until
the user confirms; what is missing is said in one sentence.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label

from messenger.client.alarms import Position
from tui.actions import PANIC_ACTIONS, bindings
from tui.alarm_board import format_position, parse_position
from tui.screens.base import MedModal
from tui.screens.dialogs import DIALOG_CSS
from tui.voice_recorder import VoiceClip, VoiceError, load_voice, record_voice

__all__ = ["PanicScreen"]


class PanicScreen(MedModal[None]):
    DEFAULT_CSS = (
        DIALOG_CSS.replace("{name}", "PanicScreen")
        + """
    PanicScreen > Vertical { border: thick $error; width: 76; padding: 0 2; max-height: 100%; }
    PanicScreen #panic-title { color: $error; text-style: bold; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = bindings(PANIC_ACTIONS)

    def __init__(self) -> None:
        super().__init__()
        self.voice: VoiceClip | None = None
        self.voice_problem = ""
        self.sending = False

    def compose(self) -> ComposeResult:
        config = self.medapp.config
        with Vertical():
            yield Label(
                "PANIC: your position and a voice message to the emergency list", id="panic-title"
            )
            yield Label("Position (latitude, longitude, accuracy in m):")
            yield Input(config.panic_position or "", placeholder="52.5200, 13.4050, 10", id="pos")
            yield Input("", placeholder="Message (optional): Tiefgarage Ebene 2", id="panic-text")
            yield Label("", id="voice")
            yield Label("", classes="error", id="panic-error")
            with Horizontal():
                yield Button("Send panic (ctrl+s)", id="send", variant="error")
                yield Button(f"Record {config.record_seconds} s (ctrl+r)", id="record")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        configured = self.medapp.config.panic_voice
        if configured is not None:
            try:
                self.voice = load_voice(configured)
            except VoiceError as exc:
                self.voice_problem = str(exc)
        self._show_voice()
        self.query_one("#pos", Input).focus()

    def _show_voice(self) -> None:
        label = self.query_one("#voice", Label)
        if self.voice is not None:
            label.update(
                f"Voice message: {Path(self.voice.source).name}, "
                f"{self.voice.duration_ms / 1000:.1f} s"
            )
        else:
            label.update(
                "Voice message: none yet — record one (ctrl+r)"
                + (f". {self.voice_problem}" if self.voice_problem else "")
            )

    def _error(self, text: str) -> None:
        self.query_one("#panic-error", Label).update(text)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "send":
            self.action_send()
        elif event.button.id == "record":
            self.action_record()
        else:
            self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        del event  # Enter in a field does not send: only the button or ctrl+s does

    def action_cancel(self) -> None:
        if not self.sending:
            self.dismiss(None)

    def action_record(self) -> None:
        if not self.sending:
            self.record()

    @work(exclusive=True, group="record", exit_on_error=False)
    async def record(self) -> None:
        config = self.medapp.config
        self._error("")
        self.query_one("#voice", Label).update(f"Recording {config.record_seconds} s … speak now.")
        target = Path(tempfile.mkdtemp(prefix="medbridge-panic-")) / "voice.wav"
        try:
            self.voice = await record_voice(config.voice_recorder, target, config.record_seconds)
            self.voice_problem = ""
        except VoiceError as exc:
            self.voice_problem = str(exc)
        self._show_voice()

    def action_send(self) -> None:
        if self.sending:
            return
        try:
            position = parse_position(self.query_one("#pos", Input).value)
        except ValueError as exc:
            self._error(str(exc))
            return
        if self.voice is None:
            self._error(
                self.voice_problem
                or "No voice message: record one (ctrl+r) or set [tui] panic_voice to a file."
            )
            return
        self.sending = True
        self._error("")
        self.query_one("#voice", Label).update("Sending the panic alarm …")
        self.send(position, self.voice, self.query_one("#panic-text", Input).value.strip())

    @work(exclusive=True, group="send", exit_on_error=False)
    async def send(self, position: Position, voice: VoiceClip, text: str) -> None:
        alarms = self.medapp.alarms
        assert alarms is not None
        sent = False
        try:
            raised = await alarms.panic(
                position, voice.data, duration_ms=voice.duration_ms, mime=voice.mime, text=text
            )
            sent = True
        finally:
            if not sent:  # the app's one handler says what went wrong; the dialog stays
                self.sending = False
                self._show_voice()
        self.medapp.alarm_board.raised(
            raised.alarm_id,
            text or format_position(position, link=False),
            "panic",
            "emergency list",
            self.medapp.raising_profile,
        )
        self.medapp.alarms_updated()
        self.notify("Panic alarm sent to the emergency list.", severity="warning", timeout=8)
        self.dismiss(None)
