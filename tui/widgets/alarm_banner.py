"""The red alarm banner: on top of whatever screen is shown until the alarm is answered.

The app owns one `AlarmBoard`; `show_banner` puts a banner on the current screen (or takes it
away) whenever the board or the screen changes, so switching screens or opening a dialog never
hides an open alarm.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Static

__all__ = ["AlarmBanner", "show_banner"]


class AlarmBanner(Static):
    """What is alarmed, by whom, where, and the keys that answer it."""

    DEFAULT_CSS = """
    AlarmBanner {
        dock: top;
        width: 1fr;
        height: auto;
        max-height: 8;
        padding: 0 1;
        background: #b00020;
        color: #ffffff;
        text-style: bold;
    }
    """

    def show_lines(self, lines: list[str]) -> None:
        self.update("\n".join(lines))


def show_banner(screen: Screen[object], lines: list[str]) -> None:
    """Show `lines` in the screen's banner (mounting one if needed), or remove it when empty."""
    banners = list(screen.query(AlarmBanner))
    if not lines:
        for banner in banners:
            banner.remove()
        return
    if banners:
        banners[0].show_lines(lines)
    else:
        banner = AlarmBanner(id="alarm-banner")
        banner.show_lines(lines)
        screen.mount(banner)
