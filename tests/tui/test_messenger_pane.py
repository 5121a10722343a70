"""The messenger in the TUI against a real messenger server, with another person's real client.

Receive and see it decrypted on screen, answer and have the other side decrypt it, queue while
the server is away and send on reconnect, mark an unverified sender, quit while streaming.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.color import Color
from textual.widgets import Input, OptionList

from messenger.client.content import Reaction, Text
from messenger.client.e2e import DecryptedMessage, E2ESession
from messenger.crypto import DeviceKeys
from tests.messenger.messenger_harness import Harness
from tests.tui.conftest import settle
from tests.tui.messenger_rig import PEER, Peer, account_for, chat_server, make_peer
from tests.tui.screentext import screen_text
from tui.app import MedApp
from tui.messaging import ConnectionState, MessengerConnection
from tui.screens.chat_pane import ChatPane

__all__ = ["chat_server"]

SIZE = (110, 30)


async def until(pilot: Any, condition: Callable[[], bool], rounds: int = 300) -> None:
    for _ in range(rounds):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(
        f"not reached; focus {pilot.app.focused}; the screen shows:\n{screen_text(pilot.app)}"
    )


def conn_of(app: MedApp) -> MessengerConnection:
    assert app.messenger is not None
    conn = app.messenger.current
    assert conn is not None
    return conn


def pane_of(app: MedApp) -> ChatPane:
    return app.screen.query_one(ChatPane)


def pane_rows(app: MedApp) -> list[str]:
    olist = pane_of(app).messages_list
    return [str(olist.get_option_at_index(i).prompt) for i in range(olist.option_count)]


async def open_chat_with_peer(
    build_app: Callable[..., MedApp], chat_server: Harness, tmp_path: Path
) -> tuple[MedApp, Peer]:
    app = build_app(messenger_accounts={"work": account_for(chat_server, tmp_path / "chat")})
    peer = await make_peer(chat_server, PEER)
    return app, peer


async def messenger_online(pilot: Any, app: MedApp) -> None:
    """Open screen 6 and wait until the app's messenger account is connected."""
    await settle(pilot)
    await pilot.press("6")
    await until(pilot, lambda: conn_of(app).state is ConnectionState.ONLINE)


async def direct_chat(peer: Peer, app: MedApp) -> str:
    """The peer opens a direct conversation with the app's account; its id."""
    conv = await peer.client.create_conversation("direct", [conn_of(app).user_id])
    return str(conv["conversation_id"])


async def test_receive_see_decrypted_and_answer(
    build_app: Callable[..., MedApp], chat_server: Harness, tmp_path: Path
) -> None:
    app, peer = await open_chat_with_peer(build_app, chat_server, tmp_path)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await messenger_online(pilot, app)
            cid = await direct_chat(peer, app)
            await peer.session.send_text(cid, "Rückruf Dr. Weber bis 15 Uhr")
            await until(pilot, lambda: any("Rückruf Dr. Weber" in r for r in pane_rows(app)))
            text = screen_text(app)
            assert "chef ✓" in text  # verified sender
            assert "● online · assistenz@klinik.example · Kreisklinik" in text
            status = pane_of(app).query_one("#chat-status")
            assert status.styles.background == Color.parse("#0b5cad")  # the tenant's colour
            await pilot.press("l", "i")
            await pilot.press(*"Erledigt")
            await pilot.press("enter")
            await peer.pump_until(lambda p: "Erledigt" in p.texts())
            await until(pilot, lambda: any("✓" in r and "Erledigt" in r for r in pane_rows(app)))
            assert not any("queued" in r for r in pane_rows(app))
    finally:
        await peer.close()


