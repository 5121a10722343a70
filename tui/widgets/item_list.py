"""A virtual list of a folder's items: renders only visible rows, asks for pages it lacks.

Ten thousand items cost ten thousand slots in a dict at most; a page is requested the first
time one of its rows scrolls into view, so opening a big folder fetches one page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rich.cells import set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from med.model import Item, Page
from med.model import Message as MailMessage
from tui.presenter import row_columns

_UNREAD = Style(bold=True)
_CURSOR = Style(reverse=True)
_PENDING = Style(dim=True, italic=True)


class ItemList(ScrollView, can_focus=True, inherit_bindings=False):
    """Rows of one folder (or search result); the owning screen feeds pages in."""

    DEFAULT_CSS = """
    ItemList { height: 1fr; overflow-x: hidden; }
    ItemList:focus { border-left: thick $accent; }
    """

    @dataclass
    class PageWanted(Message):
        """A row without data became visible; load the page starting at `offset`."""

        item_list: ItemList
        offset: int
        generation: int

    @dataclass
    class NewAbove(Message):
        """`count` new items arrived above the rows in view (0: all seen)."""

        item_list: ItemList
        count: int

    @dataclass
    class Highlighted(Message):
        item_list: ItemList
        index: int
        item: Item | None

    cursor: reactive[int] = reactive(0, always_update=True)

    def __init__(self, *, page_size: int = 200, now: datetime, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.page_size = page_size
        self.now = now
        self.rows: dict[int, Item] = {}
        self.total = 0
        self.generation = 0
        self._requested: set[int] = set()
        self._empty_text = ""
        #: New items that arrived above the rows in view and were not scrolled to yet.
        self.new_above = 0

    # ------------------------------------------------------------------ data

    def reset(self, empty_text: str = "Loading…") -> int:
        """Forget all rows (new folder or search); returns the generation pages must carry."""
        self.generation += 1
        self.rows.clear()
        self._requested.clear()
        self.total = 0
        self._empty_text = empty_text
        self._set_new_above(0)
        self.virtual_size = Size(0, 0)
        self.set_reactive(ItemList.cursor, 0)
        self.scroll_to(y=0, animate=False)
        self.refresh()
        return self.generation

    def add_page(self, page: Page[Item], generation: int) -> None:
        if generation != self.generation:
            return  # a page of a folder no longer shown
        for i, item in enumerate(page.items):
            self.rows[page.offset + i] = item
        loaded_end = page.offset + len(page.items)
        if page.total is not None:
            self.total = page.total
        else:
            self.total = max(self.total, loaded_end + (self.page_size if page.more else 0))
        if not page.more:
            self.total = max(min(self.total, loaded_end), len(self.rows))
        if self.total == 0:
            self._empty_text = "No items"
        self.virtual_size = Size(0, self.total)
        self.refresh()
        if page.offset <= self.cursor < loaded_end:
            self._announce()

    def merge_top(self, page: Page[Item]) -> None:
        """Fresh first rows after a live change: the cursor stays on the item it was on.

        Rows further down move by as many items as arrived on top (by where the old first
        row is now) and are re-fetched when they scroll into view. Looking at the top of the
        list, one sees the new rows come in (the view stays at the top); further down the
        view stays on the same rows and `new_above` counts what arrived above it.
        """
        old_current = self.current
        old_first = self.rows.get(0)
        head = {i: item for i, item in enumerate(page.items)}
        ids = [item.id for item in page.items]
        shift = ids.index(old_first.id) if old_first is not None and old_first.id in ids else 0
        rows = dict(head)
        for index, row in self.rows.items():
            if index + shift >= len(head):
                rows[index + shift] = row
        self.generation += 1  # pages asked for under the old numbering are dropped
        self._requested = {0}
        self.rows = rows
        if page.total is not None:
            self.total = page.total
        else:
            self.total = max(self.total + shift, len(head) + (self.page_size if page.more else 0))
        if not page.more and page.total is None:
            self.total = len(head)
        self.virtual_size = Size(0, self.total)
        cursor = self.cursor + shift
        if old_current is not None and old_current.id in ids:
            cursor = ids.index(old_current.id)
        cursor = max(0, min(cursor, max(self.total - 1, 0)))
        top = round(self.scroll_offset.y)
        self.set_reactive(ItemList.cursor, cursor)
        if top == 0:
            # At the top: the new rows come into view; only scroll if the cursor would leave it.
            height = max(self.scrollable_content_region.height, 1)
            self.scroll_to(y=max(cursor - height + 1, 0), animate=False)
        else:
            self.scroll_to(y=max(top + shift, 0), animate=False)
            self._set_new_above(self.new_above + shift)
        self.refresh()
        now_current = self.current
        if now_current is None or old_current is None or now_current.id != old_current.id:
            self._announce()

    def replace(self, item: Item) -> None:
        """Show a changed item in place (flag, read state ...)."""
        for index, row in self.rows.items():
            if row.id == item.id:
                self.rows[index] = item
                self.refresh_line(index)
                return

    def remove_item(self, item_id: str) -> None:
        """Drop a deleted or moved item; later rows move up."""
        index = next((i for i, row in self.rows.items() if row.id == item_id), None)
        if index is None:
            return
        shifted = {(i - 1 if i > index else i): row for i, row in self.rows.items() if i != index}
        self.rows = shifted
        self.total = max(self.total - 1, 0)
        self._requested = {o for o in self._requested if o <= index}
        self.virtual_size = Size(0, self.total)
        self.cursor = min(self.cursor, max(self.total - 1, 0))
        self.refresh()

    @property
    def loaded(self) -> bool:
        """The listing's first page has arrived (the list no longer says "Loading…")."""
        return bool(self.rows) or self._empty_text != "Loading…"

    @property
    def current(self) -> Item | None:
        return self.rows.get(self.cursor)

    # ------------------------------------------------------------------ cursor

    def move(self, delta: int) -> None:
        if self.total:
            self.cursor = max(0, min(self.total - 1, self.cursor + delta))

    def go(self, index: int) -> None:
        if self.total:
            self.cursor = max(0, min(self.total - 1, index))

    def _set_new_above(self, count: int) -> None:
        if count != self.new_above:
            self.new_above = count
            self.post_message(self.NewAbove(self, count))

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if round(new) == 0 and self.new_above:
            self._set_new_above(0)  # scrolled up to the new rows: seen

    def watch_cursor(self, old: int, new: int) -> None:
        height = max(self.scrollable_content_region.height, 1)
        top = round(self.scroll_offset.y)
        if new < top:
            self.scroll_to(y=new, animate=False)
        elif new >= top + height:
            self.scroll_to(y=new - height + 1, animate=False)
        self.refresh_line(old)
        self.refresh_line(new)
        self._announce()

    def _announce(self) -> None:
        self.post_message(self.Highlighted(self, self.cursor, self.current))
        if self.current is None and self.total:
            self.want(self.cursor)

    def refresh_line(self, index: int) -> None:
        self.refresh_lines(index - round(self.scroll_offset.y), 1)

    def want(self, index: int) -> None:
        """Ask (once) for the page holding row `index`."""
        offset = index - index % self.page_size
        if offset not in self._requested:
            self._requested.add(offset)
            self.post_message(self.PageWanted(self, offset, self.generation))

    # ------------------------------------------------------------------ rendering

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index = round(self.scroll_offset.y) + y
        if self.total == 0:
            text = self._empty_text if y == 0 else ""
            return Strip([Segment(set_cell_size(text, width), _PENDING)], width)
        if index >= self.total:
            return Strip.blank(width)
        item = self.rows.get(index)
        if item is None:
            self.want(index)
            return Strip([Segment("  …".ljust(width)[:width], _PENDING)], width)
        flags, when, who, what = row_columns(item, self.now)
        who_width = max(min(22, width // 4), 8)
        # Cut and pad by terminal cells, not characters: an emoji or a CJK character takes
        # two cells, and a row one cell too wide pushes the pane's border out of line.
        line = f"{flags} {when:>8}  {set_cell_size(who, who_width)}  {what}"
        line = set_cell_size(line, width)
        style = Style()
        if isinstance(item, MailMessage) and not item.is_read:
            style += _UNREAD
        if index == self.cursor:
            style += _CURSOR
        return Strip([Segment(line, style)], width)

    def on_resize(self) -> None:
        self.virtual_size = Size(0, self.total)
