"""An image from a chat, shown where the terminal can draw it (Kitty, Sixel, else half blocks).

`textual-image` picks the best protocol the terminal offers; without the package (an optional
extra) the screen says the name and size, and `s` saves the file.
"""

from __future__ import annotations

import contextlib
import io
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from tui.chat_render import size_text
from tui.screens.base import medapp_of


def prepare_terminal_graphics() -> None:
    """Let textual-image ask the terminal what it can draw (Kitty, Sixel, cell size): that works
    only before Textual takes over the terminal, so the app factory calls this first."""
    with contextlib.suppress(ImportError):
        import textual_image.widget  # noqa: F401


class ImageScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    ImageScreen { align: center middle; }
    ImageScreen > Vertical {
        width: 90%; height: 90%; border: thick $accent; background: $surface; padding: 0 1;
    }
    ImageScreen #chat-image { height: 1fr; width: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,o", "close", "Close"),
        Binding("s", "save", "Save"),
    ]

    def __init__(self, name: str, data: bytes) -> None:
        super().__init__()
        self.image_name = name or "image"
        self.data = data

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"{self.image_name}  {size_text(len(self.data))}  — s: save, Esc: close")
            yield self._picture()

    def _picture(self) -> Static:
        try:
            from PIL import Image as PILImage
            from textual_image.widget import Image
        except ImportError:
            return Static(
                f"[{self.image_name}] — this terminal build cannot draw images; s saves it.",
                id="chat-image",
            )
        try:
            picture = PILImage.open(io.BytesIO(self.data))
            picture.load()
        except (OSError, ValueError):
            return Static("The image cannot be read; s saves the file.", id="chat-image")
        return Image(picture, id="chat-image")  # type: ignore[return-value]

    def action_save(self) -> None:
        target = medapp_of(self).config.downloads_dir
        target.mkdir(parents=True, exist_ok=True)
        path = target / self.image_name
        n = 1
        while path.exists():
            path = target / f"{path.stem.split(' (')[0]} ({n}){path.suffix}"
            n += 1
        path.write_bytes(self.data)
        self.notify(f"Saved to {path}.")

    def action_close(self) -> None:
        self.dismiss(None)
