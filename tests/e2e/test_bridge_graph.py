"""The bridge on Microsoft Graph (the lab's Graph face) as an app-only identity: client
credentials against the lab's authority, change notifications to a listener on loopback
(validation handshake, clientState), and delta polling where Graph cannot reach the listener."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bridge.notify import MailboxState
from exlab.graph.oauth import DAEMON_CLIENT_ID, DAEMON_SECRET, TENANT_ID
from exlab.graph.serve import GraphLab
from med import (
    Address,
    DelegateSession,
    Event,
    Message,
    Recurrence,
    Task,
    TaskStatus,
    Weekday,
    Weekly,
)
from tests.e2e.bridge_harness import (
    ASSISTENZ,
    CHEF,
    CHEF_INBOX_TO_ASSISTENZ,
    REMINDERS_TO_ASSISTENZ,
    SACHBEARBEITUNG,
    BridgeRig,
    until,
    wait_until_watching,
)
from tests.lab.conftest import LabServer

WATCH_AS_APP = (
    f'[[watch]]\nmailbox = "{CHEF}"\nfolders = ["inbox"]\n'
    'identity = "graph"\nrights_identity = "chef"\n'
)


@pytest.fixture
def graph(lab: LabServer, tmp_path: Path) -> Iterator[GraphLab]:
    with GraphLab(lab.lab, tmp_path / "graph-tls") as served:
        yield served


def app_identity(graph: GraphLab, extra: str = "") -> str:
    return f"""
