"""Graph change notifications: `/subscriptions` and the POSTs to the subscriber's listener.

A subscription names a resource (`users/{id}/mailFolders('{id}')/messages` or
`.../calendars('{id}')/events`), a `notificationUrl` and an optional `clientState`. Like
Graph, the lab first checks that the URL answers: it POSTs `?validationToken=...` and wants
the token back as text/plain within 10 seconds, otherwise the subscription is refused (400).
A dispatcher thread then reads the store's change log and POSTs `{"value": [...]}` batches with
the subscription's `clientState` to the URL; what the subscriber may not see (private items
of a delegate without the right) is left out, as in the EWS face's notifications.

An app with an application role (app-only token) subscribes to `users/{id}/...` resources of
any mailbox, as in Graph; it sees them as their owner does. Each caller (user or app) lists,
renews and deletes its own subscriptions only.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import threading
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

from exlab.core import items as store_items
from exlab.core import targets
from exlab.core.caller import Caller
from exlab.core.ids import encode_id
from exlab.graph.convert import graph_id
from exlab.graph.core import (
    Call,
    GraphError,
    Json,
    body_json,
    find_mailbox,
    need,
    readable,
    resolve_folder,
)
from exlab.graph.oauth import TENANT_ID

if TYPE_CHECKING:
    from exlab.graph.app import GraphFace

#: Graph's longest lifetime for Outlook resources (4230 minutes).
MAX_LIFETIME = timedelta(minutes=4230)
VALIDATION_TIMEOUT_S = 10.0
DELIVERY_TIMEOUT_S = 5.0
#: Deliveries that may fail in a row before the lab drops the subscription.
MAX_FAILURES = 20
DISPATCH_S = 0.1
CHANGE_TYPES = frozenset({"created", "updated", "deleted"})

_RESOURCE = re.compile(
    r"^/?(?:me|users/(?P<user>[^/]+))/(?P<coll>mailFolders|calendars)"
    r"(?:\('(?P<quoted>[^']+)'\)|/(?P<plain>[^/]+))/(?P<what>messages|events)$",
    re.IGNORECASE,
)


@dataclass
class Subscription:
    id: str
    user: str  # whose rights decide what is reported (an app's: the mailbox owner's)
    mailbox: str
    folder_id: str
    kind: str  # "message" or "event"
    resource: str
    change_types: frozenset[str]
    url: str
    client_state: str | None
    expires: datetime
    seq: int
    failures: int = 0
    subscriber: str = ""  # the caller that made it: a user address or "app:<client id>"

    def json(self) -> Json:
        return {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity",
            "id": self.id,
            "resource": self.resource,
            "changeType": ",".join(sorted(self.change_types)),
            "notificationUrl": self.url,
            "clientState": self.client_state,
            "expirationDateTime": _stamp(self.expires),
        }


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def _parse_expiry(call: Call, raw: Any) -> datetime:
    now = call.lab.now()
    if raw is None:
        return now + timedelta(hours=1)
    try:
        moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise GraphError(400, "InvalidRequest", "expirationDateTime is not a date.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment <= now:
        raise GraphError(400, "InvalidRequest", "expirationDateTime must be in the future.")
    return min(moment, now + MAX_LIFETIME)


def _post(url: str, data: bytes, content_type: str, timeout: float) -> tuple[int, bytes]:
    request = urllib.request.Request(  # noqa: S310  (http/https checked at subscription time)
        url, data=data, method="POST", headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return int(answer.status), answer.read(64 * 1024)
    except urllib.error.HTTPError as exc:
        return int(exc.code), b""
    except (OSError, ValueError):
        return 0, b""


class SubscriptionHub:
    """The face's subscriptions and the thread that delivers their notifications."""

    def __init__(self, face: GraphFace) -> None:
        self.face = face
        self._subs: dict[str, Subscription] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -------------------------------------------------------------- requests

    def handle(self, call: Call, rest: list[str]) -> tuple[int, Any]:
        """`/subscriptions[/{id}]`: POST, GET, PATCH (renew), DELETE."""
        who = _subscriber(call)
        if not rest:
            if call.method == "POST":
                return 201, self.create(call)
            if call.method == "GET":
                with self._lock:
                    mine = [s.json() for s in self._subs.values() if s.subscriber == who]
                return 200, {"value": mine}
            raise GraphError(405, "Request_BadRequest", "Method not allowed.")
        with self._lock:
            sub = self._subs.get(rest[0])
        if sub is None or sub.subscriber != who or len(rest) != 1:
            raise GraphError(404, "ResourceNotFound", "The object was not found.")
        if call.method == "GET":
            return 200, sub.json()
        if call.method == "DELETE":
            with self._lock:
                self._subs.pop(sub.id, None)
            return 204, None
        if call.method == "PATCH":
            sub.expires = _parse_expiry(call, body_json(call).get("expirationDateTime"))
            return 200, sub.json()
        raise GraphError(405, "Request_BadRequest", "Method not allowed.")

    def create(self, call: Call) -> Json:
        body = body_json(call)
        url = str(body.get("notificationUrl") or "")
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise GraphError(400, "InvalidRequest", "notificationUrl must be an http(s) URL.")
        types = frozenset(t.strip() for t in str(body.get("changeType", "")).split(",") if t)
        if not types or not types <= CHANGE_TYPES:
            raise GraphError(
                400, "InvalidRequest", "changeType must name created, updated or deleted."
            )
        client_state = body.get("clientState")
        if client_state is not None and (
            not isinstance(client_state, str) or len(client_state) > 128
        ):
            raise GraphError(400, "InvalidRequest", "clientState is at most 128 characters.")
        resource = str(body.get("resource") or "")
        expires = _parse_expiry(call, body.get("expirationDateTime"))
        with call.lab.store.transaction():
            mailbox, folder_id, kind = self._resolve(call, resource)
            seq = store_items.last_seq(call.lab.store)
        user = call.principal.user or mailbox
        # The handshake runs outside the store transaction: the listener may take a while.
        token = secrets.token_urlsafe(24)
        status, answer = _post(
            f"{url}{'&' if '?' in url else '?'}{urlencode({'validationToken': token})}",
            b"",
            "text/plain",
            VALIDATION_TIMEOUT_S,
        )
        if status != 200 or answer.decode("utf-8", "replace") != token:
            raise GraphError(
                400,
                "ValidationError",
                "Subscription validation request failed. Notification endpoint must respond"
                " with 200 OK to validation request.",
            )
        sub = Subscription(
            id=str(uuid.uuid4()),
            user=user,
            mailbox=mailbox,
            folder_id=folder_id,
            kind=kind,
            resource=resource,
            change_types=types,
            url=url,
            client_state=client_state,
            expires=expires,
            seq=seq,
            subscriber=_subscriber(call),
        )
        with self._lock:
            self._subs[sub.id] = sub
        self._start()
        return sub.json()

    def _resolve(self, call: Call, resource: str) -> tuple[str, str, str]:
        match = _RESOURCE.match(resource)
        if match is None:
            raise GraphError(
                400,
                "InvalidRequest",
                "The lab notifies about mailFolders('{id}')/messages and calendars('{id}')/events"
                " only.",
            )
        user = call.principal.user
        if user is None and not match["user"]:
            raise GraphError(
                400, "BadRequest", "An app subscribes to users/{id}/... resources, not to me."
            )
        call.mailbox = find_mailbox(call, match["user"]) if match["user"] else str(user)
        # An app (application role) sees the mailbox as its owner does.
        call.ctx = Caller(call.lab, user or call.mailbox)
        mail = match["coll"].lower() == "mailfolders"
        if mail != (match["what"].lower() == "messages"):
            raise GraphError(400, "InvalidRequest", "The resource mixes folders and item kinds.")
        need(call, "Mail" if mail else "Calendars")
        folder = resolve_folder(call, match["quoted"] or match["plain"])
        readable(call, folder)
        return call.mailbox, folder.id, "message" if mail else "event"

    # -------------------------------------------------------------- delivery

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="lab-graph-notifications", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=DELIVERY_TIMEOUT_S + 1)
        with self._lock:
            self._subs.clear()

    def _run(self) -> None:
        while not self._stop.wait(DISPATCH_S):
            with self._lock:
                subs = list(self._subs.values())
            if not subs:
                continue
            for sub in subs:
                # A store closed under us (the lab shutting down) ends this round quietly.
                with contextlib.suppress(Exception):
                    self._deliver(sub)

    def _deliver(self, sub: Subscription) -> None:
        store = self.face.lab.store
        if sub.expires <= self.face.lab.now():
            with self._lock:
                self._subs.pop(sub.id, None)
            return
        changes = store_items.changes_after(store, sub.seq, [sub.folder_id])
        if not changes:
            return
        ctx = Caller(self.face.lab, sub.user)
        folder = store.folder(sub.folder_id)
        if folder is None:
            return
        r = targets.rights(ctx, folder)
        values: list[Json] = []
        for change in changes:
            kind = _change_type(change)
            if kind is None or kind not in sub.change_types:
                continue
            if change.private and not r.view_private:
                continue
            item = store_items.get_item(store, change.item_id)
            if item is not None and item.folder_id == folder.id and targets.hidden(ctx, item, r):
                continue
            values.append(self._notification(sub, kind, change.item_id))
        last = changes[-1].seq
        if values:
            data = json.dumps({"value": values}).encode()
            status, _ = _post(sub.url, data, "application/json", DELIVERY_TIMEOUT_S)
            if not 200 <= status < 300:
                sub.failures += 1
                if sub.failures >= MAX_FAILURES:
                    with self._lock:
                        self._subs.pop(sub.id, None)
                return  # delivered again next round
        sub.failures = 0
        sub.seq = last

    def _notification(self, sub: Subscription, change_type: str, item_id: str) -> Json:
        gid = graph_id(encode_id("item", item_id))
        collection = "Messages" if sub.kind == "message" else "Events"
        path = f"Users/{quote(sub.mailbox)}/{collection}/{gid}"
        return {
            "subscriptionId": sub.id,
            "subscriptionExpirationDateTime": _stamp(sub.expires),
            "changeType": change_type,
            "resource": path,
            "resourceData": {
                "@odata.type": f"#Microsoft.Graph.{sub.kind.capitalize()}",
                "@odata.id": path,
                "id": gid,
            },
            "clientState": sub.client_state,
            "tenantId": TENANT_ID,
        }


def _subscriber(call: Call) -> str:
    p = call.principal
    return p.user if p.user is not None else f"app:{p.client_id}"


def _change_type(change: store_items.Change) -> str | None:
    if change.change == "in":
        return "created"
    if change.change == "mod":
        return "updated"
    return "deleted"
