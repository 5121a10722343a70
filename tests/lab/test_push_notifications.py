"""Push subscriptions: exchangelib subscribes with a loopback listener; the lab POSTs
SendNotification with the events and a StatusEvent keep-alive every StatusFrequency; the
listener answers OK or Unsubscribe with exchangelib's own payloads."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from exchangelib import Message
from exchangelib.errors import ErrorInvalidPushSubscriptionUrl, ErrorSubscriptionNotFound
from exchangelib.properties import CreatedEvent, NewMailEvent, StatusEvent
from exchangelib.services import SendNotification

from tests.lab.conftest import LabServer
from tests.lab.schema import assert_valid_ews


class Listener:
    """A push listener on loopback, parsing with exchangelib and answering as told."""

    def __init__(self, protocol: Any) -> None:
        self.service = SendNotification(protocol=protocol)
        self.received: queue.Queue[tuple[bytes, list[Any]]] = queue.Queue()
        self.answer = "OK"
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                notes = list(listener.service.parse(body))
                listener.received.put((body, notes))
                payload = (
                    listener.service.ok_payload()
                    if listener.answer == "OK"
                    else listener.service.unsubscribe_payload()
                )
                self.send_response(200)
                self.send_header("Content-Type", "text/xml; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ews-push"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def next_events(self, deadline_s: float = 10.0) -> tuple[bytes, list[Any]]:
        body, notes = self.received.get(timeout=deadline_s)
        return body, [event for note in notes for event in note.events]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener(lab: LabServer) -> Iterator[Listener]:
    running = Listener(lab.account("chef").protocol)
    yield running
    running.close()


def _until(found: Any, listener: Listener, deadline_s: float = 10.0) -> list[Any]:
    """Events of notifications until one holds an event of type `found` (waits, no sleep)."""
    end = time.monotonic() + deadline_s
    seen: list[Any] = []
    while time.monotonic() < end:
        _, events = listener.next_events(end - time.monotonic())
        seen += events
        if any(isinstance(e, found) for e in events):
            return seen
    raise AssertionError(f"no {found.__name__} in {seen}")


def test_push_delivers_new_mail_and_keeps_alive_with_status_events(
    lab: LabServer, listener: Listener
) -> None:
    lab.lab.knobs.push_minute_s = 0.5  # StatusFrequency 1 = half a second here
    account = lab.account("chef")
    subscription_id, watermark = account.inbox.subscribe_to_push(
        callback_url=listener.url, status_frequency=1
    )
    assert subscription_id and watermark
    body, first = listener.next_events()
    assert [type(e) for e in first] == [StatusEvent]
    assert_valid_ews(body)
    Message(account=account, folder=account.inbox, subject="Push-Probe", body="x").save()
    events = _until(CreatedEvent, listener)
    assert any(isinstance(e, (CreatedEvent, NewMailEvent)) for e in events)
    started = time.monotonic()
    _, keep_alive = listener.next_events()
    assert [type(e) for e in keep_alive] == [StatusEvent]
    assert time.monotonic() - started >= 0.3
    account.inbox.unsubscribe(subscription_id)


def test_a_listener_answering_unsubscribe_ends_the_subscription(
    lab: LabServer, listener: Listener
) -> None:
    listener.answer = "Unsubscribe"
    account = lab.account("chef")
    subscription_id, _ = account.inbox.subscribe_to_push(callback_url=listener.url)
    listener.next_events()
    deadline = time.monotonic() + 10
    while _push_subscriptions(lab):
        assert time.monotonic() < deadline, "the subscription outlived the Unsubscribe answer"
        time.sleep(0.05)
    with pytest.raises(ErrorSubscriptionNotFound):
        account.inbox.unsubscribe(subscription_id)
    Message(account=account, folder=account.inbox, subject="Nach dem Ende", body="x").save()
    with pytest.raises(queue.Empty):
        listener.next_events(deadline_s=1.0)


def _push_subscriptions(lab: LabServer) -> int:
    rows = lab.lab.store.query("SELECT id FROM item_subscriptions WHERE kind = 'push'")
    return len(rows)


def test_only_loopback_listeners_are_accepted(lab: LabServer) -> None:
    with pytest.raises(ErrorInvalidPushSubscriptionUrl):
        lab.account("chef").inbox.subscribe_to_push(callback_url="http://example.org/push")
