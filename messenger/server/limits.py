"""ASGI middlewares: refuse oversized bodies before they are read (413), refuse NUL in paths
and query strings (400), count requests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    pass


ALARM_BODY_BYTES = 8 * 1024 * 1024


class BodyLimit:
    """ASGI middleware: a byte limit per request, larger for attachment uploads."""

    def __init__(self, app: ASGIApp, default: int, upload: int) -> None:
        self.app = app
        self.default = default
        self.upload = upload

    def _limit(self, scope: Scope) -> tuple[int, bool]:
        """The limit, and whether to count streamed bytes here (uploads count them themselves)."""
        path: str = scope.get("path", "")
        if path.endswith("/attachments"):
            return self.upload, False
        if path == "/v1/alarms":  # an alarm carries a sealed key per recipient device
            return max(self.default, ALARM_BODY_BYTES), True
        return self.default, True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, count_stream = self._limit(scope)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _reply(send, 400, "bad_request", "Content-Length is not a number")
                    return
                if declared > limit:
                    await _reply(send, 413, "too_large", f"the body exceeds {limit} bytes")
                    return
        if not count_stream:
            await self.app(scope, receive, send)
            return
        seen = 0
        exceeded = False

        async def limited_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # Once the body is too large, whatever the app makes of the aborted read (FastAPI
            # answers 400 to a body it could not read) is replaced by our 413.
            if not exceeded:
                await send(message)

        with contextlib.suppress(BodyTooLarge):
            await self.app(scope, limited_receive, guarded_send)
        if exceeded:
            await _reply(send, 413, "too_large", f"the body exceeds {limit} bytes")


async def _reply(send: Send, status: int, code: str, detail: str) -> None:
    body = json.dumps({"error": code, "detail": detail}).encode()
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RefuseNul:
    """ASGI middleware: a path or query with a NUL byte is refused before any route sees it.

    No id, name or address of ours contains NUL, and PostgreSQL cannot even compare one.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            query: bytes = scope.get("query_string", b"")
            if "\x00" in scope.get("path", "") or b"%00" in query or b"\x00" in query:
                if scope["type"] == "http":
                    await _reply(send, 422, "invalid", "NUL is not allowed in a path or query")
                else:
                    await receive()  # websocket.connect
                    await send({"type": "websocket.close", "code": 4400})
                return
        await self.app(scope, receive, send)


UNSENT_BYTES = "medbridge.unsent_bytes"
FRAME_WRITER = "medbridge.frame_writer"


def text_frame(text: str) -> bytes:
    """An unmasked, unfragmented WebSocket text frame (RFC 6455, 5.2), as a server sends it
    without extensions: the same bytes for every connection, so it is made once per event."""
    data = text.encode()
    size = len(data)
    if size < 126:
        head = struct.pack("!BB", 0x81, size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x81, 126, size)
    else:
        head = struct.pack("!BBQ", 0x81, 127, size)
    return head + data


def _frame_writer(protocol: object) -> Callable[[list[bytes]], bool] | None:
    """Write whole text frames (`text_frame`) to a WebSocket at once, in one transport write,
    without a task hop; False when it cannot now (not open, closing, paused by flow control):
    the caller sends through ASGI then. Only for uvicorn's websockets sans-I/O protocol with
    no extension negotiated (permessage-deflate is off), whose `send` writes the same bytes
    per frame; anything the protocol has queued (a pong) goes first."""
    conn = getattr(protocol, "conn", None)
    transport = getattr(protocol, "transport", None)
    writable = getattr(protocol, "writable", None)
    needed = ("close_sent", "disconnected", "handshake_complete")
    if (
        conn is None
        or transport is None
        or not isinstance(writable, asyncio.Event)
        or not all(hasattr(protocol, n) for n in needed)
        or not hasattr(conn, "state")
        or not hasattr(conn, "extensions")
        or not callable(getattr(conn, "data_to_send", None))
    ):
        return None

    def write(frames: list[bytes]) -> bool:
        if (
            getattr(protocol, "close_sent", True)
            or getattr(protocol, "disconnected", True)
            or not getattr(protocol, "handshake_complete", False)
            or getattr(conn.state, "name", "") != "OPEN"
            or conn.extensions
            or not writable.is_set()
            or transport.is_closing()
        ):
            return False
        transport.write(b"".join([*conn.data_to_send(), *frames]))
        return True

    return write


class WriteBufferProbe:
    """ASGI middleware (outermost): lets a WebSocket see how much it has not sent yet.

    uvicorn's WebSocket protocol writes every frame to the transport without waiting for the
    reader, so a stalled reader's backlog sits in the transport's buffer, invisible to the app.
    ASGI offers no way to ask; the protocol that `send` belongs to holds the transport, so the
    probe takes it here, once, and puts a size function in the scope, and a frame writer
    (`FRAME_WRITER`) the stream's fan-out uses to write a tick's frames in one go. With another
    server the probe is absent and the stream counts its own queue only.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            size = getattr(transport, "get_write_buffer_size", None)
            if callable(size):
                scope[UNSENT_BYTES] = size
            writer = _frame_writer(getattr(send, "__self__", None))
            if writer is not None:
                scope[FRAME_WRITER] = writer
        await self.app(scope, receive, send)


class RequestMetrics:
    """ASGI middleware counting requests by route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @staticmethod
    def _route(scope: Scope) -> str:
        """The route template (e.g. /v1/conversations/{cid}/messages), never raw ids."""
        if "endpoint" not in scope:
            return "unmatched"
        names = {str(v): k for k, v in scope.get("path_params", {}).items()}
        segments = str(scope["path"]).split("/")
        return "/".join(f"{{{names[s]}}}" if s in names else s for s in segments)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            scope["app"].state.messenger.metrics.requests.labels(
                scope["method"], self._route(scope), str(status)
            ).inc()
