"""The TUI's messenger connection against a real server: decrypts, sends, queues offline.

No Textual app here: the connection posts its typed messages into a list the tests read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from messenger.client import MessengerError
from messenger.client.content import Location, Text
from messenger.client.e2e import DecryptedMessage
from tests.messenger.messenger_harness import Harness
from tests.tui.messenger_rig import PEER, account_for, chat_server, make_peer
from tui.messages import ChatMessageArrived, ConnectionStateChanged
from tui.messaging import (
    ConnectionState,
    MessengerAccount,
    MessengerConfigError,
    MessengerConnection,
    MessengerHub,
)

__all__ = ["chat_server"]


async def until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


async def start(msg: Harness, tmp_path: Path) -> tuple[MessengerConnection, list[Any], Any]:
    posted: list[Any] = []
    hub = MessengerHub(posted.append)
    conn = hub.add(account_for(msg, tmp_path / "state"))
    task = asyncio.create_task(conn.run())
    await until(lambda: conn.state is ConnectionState.ONLINE)
    return conn, posted, task


async def stop(task: Any) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_receive_decrypt_and_answer(chat_server: Harness, tmp_path: Path) -> None:
    conn, posted, task = await start(chat_server, tmp_path)
    peer = await make_peer(chat_server, PEER)
    try:
        created = await peer.client.create_conversation("direct", [conn.user_id])
        cid = str(created["conversation_id"])
        await peer.session.send_text(cid, "Bitte Akte Müller vorbereiten")
        await until(
            lambda: any(
                isinstance(m, ChatMessageArrived) and isinstance(m.line.content, Text)
                for m in posted
            )
        )
        [arrived] = [m for m in posted if isinstance(m, ChatMessageArrived)]
        assert arrived.line.content == Text("Bitte Akte Müller vorbereiten")
        assert arrived.line.verified and not arrived.line.mine
        assert conn.conversations[cid].unread == 1
        assert conn.cached_name(peer.user_id) == "chef"  # the display name
        await conn.send_text(cid, "Erledigt", reply_to=arrived.line.seq)
        await conn.send_location(cid, 52.52, 13.405, 8.0)

        def from_me(p: Any) -> list[DecryptedMessage]:
            return [
                r
                for r in p.results
                if isinstance(r, DecryptedMessage) and r.sender_user_id == conn.user_id
            ]

        await peer.pump_until(lambda p: len(from_me(p)) >= 2)
        decrypted = from_me(peer)
        assert decrypted[0].content == Text("Erledigt")
        assert decrypted[0].reply_to == arrived.line.seq
        assert decrypted[1].content == Location(52.52, 13.405, 8.0)
        assert [line.queued for line in conn.conversations[cid].lines] == [False, False, False]
    finally:
        await stop(task)
        await peer.close()


async def test_offline_queue_survives_a_restart_and_is_sent_on_reconnect(
    chat_server: Harness, tmp_path: Path
) -> None:
    conn, posted, task = await start(chat_server, tmp_path)
    peer = await make_peer(chat_server, PEER)
    created = await peer.client.create_conversation("direct", [conn.user_id])
    cid = str(created["conversation_id"])
    await until(lambda: cid in conn.conversations)
    await chat_server.server.stop()
    await until(lambda: conn.state is ConnectionState.OFFLINE)
    line = await conn.send_text(cid, "Gesendet im Funkloch")
    assert line.queued
    await stop(task)  # quit while offline: the send is kept on disk, sealed
    assert b"Funkloch" not in (tmp_path / "state" / "outbox.sealed").read_bytes()
    await chat_server.server.start()
    again, posted, task = await start(chat_server, tmp_path)
    try:
        await peer.pump_until(lambda p: "Gesendet im Funkloch" in p.texts())
        await until(lambda: not again.outbox)
        states = [m.state for m in posted if isinstance(m, ConnectionStateChanged)]
        assert states[-1] == "online"
    finally:
        await stop(task)
        await peer.close()


def test_account_settings_need_a_password_source(tmp_path: Path) -> None:
    values = {"server": "https://chat.example", "user": "a@b.example"}
    with pytest.raises(MessengerConfigError, match="password_env"):
        MessengerAccount.from_mapping("work", values, state_dir=tmp_path, environ={})
    with pytest.raises(MessengerConfigError, match="CHAT_PW is not set"):
        MessengerAccount.from_mapping(
            "work", {**values, "password_env": "CHAT_PW"}, state_dir=tmp_path, environ={}
        )
    account = MessengerAccount.from_mapping(
        "work", {**values, "password_env": "CHAT_PW"}, state_dir=tmp_path, environ={"CHAT_PW": "s3"}
    )
    assert "s3" not in repr(account)
    with pytest.raises(MessengerConfigError, match="Unknown setting"):
        MessengerAccount.from_mapping(
            "work", {**values, "password": "s3"}, state_dir=tmp_path, environ={}
        )


async def test_alarm_events_reach_the_hook_and_the_app(
    chat_server: Harness, tmp_path: Path
) -> None:
    """Another feature (alarms) opens the alarm from the hook with the connection's own keys."""
    from messenger.client.alarms import AlarmReceived, Alarms
    from tests.tui.messenger_rig import DOMAIN
    from tui.messages import MessengerEventArrived

    conn, posted, task = await start(chat_server, tmp_path)
    opened: list[object] = []

    async def alarms_feature(connection: MessengerConnection, event: Any) -> None:
        assert connection.e2e is not None
        feature = Alarms(connection.client, connection.e2e)
        opened.extend(await feature.handle_event(event))

    conn.add_event_hook(alarms_feature)
    await chat_server.user(f"leitung@{DOMAIN}", role="tenant_admin")
    boss = await make_peer(chat_server, f"leitung@{DOMAIN}")
    try:
        alarm_list = await boss.client.create_alarm_list(
            "Brandschutz", [{"user_id": conn.user_id, "tier": 1}]
        )
        await Alarms(boss.client, boss.session).raise_alarm(
            str(alarm_list["list_id"]), "Brand in Halle 3", level="urgent"
        )
        await until(lambda: any(isinstance(r, AlarmReceived) for r in opened))
        [received] = [r for r in opened if isinstance(r, AlarmReceived)]
        assert (received.text, received.level) == ("Brand in Halle 3", "urgent")
        assert any(
            isinstance(m, MessengerEventArrived) and m.event["type"] == "alarm" for m in posted
        )
    finally:
        await stop(task)
        await boss.close()


