"""Watches (streaming subscriptions) over the lab: they end at once, unsubscribe, leave the
session's workers free and ride out an outage by themselves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from med import DelegateSession
from med.model import Address, Folder, MailboxEvent, MailboxEventKind, Message
from tests.e2e.conftest import ASSISTENZ, CHEF, POSTSTELLE, SACHBEARBEITUNG
from tests.lab.conftest import LabServer


def open_subscriptions(lab: LabServer) -> int:
    return len(lab.lab.store.query("SELECT id FROM item_subscriptions"))


async def next_of_kind(
    stream: AsyncIterator[MailboxEvent], *kinds: MailboxEventKind, timeout: float = 20
) -> MailboxEvent:
    async def find() -> MailboxEvent:
        async for event in stream:
            if event.kind in kinds:
                return event
        raise AssertionError("the watch ended")

    return await asyncio.wait_for(find(), timeout)


async def subscribed(lab: LabServer) -> None:
    """Wait until the lab holds a subscription, and a moment more for its stream to open."""
    deadline = asyncio.get_running_loop().time() + 10
    while not open_subscriptions(lab):
        assert asyncio.get_running_loop().time() < deadline, "no subscription was made"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)


async def started(stream: AsyncIterator[MailboxEvent]) -> asyncio.Task[MailboxEvent]:
    """A task waiting on the stream's next event (the watch is open on the server)."""
    task = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    return task


async def test_closing_the_session_ends_its_open_stream_so_the_server_can_stop(
    lab: LabServer, session_for: Callable[..., DelegateSession]
) -> None:
    session = session_for(ASSISTENZ, (CHEF,))
    inbox = await session.default_folder(CHEF, "inbox")
    stream = session.subscribe([inbox])
    waiting = await started(stream)
    await subscribed(lab)
    await session.close()
    await asyncio.gather(waiting, return_exceptions=True)
    served = lab._server
    assert served is not None and served._thread is not None
    thread = served._thread
    # The lab gives open streams STREAMS_CLOSE_S to end; the session's must be gone before.
    await asyncio.to_thread(served.stop, 1.5)
    assert not thread.is_alive(), "the lab still serves an open stream after the session closed"


async def test_switching_watches_leaves_the_workers_free_and_unsubscribes(
    lab: LabServer, session_for: Callable[..., DelegateSession]
) -> None:
    session = session_for(ASSISTENZ, (CHEF, f"functional:{POSTSTELLE}"))
    folders: list[Folder] = [
        await session.default_folder(CHEF, "inbox"),
        await session.default_folder(POSTSTELLE, "inbox"),
        await session.default_folder(ASSISTENZ, "inbox"),
    ]
    # More watches than the session has workers, each cancelled as the next one starts
    # (as the TUI does on every mailbox switch), and the last one left open.
    previous: asyncio.Task[MailboxEvent] | None = None
    for round_ in range(6):
        waiting = await started(session.subscribe([folders[round_ % 3]]))
        if previous is not None:
            previous.cancel()
            await asyncio.gather(previous, return_exceptions=True)
        previous = waiting
    await asyncio.sleep(0.3)
    page = await asyncio.wait_for(session.items(folders[0]), 10)
    assert page.items
    assert previous is not None
    previous.cancel()
    await asyncio.gather(previous, return_exceptions=True)
    deadline = asyncio.get_running_loop().time() + 5
    while open_subscriptions(lab):
        assert asyncio.get_running_loop().time() < deadline, (
            "a cancelled watch kept its subscription"
        )
        await asyncio.sleep(0.05)


async def test_five_open_watches_do_not_starve_other_calls(
    lab: LabServer, session_for: Callable[..., DelegateSession]
) -> None:
    session = session_for(ASSISTENZ, (CHEF,))
    inbox = await session.default_folder(CHEF, "inbox")
    waiting = [await started(session.subscribe([inbox])) for _ in range(5)]
    await asyncio.sleep(0.5)
    page = await asyncio.wait_for(session.items(inbox), 10)
    assert page.items
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)


async def test_an_outage_is_reported_at_once_and_the_watch_resubscribes_by_itself(
    lab: LabServer, session_for: Callable[..., DelegateSession]
) -> None:
    session = session_for(ASSISTENZ, (CHEF,))
    inbox = await session.default_folder(CHEF, "inbox")
    stream = session.subscribe([inbox])
    offline = asyncio.ensure_future(next_of_kind(stream, MailboxEventKind.OFFLINE, timeout=30))
    await subscribed(lab)
    lab.lab.knobs.outage = True
    await offline
    lab.lab.knobs.outage = False
    await next_of_kind(stream, MailboxEventKind.RESUBSCRIBED, timeout=15)
    lena = session_for(SACHBEARBEITUNG)
    await lena.send(Message(subject="Nach der Störung", body="!", to=(Address(CHEF),)))
    event = await next_of_kind(
        stream, MailboxEventKind.NEW_MAIL, MailboxEventKind.CREATED, timeout=30
    )
    assert event.item_id
    await stream.aclose()
