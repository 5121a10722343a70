"""Change notifications and delta polling as `MailboxEvent`s, and the receiving end of Graph's
change notifications.

`NotificationListener` is that receiving end, a small HTTP listener in a thread. Graph first
POSTs `?validationToken=...` and wants the token echoed as text/plain (the handshake that proves
the URL belongs to the subscriber); afterwards it POSTs `{"value": [notification, ...]}`. Each
notification carries the subscription's `clientState`, a secret only Graph and this listener
know: notifications with another one are dropped, so a stranger who finds the URL cannot inject
events.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import queue
import secrets
import threading
import time
from collections.abc import Generator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlsplit

from med.backends.base import Watch
from med.backends.graph.convert import _make_id, _split_id
from med.errors import (
    InvalidInput,
    MedError,
    ServerError,
    Unreachable,
    Unsupported,
)
from med.model import (
    Folder,
    FolderKind,
    MailboxEvent,
    MailboxEventKind,
    SyncChangeKind,
)

if TYPE_CHECKING:
    from med.backends.graph.backend import GraphBackend

NO_STREAMING = (
    "Graph pushes changes only to a listener it can reach (notification_host); without one,"
    " medbridge polls Graph mail folders with delta queries, which calendars and contacts do"
    " not have here."
)

EVENT_OF_CHANGE = {
    SyncChangeKind.CREATED: MailboxEventKind.NEW_MAIL,
    SyncChangeKind.UPDATED: MailboxEventKind.MODIFIED,
    SyncChangeKind.READ_FLAG: MailboxEventKind.MODIFIED,
    SyncChangeKind.DELETED: MailboxEventKind.DELETED,
}

NO_PUSH = "Graph change notifications are implemented for mail folders and calendars only."

#: How long a subscription lives before it is renewed (Graph allows about three days).
SUBSCRIPTION_LIFETIME = timedelta(hours=12)
#: Seconds between attempts to reach a server that went away.
RECONNECT_DELAY_S = 2.0
PUSH_EVENTS = {
    "created": MailboxEventKind.CREATED,
    "updated": MailboxEventKind.MODIFIED,
    "deleted": MailboxEventKind.DELETED,
}


def subscribe(backend: GraphBackend, folders: Sequence[Folder]) -> Watch:
    """Change notifications where the server reaches our listener, delta polling otherwise.

    With `notification_host` set, a listener is started there and a Graph subscription
    (notificationUrl, clientState) made per folder; if the server cannot complete the
    validation handshake (the listener is not reachable from it), the mail folders are
    polled instead: a delta round per folder every `poll_interval_s`. A quiet interval
    yields a STATUS heartbeat either way; a server that cannot be reached is reported
    (OFFLINE) and asked again until it answers (RESUBSCRIBED).
    """
    if backend.notification_host is not None:
        try:
            return _push(backend, folders)
        except (InvalidInput, ServerError, Unreachable):
            pass  # no handshake: the server cannot reach the listener; poll instead
    watched = []
    for folder in folders:
        kind, _, _ = _split_id(folder.id, "MCPT")
        if kind != "M":
            raise Unsupported("notifications", "graph", NO_STREAMING)
        watched.append(folder)
    return Watch(lambda watch: _poll(backend, watch, watched))


def _subscription_body(
    backend: GraphBackend, folder: Folder, listener: NotificationListener
) -> dict[str, Any]:
    kind, mailbox, gid = _split_id(folder.id, "MCPT")
    if kind not in "MC":
        raise Unsupported("notifications", "graph", NO_PUSH)
    what = "mailFolders('{}')/messages" if kind == "M" else "calendars('{}')/events"
    return {
        "changeType": "created,updated,deleted",
        "notificationUrl": listener.url,
        "resource": f"users/{mailbox}/{what.format(gid)}",
        "expirationDateTime": (datetime.now(UTC) + SUBSCRIPTION_LIFETIME).isoformat(),
        "clientState": listener.client_state,
    }


def _push(backend: GraphBackend, folders: Sequence[Folder]) -> Watch:
    """Subscriptions for all folders now (so that a refusal can fall back), then events."""
    assert backend.notification_host is not None
    listener = NotificationListener(backend.notification_host, public_url=backend.notification_url)
    made: dict[str, Folder] = {}
    try:
        for folder in folders:
            body = _subscription_body(backend, folder, listener)
            answer = backend._request(
                "post",
                f"{backend.base_url}/v1.0/subscriptions",
                mailbox=folder.mailbox,
                data=body,
            ).json()
            made[str(answer["id"])] = folder
    except BaseException:
        _unsubscribe(backend, made)
        listener.close()
        raise
    return Watch(lambda watch: _notified(backend, watch, listener, made))


def _unsubscribe(backend: GraphBackend, subscriptions: Mapping[str, Folder]) -> None:
    for sub_id in subscriptions:
        with contextlib.suppress(MedError):
            backend._request("delete", f"{backend.base_url}/v1.0/subscriptions/{quote(sub_id)}")


def _notified(
    backend: GraphBackend,
    watch: Watch,
    listener: NotificationListener,
    subscriptions: dict[str, Folder],
) -> Generator[MailboxEvent]:
    renew_at = time.monotonic() + (SUBSCRIPTION_LIFETIME / 2).total_seconds()
    offline = False
    try:
        while not watch.cancelled:
            if time.monotonic() >= renew_at:
                try:
                    _renew(backend, subscriptions)
                except Unreachable:
                    if not offline:
                        offline = True
                        yield MailboxEvent(MailboxEventKind.OFFLINE)
                    renew_at = time.monotonic() + RECONNECT_DELAY_S
                    continue
                renew_at = time.monotonic() + (SUBSCRIPTION_LIFETIME / 2).total_seconds()
                if offline:
                    offline = False
                    yield MailboxEvent(MailboxEventKind.RESUBSCRIBED)
            try:
                # `cancel` wakes the wait with an empty notification.
                with watch.abortable(lambda: listener.notifications.put({})):
                    note = listener.notifications.get(
                        timeout=max(0.0, min(backend.poll_interval_s, renew_at - time.monotonic()))
                    )
            except queue.Empty:
                yield MailboxEvent(MailboxEventKind.STATUS, timestamp=datetime.now(UTC))
                continue
            folder = subscriptions.get(str(note.get("subscriptionId")))
            data = note.get("resourceData")
            kind = PUSH_EVENTS.get(str(note.get("changeType")))
            if folder is None or kind is None or not isinstance(data, Mapping):
                continue
            mail = folder.kind is FolderKind.MAIL
            if mail and kind is MailboxEventKind.CREATED:
                kind = MailboxEventKind.NEW_MAIL
            yield MailboxEvent(
                kind,
                folder_id=folder.id,
                item_id=_make_id("m" if mail else "e", folder.mailbox, str(data.get("id"))),
                timestamp=datetime.now(UTC),
            )
    finally:
        _unsubscribe(backend, subscriptions)
        listener.close()


def _renew(backend: GraphBackend, subscriptions: Mapping[str, Folder]) -> None:
    expires = (datetime.now(UTC) + SUBSCRIPTION_LIFETIME).isoformat()
    for sub_id in subscriptions:
        backend._request(
            "patch",
            f"{backend.base_url}/v1.0/subscriptions/{quote(sub_id)}",
            data={"expirationDateTime": expires},
        )


def _poll(backend: GraphBackend, watch: Watch, folders: list[Folder]) -> Generator[MailboxEvent]:
    """Delta rounds: the first learns each folder's state, later ones report changes."""
    states: dict[str, str] = {}
    away = 0  # rounds in a row the server could not be reached
    first = True
    while not watch.cancelled:
        if not first and watch.wait(RECONNECT_DELAY_S if away else backend.poll_interval_s):
            return
        first = False
        events: list[MailboxEvent] = []
        try:
            for folder in folders:
                state = states.get(folder.id)
                done = False
                while not done:
                    changes, state, done = backend.sync_items(folder, state, 1000)
                    if folder.id in states:  # the first round only learns the state
                        events.extend(
                            MailboxEvent(
                                EVENT_OF_CHANGE[change.kind],
                                folder_id=folder.id,
                                item_id=change.item_id,
                                timestamp=datetime.now(UTC),
                            )
                            for change in changes
                        )
                assert state is not None
                states[folder.id] = state
        except Unreachable:
            if not away:
                yield MailboxEvent(MailboxEventKind.OFFLINE)
            away += 1
            continue
        if away:
            away = 0
            yield MailboxEvent(MailboxEventKind.RESUBSCRIBED)
        yield from events
        if not events:
            yield MailboxEvent(MailboxEventKind.STATUS, timestamp=datetime.now(UTC))