async def test_one_connection_per_profile(chat_server: Harness, tmp_path: Path) -> None:
    """Two profiles, two accounts: each message names the profile whose account it is."""
    from tests.tui.messenger_rig import ME

    posted: list[Any] = []
    hub = MessengerHub(posted.append)
    work = hub.add(account_for(chat_server, tmp_path / "work", ME))
    other = MessengerAccount(
        profile="ehrenamt",
        server=chat_server.url,
        user=PEER,
        password=work.account.password,
        state_dir=tmp_path / "ehrenamt",
    )
    second = hub.add(other)
    assert hub.active == "work" and hub.get("ehrenamt") is second
    tasks = [asyncio.create_task(c.run()) for c in (work, second)]
    try:
        await until(lambda: all(c.state is ConnectionState.ONLINE for c in (work, second)))
        created = await second.client.create_conversation("direct", [work.user_id])
        cid = str(created["conversation_id"])
        await until(lambda: cid in second.conversations and cid in work.conversations)
        await second.send_text(cid, "Von Profil zu Profil")
        await until(
            lambda: any(
                isinstance(m, ChatMessageArrived) and m.profile == "work" and not m.line.mine
                for m in posted
            )
        )
        [arrived] = [
            m
            for m in posted
            if isinstance(m, ChatMessageArrived) and m.profile == "work" and not m.line.mine
        ]
        assert arrived.line.content == Text("Von Profil zu Profil")
    finally:
        for task in tasks:
            await stop(task)


