"""A few screenshots compared with approved SVGs: fixed size, animations off, frozen clock.

Update after an intended change with `pytest tests/tui/test_snapshots.py --snapshot-update`
and look at the SVGs in `tests/tui/__snapshots__/` before committing them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from med import DelegateSession
from tests.tui.conftest import MAILBOXES, settle
from tests.tui.fakeorg import NOW, FakeOrg
from tui.app import MedApp, make_app
from tui.config import TuiConfig

SIZE = (130, 34)


def demo_app(tmp_path: Path, **kwargs: Any) -> MedApp:
    config = TuiConfig(
        drafts_dir=tmp_path / "drafts", animations=False, downloads_dir=tmp_path / "dl"
    )
    session = DelegateSession(FakeOrg(), mailboxes=MAILBOXES)
    return make_app(session, config, clock=lambda: NOW, **kwargs)


async def _settled(pilot: Any) -> None:
    await settle(pilot)


def test_main_screen(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("l", "j", "j")
        await settle(pilot)

    assert snap_compare(demo_app(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_calendar_week_with_team_overlay(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)
        screen = pilot.app.screen
        screen.set_overlay("teamkalender:calendar")
        await settle(pilot)

    assert snap_compare(demo_app(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_help_lists_active_bindings(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)

    assert snap_compare(demo_app(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_reviewer_folder_footer(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    app = demo_app(tmp_path, start_folder="public/Adressen extern")
    assert snap_compare(app, terminal_size=SIZE, run_before=_settled)


def test_calendar_day_grid_with_team_overlay(
    snap_compare: Callable[..., bool], tmp_path: Path
) -> None:
    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)
        pilot.app.screen.set_overlay("teamkalender:calendar")
        await settle(pilot)
        await pilot.press("D")
        await settle(pilot)

    assert snap_compare(demo_app(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_scheduling_assistant_grid(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    from tests.tui.fakeorg import CHEF, ME
    from tui.screens.scheduling import SchedulingScreen

    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        pilot.app.push_screen(SchedulingScreen(CHEF, NOW.date(), ME, ""))
        await settle(pilot)
        pilot.app.screen.query_one("#sa-slots").focus()  # no blinking text cursor in the picture
        await settle(pilot)

    assert snap_compare(demo_app(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_two_profiles_mail_screen(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    """Two organisations side by side: the tree grouped by profile, the header naming the
    organisation and whose mailbox is shown."""
    from tui.profiles import OpenProfile

    config = TuiConfig(
        drafts_dir=tmp_path / "drafts", animations=False, downloads_dir=tmp_path / "dl"
    )
    profiles = [
        OpenProfile(
            "kreis",
            DelegateSession(FakeOrg(), mailboxes=MAILBOXES),
            organisation="Kreis Musterstadt",
        ),
        OpenProfile("klinikum", DelegateSession(FakeOrg(), mailboxes=MAILBOXES[:1])),
    ]
    app = make_app(None, config, clock=lambda: NOW, profiles=profiles)

    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("l", "j")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_messenger_screen(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    """Conversations with unread counts, verified and unverified senders, a reply, a reaction,
    receipts, a position, an image and a voice message, in the tenant's colour."""
    from tests.tui.chat_fixture import filled_hub

    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        pilot.app.messenger = filled_hub(pilot.app.post_message, tmp_path, NOW)
        await pilot.press("6")
        await settle(pilot)
        pilot.app.screen.query_one("#chat-messages").focus()
        await settle(pilot)

    assert snap_compare(demo_app(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_alarm_banner_at_80x24(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    """An urgent alarm with position and voice over the mail screen, in the smallest terminal
    the TUI supports; its keys are the ones the user bound."""
    from messenger.client.alarms import AlarmAttachment, AlarmReceived, Position
    from messenger.crypto import AttachmentKey

    alarm = AlarmReceived(
        alarm_id="a-1",
        list_id="l-1",
        level="alarm",
        text="Brand in Halle 3, bitte sofort räumen",
        round=2,
        tier=1,
        sender_user_id="u-leitstelle",
        sender_device_id="d-1",
        raised_at="2026-03-02T09:58:00+00:00",
        position=Position(52.52, 13.405, 10.0),
        attachment=AlarmAttachment(
            "v-1", "audio/ogg", "voice.ogg", AttachmentKey(b"k" * 32, b"h" * 32, 9000), 7000
        ),
    )

    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        app = pilot.app
        app.alarm_board.names["u-leitstelle"] = "Leitstelle Nord"
        app.alarm_board.apply([alarm], {"a-1": alarm})
        app.alarms_updated()
        await settle(pilot)

    assert snap_compare(demo_app(tmp_path), terminal_size=(80, 24), run_before=run_before)
