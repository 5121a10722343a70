"""Graph change notifications on loopback: the lab's Graph face POSTs to the backend's listener.

The backend subscribes with a `notificationUrl` on its own listener and a secret
`clientState`; the lab validates the URL with the token handshake and then delivers changes.
Where the lab cannot reach the listener, the backend polls delta queries instead.
"""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from exlab.graph.oauth import DELEGATED_SCOPES, PUBLIC_CLIENT_ID
from exlab.graph.serve import GraphLab
from med import DelegateSession
from med.backends.graph import GraphBackend
from med.backends.graph.events import NotificationListener
from med.errors import AccessDenied
from med.model import Address, Event, Folder, MailboxEvent, MailboxEventKind, Message, Sensitivity
from tests.e2e.conftest import ASSISTENZ, CHEF, SACHBEARBEITUNG
from tests.lab.conftest import LabServer


@pytest.fixture
def graph(lab: LabServer, tmp_path: Path) -> Iterator[GraphLab]:
    with GraphLab(lab.lab, tmp_path / "graph-tls") as served:
        yield served


@pytest.fixture
async def session(graph: GraphLab) -> AsyncIterator[Callable[..., DelegateSession]]:
    made: list[DelegateSession] = []

    def make(user: str, **options: object) -> DelegateSession:
        token = graph.face.issuer.access_token(
            base_url=graph.url,
            now=graph.lab.now(),
            client_id=PUBLIC_CLIENT_ID,
            user=user,
            scopes=DELEGATED_SCOPES,
        )
        backend = GraphBackend(
            base_url=graph.url,
            user=user,
            token=lambda: token,
            ca_file=graph.ca_file,
            **options,  # type: ignore[arg-type]
        )
        made.append(DelegateSession(backend))
        return made[-1]

    yield make
    for s in made:
        await s.close()


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/nobody-listens"


async def _first(
    stream: AsyncIterator[MailboxEvent], kinds: set[MailboxEventKind], alive: asyncio.Event
) -> MailboxEvent:
    async for event in stream:
        alive.set()  # any event (a STATUS heartbeat too) means the watch is established
        if event.kind in kinds:
            return event
    raise AssertionError("the stream ended")


async def _watch(
    session: DelegateSession,
    folder: Folder,
    kinds: set[MailboxEventKind],
    act: Callable[[], object],
    *,
    ready: Callable[[], bool] | None = None,
) -> MailboxEvent:
    """The first event of `kinds` after `act`, acting only once the watch is in place.

    `ready` says when the server holds the subscription (push); without it, the first event
    of the stream (the polling's first heartbeat, after its baseline) says so.
    """
    stream = session.subscribe([folder])
    alive = asyncio.Event()
    waiter = asyncio.create_task(_first(stream, kinds, alive))
    try:
        if ready is None:
            await asyncio.wait_for(alive.wait(), timeout=30)
        else:
            deadline = asyncio.get_running_loop().time() + 30
            while not ready():
                assert asyncio.get_running_loop().time() < deadline, "no subscription made"
                await asyncio.sleep(0.05)
        await act()  # type: ignore[misc]
        return await asyncio.wait_for(waiter, timeout=30)
    finally:
        waiter.cancel()
        await stream.aclose()  # type: ignore[attr-defined]


async def test_new_mail_in_the_boss_inbox_arrives_as_a_change_notification(
    graph: GraphLab, session: Callable[..., DelegateSession]
) -> None:
    # Polling would take an hour: only a notification can deliver the event in time.
    assistenz = session(ASSISTENZ, notification_host="127.0.0.1", poll_interval_s=3600)
    inbox = await assistenz.default_folder(CHEF, "inbox")
    lena = session(SACHBEARBEITUNG)

    async def send() -> None:
        assert len(graph.face.subscriptions._subs) == 1
        await lena.send(Message(subject="Eilt", body="!", to=(Address(CHEF),)))

    event = await _watch(
        assistenz,
        inbox,
        {MailboxEventKind.NEW_MAIL},
        send,
        ready=lambda: len(graph.face.subscriptions._subs) == 1,
    )
    assert event.folder_id == inbox.id and event.item_id
    assert (await assistenz.get(event.item_id)).subject == "Eilt"
    await asyncio.sleep(0.2)
    assert not graph.face.subscriptions._subs, "closing the stream deletes the subscription"


async def test_calendar_changes_arrive_and_private_ones_stay_hidden(
    graph: GraphLab, session: Callable[..., DelegateSession]
) -> None:
    assistenz = session(ASSISTENZ, notification_host="127.0.0.1", poll_interval_s=3600)
    chef = session(CHEF)
    calendar = await assistenz.default_folder(CHEF, "calendar")
    own = await chef.default_folder(CHEF, "calendar")
    start = datetime(2027, 3, 1, 9, tzinfo=UTC)

    async def create() -> None:
        await chef.create(
            own,
            Event(
                subject="Arzttermin",
                start=start,
                end=start + timedelta(hours=1),
                sensitivity=Sensitivity.PRIVATE,
            ),
        )
        await chef.create(
            own, Event(subject="Kreisausschuss", start=start, end=start + timedelta(hours=2))
        )

    event = await _watch(
        assistenz,
        calendar,
        {MailboxEventKind.CREATED},
        create,
        ready=lambda: len(graph.face.subscriptions._subs) == 1,
    )
    assert event.item_id is not None
    assert (await assistenz.get(event.item_id)).subject == "Kreisausschuss"


async def test_unreachable_listener_falls_back_to_delta_polling(
    graph: GraphLab, session: Callable[..., DelegateSession]
) -> None:
    assistenz = session(
        ASSISTENZ,
        notification_host="127.0.0.1",
        notification_url=_closed_port_url(),
        poll_interval_s=0.3,
    )
    inbox = await assistenz.default_folder(CHEF, "inbox")
    lena = session(SACHBEARBEITUNG)

    async def send() -> None:
        assert not graph.face.subscriptions._subs, "the lab refused the subscription"
        await lena.send(Message(subject="Per Abfrage", body="!", to=(Address(CHEF),)))

    event = await _watch(assistenz, inbox, {MailboxEventKind.NEW_MAIL}, send)
    assert event.item_id and (await assistenz.get(event.item_id)).subject == "Per Abfrage"


async def test_subscribing_to_a_mailbox_without_rights_is_denied(
    graph: GraphLab, session: Callable[..., DelegateSession]
) -> None:
    lena = session(SACHBEARBEITUNG, notification_host="127.0.0.1")
    own = await session(CHEF).default_folder(CHEF, "inbox")
    with pytest.raises(AccessDenied):
        await anext(aiter(lena.subscribe([own])))
    assert not graph.face.subscriptions._subs


def _post(url: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as err:
        return err.code, b""


def test_listener_echoes_the_validation_token_and_drops_a_wrong_client_state() -> None:
    listener = NotificationListener("127.0.0.1")
    try:
        assert _post(f"{listener.url}?validationToken=abc%20123", b"") == (200, b"abc 123")
        forged = {"value": [{"clientState": "geraten", "changeType": "created"}]}
        genuine = {"value": [{"clientState": listener.client_state, "changeType": "created"}]}
        assert _post(listener.url, json.dumps(forged).encode())[0] == 202
        assert _post(listener.url, json.dumps(genuine).encode())[0] == 202
        assert listener.rejected == 1
        assert listener.notifications.get(timeout=1)["changeType"] == "created"
        assert listener.notifications.empty()
        assert _post(listener.url.rsplit("/", 1)[0] + "/other", b"{}")[0] == 404
    finally:
        listener.close()
