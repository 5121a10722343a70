"""Watching subfolders by path, the public folder tree and a task folder (EWS), against the lab
and a real messenger; a path the server does not know is named on the health board."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from bridge.commands._med import find_folder
from bridge.notify import MailboxState
from med import DelegateSession, ItemQuery, Message, Task, TaskStatus
from tests.e2e.bridge_harness import (
    ASSISTENZ,
    CHEF,
    BridgeRig,
    ref_of,
    until,
    wait_until_watching,
)

TO_ASSISTENZ = f"""
[[rule]]
name = "all"
to = ["user:{ASSISTENZ}"]
"""


def watch(mailbox: str, folders: str) -> str:
    return (
        f'[[watch]]\nmailbox = "{mailbox}"\nfolders = {folders}\n'
        'identity = "assistenz"\nrights_identity = "chef"\n'
    )


async def test_a_subfolder_watched_by_path_posts_what_arrives_there_and_only_that(
    rig: BridgeRig, session_for: Callable[..., DelegateSession]
) -> None:
    assistenz = await rig.chat_user(ASSISTENZ)
    config = rig.write_config(
        rules=TO_ASSISTENZ, watches=watch(CHEF, '["inbox/Vorgänge"]'), mode="pull", poll_seconds=0.3
    )
    chef = session_for(CHEF)
    vorgaenge = await find_folder(chef, CHEF, "inbox/Vorgänge")
    inbox = await chef.default_folder(CHEF, "inbox")
    async with rig.worker(config):
        await wait_until_watching(rig, CHEF, "inbox/vorgänge")
        await chef.create(inbox, Message(subject="Nur im Posteingang", body="-"))
        await chef.create(vorgaenge, Message(subject="Vorgang 2026-17", body="Akte anlegen."))
        [note] = await assistenz.wait_for("Vorgang 2026-17")
    assert f"{CHEF} › Vorgänge" in note.body
    assert not assistenz.containing("Nur im Posteingang")


async def test_a_new_task_in_a_watched_task_folder_is_posted_once(
    rig: BridgeRig, session_for: Callable[..., DelegateSession]
) -> None:
    assistenz = await rig.chat_user(ASSISTENZ)
    config = rig.write_config(
        rules=TO_ASSISTENZ, watches=watch(CHEF, '["tasks"]'), mode="pull", poll_seconds=0.3
    )
    chef = session_for(CHEF)
    tasks = await chef.default_folder(CHEF, "tasks")
    async with rig.worker(config) as worker:
        await wait_until_watching(rig, CHEF, "tasks")
        task = await chef.create(
            tasks, Task(subject="Grußwort Feuerwehrfest", due=datetime(2027, 5, 3, tzinfo=UTC))
        )
        [note] = await assistenz.wait_for("Grußwort Feuerwehrfest")
        batches = worker.board.counters["sync_batches"]
        await until(lambda: worker.board.counters["sync_batches"] >= batches + 3, 30)
        assert note.body.startswith("[Task #") and f"{CHEF} › {tasks.name}" in note.body
        assert "Task due: 2027-05-03" in note.body and "medbridge://item/" in note.body
        assert note.body.splitlines()[-1].startswith("Reply with: done #")
        assert len(assistenz.containing("Grußwort Feuerwehrfest")) == 1
        # The assistant completes it from the chat.
        command = await assistenz.say(note.conversation_id, f"done #{ref_of(note.body)}")
        [answer] = await assistenz.wait_for("completed")
        assert answer.reply_to == command
    done = await chef.get(task.id)
    assert isinstance(done, Task)
    assert (done.status, done.percent_complete) == (TaskStatus.COMPLETED, 100)


async def test_a_public_folder_is_watched_by_path(
    rig: BridgeRig, session_for: Callable[..., DelegateSession]
) -> None:
    assistenz = await rig.chat_user(ASSISTENZ)
    config = rig.write_config(
        rules=TO_ASSISTENZ,
        watches=watch("public", '["Verwaltung/Rundschreiben"]'),
        mode="pull",
        poll_seconds=0.3,
    )
    chef = session_for(CHEF)
    rundschreiben = await find_folder(chef, "public", "Verwaltung/Rundschreiben")
    async with rig.worker(config):
        await wait_until_watching(rig, "public", "verwaltung/rundschreiben")
        await chef.create(
            rundschreiben, Message(subject="Rundschreiben 3/2026", body="Neue Dienstzeiten.")
        )
        [note] = await assistenz.wait_for("Rundschreiben 3/2026")
    assert "public › Rundschreiben" in note.body
    assert "> Neue Dienstzeiten." in note.body


async def test_an_unknown_folder_path_is_named_on_the_health_board(rig: BridgeRig) -> None:
    config = rig.write_config(
        rules=TO_ASSISTENZ, watches=watch(CHEF, '["inbox/Projekte/2026"]'), mode="pull"
    )
    async with rig.worker(config) as worker:
        await until(
            lambda: (
                CHEF in worker.board.mailboxes
                and worker.board.mailboxes[CHEF].state is MailboxState.DEGRADED
            ),
            30,
            lambda: worker.board.snapshot(),
        )
        detail = worker.board.mailboxes[CHEF].detail
    assert "inbox/Projekte/2026" in detail and CHEF in detail


async def test_move_from_chat_takes_a_folder_path(
    rig: BridgeRig, session_for: Callable[..., DelegateSession]
) -> None:
    assistenz = await rig.chat_user(ASSISTENZ)
    config = rig.write_config(
        rules=TO_ASSISTENZ, watches=watch(CHEF, '["inbox"]'), mode="pull", poll_seconds=0.3
    )
    chef = session_for(CHEF)
    inbox = await chef.default_folder(CHEF, "inbox")
    async with rig.worker(config):
        await wait_until_watching(rig)
        await chef.create(inbox, Message(subject="Kreistag Sitzung 12", body="Vorlage."))
        [note] = await assistenz.wait_for("Kreistag Sitzung 12")
        ref = note.body.split("#", 1)[1].split("]", 1)[0]
        await assistenz.say(note.conversation_id, f"move #{ref} inbox/Kreistag")
        [answer] = await assistenz.wait_for("moved to")
    assert "moved to Kreistag" in answer.body
    kreistag = await find_folder(chef, CHEF, "inbox/Kreistag")
    moved = await chef.items(kreistag, ItemQuery(limit=50))
    assert "Kreistag Sitzung 12" in {m.subject for m in moved.items}
