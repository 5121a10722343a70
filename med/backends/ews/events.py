"""Streaming and pull subscriptions: exchangelib's notifications as `MailboxEvent`s."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import requests
from exchangelib import errors as exerr
from exchangelib.services.get_streaming_events import GetStreamingEvents

from med.backends.ews.convert import aware_datetime
from med.backends.ews.errors import ews_errors
from med.errors import (
    InvalidInput,
    MedError,
    NotFound,
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


def watch_events(
    backend: EwsBackend,
    collection: Any,
    acc: Any,
    subscription: tuple[str, str | None, bool],
    ctx: dict[str, str],
) -> Iterator[MailboxEvent]:
    """Yield events as they arrive until closed; renew a lost subscription; unsubscribe."""
    import time as _time

    sub_id, watermark, streaming = subscription
    try:
        while not backend._closed:
            got_any = False
            try:
                with ews_errors(**ctx):
                    if streaming:
                        notes = GetStreamingEvents(account=acc).call(
                            subscription_ids=[sub_id], connection_timeout=1
                        )
                    else:
                        notes = _pull(acc, sub_id, watermark)
                    for note in notes:  # streaming responses arrive note by note
                        if isinstance(note, Exception):
                            raise note
                        for ev in getattr(note, "events", None) or ():
                            if getattr(ev, "watermark", None):
                                watermark = ev.watermark
                            med_ev = _to_event(ev)
                            if med_ev is not None and med_ev.kind is not MailboxEventKind.STATUS:
                                got_any = True
                            if med_ev is not None:
                                yield med_ev
            except (NotFound, InvalidInput) as err:
                if err.code not in _LOST_SUBSCRIPTION:
                    raise
                sub_id, watermark, streaming = open_subscription(collection, streaming, ctx)
                yield MailboxEvent(MailboxEventKind.RESUBSCRIBED)
                continue
            if not streaming and not got_any:
                _time.sleep(1.0)
    finally:
        with contextlib.suppress(MedError, exerr.EWSError, requests.exceptions.RequestException):
            collection.unsubscribe(sub_id)


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
