"""Attachments of one item: save to a folder, or play a voicemail with the system's player."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from med.model import Attachment, Item, Voicemail
from tui.screens.base import medapp_of

if TYPE_CHECKING:
    from tui.app import MedApp

_PLAYERS = ("xdg-open", "paplay", "aplay", "afplay")


# A voice message lasts seconds to minutes; a player that hangs is stopped after this.
PLAYER_TIMEOUT_S = 600


def playback(data: bytes, suffix: str, configured: str | None) -> tuple[list[str] | None, Path]:
    """Write a sound to a temporary file (players read paths); (the player's command or None,
    the file), so a caller without a player can tell the user where the sound is."""
    with tempfile.NamedTemporaryFile(suffix=suffix, delete=False) as fh:
        fh.write(data)
    return audio_player(configured), Path(fh.name)


def run_player(command: list[str], path: Path) -> None:
    """Blocking and external: call it from a thread worker so the UI stays responsive. The
    command is the user's configured player or one found on PATH, never message content."""
    subprocess.run(  # noqa: S603
        [*command, str(path)], check=False, capture_output=True, timeout=PLAYER_TIMEOUT_S
    )


def _size(n: int | None) -> str:
    if n is None:
        return ""
    return f"{n / 1024:.0f} KB" if n >= 1024 else f"{n} B"


def audio_player(configured: str | None) -> list[str] | None:
    """The command that plays a sound file, or None when the system has none."""
    if configured:
        return configured.split()
    for name in _PLAYERS:
        path = shutil.which(name)
        if path:
            return [path]
    return None


class AttachmentsScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    AttachmentsScreen { align: center middle; }
    AttachmentsScreen > Vertical {
        width: 70; height: auto; border: thick $accent; background: $surface; padding: 1 2;
    }
    AttachmentsScreen OptionList { height: auto; max-height: 15; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "save", "Save", id="attachment-save"),
        Binding("p", "play", "Play", id="attachment-play"),
        Binding("escape,q", "close", "Close"),
    ]

    def __init__(self, item: Item) -> None:
        super().__init__()
        self.item = item
        self.attachments = [a for a in item.attachments if not a.is_inline] or list(
            item.attachments
        )

    @property
    def medapp(self) -> MedApp:
        return medapp_of(self)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Attachments of “{self.item.subject}” — s: save to Downloads, p: play")
            yield OptionList(
                *[
                    Option(f"{a.name}  {a.content_type}  {_size(a.size)}", id=str(i))
                    for i, a in enumerate(self.attachments)
                ],
                id="attachment-list",
            )

    def _chosen(self) -> Attachment | None:
        index = self.query_one(OptionList).highlighted
        if index is None and self.attachments:
            index = 0
        return self.attachments[index] if index is not None else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "play":
            chosen = self._chosen() if self.is_mounted else None
            return isinstance(self.item, Voicemail) or bool(
                chosen and chosen.content_type.startswith("audio/")
            )
        return True

    def action_save(self) -> None:
        attachment = self._chosen()
        if attachment is not None:
            self.save(attachment)

    @work(group="attachment", exit_on_error=False)
    async def save(self, attachment: Attachment) -> None:
        target = self.medapp.config.downloads_dir
        target.mkdir(parents=True, exist_ok=True)
        path = await self.medapp.session.save_attachment(attachment, target)
        self.notify(f"Saved to {path}.")

    def action_play(self) -> None:
        attachment = self._chosen()
        if attachment is not None:
            self.play(attachment)

    @work(group="attachment", exit_on_error=False)
    async def play(self, attachment: Attachment) -> None:
        content = await self.medapp.session.attachment(attachment)
        suffix = Path(attachment.name).suffix or ".wav"
        command, path = playback(content.content, suffix, self.medapp.config.audio_player)
        if command is None:
            self.notify(f"No audio player found; the recording is saved at {path}.")
            return
        self.play_file(command, path)

    @work(thread=True, group="player", exit_on_error=False)
    def play_file(self, command: list[str], path: Path) -> None:
        run_player(command, path)

    def action_close(self) -> None:
        self.dismiss(None)
