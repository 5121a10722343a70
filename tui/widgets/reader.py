"""The reader pane: headers, readable body text, attachments; a pager over them."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from med.model import Item
from tui.presenter import body_text, header_lines, item_title

_MATCH = "black on yellow"


class Reader(VerticalScroll, can_focus=True, inherit_bindings=False):
    DEFAULT_CSS = """
    Reader { width: 1fr; border-left: solid $panel-lighten-2; padding: 0 1; }
    Reader:focus { border-left: thick $accent; }
    Reader #reader-head { margin-bottom: 1; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._body = Text()
        self._needle = ""
        self._matches: list[int] = []  # wrapped body lines holding the needle
        self._match = -1
        self._shown_id: str | None = None

    def compose(self):  # type: ignore[no-untyped-def]
        yield Static(id="reader-head")
        yield Static(id="reader-body")

    def show(self, item: Item | None, *, placeholder: str = "") -> None:
        head = self.query_one("#reader-head", Static)
        body = self.query_one("#reader-body", Static)
        same = item is not None and item.id == self._shown_id
        self._shown_id = item.id if item is not None else None
        if not same:
            self._needle, self._matches, self._match = "", [], -1
        if item is None:
            head.update(Text(placeholder, style="dim"))
            self._body = Text()
            body.update("")
            return
        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        table.add_row("Subject", Text(item_title(item), style="bold"))
        for label, value in header_lines(item):
            table.add_row(label, value)
        head.update(table)
        self._body = Text(body_text(item)) if item.body is not None else Text("…", style="dim")
        if same and self._needle:
            self.find(self._needle)  # the same item again (its body arrived): keep the place
        else:
            body.update(self._body)
        if not same:
            self.scroll_home(animate=False)

    # ------------------------------------------------------------------ pager

    def page(self, pages: int) -> None:
        """Scroll by whole screens (space, PgDn, PgUp), one line of overlap as `less` keeps."""
        height = max(self.scrollable_content_region.height - 1, 1)
        self.scroll_to(y=self.scroll_offset.y + pages * height, animate=False)

    def line(self, lines: int) -> None:
        self.scroll_to(y=self.scroll_offset.y + lines, animate=False)

    def find(self, needle: str) -> int:
        """Highlight `needle` in the body (case-insensitive) and show the first match; the count."""
        self._needle = needle.strip()
        shown = self._body.copy()
        if self._needle:
            shown.highlight_words([self._needle], _MATCH, case_sensitive=False)
        self.query_one("#reader-body", Static).update(shown)
        self._matches = self._match_lines()
        self._match = -1
        if self._matches:
            self.next_match(1)
        return len(self._matches)

    def next_match(self, step: int) -> bool:
        """Show the next (1) or previous (-1) line with a match; False without any."""
        if not self._matches:
            return False
        self._match = (self._match + step) % len(self._matches)
        head = self.query_one("#reader-head", Static)
        top = head.outer_size.height + 1  # the head's margin
        self.scroll_to(y=max(top + self._matches[self._match] - 2, 0), animate=False)
        return True

    @property
    def searching(self) -> str:
        return self._needle

    def _match_lines(self) -> list[int]:
        if not self._needle:
            return []
        width = max(self.query_one("#reader-body", Static).size.width, 10)
        wrapped = self._body.wrap(self.app.console, width)
        wanted = self._needle.lower()
        return [i for i, line in enumerate(wrapped) if wanted in line.plain.lower()]
