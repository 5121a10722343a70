"""Test rig of the notification bridge: the lab, a real messenger server, chat users, workers.

The lab (demo organisation) and the messenger (SQLite) run in this process on loopback; bridge
workers run in-process (`BridgeRig.worker`) or as `medbridge bridge run` subprocesses
(`BridgeRig.spawn`) that tests may kill -9. Chat users are real E2E clients whose decrypted
texts the tests read.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from bridge.demo import BridgeThread
from bridge.notify import BridgeWorker, load_config
from bridge.notify.chat import KEY_STRENGTH
from bridge.notify.store import BridgeStore
from exlab.demo import DEMO_PASSWORD, DOMAIN
from med import Address, DelegateSession, Message
from messenger.client import EventStream, MessengerClient
from messenger.client.e2e import DecryptedMessage, E2ESession
from messenger.crypto import DeviceKeys
from tests.lab.conftest import LabServer
from tests.messenger.messenger_harness import (
    PASSWORD,
    Clock,
    Database,
    Harness,
    ServerThread,
    make_settings,
)

CHEF = f"chef@{DOMAIN}"
ASSISTENZ = f"assistenz@{DOMAIN}"
#: The common rule: whatever arrives in chef's inbox goes to assistenz.
CHEF_INBOX_TO_ASSISTENZ = f"""
[[rule]]
name = "chef-inbox"
mailbox = "{CHEF}"
to = ["user:{ASSISTENZ}"]
"""
#: Reminders of chef's watched calendars and task folders go to assistenz.
REMINDERS_TO_ASSISTENZ = f"""
[[rule]]
name = "reminders"
mailbox = "{CHEF}"
kinds = ["reminder"]
to = ["user:{ASSISTENZ}"]
"""
SACHBEARBEITUNG = f"sachbearbeitung@{DOMAIN}"
POSTSTELLE = f"poststelle@{DOMAIN}"
BRIDGE_USER = f"bridge@{DOMAIN}"
IT = f"it@{DOMAIN}"

#: Environment the bridge reads its secrets from (set for in-process and spawned workers).
SECRETS = {
    "BRIDGE_TEST_MESSENGER_PASSWORD": PASSWORD,
    "BRIDGE_TEST_KEYS_PASSPHRASE": "keys passphrase for tests",
    "BRIDGE_TEST_MAIL_PASSWORD": DEMO_PASSWORD,
}
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ChatUser:
    """A messenger user with an E2E device, reading its stream in the background."""

    email: str
    client: MessengerClient
    session: E2ESession
    stream: EventStream | None = None
    messages: list[DecryptedMessage] = field(default_factory=list)
    #: What the stream gave that was not a readable message (held for a key, failed checks):
    #: shown when a wait fails, so a silent chat can be told from a broken one.
    other: list[object] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    @property
    def user_id(self) -> str:
        return self.session.user_id

    def listen(self) -> None:
        self.stream = self.client.events()
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        assert self.stream is not None
        async for event in self.stream:
            for result in await self.session.handle_event(event):
                if isinstance(result, DecryptedMessage):
                    self.messages.append(result)
                else:
                    self.other.append(result)

    def texts(self) -> list[str]:
        return [m.body for m in self.messages if m.sender_user_id != self.user_id]

    def containing(self, needle: str) -> list[DecryptedMessage]:
        return [m for m in self.messages if needle in m.body and m.sender_user_id != self.user_id]

    async def wait_for(
        self, needle: str, *, count: int = 1, timeout: float = 30.0
    ) -> list[DecryptedMessage]:
        """Wait until `count` messages contain `needle`; fails with what did arrive."""
        await until(lambda: len(self.containing(needle)) >= count, timeout, self.describe)
        return self.containing(needle)

    def describe(self) -> str:
        """What arrived, what else the stream gave, and whether the reader still runs."""
        pump = "not started"
        if self._task is not None:
            pump = "running"
            if self._task.done():
                error = None if self._task.cancelled() else self._task.exception()
                pump = f"ended ({error!r})"
        return f"texts {self.texts()}; other {self.other[-5:]}; reader {pump}"

    async def say(self, conversation_id: str, text: str) -> int:
        return await self.session.send_text(conversation_id, text)

    async def close(self) -> None:
        if self.stream is not None:
            await self.stream.aclose()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


async def until(
    condition: Callable[[], bool], timeout: float, describe: Callable[[], object] = lambda: ""
) -> None:
    """Poll `condition` until true; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in {timeout} s; saw: {describe()}")
        await asyncio.sleep(0.05)