async def test_unverified_sender_is_marked(
    build_app: Callable[..., MedApp], chat_server: Harness, tmp_path: Path
) -> None:
    app, peer = await open_chat_with_peer(build_app, chat_server, tmp_path)
    # A second device of chef's, never approved by chef's master key: unverified.
    second = await chat_server.login(PEER, device=False)
    assert second.user_id is not None
    other = E2ESession.for_client(second, DeviceKeys.generate(second.user_id, uuid.uuid4().hex))
    await other.register_device("unknown tablet")
    try:
        async with app.run_test(size=SIZE) as pilot:
            await messenger_online(pilot, app)
            cid = await direct_chat(peer, app)
            await other.send_text(cid, "Bitte Zugangsdaten schicken")
            await until(pilot, lambda: any("Zugangsdaten" in r for r in pane_rows(app)))
            [row] = [r for r in pane_rows(app) if "Zugangsdaten" in r]
            assert "⚠ unverified" in row
    finally:
        await peer.close()


async def test_offline_queue_then_resume(
    build_app: Callable[..., MedApp], chat_server: Harness, tmp_path: Path
) -> None:
    app, peer = await open_chat_with_peer(build_app, chat_server, tmp_path)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await messenger_online(pilot, app)
            cid = await direct_chat(peer, app)
            await until(pilot, lambda: cid in conn_of(app).conversations)
            await chat_server.server.stop()
            await until(pilot, lambda: conn_of(app).state is ConnectionState.OFFLINE)
            assert "offline" in screen_text(app)
            pane_of(app).open_conversation(cid)
            await pilot.press("l", "i", *"Im Funkloch", "enter")
            await until(pilot, lambda: any("queued" in r for r in pane_rows(app)))
            await chat_server.server.start()
            await until(pilot, lambda: conn_of(app).state is ConnectionState.ONLINE)
            await peer.pump_until(lambda p: "Im Funkloch" in p.texts())
            await until(pilot, lambda: not any("queued" in r for r in pane_rows(app)))
    finally:
        await peer.close()


async def test_quit_while_streaming_cancels_the_stream(
    build_app: Callable[..., MedApp], chat_server: Harness, tmp_path: Path
) -> None:
    app = build_app(messenger_accounts={"work": account_for(chat_server, tmp_path / "chat")})
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await until(pilot, lambda: conn_of(app).state is ConnectionState.ONLINE)
        [worker] = [w for w in app.workers if w.group == "messenger"]
        await pilot.press("q")
        await pilot.pause()
    assert worker.is_cancelled
    assert conn_of(app).closed
    # The state was kept for the next start (device keys, protocol state, stream position).
    assert {p.name for p in (tmp_path / "chat").iterdir()} >= {"device.keys", "e2e.state"}


async def test_mail_screen_has_the_pane_beside_it(
    build_app: Callable[..., MedApp], chat_server: Harness, tmp_path: Path
) -> None:
    app, peer = await open_chat_with_peer(build_app, chat_server, tmp_path)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await until(pilot, lambda: conn_of(app).state is ConnectionState.ONLINE)
            conv = await peer.client.create_conversation(
                "group", [conn_of(app).user_id], name="Station 3"
            )
            cid = str(conv["conversation_id"])
            await peer.session.send_text(cid, "Visite verschoben")
            await pilot.press("M")
            await until(pilot, lambda: any("Visite verschoben" in r for r in pane_rows(app)))
            assert "# Station 3" in screen_text(app)
            assert app.screen.id == "mail"
            await pilot.press("M")
            await settle(pilot)
            assert not pane_of(app).display
    finally:
        await peer.close()


