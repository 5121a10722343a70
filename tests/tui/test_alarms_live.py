"""Alarms and the panic key in the TUI against a real messenger server.

The TUI's account is a real E2E device (`tui.messaging.MessengerConnection`); the other side is
a second person's SDK client, so what the tests check is what crossed the wire: the server's
record of answers, and what the emergency list's member decrypts.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Input

from messenger.client.alarms import AlarmReceived, Alarms, Position
from tests.messenger.messenger_harness import Harness
from tests.tui.conftest import settle, wait_until
from tests.tui.messenger_rig import DOMAIN, ME, PEER, Peer, account_for, chat_server, make_peer
from tui.app import MedApp
from tui.config import TuiConfig
from tui.messaging import ConnectionState
from tui.screens.alarms import AlarmStatusScreen
from tui.screens.dialogs import ChoiceScreen
from tui.widgets.alarm_banner import AlarmBanner

__all__ = ["chat_server"]

ADMIN = f"leitung@{DOMAIN}"


def wav(ms: int) -> bytes:
    """A silent PCM WAV of `ms` milliseconds (16 kHz, 16 bit, mono)."""
    data = b"\x00\x00" * (16 * ms)
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )


@dataclass
class Scene:
    """The other person (chef, with a real device) and the TUI user's id."""

    peer: Peer
    peer_alarms: Alarms
    me_id: str


@pytest.fixture
async def scene(chat_server: Harness) -> AsyncIterator[Scene]:
    await chat_server.user(ADMIN, role="tenant_admin")
    peer = await make_peer(chat_server, PEER)
    me = await chat_server.login(ME, device=False)
    assert me.user_id is not None
    yield Scene(peer, Alarms(peer.client, peer.session), me.user_id)
    await peer.close()


async def alarm_list(msg: Harness, name: str, members: list[str], **kw: Any) -> str:
    admin = await msg.login(ADMIN, device=False)
    created = await admin.create_alarm_list(name, [{"user_id": m} for m in members], **kw)
    return str(created["list_id"])


@contextlib.asynccontextmanager
async def connected(
    build: Callable[..., MedApp], msg: Harness, state: Path, config: TuiConfig | None = None
) -> AsyncIterator[Any]:
    """The app as `medbridge tui` makes it with a messenger account, online."""
    app = build(messenger_accounts={"work": account_for(msg, state)})
    if config is not None:
        app.config = config
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.messenger is not None
        conn = app.messenger.current
        await wait_until(pilot, lambda: conn.state is ConnectionState.ONLINE)
        await wait_until(pilot, lambda: app.alarms is not None)
        yield pilot


def banner_text(app: MedApp) -> str:
    banners = list(app.screen.query(AlarmBanner))
    return str(banners[0].render()) if banners else ""


async def answer_of(alarms: Alarms, alarm_id: str, user_id: str) -> dict[str, Any]:
    status = await alarms.status(alarm_id)
    return next(r for r in status["recipients"] if r["user_id"] == user_id)


async def test_an_alarm_shows_a_banner_on_every_screen_until_acknowledged(
    chat_server: Harness, scene: Scene, build_app: Callable[..., MedApp], tmp_path: Path
) -> None:
    list_id = await alarm_list(chat_server, "Rettungsdienst", [scene.me_id])
    async with connected(build_app, chat_server, tmp_path / "state") as pilot:
        app = pilot.app
        rings: list[bool] = []
        app.bell = lambda: rings.append(True)  # type: ignore[method-assign]
        raised = await scene.peer_alarms.raise_alarm(
            list_id, "Brand in Halle 3", level="alarm", position=Position(52.52, 13.405, 10.0)
        )
        await wait_until(pilot, lambda: "Brand in Halle 3" in banner_text(app))
        text = banner_text(app)
        assert "ALARM from chef" in text
        assert "at 52.52000, 13.40500 ±10 m" in text and "F2 acknowledge" in text
        assert rings  # the terminal bell rang
        # The banner follows the user to the calendar and into a dialog.
        await pilot.press("2")
        await settle(pilot)
        assert "Brand in Halle 3" in banner_text(app)
        await pilot.press("question_mark")
        await settle(pilot)
        assert "Brand in Halle 3" in banner_text(app)
        await pilot.press("escape")
        await settle(pilot)
        # The sender sees it delivered and seen, then acknowledged by this user.
        got = await answer_of(scene.peer_alarms, raised.alarm_id, scene.me_id)
        assert got["delivered_at"] and got["seen_at"] and not got["acknowledged_at"]
        await pilot.press("f2")
        await wait_until(pilot, lambda: banner_text(app) == "")
        got = await answer_of(scene.peer_alarms, raised.alarm_id, scene.me_id)
        assert got["acknowledged_at"]
        assert (await scene.peer_alarms.status(raised.alarm_id))["state"] in (
            "acknowledged",
            "closed",
        )
        # Without an alarm F2 is no alarm key: nothing is answered, no error.
        await pilot.press("f2")
        await settle(pilot)