async def until_async(condition: Callable[[], Awaitable[bool]], timeout: float) -> None:
    """Like `until` for a condition that must be awaited (a database query)."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in {timeout} s")
        await asyncio.sleep(0.05)


class BridgeRig:
    """Messenger server + chat users + bridge configuration over one running lab."""

    def __init__(
        self, lab: LabServer, tmp_path: Path, *, pg: tuple[str, str] | None = None
    ) -> None:
        """`pg`: (URL, schema) to keep the bridge's tables in PostgreSQL instead of SQLite."""
        self.lab = lab
        self.tmp = tmp_path
        self.database = Database(f"sqlite:///{tmp_path / 'messenger.db'}")
        self.clock = Clock()
        self.settings = make_settings(self.database, tmp_path, self.clock)
        self.server = ServerThread(self.settings)
        self.harness = Harness(self.database, self.settings, self.clock, self.server)
        self.users: dict[str, ChatUser] = {}
        self.processes: list[subprocess.Popen[bytes]] = []
        self.bridge_db = pg[0] if pg else f"sqlite:///{tmp_path / 'bridge.db'}"
        self.bridge_schema = pg[1] if pg else None

    async def start(self) -> None:
        await self.server.start()
        await self.harness.tenant("Musterstadt", DOMAIN)
        for email in (BRIDGE_USER, ASSISTENZ, SACHBEARBEITUNG, IT, CHEF):
            await self.harness.user(email)

    async def chat_user(self, email: str) -> ChatUser:
        client = MessengerClient(self.server.url, retries=1)
        await client.login(email, PASSWORD)
        assert client.user_id is not None
        keys = DeviceKeys.generate(client.user_id, uuid.uuid4().hex)
        session = E2ESession.for_client(client, keys)
        await session.register_device("test phone")
        user = ChatUser(email, client, session)
        user.listen()
        self.users[email] = user
        return user

    def write_config(
        self,
        *,
        rules: str,
        watches: str | None = None,
        mode: str = "streaming",
        poll_seconds: float = 5.0,
        lease_seconds: float = 15.0,
        extra_bridge: str = "",
        identities: str = "",
        name: str = "bridge.toml",
    ) -> Path:
        watches = watches or (
            f'[[watch]]\nmailbox = "{CHEF}"\nfolders = ["inbox"]\n'
            'identity = "assistenz"\nrights_identity = "chef"\n'
        )
        text = f"""
[bridge]
database = "{self.bridge_db}"
{f'database_schema = "{self.bridge_schema}"' if self.bridge_schema else ""}
data_dir = "{self.tmp / "bridge-data"}"
mode = "{mode}"
poll_seconds = {poll_seconds}
lease_seconds = {lease_seconds}
{extra_bridge}

[messenger]
server = "{self.server.url}"
user = "{BRIDGE_USER}"
password_env = "BRIDGE_TEST_MESSENGER_PASSWORD"
keys_passphrase_env = "BRIDGE_TEST_KEYS_PASSPHRASE"
key_strength = "interactive"

[identities.assistenz]
server = "{self.lab.url}"
user = "{ASSISTENZ}"
auth = "basic"
version = "Exchange2016"
max_wait_s = 2.0
timeout_s = 20.0
password_env = "BRIDGE_TEST_MAIL_PASSWORD"

[identities.chef]
server = "{self.lab.url}"
user = "{CHEF}"
auth = "basic"
version = "Exchange2016"
max_wait_s = 2.0
password_env = "BRIDGE_TEST_MAIL_PASSWORD"

{identities}

{watches}

{rules}
"""
        path = self.tmp / name
        path.write_text(text, encoding="utf-8")
        return path

    @contextlib.asynccontextmanager
    async def worker(self, config: Path, worker_id: str = "w1") -> AsyncIterator[BridgeWorker]:
        """An in-process worker, ready (signed in, leases being taken) when entered."""
        for key, value in SECRETS.items():
            os.environ[key] = value
        loaded = load_config(config, data_dir=self.tmp / "bridge-data", worker_id=worker_id)
        worker = BridgeWorker(loaded)
        task = asyncio.create_task(worker.run())
        try:
            ready = asyncio.create_task(worker.ready.wait())
            done, _ = await asyncio.wait(
                {task, ready}, timeout=60, return_when=asyncio.FIRST_COMPLETED
            )
            if task in done:
                task.result()
            assert ready in done, (
                f"the bridge worker did not start: {worker.board.mailboxes}; "
                f"{self.messenger_state()}"
            )
            yield worker
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                # Bounded: a cancellation the worker lost must fail here, not at the suite's
                # timeout minutes later.
                await asyncio.wait_for(task, 30)

    def messenger_state(self) -> str:
        """What a failure to reach the messenger needs to be told apart: whether its port
        accepts a connection now, whether its thread runs, how many files this process has
        open."""
        try:
            with socket.create_connection(("127.0.0.1", self.server.port), timeout=5):
                accepts = "accepts connections"
        except OSError as exc:
            accepts = f"refuses connections ({exc})"
        running = "running" if self.server.running else "not running"
        open_files = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else -1
        return (
            f"messenger on port {self.server.port} {accepts}, its thread {running}, "
            f"{open_files} files open in this process"
        )

    def spawn(self, config: Path, worker_id: str) -> subprocess.Popen[bytes]:
        """`medbridge bridge run` as a subprocess (its own process group, output to a file)."""
        env = {**os.environ, **SECRETS, "PYTHONPATH": str(ROOT)}
        log = (self.tmp / f"{worker_id}.log").open("ab")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bridge.cli",
                "bridge",
                "run",
                "--config",
                str(config),
                "--worker-id",
                worker_id,
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """kill -9, and wait for the process to be gone."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    async def store(self) -> BridgeStore:
        """The bridge's database, unlocked with the workers' keys passphrase."""
        store = await BridgeStore.open(self.bridge_db, self.bridge_schema)
        ops, mem = KEY_STRENGTH["interactive"]
        await store.unlock(SECRETS["BRIDGE_TEST_KEYS_PASSPHRASE"], opslimit=ops, memlimit=mem)
        return store

    async def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                self.kill(process)
        for log in sorted(self.tmp.glob("*.log")):
            # Captured output, shown by pytest only when the test failed.
            lines = log.read_text(errors="replace").splitlines()[-40:]
            print(f"--- {log.name} (last lines)", *lines, sep="\n")
        for user in self.users.values():
            await user.close()
            await user.client.aclose()
        await self.harness.close()
        await self.server.stop()


async def direct_conversation(user: ChatUser, other_user_id: str) -> str:
    for conv in await user.client.conversations():
        if conv["kind"] == "direct":
            detail = await user.client.conversation(conv["conversation_id"])
            if other_user_id in {m["user_id"] for m in detail["members"]}:
                return str(conv["conversation_id"])
    raise AssertionError("no direct conversation with the bridge")


async def wait_until_watching(rig: BridgeRig, mailbox: str = CHEF, folder: str = "inbox") -> None:
    """The bridge has its baseline of the folder: what arrives from now on is new."""
    store = await rig.store()
    try:

        async def known() -> bool:
            return (await store.sync_state(f"{mailbox}/{folder}"))[0]

        await until_async(known, 60)
    finally:
        await store.close()


async def mail_chef_once_watched(
    bridge: BridgeThread, sender: DelegateSession, subject: str
) -> None:
    """Once the demo bridge runs on chef's mailbox, `sender` mails chef: the bridge sees it new."""
    assert bridge.worker is not None
    boxes = bridge.worker.board.mailboxes
    await until(
        lambda: CHEF in boxes and boxes[CHEF].state.value == "running",
        60,
        lambda: {name: box.state.value for name, box in boxes.items()},
    )
    await sender.send(Message(subject=subject, body="!", to=(Address(CHEF),)))


async def assert_posted_once(rig: BridgeRig, user: ChatUser, expected: int) -> None:
    """Once the outbox is drained: every entry sent, one link per notification, and the
    server's history of the conversation holds exactly those messages (a repeat would be an
    extra one)."""
    store = await rig.store()
    try:

        async def drained() -> bool:
            return (await store.outbox_counts()).get("pending", 0) == 0

        await until_async(drained, 60)
        links = await store.links()
        outbox = await store.outbox_counts()
    finally:
        await store.close()
    assert outbox == {"sent": expected}
    assert len(links) == expected
    assert len({(link.conversation_id, link.seq) for link in links}) == expected
    history = await user.client.history(links[0].conversation_id, limit=1000)
    messages = [e for e in history if e.get("type") == "message"]
    assert sorted(int(m["seq"]) for m in messages) == sorted(link.seq for link in links)


def ref_of(text: str) -> int:
    """The number of a bridge notification (`[Mail #12] …`), for commands like `flag #12`."""
    found = re.search(r"#(\d+)\]", text)
    assert found, text
    return int(found[1])
