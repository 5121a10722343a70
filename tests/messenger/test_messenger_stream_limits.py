"""The stream's memory is bounded: in bytes for a stalled reader, and before authentication
in hello size, waiting sockets and time."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import pytest
import websockets
from messenger_harness import Harness, next_of
from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.uri import parse_uri

BIG = 200 * 1024
COUNT = 60


def stream_url(msg: Harness) -> str:
    return msg.url.replace("http", "ws") + "/v1/stream"


async def close_code(ws: websockets.ClientConnection, timeout: float = 10.0) -> int:
    """Read (and drop) frames until the server closes; returns its close code."""
    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


class StalledReader:
    """A stream client over a raw socket with a small receive buffer that stops reading when
    told: the sans-I/O protocol of websockets, so no library reads ahead on its behalf."""

    def __init__(self, msg: Harness) -> None:
        self.url = stream_url(msg)
        self.port = msg.server.port
        self.protocol = ClientProtocol(parse_uri(self.url), max_size=None)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        self.sock.setblocking(False)

    async def _flush(self) -> None:
        await asyncio.get_running_loop().sock_sendall(
            self.sock, b"".join(self.protocol.data_to_send())
        )

    async def _events(self) -> list[Any]:
        data = await asyncio.get_running_loop().sock_recv(self.sock, 65536)
        self.protocol.receive_data(data)
        await self._flush()
        return list(self.protocol.events_received())

    async def open(self, token: str) -> None:
        await asyncio.get_running_loop().sock_connect(self.sock, ("127.0.0.1", self.port))
        self.protocol.send_request(self.protocol.connect())
        await self._flush()
        while not await self._events():
            pass  # the handshake response
        self.protocol.send_text(json.dumps({"type": "hello", "token": token}).encode())
        await self._flush()
        while True:
            for frame in await self._events():
                if frame.opcode == Opcode.TEXT and json.loads(frame.data)["type"] == "synced":
                    return

    async def close_code(self, timeout: float = 30.0) -> int:
        """Read (and drop) everything until the server's close frame; its code."""
        async with asyncio.timeout(timeout):
            while self.protocol.close_rcvd is None:
                await self._events()
        return self.protocol.close_rcvd.code

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("server_options", [{"stream_queue_bytes": 1024 * 1024}])
async def test_a_stalled_reader_is_closed_resumably_and_loses_nothing(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    anna = await msg.member("anna@kreis.example")
    bert = await msg.member("bert@kreis.example")
    assert anna.user_id and anna.token
    cid = (await bert.create_conversation("group", [anna.user_id]))["conversation_id"]
    reader = StalledReader(msg)
    try:
        await reader.open(anna.token)
        # Anna reads nothing while Bert sends 16 MB: more than the socket buffers and the
        # stream's 1 MiB may hold.
        sent = [await bert.send_raw(cid, bytes([i]) * BIG) for i in range(COUNT)]
        assert await reader.close_code() == 1013
    finally:
        reader.close()
    async with anna.events() as stream:
        resumed = [await next_of(stream, "message") for _ in range(COUNT)]
    assert [e["seq"] for e in resumed] == [s.seq for s in sent]


@pytest.mark.parametrize("server_options", [{"stream_hello_bytes": 4096}])
async def test_an_oversized_hello_is_refused_before_parsing(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    anna = await msg.member("anna@kreis.example")
    hello: dict[str, Any] = {"type": "hello", "token": anna.token, "since": {}}
    hello["since"] = {f"c{i:06d}": 1 for i in range(1000)}
    async with websockets.connect(stream_url(msg)) as ws:
        await ws.send(json.dumps(hello))
        assert await close_code(ws) == 4400


@pytest.mark.parametrize(
    "server_options", [{"stream_preauth_limit": 3, "stream_hello_timeout": 60.0}]
)
async def test_sockets_waiting_for_their_hello_are_limited(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    anna = await msg.member("anna@kreis.example")
    idle = [await websockets.connect(stream_url(msg)) for _ in range(3)]
    try:
        async with websockets.connect(stream_url(msg)) as extra:
            assert await close_code(extra) == 1013
    finally:
        for ws in idle:
            await ws.close()
    deadline = asyncio.get_running_loop().time() + 10
    while True:  # once the server has seen the idle ones go, a new stream is accepted again
        async with websockets.connect(stream_url(msg)) as ws:
            try:
                await ws.send(json.dumps({"type": "hello", "token": anna.token}))
                if json.loads(await ws.recv())["type"] == "synced":
                    break
            except websockets.ConnectionClosed as closed:
                assert closed.rcvd is not None and closed.rcvd.code == 1013
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("server_options", [{"stream_hello_timeout": 0.3}])
async def test_a_socket_without_hello_is_closed_after_the_handshake_timeout(
    msg: Harness,
) -> None:
    await msg.tenant("Kreis", "kreis.example")
    async with websockets.connect(stream_url(msg)) as ws:
        assert await close_code(ws) == 4400
