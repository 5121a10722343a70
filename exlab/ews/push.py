"""Push notifications: the lab POSTs `SendNotification` to a push subscription's URL.

As Exchange does, the lab sends the events since the subscription's watermark as they come,
and a StatusEvent when nothing happened for StatusFrequency minutes (the keep-alive). The
listener answers `SendNotificationResult` with SubscriptionStatus `OK` (keep sending) or
`Unsubscribe` (the subscription ends). A listener that does not answer OK is tried again on
the next round; after MAX_FAILURES rounds in a row the subscription is dropped, as Exchange
drops one whose listener stays away. Only loopback URLs are accepted (see `notifications`).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import defusedxml.ElementTree as SafeET
import httpx
from defusedxml import DefusedXmlException

from exlab.core.ids import encode_id
from exlab.ews.notifications import collect, load_subscription, notification
from exlab.ews.soap import EwsContext, EwsError, m, response_message, s, sub, t

if TYPE_CHECKING:
    from exlab.lab import Lab

log = logging.getLogger("exlab.ews.push")

ROUND_S = 0.1
DELIVERY_TIMEOUT_S = 5.0
MAX_FAILURES = 3


@dataclass
class _State:
    last_sent: float = 0.0
    failures: int = 0


@dataclass
class PushDispatcher:
    """The thread that serves one lab's push subscriptions while its EWS face runs."""

    lab: Lab
    _stop: threading.Event = field(default_factory=threading.Event)
    _states: dict[str, _State] = field(default_factory=dict)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lab-ews-push", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=DELIVERY_TIMEOUT_S + 1)

    def _run(self) -> None:
        with httpx.Client(timeout=DELIVERY_TIMEOUT_S, trust_env=False) as http:
            while not self._stop.wait(ROUND_S):
                if self.lab.store.closed:
                    return  # the lab is shutting down
                # A store closed under us ends this round quietly (the loop then ends); a
                # subscription removed meanwhile (Unsubscribe) is simply gone.
                with contextlib.suppress(RuntimeError, sqlite3.ProgrammingError, EwsError):
                    for row in self.lab.store.query(
                        "SELECT * FROM item_subscriptions WHERE kind = 'push'"
                    ):
                        self._serve(http, row)

    def _serve(self, http: httpx.Client, row: sqlite3.Row) -> None:
        key, owner = str(row["id"]), str(row["owner"])
        state = self._states.setdefault(key, _State())
        ctx = EwsContext(lab=self.lab, user=owner)
        subscription = load_subscription(self.lab.store, encode_id("subscription", key), owner)
        events, last, more = collect(ctx, subscription, subscription.watermark)
        interval = int(row["status_minutes"] or 30) * self.lab.knobs.push_minute_s
        due = state.last_sent == 0.0 or time.monotonic() - state.last_sent >= interval
        if not events and not due:
            return
        note = notification(
            ctx, subscription, subscription.watermark, events, last, more, tag=m("Notification")
        )
        status = self._post(http, str(row["push_url"]), _envelope(note))
        if status is None:
            state.failures += 1
            if state.failures >= MAX_FAILURES:
                log.info("push subscription dropped after %d failed deliveries", MAX_FAILURES)
                self._drop(key)
            return
        state.failures = 0
        state.last_sent = time.monotonic()
        if status == "Unsubscribe":
            self._drop(key)
            return
        with self.lab.store.transaction() as conn:
            conn.execute("UPDATE item_subscriptions SET watermark = ? WHERE id = ?", (last, key))

    def _drop(self, key: str) -> None:
        self._states.pop(key, None)
        with self.lab.store.transaction() as conn:
            conn.execute("DELETE FROM item_subscriptions WHERE id = ?", (key,))

    def _post(self, http: httpx.Client, url: str, body: bytes) -> str | None:
        """The listener's SubscriptionStatus, or None when it gave no usable answer."""
        try:
            answer = http.post(
                url, content=body, headers={"Content-Type": "text/xml; charset=utf-8"}
            )
        except httpx.HTTPError:
            return None
        if answer.status_code != 200:
            return None
        try:
            root = SafeET.fromstring(answer.content, forbid_dtd=True)
        except (DefusedXmlException, ET.ParseError):
            return None
        status = root.findtext(f".//{m('SendNotificationResult')}/{m('SubscriptionStatus')}")
        return status.strip() if status and status.strip() in ("OK", "Unsubscribe") else None


def _envelope(note: ET.Element) -> bytes:
    """`SendNotification` as Exchange posts it: one response message holding the notification."""
    send = ET.Element(m("SendNotification"))
    sub(send, m("ResponseMessages")).append(response_message("SendNotification", [note]))
    root = ET.Element(s("Envelope"))
    sub(sub(root, s("Header")), t("RequestServerVersion"), Version="Exchange2010_SP2")
    sub(root, s("Body")).append(send)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))
