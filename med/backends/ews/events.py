"""Streaming and pull subscriptions: exchangelib's notifications as `MailboxEvent`s."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import requests
from exchangelib import errors as exerr
from exchangelib.services.get_streaming_events import GetStreamingEvents

from med.backends.base import Watch
from med.backends.ews.convert import aware_datetime
from med.backends.ews.errors import ews_errors
from med.errors import (
    InvalidInput,
    MedError,
    NotFound,
    Unreachable,
)
from med.model import (
    MailboxEvent,
    MailboxEventKind,
)

if TYPE_CHECKING:
    from med.backends.ews.backend import EwsBackend

#: Codes meaning the server forgot the subscription; we subscribe again.
_LOST_SUBSCRIPTION = {
    "ErrorSubscriptionNotFound",
    "ErrorExpiredSubscription",
    "ErrorInvalidSubscription",
}


def open_subscription(
    collection: Any, streaming: bool, ctx: dict[str, str]
) -> tuple[str, str | None, bool]:
    """(subscription id, watermark, streaming?): streaming where the server has it, else pull."""
    with ews_errors(**ctx):
        if streaming:
            try:
                return str(collection.subscribe_to_streaming()), None, True
            except (
                exerr.ErrorInvalidRequest,
                exerr.ErrorInvalidOperation,
                exerr.ErrorInvalidServerVersion,
            ):
                pass  # no streaming here: pull
        sub_id, watermark = collection.subscribe_to_pull(timeout=10)
        return str(sub_id), str(watermark), False


def _pull(acc: Any, sub_id: str, watermark: str | None) -> Iterator[Any]:
    """GetEvents from the watermark on, as many rounds as the server says it has more."""
    from exchangelib.services import GetEvents

    svc = GetEvents(account=acc)
    while True:
        note = svc.get(subscription_id=sub_id, watermark=watermark)
        yield note
        if not note.more_events:
            return
        watermark = note.previous_watermark if not note.events else note.events[-1].watermark


class _OwnConnection:
    """An account's protocol, except that sessions are made for one caller and closed after.

    exchangelib's session pool is small (the backend's `max_connections`) and a stream keeps
    its session for minutes: taken from the pool, a few watches would leave other calls
    waiting for a connection.
    """

    def __init__(self, protocol: Any) -> None:
        self._protocol = protocol

    def __getattr__(self, name: str) -> Any:
        return getattr(self._protocol, name)

    def get_session(self) -> Any:
        return self._protocol.create_session()

    def release_session(self, session: Any) -> None:
        self._protocol.close_session(session)

    def retire_session(self, session: Any) -> None:
        self._protocol.close_session(session)

    def renew_session(self, session: Any) -> Any:
        self._protocol.close_session(session)
        return self._protocol.create_session()


class _CancellableStream(GetStreamingEvents):  # type: ignore[misc]
    """GetStreamingEvents on a connection of its own, whose open response another thread can
    break (`abort`)."""

    def __init__(self, watch: Watch, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.protocol: Any = _OwnConnection(kwargs["account"].protocol)
        self._watch = watch

    def _get_soap_messages(self, body: Any) -> Iterator[Any]:
        # exchangelib has stored the response by now: either `abort` finds it, or the
        # cancellation is seen here, before the first read.
        if self._watch.cancelled:
            return
        yield from super()._get_soap_messages(body)

    def abort(self) -> None:
        """Shut the stream's socket: the blocked read in the watching thread ends at once."""
        response = self._streaming_response
        raw = getattr(response, "raw", None)
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)


#: Seconds between attempts to reach a server that went away (doubling up to the last).
RECONNECT_DELAYS_S = (0.5, 1.0, 2.0, 4.0)