MAX_BODY = 1024 * 1024


class NotificationListener:
    """Listens on `host` (port 0: a free one) under a random path; `url` is what Graph calls.

    `public_url` replaces the URL handed to Graph when the listener is reached through a
    reverse proxy or tunnel; the path must still end in `path`.
    """

    def __init__(self, host: str = "127.0.0.1", *, public_url: str | None = None) -> None:
        self.client_state = secrets.token_urlsafe(32)
        self.path = f"/graph-notifications/{secrets.token_urlsafe(16)}"
        self.notifications: queue.Queue[Mapping[str, Any]] = queue.Queue()
        #: Notifications dropped for a wrong `clientState` (counted, never queued).
        self.rejected = 0
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != listener.path:
                    self._answer(404)
                    return
                token = parse_qs(parts.query).get("validationToken")
                if token:
                    self._answer(200, token[0].encode(), "text/plain; charset=utf-8")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self._answer(413)
                    return
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                    values = body.get("value", []) if isinstance(body, dict) else []
                except ValueError:
                    self._answer(400)
                    return
                listener.accept(values if isinstance(values, list) else [])
                self._answer(202)

            def _answer(self, status: int, body: bytes = b"", kind: str = "text/plain") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # notifications are not logged (they name items)

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        port = self._server.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        self.url = public_url or f"http://{shown}:{port}{self.path}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="graph-notifications", daemon=True
        )
        self._thread.start()

    def accept(self, values: list[Any]) -> None:
        """Queue the notifications that carry our `clientState`; count the others."""
        for value in values:
            state = value.get("clientState") if isinstance(value, Mapping) else None
            if isinstance(state, str) and hmac.compare_digest(state, self.client_state):
                self.notifications.put(value)
            else:
                self.rejected += 1

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
