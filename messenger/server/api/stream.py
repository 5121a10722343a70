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
from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import Field, ValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.websockets import WebSocketState

from messenger.server import bots
from messenger.server.api._common import Body, Id, Seq, TxnId
from messenger.server.api.conversations import store_message
from messenger.server.auth import caller_for_token, stream_sender
from messenger.server.errors import ApiError, describe, validation_detail
from messenger.server.limits import FRAME_WRITER, UNSENT_BYTES, text_frame
from messenger.server.state import AppState, get_state
from messenger.server.wire import alarm_event, conversation_event, to_device_event
from messenger.store import alarms, repo
from messenger.store.errors import NotFound
from messenger.store.models import Membership

router = APIRouter()
log = logging.getLogger("messenger.server.stream")

# Events per database read while replaying: each open stream holds at most one page, so 100
# streams syncing at once hold 100 pages (with 200 the heap peaked 25 MB above start in the
# bench, with 50 about 6 MB; the extra reads cost little beside the frames sent).
PAGE = 50
CLOSE_AUTH = 4401
CLOSE_BAD_HELLO = 4400
CLOSE_BEHIND = 1013  # "try again later": the client reconnects and resumes from its cursors


class Hello(Body):
    type: str
    token: str = Field(max_length=200)
    since: dict[str, Seq] = Field(default_factory=dict, max_length=20_000)
    to_device_since: Seq = 0


class StreamSend(Body):
    """A message sent over the stream: `POST /v1/conversations/{cid}/messages` as a frame,
    from the stream's own device, saving the HTTP request's overhead."""

    type: Literal["send"]
    conversation_id: Id
    txn_id: TxnId
    ciphertext: str
    attachment_ids: list[Id] = Field(default_factory=list, max_length=32)
    membership_seq: Seq | None = None


SEND_ROUTE = "/v1/conversations/{cid}/messages"  # what a bot's scopes and limits are checked for