async def test_history_is_shown_again_after_a_restart(chat_server: Harness, tmp_path: Path) -> None:
    conn, _, task = await start(chat_server, tmp_path)
    peer = await make_peer(chat_server, PEER)
    try:
        created = await peer.client.create_conversation("direct", [conn.user_id])
        cid = str(created["conversation_id"])
        await peer.session.send_text(cid, "Akte liegt im Fach")
        await peer.session.send_location(cid, 48.137, 11.575, 5.0)
        await until(lambda: cid in conn.conversations and len(conn.conversations[cid].lines) == 2)
        await conn.send_text(cid, "Danke")
        await until(lambda: not conn.outbox)
    finally:
        await stop(task)
    history = (tmp_path / "state" / "history.sealed").read_bytes()
    assert b"Akte" not in history and b"Danke" not in history  # sealed
    again, _, task = await start(chat_server, tmp_path)
    try:
        lines = again.conversations[cid].lines
        assert [ln.content for ln in lines] == [
            Text("Akte liegt im Fach"),
            Location(48.137, 11.575, 5.0),
            Text("Danke"),
        ]
        assert [ln.mine for ln in lines] == [False, False, True]
        await peer.session.send_text(cid, "Gern")  # and the stream goes on where it stopped
        await until(lambda: len(again.conversations[cid].lines) == 4)
    finally:
        await stop(task)
        await peer.close()


async def test_a_revoked_session_signs_in_again_with_the_same_device(
    chat_server: Harness, tmp_path: Path
) -> None:
    from tests.tui.messenger_rig import ME

    conn, posted, task = await start(chat_server, tmp_path)
    other = await chat_server.login(ME, device=False)
    try:
        device = conn.device_id
        [mine] = [s for s in await other.sessions() if s["device_id"] == device]
        before = len(posted)
        await other.revoke_session(str(mine["session_id"]))

        def states() -> list[str]:
            return [m.state for m in posted[before:] if isinstance(m, ConnectionStateChanged)]

        await until(lambda: states()[-1:] == ["online"])
        assert "connecting" in states()
        assert conn.device_id == device
        peer = await make_peer(chat_server, PEER)
        created = await peer.client.create_conversation("direct", [conn.user_id])
        await peer.session.send_text(str(created["conversation_id"]), "Noch da?")
        await until(lambda: any(isinstance(m, ChatMessageArrived) for m in posted))
        await peer.close()
    finally:
        await stop(task)


async def test_files_and_voice_go_out_encrypted(chat_server: Harness, tmp_path: Path) -> None:
    import io
    import wave

    from messenger.client.content import File, Voice

    recording = tmp_path / "diktat.wav"
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 12000)
    recording.write_bytes(out.getvalue())
    report = tmp_path / "bericht.pdf"
    report.write_bytes(b"%PDF-1.4 Bericht")
    conn, _, task = await start(chat_server, tmp_path)
    peer = await make_peer(chat_server, PEER)
    try:
        created = await peer.client.create_conversation("direct", [conn.user_id])
        cid = str(created["conversation_id"])
        await until(lambda: cid in conn.conversations)
        await conn.send_voice(cid, recording)
        await conn.send_file(cid, report, caption="Zur Unterschrift")
        await peer.pump_until(
            lambda p: len([r for r in p.results if isinstance(r, DecryptedMessage)]) >= 2
        )
        voice, doc = [r.content for r in peer.results if isinstance(r, DecryptedMessage)]
        assert isinstance(voice, Voice) and voice.duration_ms == 1500
        assert isinstance(doc, File) and doc.body == "Zur Unterschrift"
        assert doc.attachment.mime == "application/pdf"
        assert await peer.session.fetch_attachment(doc.attachment) == report.read_bytes()
        with pytest.raises(MessengerError, match="not a readable file"):
            await conn.send_file(cid, tmp_path / "fehlt.pdf")
    finally:
        await stop(task)
        await peer.close()


async def test_live_position_moves_its_line(chat_server: Harness, tmp_path: Path) -> None:
    conn, _, task = await start(chat_server, tmp_path)
    peer = await make_peer(chat_server, PEER)
    try:
        created = await peer.client.create_conversation("direct", [conn.user_id])
        cid = str(created["conversation_id"])
        _, share = await peer.session.share_live_location(cid, 52.5, 13.4, 10.0, seconds=600)
        await peer.session.update_live_location(cid, share, 52.6, 13.5, 5.0)
        await peer.session.send_text(cid, "Bin gleich da")
        await until(lambda: cid in conn.conversations and len(conn.conversations[cid].lines) == 2)
        live, text = conn.conversations[cid].lines
        assert isinstance(live.content, Location)
        assert (live.content.lat, live.content.lon) == (52.6, 13.5)
        assert text.content == Text("Bin gleich da")
    finally:
        await stop(task)
        await peer.close()
