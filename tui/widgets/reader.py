"""The reader pane: headers, readable body text, attachments."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from med.model import Item
from tui.presenter import body_text, header_lines, item_title


class Reader(VerticalScroll, can_focus=True, inherit_bindings=False):
    DEFAULT_CSS = """
    Reader { width: 1fr; border-left: solid $panel-lighten-2; padding: 0 1; }
    Reader #reader-head { margin-bottom: 1; }
    """

    def compose(self):  # type: ignore[no-untyped-def]
        yield Static(id="reader-head")
        yield Static(id="reader-body")

    def show(self, item: Item | None, *, placeholder: str = "") -> None:
        head = self.query_one("#reader-head", Static)
        body = self.query_one("#reader-body", Static)
        if item is None:
            head.update(Text(placeholder, style="dim"))
            body.update("")
            return
        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        table.add_row("Subject", Text(item_title(item), style="bold"))
        for label, value in header_lines(item):
            table.add_row(label, value)
        head.update(table)
        body.update(Text(body_text(item)) if item.body is not None else Text("…", style="dim"))
        self.scroll_home(animate=False)