class StreamConnection:
    """One device's open stream: its cursors, its queue of live items, and how it ends."""

    def __init__(
        self,
        ws: WebSocket,
        state: AppState,
        user_id: str,
        device_id: str,
        session_id: str,
        since: dict[str, int],
        to_device_since: int,
        *,
        bot: bool = False,
    ) -> None:
        self.ws = ws
        self.state = state
        self.bot = bot
        self.user_id = user_id
        self.device_id = device_id
        self.session_id = session_id
        self.cursors = dict(since)
        self.active: set[str] = set()
        self.td_cursor = to_device_since
        self.alarm_rounds: dict[str, int] = {}  # alarm id -> the last round sent
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.limit = state.settings.stream_queue_limit
        self.byte_limit = state.settings.stream_queue_bytes
        self.queued_bytes = 0
        self.unsent: Callable[[], int] = ws.scope.get(UNSENT_BYTES, lambda: 0)
        self.overflowed = asyncio.Event()
        self.kicked = asyncio.Event()
        # Live frames go straight to the socket while the sender task is idle (see `push`).
        self.writer: Callable[[list[bytes]], bool] | None = ws.scope.get(FRAME_WRITER)
        self.idle = False
        self.outgoing: list[dict[str, Any]] = []

    # Subscriber protocol (called by the hub, synchronously)
    def push(self, item: dict[str, Any]) -> None:
        """Take a live event; a reader too far behind is dropped (it resumes from the database).

        "Too far" counts events and bytes: a stalled reader of large messages holds at most
        `stream_queue_bytes`. The JSON is made here once and shared by every connection.
        While the sender task is idle, the next event in order is written at once (with the
        rest of this tick's, in one write, the frame's bytes made once for all connections);
        anything else queues for the sender task, which fills gaps from the database and
        keeps the order.
        """
        size = 0
        text = None
        if "event" in item:
            text = item.get("_json")
            if text is None:
                text = item["_json"] = json.dumps(item["event"], separators=(",", ":"))
            size = len(text)
        held = self.queued_bytes + self.unsent() + size
        if self.queue.qsize() >= self.limit or held > self.byte_limit:
            self.overflowed.set()
            return
        if text is not None and self.idle and self.queue.empty() and self._in_order(item):
            if "_frame" not in item:
                item["_frame"] = text_frame(text)
            if not self.outgoing:
                asyncio.get_running_loop().call_soon(self._flush)
            self.outgoing.append(item)
            return
        self._flush()  # what was written at once goes before what queues now
        self.queued_bytes += size
        self.queue.put_nowait(item)

    def _in_order(self, item: dict[str, Any]) -> bool:
        """Whether a live item can go out now with no database work: the next event of an
        active conversation, or one that is neither numbered nor about this device's state.
        Advances the cursor of what it lets through."""
        event = item["event"]
        if "conversation_id" in item and "seq" in event:
            cid = item["conversation_id"]
            if event["type"] == "membership" or cid not in self.active:
                return False
            last = self.cursors.get(cid)
            if last is None or int(event["seq"]) != last + 1:
                return False
            self.cursors[cid] = last + 1
            return True
        return "device_id" not in item and event.get("type") != "alarm"

    def _flush(self) -> None:
        """Write the frames taken at once in one go; if the socket cannot take them now, the
        sender task sends them (first, in order) through ASGI."""
        if not self.outgoing:
            return
        items, self.outgoing = self.outgoing, []
        if self.writer is not None and self.writer([item["_frame"] for item in items]):
            self.state.metrics.delivered.inc(len(items))
            return
        self.queue.put_nowait({"frames": [item["_json"] for item in items]})

    async def _next_item(self) -> dict[str, Any]:
        item = await self.queue.get()
        text = item.get("_json")
        if text is not None:
            self.queued_bytes -= len(text)
        return item

    def kick(self) -> None:
        self.kicked.set()

    async def _send(self, event: dict[str, Any]) -> None:
        await self.ws.send_text(json.dumps(event, separators=(",", ":")))
        self.state.metrics.delivered.inc()

    async def _send_live(self, item: dict[str, Any]) -> None:
        """Send a hub item's event; its JSON is made once and shared by every connection."""
        text = item.get("_json")
        if text is None:
            text = item["_json"] = json.dumps(item["event"], separators=(",", ":"))
        await self.ws.send_text(text)
        self.state.metrics.delivered.inc()

    async def replay(self) -> None:
        async with self.state.replay_slots:
            if self.td_cursor:
                async with self.state.sessions() as db:
                    await repo.ack_to_device(db, self.device_id, self.td_cursor)
                    await db.commit()
            await self.catch_up()
        await self._send({"type": "synced"})

    async def catch_up(self) -> None:
        """Send whatever the database has beyond the cursors.

        Runs after connecting and then periodically, so changes nobody published (an admin
        tool on a single node) or a lost pub/sub message still arrive. The database is the
        truth for membership, so hub subscriptions follow it here. To-device envelopes go
        first: they carry the sender keys of the messages that follow, so a client back from
        a long absence can read each message as it arrives instead of holding it. Open alarms
        the device has not had yet (or a later round of) come next.
        """
        await self._fill_to_device(None)
        async with self.state.sessions() as db:
            waiting = await alarms.deliveries_for_device(db, self.user_id, self.device_id)
            candidates = await repo.sync_candidates(db, self.user_id, self.cursors)
        for alarm, recipient, key in waiting:  # open alarms not sent yet (or a later round)
            if recipient.rounds > self.alarm_rounds.get(alarm.id, 0):
                await self._send(alarm_event(alarm, recipient, key))
                self.alarm_rounds[alarm.id] = recipient.rounds
        # Subscriptions first, so no live event of a conversation left slips in meanwhile.
        following = {mem.conversation_id for mem, _ in candidates if mem.active}
        for cid in self.active - following:  # removed, or across a pair no longer allowed
            self.active.discard(cid)
            self.state.hub.unsubscribe(self, cid)
        for cid in following:
            self.active.add(cid)
            self.state.hub.subscribe(self, cid)
        for mem, last_seq in candidates:
            cid = mem.conversation_id
            unseen = repo.unseen_range(mem, last_seq, self.cursors.get(cid))
            if unseen is not None:
                self.cursors[cid] = unseen[0]
                if unseen[1] > unseen[0]:
                    await self._fill(mem, None)

    def behind(
        self, memberships: list[repo.MembershipEnd], to_device: int, alarm_rounds: dict[str, int]
    ) -> bool:
        """Whether the database holds what `catch_up` would send or act on: a conversation
        with events past the cursor, a membership the hub subscription does not match yet,
        a to-device envelope or an alarm round not sent. (A conversation across a tenant pair
        whose consent was withdrawn may look behind each time; catch-up then skips it.)"""
        if to_device > self.td_cursor:
            return True
        if any(rounds > self.alarm_rounds.get(a, 0) for a, rounds in alarm_rounds.items()):
            return True
        return any(self._unsent(mem) for mem in memberships)

    def _unsent(self, mem: repo.MembershipEnd) -> bool:
        """Whether `catch_up` has something to do for this membership: events to send, or
        the hub subscription to follow a change of membership."""
        cid = mem.conversation_id
        if mem.active != (cid in self.active):
            return True
        unseen = repo.unseen_range(mem, mem.last_seq, self.cursors.get(cid))
        return unseen is not None and unseen[1] > unseen[0]

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
        if item.get("resync"):
            # Many streams may fall behind at once (Redis was down): as many catch up at a
            # time as replay after a restart.
            async with self.state.replay_slots:
                await self.catch_up()
            return
        if "frames" in item:
            for frame in item["frames"]:
                await self.ws.send_text(frame)
                self.state.metrics.delivered.inc()
            return
        event = item["event"]
        if event.get("type") == "alarm":
            alarm_id, rounds = event["alarm_id"], int(event["round"])
            if rounds > self.alarm_rounds.get(alarm_id, 0):
                await self._send_live(item)
                self.alarm_rounds[alarm_id] = rounds
            return
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
                if not about_me and (mem is None or not repo.in_window(mem, seq)):
                    # The gap held this member's removal, whose own publication was lost:
                    # nothing after it, live or not, until catch-up says otherwise.
                    self.active.discard(cid)
                    self.state.hub.unsubscribe(self, cid)
                    return
            await self._send_live(item)
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
            await self._send_live(item)
            self.td_cursor = seq
        else:
            await self._send_live(item)

    async def run_sender(self) -> None:
        await self.replay()
        while True:
            self.idle = self.writer is not None
            item = await self._next_item()
            self.idle = False
            await self._live(item)

    async def run_receiver(self) -> None:
        """Read client frames: to-device acks and sends; anything else (binary, junk) is
        ignored. Sends are handled one at a time, so a device's sends keep their order."""
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            frame = message.get("text")
            if frame is None:
                continue
            try:
                data = json.loads(frame)
            except json.JSONDecodeError:
                continue
            if not isinstance(data, dict):
                continue
            if data.get("type") == "ack":
                upto = data.get("to_device_seq")
                if isinstance(upto, int) and 0 < upto <= self.td_cursor:
                    async with self.state.sessions() as db:
                        await repo.ack_to_device(db, self.device_id, upto)
                        await db.commit()
            elif data.get("type") == "send":
                answer = await self.send_message(data)
                await self.ws.send_text(json.dumps(answer, separators=(",", ":")))

    async def send_message(self, data: dict[str, Any]) -> dict[str, Any]:
        """Store a message sent as a frame: the `sent` answer, or `send_failed` with the status,
        code and detail the HTTP route would have answered (same checks, same idempotency)."""
        txn_id = data.get("txn_id") if isinstance(data.get("txn_id"), str) else None
        headers: dict[str, str]
        try:
            send = StreamSend.model_validate(data)
            if self.bot:  # scopes and rate limits, per request
                await stream_sender(self.state, self.session_id, SEND_ROUTE)
            result = await store_message(
                self.state,
                send.conversation_id,
                self.user_id,
                self.device_id,
                send.txn_id,
                send.ciphertext,
                send.attachment_ids,
                send.membership_seq,
                # A session ended since the stream opened is refused in the send's batch,
                # not only when the stream closes (a bot's was checked just now).
                session_to_check=None if self.bot else self.session_id,
            )
            return {"type": "sent", "txn_id": send.txn_id, **result}
        except ValidationError as exc:
            status, code, detail, headers = 422, "invalid", validation_detail(exc.errors()), {}
        except Exception as exc:
            described = describe(exc)
            if described is None:
                log.error("send over the stream failed", exc_info=exc)
                described = 500, "error", "the server failed; try again", {}
            status, code, detail, headers = described
        answer: dict[str, Any] = {
            "type": "send_failed",
            "txn_id": txn_id,
            "status": status,
            "error": code,
            "detail": detail,
        }
        if "Retry-After" in headers:
            answer["retry_after"] = float(headers["Retry-After"])
        return answer


