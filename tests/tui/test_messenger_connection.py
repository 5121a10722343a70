"""The TUI's messenger connection against a real server: decrypts, sends, queues offline.

No Textual app here: the connection posts its typed messages into a list the tests read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

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