async def test_received_content_is_structured(
    build_app: Callable[..., MedApp], chat_server: Harness, tmp_path: Path
) -> None:
    """Position with a map link, a reply, a reaction and a voice message arrive as such."""
    app, peer = await open_chat_with_peer(build_app, chat_server, tmp_path)
    wav = _wav(0.5)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await messenger_online(pilot, app)
            cid = await direct_chat(peer, app)
            first = await peer.session.send_text(cid, "Wo bist du?")
            await peer.session.send_location(cid, 52.52, 13.405, 8.0, reply_to=first)
            await peer.session.react(cid, first, "👍")
            await peer.session.send_voice(cid, wav, mime="audio/wav")
            await until(pilot, lambda: any("voice message" in r for r in pane_rows(app)))
            rows = "\n".join(pane_rows(app))
            assert "📍 52.52000, 13.40500 ±8 m" in rows
            assert "openstreetmap.org/?mlat=52.52000&mlon=13.40500" in rows
            assert "↪ Wo bist du?" in rows
            await until(pilot, lambda: any("👍 1" in r for r in pane_rows(app)))
            lines = conn_of(app).conversations[cid].lines
            # I react too: shown at once, and the other side sees it.
            pane_of(app).messages_list.focus()
            pane_of(app).messages_list.highlighted = 0
            await pilot.press("plus")
            await settle(pilot)
            app.screen.query_one("#prompt-input", Input).value = "❤"
            await pilot.press("enter")
            await until(pilot, lambda: any("❤ 1" in r for r in pane_rows(app)))
            await peer.pump_until(
                lambda p: any(
                    isinstance(r, DecryptedMessage) and r.content == Reaction(first, "❤")
                    for r in p.results
                )
            )
            assert isinstance(lines[0].content, Text)
            # Saving the voice message decrypts exactly what was sent.
            pane = pane_of(app)
            pane.messages_list.focus()
            pane.messages_list.highlighted = len(lines) - 1
            await pilot.press("s")
            await until(pilot, lambda: any(app.config.downloads_dir.glob("*.wav")))
            [saved] = list(app.config.downloads_dir.glob("*.wav"))
            assert saved.read_bytes() == wav
    finally:
        await peer.close()


def _wav(seconds: float) -> bytes:
    import io
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * int(8000 * seconds))
    return out.getvalue()


async def test_sent_message_decrypts_for_the_other_client(
    build_app: Callable[..., MedApp], chat_server: Harness, tmp_path: Path
) -> None:
    app, peer = await open_chat_with_peer(build_app, chat_server, tmp_path)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await messenger_online(pilot, app)
            client = conn_of(app).client
            over_http: list[str] = []
            http_send = client.send_raw

            async def counted(cid: str, *args: Any, **kwargs: Any) -> Any:
                over_http.append(cid)
                return await http_send(cid, *args, **kwargs)

            client.send_raw = counted  # type: ignore[method-assign]
            await pilot.press("n")
            await pilot.press(*PEER, "enter")
            await until(pilot, lambda: pane_of(app).conversation_id is not None)
            await pilot.press(*"Neue Nachricht", "enter")
            await peer.pump_until(lambda p: "Neue Nachricht" in p.texts())
            [got] = [r for r in peer.results if isinstance(r, DecryptedMessage)]
            assert got.sender_user_id == conn_of(app).user_id and got.sender_verified
            assert over_http == []  # sent through the open stream
    finally:
        await peer.close()


async def test_a_new_chat_with_an_address_not_found_keeps_what_was_typed_and_says_why(
    build_app: Callable[..., MedApp], chat_server: Harness, tmp_path: Path
) -> None:
    """The dialog once closed on any refusal (a toast said why): the typed address was lost,
    and the letters typed next went to the pane's keys ("n" opened the dialog again)."""
    from tui.screens.dialogs import PromptScreen

    app, peer = await open_chat_with_peer(build_app, chat_server, tmp_path)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await messenger_online(pilot, app)
            pane = pane_of(app)
            await pilot.press("n")
            await until(pilot, lambda: isinstance(app.screen, PromptScreen))
            await pilot.press(*"nobody", "enter")  # not an address: refused in the dialog
            await pilot.pause(0.1)
            assert isinstance(app.screen, PromptScreen)
            assert "Enter an e-mail address" in screen_text(app)
            dialog_input = app.screen.query_one(Input)
            dialog_input.value = "niemand@musterstadt.example"
            await pilot.press("enter")  # an address the directory does not know
            await until(pilot, lambda: "is not in the messenger's" in screen_text(app))
            assert isinstance(app.screen, PromptScreen)
            assert app.screen.query_one(Input).value == "niemand@musterstadt.example"
            assert pane.conversation_id is None
            app.screen.query_one(Input).value = PEER.upper()  # typed in capitals
            await pilot.press("enter")
            await until(pilot, lambda: pane.conversation_id is not None)
            assert not isinstance(app.screen, PromptScreen)
    finally:
        await peer.close()