def watch_events(
    backend: EwsBackend,
    collection: Any,
    acc: Any,
    subscription: tuple[str, str | None, bool],
    ctx: dict[str, str],
) -> Watch:
    """A `Watch` over the subscription: events until cancelled, renewing a lost subscription,
    reporting OFFLINE while the server is away and subscribing anew once it is back."""

    def run(watch: Watch) -> Generator[MailboxEvent]:
        sub_id: str | None
        sub_id, watermark, streaming = subscription
        failures = 0
        try:
            while not (backend._closed or watch.cancelled):
                try:
                    if sub_id is None:  # the server was away: subscribe again
                        sub_id, watermark, streaming = open_subscription(collection, streaming, ctx)
                        failures = 0
                        yield MailboxEvent(MailboxEventKind.RESUBSCRIBED)
                    got_any = False
                    for med_ev, mark in _read(watch, acc, sub_id, watermark, streaming, ctx):
                        watermark = mark or watermark
                        failures = 0
                        if med_ev.kind is not MailboxEventKind.STATUS:
                            got_any = True
                        yield med_ev
                    if not streaming and not got_any:
                        watch.wait(1.0)
                except (NotFound, InvalidInput) as err:
                    if watch.cancelled or err.code not in _LOST_SUBSCRIPTION:
                        raise
                    sub_id, watermark, streaming = open_subscription(collection, streaming, ctx)
                    yield MailboxEvent(MailboxEventKind.RESUBSCRIBED)
                except Unreachable:
                    if watch.cancelled:
                        return  # our own abort broke the read
                    if failures == 0:
                        yield MailboxEvent(MailboxEventKind.OFFLINE)
                    # The subscription may not survive the server's absence: make a new one.
                    sub_id = None
                    watch.wait(RECONNECT_DELAYS_S[min(failures, len(RECONNECT_DELAYS_S) - 1)])
                    failures += 1
        finally:
            if sub_id is not None:
                with contextlib.suppress(
                    MedError, exerr.EWSError, requests.exceptions.RequestException, OSError
                ):
                    collection.unsubscribe(sub_id)

    return Watch(run)


def _read(
    watch: Watch,
    acc: Any,
    sub_id: str,
    watermark: str | None,
    streaming: bool,
    ctx: dict[str, str],
) -> Iterator[tuple[MailboxEvent, str | None]]:
    """One streaming connection (or one pull round): (event, its watermark) as they come."""
    with ews_errors(**ctx):
        if streaming:
            stream = _CancellableStream(watch, account=acc)
            with watch.abortable(stream.abort):
                notes: Iterator[Any] = stream.call(subscription_ids=[sub_id], connection_timeout=1)
                yield from _events_of(notes)
        else:
            yield from _events_of(_pull(acc, sub_id, watermark))


def _events_of(notes: Iterator[Any]) -> Iterator[tuple[MailboxEvent, str | None]]:
    for note in notes:  # streaming responses arrive note by note
        if isinstance(note, Exception):
            raise note
        for ev in getattr(note, "events", None) or ():
            med_ev = _to_event(ev)
            if med_ev is not None:
                yield med_ev, getattr(ev, "watermark", None)


def _to_event(ev: Any) -> MailboxEvent | None:
    kinds = {
        "NewMailEvent": MailboxEventKind.NEW_MAIL,
        "CreatedEvent": MailboxEventKind.CREATED,
        "ModifiedEvent": MailboxEventKind.MODIFIED,
        "DeletedEvent": MailboxEventKind.DELETED,
        "MovedEvent": MailboxEventKind.MOVED,
        "CopiedEvent": MailboxEventKind.COPIED,
        "StatusEvent": MailboxEventKind.STATUS,
    }
    kind = kinds.get(type(ev).__name__)
    if kind is None:
        return None

    def _id(attr: str) -> str | None:
        value = getattr(ev, attr, None)
        return str(value.id) if value is not None and getattr(value, "id", None) else None

    return MailboxEvent(
        kind=kind,
        folder_id=_id("parent_folder_id"),
        item_id=_id("item_id"),
        old_item_id=_id("old_item_id"),
        old_folder_id=_id("old_parent_folder_id"),
        timestamp=aware_datetime(getattr(ev, "timestamp", None)),
    )