async def test_declining_asks_for_a_reason_the_sender_reads(
    chat_server: Harness, scene: Scene, build_app: Callable[..., MedApp], tmp_path: Path
) -> None:
    list_id = await alarm_list(chat_server, "Bereitschaft", [scene.me_id])
    async with connected(build_app, chat_server, tmp_path / "state") as pilot:
        app = pilot.app
        raised = await scene.peer_alarms.raise_alarm(list_id, "Wer übernimmt Station 4?")
        await wait_until(pilot, lambda: "Station 4" in banner_text(app))
        await pilot.press("f3")
        await settle(pilot)
        await pilot.press("enter")  # an empty reason is refused, the dialog stays
        await settle(pilot)
        assert "Say why" in str(app.screen.query_one("#prompt-error").render())
        app.screen.query_one(Input).value = "selbst im Einsatz"
        await pilot.press("enter")
        await wait_until(pilot, lambda: banner_text(app) == "")
        got = await answer_of(scene.peer_alarms, raised.alarm_id, scene.me_id)
        assert got["declined_at"] and got["decline_reason"] == "selbst im Einsatz"


async def test_raising_an_alarm_and_watching_who_acknowledges(
    chat_server: Harness, scene: Scene, build_app: Callable[..., MedApp], tmp_path: Path
) -> None:
    await alarm_list(chat_server, "Hausdienst", [scene.peer.user_id])
    async with connected(build_app, chat_server, tmp_path / "state") as pilot:
        app = pilot.app
        await pilot.press("7")
        await settle(pilot)
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, ChoiceScreen))
        await pilot.press("enter")  # the only list
        await settle(pilot)
        await pilot.press("down", "enter")  # level: Urgent
        await settle(pilot)
        app.screen.query_one(Input).value = "Wasserschaden Archiv"
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(app.alarm_board.watched))
        (alarm_id,) = app.alarm_board.watched
        assert app.alarm_board.watched[alarm_id].level == "urgent"
        # The recipient decrypts it.
        received: list[AlarmReceived] = []

        async def pump() -> None:
            stream = scene.peer.client.events()
            async for event in stream:
                await scene.peer.session.handle_event(event)
                for r in await scene.peer_alarms.handle_event(event):
                    if isinstance(r, AlarmReceived):
                        received.append(r)

        task = asyncio.create_task(pump())
        try:
            await wait_until(pilot, lambda: bool(received))
            assert received[0].text == "Wasserschaden Archiv"
            # The sender's view of who answered, live while it is open.
            app.screen.query_one("#watched", DataTable).focus()
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, AlarmStatusScreen))
            screen = app.screen
            assert isinstance(screen, AlarmStatusScreen)

            def answer_cell() -> str:
                table = screen.query_one(DataTable)
                return str(table.get_row_at(0)[3]) if table.row_count else ""

            await wait_until(pilot, lambda: answer_cell() in ("delivered", "seen"))
            await scene.peer_alarms.acknowledge(alarm_id)
            await wait_until(pilot, lambda: answer_cell() == "acknowledged")
            assert str(screen.query_one(DataTable).get_row_at(0)[0]) == "chef"
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_panic_sends_position_and_voice_the_emergency_list_decrypts(
    chat_server: Harness, scene: Scene, tmp_path: Path, build_app: Callable[..., MedApp]
) -> None:
    await alarm_list(chat_server, "Notruf", [scene.peer.user_id], emergency=True)
    voice = wav(1500)
    (tmp_path / "hilfe.wav").write_bytes(voice)
    config = TuiConfig(
        drafts_dir=tmp_path / "drafts",
        animations=False,
        panic_position="48.137, 11.575, 5",
        panic_voice=tmp_path / "hilfe.wav",
    )
    async with connected(build_app, chat_server, tmp_path / "state", config) as pilot:
        app = pilot.app
        await pilot.press("f12")
        await settle(pilot)
        assert "hilfe.wav, 1.5 s" in str(app.screen.query_one("#voice").render())
        app.screen.query_one("#panic-text", Input).value = "Tiefgarage Ebene 2"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: bool(app.alarm_board.watched))
        received: list[AlarmReceived] = []
        stream = scene.peer.client.events()
        try:
            while not received:
                event = await stream.next(timeout=20)
                await scene.peer.session.handle_event(event)
                received += [
                    r
                    for r in await scene.peer_alarms.handle_event(event)
                    if isinstance(r, AlarmReceived)
                ]
        finally:
            await stream.aclose()
        (got,) = received
        assert (got.level, got.text, got.position) == (
            "panic",
            "Tiefgarage Ebene 2",
            Position(48.137, 11.575, 5.0),
        )
        assert got.attachment is not None and got.attachment.duration_ms == 1500
        assert await scene.peer_alarms.fetch_attachment(got.attachment) == voice


async def test_panic_without_a_voice_message_says_what_is_missing(
    chat_server: Harness, scene: Scene, tmp_path: Path, build_app: Callable[..., MedApp]
) -> None:
    config = TuiConfig(
        drafts_dir=tmp_path / "drafts",
        animations=False,
        voice_recorder=str(tmp_path / "no-such-recorder") + " {path}",
    )
    async with connected(build_app, chat_server, tmp_path / "state", config) as pilot:
        app = pilot.app
        await pilot.press("f12")
        await settle(pilot)
        await pilot.press("ctrl+s")  # no position yet
        await settle(pilot)
        assert "latitude, longitude" in str(app.screen.query_one("#panic-error").render())
        app.screen.query_one("#pos", Input).value = "52.52, 13.40"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "No voice message" in str(app.screen.query_one("#panic-error").render())
        await pilot.press("ctrl+r")  # the configured recorder does not exist
        await settle(pilot)
        assert "Cannot start the recorder" in str(app.screen.query_one("#voice").render())
        await pilot.press("escape")
        await settle(pilot)
        assert not app.alarm_board.watched  # nothing was sent