[identities.graph]
backend = "graph"
server = "{graph.url}"
user = "bridge@musterstadt.example"
ca_bundle = "{graph.ca_file}"
client_id = "{DAEMON_CLIENT_ID}"
tenant = "{TENANT_ID}"
client_secret_env = "BRIDGE_TEST_GRAPH_SECRET"
{extra}
"""


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/nobody-listens"


async def test_an_app_only_graph_identity_gets_new_mail_by_change_notification(
    rig: BridgeRig,
    graph: GraphLab,
    session_for: Callable[..., DelegateSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BRIDGE_TEST_GRAPH_SECRET", DAEMON_SECRET)
    assistenz = await rig.chat_user(ASSISTENZ)
    # Neither the bridge's own sync timer nor delta polling would come within the test:
    # only a change notification can bring the mail.
    identity = app_identity(graph, 'notification_host = "127.0.0.1"\ndelta_poll_seconds = 3600')
    config = rig.write_config(
        rules=CHEF_INBOX_TO_ASSISTENZ,
        watches=WATCH_AS_APP,
        identities=identity,
        poll_seconds=3600,
    )
    subscriptions = graph.face.subscriptions._subs
    lena = session_for(SACHBEARBEITUNG)
    async with rig.worker(config) as worker:
        await wait_until_watching(rig)
        await until(lambda: len(subscriptions) == 1, 30, lambda: subscriptions)
        [subscription] = subscriptions.values()
        assert CHEF in str(subscription)  # users/chef…/mailFolders('…')/messages
        await lena.send(Message(subject="Per Graph gemeldet", body="Eilt.", to=(Address(CHEF),)))
        [note] = await assistenz.wait_for("Per Graph gemeldet")
        assert worker.board.counters["sync_batches"] >= 2
    assert f"{CHEF} ›" in note.body and "> Eilt." in note.body
    assert len(assistenz.containing("Per Graph gemeldet")) == 1


async def test_where_graph_cannot_reach_the_listener_the_bridge_polls_delta(
    rig: BridgeRig,
    graph: GraphLab,
    session_for: Callable[..., DelegateSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BRIDGE_TEST_GRAPH_SECRET", DAEMON_SECRET)
    assistenz = await rig.chat_user(ASSISTENZ)
    identity = app_identity(
        graph,
        f'notification_host = "127.0.0.1"\nnotification_url = "{closed_port_url()}"\n'
        "delta_poll_seconds = 0.3",
    )
    config = rig.write_config(
        rules=CHEF_INBOX_TO_ASSISTENZ,
        watches=WATCH_AS_APP,
        identities=identity,
        poll_seconds=3600,
    )
    lena = session_for(SACHBEARBEITUNG)
    async with rig.worker(config) as worker:
        await wait_until_watching(rig)
        watcher_streams = worker.stream_sessions
        await until(lambda: CHEF in watcher_streams, 30)
        await lena.send(Message(subject="Per Delta geholt", body="-", to=(Address(CHEF),)))
        await assistenz.wait_for("Per Delta geholt")
    assert not graph.face.subscriptions._subs  # the handshake failed: no subscription
    assert len(assistenz.containing("Per Delta geholt")) == 1


async def test_a_wrong_client_secret_shows_as_auth_failed(
    rig: BridgeRig, graph: GraphLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRIDGE_TEST_GRAPH_SECRET", "not the secret")
    config = rig.write_config(
        rules=CHEF_INBOX_TO_ASSISTENZ,
        watches=WATCH_AS_APP,
        identities=app_identity(graph),
        mode="pull",
    )
    async with rig.worker(config) as worker:
        board = worker.board.mailboxes
        await until(
            lambda: CHEF in board and board[CHEF].state is MailboxState.AUTH_FAILED,
            30,
            lambda: worker.board.snapshot(),
        )


WATCH_CALENDAR_AND_TASKS_AS_APP = (
    f'[[watch]]\nmailbox = "{CHEF}"\nfolders = ["calendar", "tasks"]\n'
    'identity = "graph"\nrights_identity = "chef"\n'
)


async def test_calendar_and_task_reminders_arrive_when_the_bridge_watches_through_graph(
    rig: BridgeRig,
    graph: GraphLab,
    session_for: Callable[..., DelegateSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BRIDGE_TEST_GRAPH_SECRET", DAEMON_SECRET)
    assistenz = await rig.chat_user(ASSISTENZ)
    config = rig.write_config(
        rules=REMINDERS_TO_ASSISTENZ,
        watches=WATCH_CALENDAR_AND_TASKS_AS_APP,
        identities=app_identity(graph, "delta_poll_seconds = 0.3"),
        mode="pull",
        poll_seconds=0.3,
    )
    chef = session_for(CHEF)
    calendar = await chef.default_folder(CHEF, "calendar")
    tasks = await chef.default_folder(CHEF, "tasks")
    async with rig.worker(config) as worker:
        board = worker.board.mailboxes
        await until(
            lambda: CHEF in board and board[CHEF].state is MailboxState.RUNNING,
            30,
            lambda: worker.board.snapshot(),
        )
        assert "reminders only" not in board[CHEF].detail  # the To Do list is synced too
        soon = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6)
        await chef.create(
            calendar,
            Event(
                subject="Pressetermin Rathaus",
                start=soon + timedelta(minutes=1),
                end=soon + timedelta(minutes=31),
                reminder_minutes=1,
            ),
            send_invitations=False,
        )
        await chef.create(tasks, Task(subject="Grußwort schreiben", reminder_at=soon))
        [meeting] = await assistenz.wait_for("Pressetermin Rathaus")
        [task] = await assistenz.wait_for("Grußwort schreiben")
        state = board[CHEF].state
    assert meeting.body.startswith("[Reminder #") and task.body.startswith("[Reminder #")
    assert f"{CHEF} ›" in task.body
    assert state is MailboxState.RUNNING
    assert len(assistenz.containing("Pressetermin Rathaus")) == 1
    assert len(assistenz.containing("Grußwort schreiben")) == 1


async def test_new_appointments_in_a_calendar_watched_through_graph_come_once_per_series(
    rig: BridgeRig,
    graph: GraphLab,
    session_for: Callable[..., DelegateSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BRIDGE_TEST_GRAPH_SECRET", DAEMON_SECRET)
    assistenz = await rig.chat_user(ASSISTENZ)
    rule = (
        f'[[rule]]\nname = "termine"\nmailbox = "{CHEF}"\nkinds = ["appointment"]\n'
        f'to = ["user:{ASSISTENZ}"]\n'
    )
    config = rig.write_config(
        rules=rule,
        watches=WATCH_CALENDAR_AND_TASKS_AS_APP,
        identities=app_identity(graph, "delta_poll_seconds = 0.3"),
        mode="pull",
        poll_seconds=0.3,
    )
    chef = session_for(CHEF)
    calendar = await chef.default_folder(CHEF, "calendar")
    start = datetime.now(UTC).replace(microsecond=0, second=0) + timedelta(days=2)
    async with rig.worker(config) as worker:
        await wait_until_watching(rig, CHEF, "calendar")
        await chef.create(
            calendar,
            Event(subject="Haushaltsklausur", start=start, end=start + timedelta(hours=2)),
            send_invitations=False,
        )
        await chef.create(
            calendar,
            Event(
                subject="Jour fixe Dezernat",
                start=start + timedelta(hours=3),
                end=start + timedelta(hours=4),
                recurrence=Recurrence(Weekly((Weekday.MONDAY,)), start.date(), count=6),
            ),
            send_invitations=False,
        )
        [single] = await assistenz.wait_for("Haushaltsklausur")
        await assistenz.wait_for("Jour fixe Dezernat")
        batches = worker.board.counters["sync_batches"]
        await until(lambda: worker.board.counters["sync_batches"] >= batches + 3, 30)
    assert single.body.startswith("[Appointment #") and f"{CHEF} ›" in single.body
    assert len(assistenz.containing("Haushaltsklausur")) == 1
    assert len(assistenz.containing("Jour fixe Dezernat")) == 1  # one series, six occurrences


async def test_a_new_task_watched_through_graph_is_posted_once_as_over_ews(
    rig: BridgeRig,
    graph: GraphLab,
    session_for: Callable[..., DelegateSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """To Do delta: a new task in the boss's default list reaches the assistant as the same
    notification as over EWS (tests/e2e/test_bridge_folders.py); completing and deleting it
    posts nothing more."""
    monkeypatch.setenv("BRIDGE_TEST_GRAPH_SECRET", DAEMON_SECRET)
    assistenz = await rig.chat_user(ASSISTENZ)
    rule = f'[[rule]]\nname = "aufgaben"\nmailbox = "{CHEF}"\nto = ["user:{ASSISTENZ}"]\n'
    config = rig.write_config(
        rules=rule,
        watches=f'[[watch]]\nmailbox = "{CHEF}"\nfolders = ["tasks"]\n'
        'identity = "graph"\nrights_identity = "chef"\n',
        identities=app_identity(graph, "delta_poll_seconds = 0.3"),
        mode="pull",
        poll_seconds=0.3,
    )
    chef = session_for(CHEF)
    tasks = await chef.default_folder(CHEF, "tasks")
    async with rig.worker(config) as worker:
        await wait_until_watching(rig, CHEF, "tasks")
        task = await chef.create(
            tasks, Task(subject="Grußwort Feuerwehrfest", due=datetime(2027, 5, 3, tzinfo=UTC))
        )
        [note] = await assistenz.wait_for("Grußwort Feuerwehrfest")
        assert isinstance(task, Task)
        await chef.update(replace(task, status=TaskStatus.COMPLETED), ["status"])
        batches = worker.board.counters["sync_batches"]
        await until(lambda: worker.board.counters["sync_batches"] >= batches + 3, 30)
        await chef.delete(task)
        batches = worker.board.counters["sync_batches"]
        await until(lambda: worker.board.counters["sync_batches"] >= batches + 3, 30)
        detail = worker.board.mailboxes[CHEF].detail
    assert note.body.startswith("[Task #") and f"{CHEF} › {tasks.name}" in note.body
    assert "Task due: 2027-05-03" in note.body and "medbridge://item/" in note.body
    assert len(assistenz.containing("Grußwort Feuerwehrfest")) == 1
    assert "reminders only" not in detail