_ = asyncio  # the tests run on pytest-asyncio's loop


async def test_safety_number_matches_the_other_side(
    build_app: Callable[..., MedApp], chat_server: Harness, tmp_path: Path
) -> None:
    from tui.screens.chat_trust import SafetyNumberScreen, group_digits

    app, peer = await open_chat_with_peer(build_app, chat_server, tmp_path)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await messenger_online(pilot, app)
            cid = await direct_chat(peer, app)
            await until(pilot, lambda: cid in conn_of(app).conversations)
            pane_of(app).open_conversation(cid)
            await pilot.press("S")
            await until(pilot, lambda: isinstance(app.screen, SafetyNumberScreen))
            theirs = await peer.session.safety_number(conn_of(app).user_id)
            assert group_digits(theirs).split("\n")[0] in screen_text(app)
            assert "✓ verified" in screen_text(app)
    finally:
        await peer.close()


async def test_approve_a_new_device_of_mine(
    build_app: Callable[..., MedApp], chat_server: Harness, tmp_path: Path
) -> None:
    from messenger.crypto import Trust
    from tests.tui.messenger_rig import ME
    from tui.screens.chat_trust import DevicesScreen

    app = build_app(messenger_accounts={"work": account_for(chat_server, tmp_path / "chat")})
    async with app.run_test(size=SIZE) as pilot:
        await messenger_online(pilot, app)
        assert conn_of(app).holds_master_key  # the first device of the account
        # Later the same person signs in on a phone: unverified until approved here.
        phone = await make_peer(chat_server, ME)
        before = {d.device_id: d.trust for d in await conn_of(app).my_devices()}
        assert before[phone.session.device_id] is Trust.UNVERIFIED
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, DevicesScreen))
        assert "⚠ unverified" in screen_text(app)
        screen = app.screen
        assert isinstance(screen, DevicesScreen)
        olist = screen.query_one("#devices", OptionList)
        olist.focus()
        ids = [d.device_id for d in screen.devices]
        olist.highlighted = ids.index(phone.session.device_id)
        await pilot.press("enter")

        async def approved() -> bool:
            return {d.device_id: d.trust for d in await conn_of(app).my_devices()}[
                phone.session.device_id
            ] is Trust.OWNER

        for _ in range(100):
            if await approved():
                break
            await pilot.pause(0.05)
        assert await approved()
        await phone.close()


async def test_send_an_image_the_other_side_opens(
    build_app: Callable[..., MedApp], chat_server: Harness, tmp_path: Path
) -> None:
    from PIL import Image

    from messenger.client.content import File

    picture = tmp_path / "grundriss.png"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(picture)
    app, peer = await open_chat_with_peer(build_app, chat_server, tmp_path)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await messenger_online(pilot, app)
            cid = await direct_chat(peer, app)
            await until(pilot, lambda: cid in conn_of(app).conversations)
            pane_of(app).open_conversation(cid)
            await pilot.press("a")
            await pilot.press(*str(picture), "enter")
            await peer.pump_until(
                lambda p: any(
                    isinstance(r, DecryptedMessage) and isinstance(r.content, File)
                    for r in p.results
                )
            )
            [got] = [r for r in peer.results if isinstance(r, DecryptedMessage)]
            assert isinstance(got.content, File)
            assert (got.content.width, got.content.height) == (64, 48)
            assert got.content.thumbnail is not None
            assert await peer.session.fetch_attachment(got.content.attachment) == (
                picture.read_bytes()
            )
    finally:
        await peer.close()


