"""The help screen: every binding active on the screen below, with its id for the keymap."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from tui.presenter import STATUS_LEGEND


def binding_table(screen: Screen[object]) -> Table:
    """Key, action id and description of each binding reachable from `screen`."""
    table = Table(box=None, padding=(0, 2), show_header=True, header_style="bold")
    table.add_column("Key")
    table.add_column(Text("Id (for [keymap])"))
    table.add_column("Action")
    seen: set[tuple[str, str]] = set()
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if binding.id is None or (binding.id, key) in seen:
            continue
        seen.add((binding.id, key))
        display = screen.app.get_key_display(binding.with_key(key))
        style = "" if active.enabled else "dim strike"
        table.add_row(
            Text(display, style=style),
            Text(binding.id, style=style),
            Text(binding.description or binding.action, style=style),
        )
    return table


def legend_table() -> Table:
    """The glyphs of the list's status columns and what they mean."""
    table = Table(box=None, padding=(0, 2), show_header=True, header_style="bold")
    half = (len(STATUS_LEGEND) + 1) // 2
    for _ in range(2):
        table.add_column("List")
        table.add_column("Means")
    for left, right in zip(STATUS_LEGEND[:half], [*STATUS_LEGEND[half:], ("", "")], strict=True):
        table.add_row(*left, *right)
    return table


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 80; height: 80%; border: thick $accent; background: $surface; padding: 0 1;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "app.pop_screen", "Close")
    ]

    def __init__(self, table: Table) -> None:
        super().__init__()
        self.table = table

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(legend_table(), id="help-legend")
            yield Static(
                Text.assemble(
                    ("Keys", "bold"),
                    "  (struck out: not allowed here; rebind in the [keymap] table of config.toml)",
                )
            )
            yield Static(self.table, id="help-table")
