"""One bridge worker: database, messenger device, mailbox sessions, watchers, sender, actions.

`BridgeWorker.run()` runs until cancelled (or `stop` is set): it migrates the database, signs
in to the messenger as the bridge's device, takes leases on the watched mailboxes and, for each
held mailbox, runs a `MailboxWatcher`; the `OutboxSender` posts what they record; chat messages
become actions. Health goes to the board, which reports changes to the admin room.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bridge.notify.actions import ActionHandler
from bridge.notify.chat import KEY_STRENGTH, ChatLink
from bridge.notify.config import BridgeConfig, GraphApp, Identity
from bridge.notify.daysheet import DaySheetJob
from bridge.notify.health import HealthBoard, MailboxHealth, MailboxState, health_app
from bridge.notify.leases import LeaseKeeper
from bridge.notify.outbox import OutboxSender
from bridge.notify.store import BridgeStore, NewNotification
from bridge.notify.transient import retry_delay
from bridge.notify.watcher import MailboxWatcher
from med import DelegateSession
from med.auth.oauth import CLOUD_AUTHORITY, CLOUD_GRAPH, OAuthConfig, OAuthSignIn
from med.backends import backend_class
from messenger.client import MessengerError

__all__ = ["MESSENGER", "BridgeWorker"]

#: The health board's entry for the bridge's messenger connection.
MESSENGER = "messenger"

log = logging.getLogger("bridge.notify")


@dataclass
class _Sessions:
    """Sessions per identity, opened on first use, closed at the end."""

    config: BridgeConfig
    opened: dict[str, DelegateSession] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def open(self, name: str) -> DelegateSession:
        identity = self.config.identity_for(name)
        if identity.graph_app is not None:
            return _graph_app_session(identity, identity.graph_app)
        if identity.keytab is not None:
            os.environ["KRB5_CLIENT_KTNAME"] = str(identity.keytab)
        if identity.ccache:
            os.environ["KRB5CCNAME"] = identity.ccache
        return DelegateSession.open(identity.profile, password=identity.password())

    async def get(self, name: str) -> DelegateSession:
        async with self._lock:
            if name not in self.opened:
                self.opened[name] = self.open(name)
            return self.opened[name]

    async def close(self) -> None:
        for session in self.opened.values():
            await session.close()
        self.opened.clear()


def _graph_app_session(identity: Identity, app: GraphApp) -> DelegateSession:
    """A session signed in to Graph as an app (client credentials against the tenant's
    authority), receiving change notifications on a listener of its own where configured."""
    profile = identity.profile
    server = (profile.server or CLOUD_GRAPH).rstrip("/")
    authority = CLOUD_AUTHORITY.rsplit("/", 1)[0] if server == CLOUD_GRAPH else server
    ca_file = Path(profile.ca_bundle) if profile.ca_bundle else None
    signer = OAuthSignIn(
        OAuthConfig(
            client_id=app.client_id,
            authority=f"{authority}/{app.tenant}",
            client_secret=app.secret(identity.name),
            ca_file=ca_file,
            timeout_s=profile.timeout_s,
        )
    )
    graph: Any = backend_class("graph")
    backend = graph(
        base_url=server,
        user=profile.user,
        token=signer.app_token,
        ca_file=ca_file,
        timeout_s=profile.timeout_s,
        poll_interval_s=app.delta_poll_seconds,
        notification_host=app.notification_host,
        notification_url=app.notification_url,
        app_only=True,
    )
    return DelegateSession(backend, mailboxes=profile.mailboxes)


async def _ended(task: asyncio.Task[None]) -> None:
    """Cancel `task` and wait until it has ended, however it ends. A cancellation of the caller
    meanwhile still ends the caller: suppressing CancelledError around `await task` would
    swallow it too, and the supervisor or lease loop that called us would run on for ever."""
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved, as before: the supervisor reports watchers that die


class BridgeWorker:
    """A bridge worker process's whole life."""

    def __init__(self, config: BridgeConfig) -> None:
        self.config = config
        self.board = HealthBoard(config.worker_id, on_change=self._state_changed)
        self.watchers: dict[str, asyncio.Task[None]] = {}
        self.stream_sessions: dict[str, DelegateSession] = {}
        self.ready = asyncio.Event()
        self.health_port: int | None = None
        self._status: asyncio.Queue[tuple[str, MailboxHealth]] = asyncio.Queue()
        self.store: BridgeStore | None = None
        self.chat: ChatLink | None = None
        self.sender: OutboxSender | None = None
        self.leases: LeaseKeeper | None = None

    async def _day_sheets(self, store: BridgeStore, sessions: _Sessions) -> None:
        identity = {w.mailbox: w.identity for w in self.config.watches}

        async def session_for(mailbox: str) -> DelegateSession:
            return await sessions.get(identity[mailbox])

        job = DaySheetJob(
            self.config.day_sheets,
            store,
            session_for,
            self.held,
            self._wake,
            lambda: datetime.now(UTC),
        )
        await job.run()

    def _state_changed(self, mailbox: str, health: MailboxHealth) -> None:
        log.info("mailbox %s: %s %s", mailbox, health.state.value, health.detail)
        self._status.put_nowait((mailbox, health))

    def held(self) -> list[str]:
        return sorted(self.leases.held) if self.leases else []

    def _wake(self) -> None:
        if self.sender is not None:
            self.sender.wake.set()

    async def run(self) -> None:
        config = self.config
        store = self.store = await BridgeStore.open(config.database, config.database_schema)
        sessions = _Sessions(config)
        chat = self.chat = ChatLink(config.messenger, store, config.worker_id, retries=1)
        tasks: list[asyncio.Task[None]] = []
        try:
            ops, mem = KEY_STRENGTH[config.messenger.key_strength]
            await store.unlock(config.messenger.keys_passphrase(), opslimit=ops, memlimit=mem)
            await self._connect(chat)
            self.sender = OutboxSender(store, chat, self.board, self.held)
            actions = ActionHandler(config, store, chat, self.board, sessions.get, self._wake)
            self.leases = LeaseKeeper(
                store,
                config.worker_id,
                [w.mailbox for w in config.watches],
                config.lease_seconds,
                lambda m: self._gain(m, sessions),
                self._lose,
            )
            await actions.resume(own=True)
            tasks = [
                asyncio.create_task(self.leases.run(), name="leases"),
                asyncio.create_task(self.sender.run(), name="outbox"),
                asyncio.create_task(self._listen(actions), name="chat"),
                asyncio.create_task(self._report(), name="status"),
                asyncio.create_task(self._supervise(sessions, actions), name="supervise"),
            ]
            if config.day_sheets:
                sheets = self._day_sheets(store, sessions)
                tasks.append(asyncio.create_task(sheets, name="daysheet"))
            if config.health_listen:
                tasks.append(asyncio.create_task(self._serve_health(), name="health"))
            self.ready.set()
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # a task that ended raised: let it end the worker
        finally:
            for task in tasks:
                task.cancel()
            for task in [*tasks, *self.watchers.values()]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if self.leases is not None:
                with contextlib.suppress(Exception):
                    await self.leases.release_all()
            for session in self.stream_sessions.values():
                await session.close()
            await sessions.close()
            await chat.close()
            await store.close()

    async def _connect(self, chat: ChatLink) -> None:
        """Sign in to the messenger; while it is unreachable (or answers 5xx), keep trying with
        doubling delays and show it on the board as the "messenger" entry."""
        failures = 0
        while True:
            try:
                await chat.start()
            except MessengerError as exc:
                failures += 1
                delay = retry_delay(exc, failures)
                if delay is None:
                    raise
                self.board.set(MESSENGER, MailboxState.DEGRADED, type(exc).__name__)
                # The reason too (refused, timed out, a 5xx): it tells a stopped server from
                # a slow one. Client errors carry no secrets (an address, a server's detail).
                log.warning(
                    "messenger unreachable (%s: %s); next try in %.1f s",
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await asyncio.sleep(min(delay, self.config.lease_seconds))
            else:
                self.board.set(MESSENGER, MailboxState.RUNNING)
                return

    async def _gain(self, mailbox: str, sessions: _Sessions) -> None:
        assert self.store is not None
        watch = next(w for w in self.config.watches if w.mailbox == mailbox)
        session = await sessions.get(watch.identity)
        stream_session = None
        if self.config.mode == "streaming":
            stream_session = sessions.open(watch.identity)
            self.stream_sessions[mailbox] = stream_session
        watcher = MailboxWatcher(
            watch,
            session,
            stream_session,
            self.store,
            self.config.rules,
            self.board,
            self._wake,
            poll_s=self.config.poll_seconds,
        )
        self.watchers[mailbox] = asyncio.create_task(watcher.run(), name=f"watch {mailbox}")
        self._wake()

    async def _lose(self, mailbox: str) -> None:
        task = self.watchers.pop(mailbox, None)
        if task is not None:
            await _ended(task)
        stream_session = self.stream_sessions.pop(mailbox, None)
        if stream_session is not None:
            await stream_session.close()
        self.board.set(mailbox, MailboxState.RELEASED)

    async def _supervise(self, sessions: _Sessions, actions: ActionHandler) -> None:
        """A watcher that ended with an unexpected error is logged, reported and restarted;
        actions a dead worker left unfinished are taken over."""
        while True:
            await asyncio.sleep(self.config.lease_seconds / 3)
            await actions.resume(own=False)
            for mailbox, task in list(self.watchers.items()):
                if not task.done() or task.cancelled():
                    continue
                error = task.exception()
                log.error("watcher of %s ended: %r; restarting it", mailbox, error)
                self.board.set(mailbox, MailboxState.DEGRADED, type(error).__name__)
                await self._lose(mailbox)
                if self.leases is not None and mailbox in self.leases.held:
                    await self._gain(mailbox, sessions)

    async def _listen(self, actions: ActionHandler) -> None:
        assert self.chat is not None
        async for message in self.chat.incoming():
            await actions.handle(message)

    async def _report(self) -> None:
        """Post state changes to the admin room (once each, through the outbox)."""
        assert self.store is not None
        admin = self.config.admin_room
        while True:
            mailbox, health = await self._status.get()
            if admin is None:
                continue
            key = f"status:{self.config.worker_id}:{mailbox}:{health.state.value}:{health.since}"
            text = f"Bridge {self.config.worker_id}: {mailbox} is {health.state.value}"
            if health.detail:
                text += f" ({health.detail})"
            await self.store.enqueue(
                [
                    NewNotification(
                        dedup_key=key,
                        mailbox="",
                        route=admin.key,
                        rule="status",
                        payload={"text": text},
                        not_before=self.store.now(),
                    )
                ]
            )
            self._wake()

    async def _serve_health(self) -> None:
        import socket

        import uvicorn

        host, _, port = str(self.config.health_listen).rpartition(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host or "127.0.0.1", int(port or 0)))
        self.health_port = sock.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(health_app(self.board), log_level="warning", lifespan="off")  # type: ignore[arg-type]
        )
        await server.serve(sockets=[sock])
