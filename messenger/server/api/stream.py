"""The WebSocket stream: replay after the client's cursors, then live events, gap-free.

Each connection keeps the last sequence number it sent per conversation and for its device's
to-device queue. A live event that is not the next number is either a repeat (dropped) or
shows a gap (filled from the database first), so neither races between concurrent senders
nor a lost pub/sub message can skip or duplicate an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import Field, ValidationError
from starlette.websockets import WebSocketState

from messenger.server.api._common import Body
from messenger.server.auth import caller_for_token
from messenger.server.errors import ApiError
from messenger.server.state import AppState, get_state
from messenger.server.wire import conversation_event, to_device_event
from messenger.store import repo
from messenger.store.errors import NotFound
from messenger.store.models import Membership

router = APIRouter()
log = logging.getLogger("messenger.server.stream")

PAGE = 500
HELLO_TIMEOUT = 10.0
CLOSE_AUTH = 4401
CLOSE_BAD_HELLO = 4400


class Hello(Body):
    type: str
    token: str
    since: dict[str, int] = Field(default_factory=dict)
    to_device_since: int = 0


class _Kicked(Exception):
    pass


class StreamConnection:
    def __init__(
        self,
        ws: WebSocket,
        state: AppState,
        user_id: str,
        device_id: str,
        since: dict[str, int],
        to_device_since: int,
    ) -> None:
        self.ws = ws
        self.state = state
        self.user_id = user_id
        self.device_id = device_id
        self.cursors = dict(since)
        self.active: set[str] = set()
        self.td_cursor = to_device_since
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    # Subscriber protocol (called by the hub, synchronously)
    def push(self, item: dict[str, Any]) -> None:
        self.queue.put_nowait(item)

    def kick(self) -> None:
        self.queue.put_nowait({"kick": True})

    async def _send(self, event: dict[str, Any]) -> None:
        await self.ws.send_text(json.dumps(event, separators=(",", ":")))
        self.state.metrics.delivered.inc()

    async def replay(self) -> None:
        async with self.state.sessions() as db:
            if self.td_cursor:
                await repo.ack_to_device(db, self.device_id, self.td_cursor)
                await db.commit()
            mems = await repo.memberships_for_sync(db, self.user_id, self.cursors)
        # Memberships may have changed between attaching to the hub and this query: the
        # database is the truth, so (un)subscribe accordingly.
        for mem in mems:
            if mem.active:
                self.active.add(mem.conversation_id)
                self.state.hub.subscribe(self, mem.conversation_id)
            else:
                self.state.hub.unsubscribe(self, mem.conversation_id)
        for mem in mems:
            self.cursors.setdefault(mem.conversation_id, mem.joined_seq - 1)
            await self._fill(mem, None)
        await self._fill_to_device(None)
        await self._send({"type": "synced"})

    async def _fill(self, mem: Membership, upto: int | None) -> None:
        """Send the member's events after its cursor (up to `upto`), page by page."""
        cid = mem.conversation_id
        while True:
            async with self.state.sessions() as db:
                events = await repo.events_for(db, mem, self.cursors[cid], PAGE, upto)
            for event in events:
                await self._send(conversation_event(event))
                self.cursors[cid] = event.seq
            if len(events) < PAGE:
                if upto is not None:
                    self.cursors[cid] = max(self.cursors[cid], upto)
                return

    async def _fill_to_device(self, upto: int | None) -> None:
        while True:
            async with self.state.sessions() as db:
                rows = await repo.pending_to_device(db, self.device_id, self.td_cursor, PAGE)
            for row in rows:
                if upto is not None and row.seq > upto:
                    return
                await self._send(to_device_event(row))
                self.td_cursor = row.seq
            if len(rows) < PAGE:
                return

    async def _live(self, item: dict[str, Any]) -> None:
        if item.get("kick"):
            raise _Kicked
        event = item["event"]
        if "conversation_id" in item and "seq" in event:
            cid, seq = item["conversation_id"], int(event["seq"])
            about_me = event["type"] == "membership" and event["user_id"] == self.user_id
            if not about_me and cid not in self.active:
                return
            if cid not in self.cursors:
                if not about_me:
                    return
                self.cursors[cid] = seq - 1
            last = self.cursors[cid]
            if seq <= last:
                return
            if seq > last + 1:
                async with self.state.sessions() as db:
                    mem = await repo.membership(db, cid, self.user_id)
                if mem is not None:
                    await self._fill(mem, seq - 1)
            await self._send(event)
            self.cursors[cid] = seq
            if about_me:
                if event["action"] == "added":
                    self.active.add(cid)
                else:
                    self.active.discard(cid)
        elif "device_id" in item:
            seq = int(event["seq"])
            if seq <= self.td_cursor:
                return
            if seq > self.td_cursor + 1:
                await self._fill_to_device(seq - 1)
                if seq <= self.td_cursor:
                    return
            await self._send(event)
            self.td_cursor = seq
        else:
            await self._send(event)

    async def run_sender(self) -> None:
        await self.replay()
        while True:
            await self._live(await self.queue.get())

    async def run_receiver(self) -> None:
        while True:
            frame = await self.ws.receive_text()
            try:
                data = json.loads(frame)
            except json.JSONDecodeError:
                continue
            if isinstance(data, dict) and data.get("type") == "ack":
                upto = data.get("to_device_seq")
                if isinstance(upto, int) and 0 < upto <= self.td_cursor:
                    async with self.state.sessions() as db:
                        await repo.ack_to_device(db, self.device_id, upto)
                        await db.commit()


async def _hello(ws: WebSocket) -> Hello | None:
    try:
        raw = await asyncio.wait_for(ws.receive_text(), HELLO_TIMEOUT)
        hello = Hello.model_validate_json(raw)
    except (TimeoutError, ValidationError, KeyError):
        await ws.close(CLOSE_BAD_HELLO, "send a hello frame first")
        return None
    if hello.type != "hello":
        await ws.close(CLOSE_BAD_HELLO, "send a hello frame first")
        return None
    return hello


@router.websocket("/stream")
async def stream(ws: WebSocket) -> None:
    state = get_state(ws)
    await ws.accept()
    try:
        hello = await _hello(ws)
    except WebSocketDisconnect:
        return
    if hello is None:
        return
    async with state.sessions() as db:
        try:
            caller = await caller_for_token(db, hello.token)
            if caller.session.device_id is None:
                raise ApiError(401, "register a device before opening the stream")
            await repo.active_device(db, caller.user.id, caller.session.device_id)
        except (ApiError, NotFound) as exc:
            await ws.close(CLOSE_AUTH, str(exc)[:120])
            return
        active = {c.id for c, _ in await repo.conversations_of(db, caller.user)}
    conn = StreamConnection(
        ws, state, caller.user.id, caller.session.device_id, hello.since, hello.to_device_since
    )
    state.hub.attach(conn, active)
    state.metrics.connections.inc()
    log.info("stream open user=%s device=%s", conn.user_id, conn.device_id)
    sender = asyncio.create_task(conn.run_sender())
    receiver = asyncio.create_task(conn.run_receiver())
    try:
        done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            failure = task.exception()
            if isinstance(failure, _Kicked):
                await ws.close(CLOSE_AUTH, "this device was removed")
            elif failure is not None and not isinstance(
                failure, WebSocketDisconnect | RuntimeError
            ):
                log.error("stream failed", exc_info=failure)
                await ws.close(1011, "server error")
    finally:
        for task in (sender, receiver):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        state.hub.detach(conn)
        state.metrics.connections.dec()
        if ws.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await ws.close()
        log.info("stream closed user=%s device=%s", conn.user_id, conn.device_id)