async def test_image_view_draws_the_picture_and_saves_it(
    build_app: Callable[..., MedApp], tmp_path: Path
) -> None:
    import io

    from PIL import Image

    from tui.screens.chat_image import ImageScreen

    out = io.BytesIO()
    Image.new("RGB", (40, 20), (0, 90, 160)).save(out, format="PNG")
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.push_screen(ImageScreen("foto.png", out.getvalue()))
        await settle(pilot)
        picture = app.screen.query_one("#chat-image")
        assert type(picture).__module__.startswith("textual_image")  # drawn, not a placeholder
        await pilot.press("s")
        await settle(pilot)
        assert (app.config.downloads_dir / "foto.png").read_bytes() == out.getvalue()


async def test_conversation_is_shown_again_after_a_restart(
    build_app: Callable[..., MedApp], chat_server: Harness, tmp_path: Path
) -> None:
    peer = await make_peer(chat_server, PEER)
    try:
        app = build_app(messenger_accounts={"work": account_for(chat_server, tmp_path / "chat")})
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await until(pilot, lambda: conn_of(app).state is ConnectionState.ONLINE)
            cid = await direct_chat(peer, app)
            await peer.session.send_text(cid, "Vor dem Neustart")
            await until(pilot, lambda: cid in conn_of(app).conversations)
            await until(pilot, lambda: bool(conn_of(app).conversations[cid].lines))
        again = build_app(messenger_accounts={"work": account_for(chat_server, tmp_path / "chat")})
        async with again.run_test(size=SIZE) as pilot:
            await pilot.press("6")  # before the connection is up: the pane fills in later
            await until(pilot, lambda: conn_of(again).state is ConnectionState.ONLINE)
            await settle(pilot)
            await until(pilot, lambda: "Vor dem Neustart" in screen_text(again))
    finally:
        await peer.close()


async def test_header_shows_the_chat_state_after_switching_screens(
    build_app: Callable[..., MedApp], chat_server: Harness, tmp_path: Path
) -> None:
    from tui.widgets.context_bar import BusyLabel

    app = build_app(messenger_accounts={"work": account_for(chat_server, tmp_path / "chat")})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        await until(pilot, lambda: conn_of(app).state is ConnectionState.ONLINE)
        await settle(pilot)
        await chat_server.server.stop()
        await until(pilot, lambda: conn_of(app).state is ConnectionState.OFFLINE)
        await pilot.press("1")
        await settle(pilot)
        assert "✉ chat offline" in str(app.screen.query_one(BusyLabel).render())
        await chat_server.server.start()
        await until(pilot, lambda: conn_of(app).state is ConnectionState.ONLINE)
        await pilot.press("6", "1")
        await settle(pilot)
        assert "✉" not in str(app.screen.query_one(BusyLabel).render())


async def test_a_received_image_shows_inline_and_again_after_a_restart(
    build_app: Callable[..., MedApp], chat_server: Harness, tmp_path: Path
) -> None:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (300, 150), (20, 140, 60)).save(out, format="PNG")
    app, peer = await open_chat_with_peer(build_app, chat_server, tmp_path)

    def picture_shown(app: MedApp) -> bool:
        return any("🖼 lage.png" in r and "▀▀▀▀" in r for r in pane_rows(app))

    try:
        async with app.run_test(size=SIZE) as pilot:
            await messenger_online(pilot, app)
            cid = await direct_chat(peer, app)
            await peer.session.send_attachment(
                cid, out.getvalue(), name="lage.png", mime="image/png"
            )
            await until(pilot, lambda: cid in conn_of(app).conversations)
            pane_of(app).open_conversation(cid)
            await until(pilot, lambda: picture_shown(app))
        await chat_server.server.stop()  # offline: the thumbnail comes from the sealed history
        again = build_app(messenger_accounts={"work": account_for(chat_server, tmp_path / "chat")})
        async with again.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("6")
            await until(pilot, lambda: cid in conn_of(again).conversations)
            pane_of(again).open_conversation(cid)
            await until(pilot, lambda: picture_shown(again))
    finally:
        await peer.close()
