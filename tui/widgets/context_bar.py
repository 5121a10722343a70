"""The bar on top of every main screen: whose mailbox, which folder, your rights; and progress."""

from __future__ import annotations

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.visual import VisualType
from textual.widgets import Static


class ContextBar(Static):
    """Always shows whose mailbox this is, the folder, and the user's rights in it."""

    DEFAULT_CSS = """
    ContextBar { width: 1fr; height: 1; padding: 0 1; }
    """

    _variants: tuple[str, ...] = ()

    def show_fitting(self, *texts: str) -> None:
        """Show the first text that fits the bar, else the last (the shortest), again on every
        resize: callers shorten the other parts, never the owner and the rights."""
        room = self.size.width or self.app.size.width - 2  # before the first layout: the padding
        self.update(next((t for t in texts if cell_len(t) <= room), texts[-1]))
        self._variants = texts

    def update(self, content: VisualType = "", *, layout: bool = True) -> None:
        self._variants = ()
        super().update(content, layout=layout)

    def on_resize(self) -> None:
        if self._variants:
            self.show_fitting(*self._variants)


class BusyLabel(Static):
    """What the app is waiting for (e.g. "⟳ loading items…"), empty when idle."""

    DEFAULT_CSS = """
    BusyLabel { width: auto; height: 1; padding: 0 1; color: $warning; text-style: bold; }
    BusyLabel.-offline { background: $error; color: $text; }
    """


class NewMailNotice(Static):
    """ "3 new — g": mail that arrived above the rows in view (hidden when there is none)."""

    DEFAULT_CSS = """
    NewMailNotice { display: none; width: auto; height: 1; padding: 0 1; }
    NewMailNotice.-shown { display: block; background: $success; color: $text; }
    """

    def show_count(self, count: int, key: str) -> None:
        self.update(f"{count} new — {key}" if count else "")
        self.set_class(count > 0, "-shown")


class TopBar(Horizontal):
    DEFAULT_CSS = """
    TopBar { height: 1; background: $primary; color: $text; }
    """

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        yield ContextBar(self.text, id="context")
        yield NewMailNotice("", id="new-mail")
        yield BusyLabel("", id="busy")