async def close_ended_streams(state: AppState) -> None:
    """Close, within one interval, every stream whose session ended anywhere.

    One query per node per interval covers all its streams, so a user disabled by another
    node or by the admin CLI (with or without Redis) is cut off within a second.
    """
    interval = state.settings.session_check_interval
    while True:
        await asyncio.sleep(interval)
        subscribers = state.hub.subscribers()
        if not subscribers:
            continue
        try:
            async with state.reads.connect() as conn:
                valid = await repo.valid_sessions(
                    conn,
                    [s.session_id for s in subscribers],
                    state.now() - state.settings.session_ttl,
                )
        except (SQLAlchemyError, OSError) as exc:
            log.warning("cannot check open sessions (%s)", type(exc).__name__)
            continue
        for sub in subscribers:
            if sub.session_id not in valid:
                sub.kick()


async def recheck_streams(state: AppState) -> None:
    """Within every `stream_recheck_interval`: catch up the node's streams for which the
    database holds what nobody published (an admin tool on a node without Redis, a lost
    pub/sub message). Three statements for all of the node's streams decide which ones; only
    those run a catch-up, where every stream once ran its own each interval (four statements
    and some 7 ms of the node's CPU per stream, the most of what an idle stream cost)."""
    # A stream is behind what the database held at the previous look, half an interval ago:
    # what was committed since may still be on its way (under load, every stream is a few
    # events short at any instant, and all would catch up at once for nothing).
    previous: tuple[repo.Horizons, dict[str, dict[str, int]]] | None = None
    while True:
        await asyncio.sleep(state.settings.stream_recheck_interval / 2)
        streams = [s for s in state.hub.subscribers() if isinstance(s, StreamConnection)]
        if not streams:
            previous = None
            continue
        devices = [s.device_id for s in streams]
        try:
            async with state.reads.connect() as conn:
                horizons = await repo.stream_horizons(conn, [s.user_id for s in streams], devices)
                rounds = await alarms.open_rounds(conn, devices)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("cannot recheck open streams (%s)", type(exc).__name__)
            continue
        if previous is not None:
            then, rounds_then = previous
            for stream in streams:
                if stream.behind(
                    then.memberships.get(stream.user_id, []),
                    then.to_device.get(stream.device_id, 0),
                    rounds_then.get(stream.device_id, {}),
                ):
                    stream.push({"resync": True})
        previous = horizons, rounds


async def _hello(ws: WebSocket, state: AppState) -> Hello | None:
    settings = state.settings
    try:
        async with asyncio.timeout(settings.stream_hello_timeout):
            raw = await ws.receive_text()
        if len(raw) > settings.stream_hello_bytes:
            await ws.close(CLOSE_BAD_HELLO, "the hello frame is too large")
            return None
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
    if state.preauth >= state.settings.stream_preauth_limit:
        await ws.accept()
        await ws.close(CLOSE_BEHIND, "too many connections are starting; try again")
        return
    state.preauth += 1
    try:
        await ws.accept()
        hello = await _hello(ws, state)
    except WebSocketDisconnect:
        return
    finally:
        state.preauth -= 1
    if hello is None:
        return
    async with state.sessions() as db:
        try:
            caller = await caller_for_token(db, hello.token, state)
            if caller.session.device_id is None:
                raise ApiError(401, "register a device before opening the stream")
            await repo.active_device(db, caller.user.id, caller.session.device_id)
            if not await bots.has_scope(db, caller.user, "read"):
                raise ApiError(401, "this bot lacks the 'read' scope")
        except (ApiError, NotFound) as exc:
            await ws.close(CLOSE_AUTH, str(exc)[:120])
            return
        active = {c.id for c, _ in await repo.conversations_of(db, caller.user)}
    conn = StreamConnection(
        ws,
        state,
        caller.user.id,
        caller.session.device_id,
        caller.session.id,
        hello.since,
        hello.to_device_since,
        bot=caller.user.kind == "bot",
    )
    state.hub.attach(conn, active)
    state.metrics.connections.inc()
    log.info("stream open user=%s device=%s", conn.user_id, conn.device_id)
    sender = asyncio.create_task(conn.run_sender())
    receiver = asyncio.create_task(conn.run_receiver())
    behind = asyncio.create_task(conn.overflowed.wait())
    kicked = asyncio.create_task(conn.kicked.wait())
    try:
        done, _ = await asyncio.wait(
            {sender, receiver, behind, kicked}, return_when=asyncio.FIRST_COMPLETED
        )
        if kicked in done:
            await ws.close(CLOSE_AUTH, "this session or device has ended")
        elif behind in done:
            log.info("stream too far behind user=%s device=%s", conn.user_id, conn.device_id)
            await ws.close(CLOSE_BEHIND, "too far behind; reconnect to resume")
        for task in done - {behind, kicked}:
            failure = task.exception()
            if failure is not None and not isinstance(failure, WebSocketDisconnect | RuntimeError):
                log.error("stream failed", exc_info=failure)
                await ws.close(1011, "server error")
    finally:
        for task in (sender, receiver, behind, kicked):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        state.hub.detach(conn)
        state.metrics.connections.dec()
        if ws.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await ws.close()
        log.info("stream closed user=%s device=%s", conn.user_id, conn.device_id)
