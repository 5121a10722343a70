"""Two server processes on one PostgreSQL deliver to each other's clients via Redis pub/sub."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from messenger_harness import (
    FAST_ARGON2,
    PASSWORD,
    Clock,
    Database,
    free_port,
    next_of,
    pg_schema,
    wait_ready,
)

from messenger.client import Envelope, MessengerClient, Unauthenticated, decode_ciphertext
from messenger.server.auth import make_hasher
from messenger.store import repo
from messenger.store.engine import make_engine, sessionmaker

REPO = Path(__file__).resolve().parents[2]
PG = os.environ.get("MEDBRIDGE_TEST_PG")
REDIS = os.environ.get("MEDBRIDGE_TEST_REDIS")

pytestmark = [
    pytest.mark.pg,
    pytest.mark.redis,
    pytest.mark.skipif(
        not (PG and REDIS), reason="needs MEDBRIDGE_TEST_PG and MEDBRIDGE_TEST_REDIS"
    ),
]


@pytest.fixture
async def shared_db() -> AsyncIterator[Database]:
    assert PG
    async with pg_schema(PG) as name:
        yield Database(PG, name)  # empty: both nodes migrate it as they start together


class Node:
    def __init__(self, db: Database, channel: str, blob_dir: Path, name: str) -> None:
        assert db.schema and REDIS
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bridge.cli",
                "messenger",
                "--db",
                db.url,
                "--schema",
                db.schema,
                "--redis",
                REDIS,
                "--redis-channel",
                channel,
                "serve",
                "--port",
                str(self.port),
                "--blob-dir",
                str(blob_dir),
                "--node-name",
                name,
                "--log-level",
                "warning",
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    async def ready(self) -> None:
        await wait_ready(self.url, self.proc)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
async def nodes(shared_db: Database, tmp_path: Path) -> AsyncIterator[tuple[Node, Node]]:
    channel = f"medbridge-test-{secrets.token_hex(6)}"
    a = Node(shared_db, channel, tmp_path / "blobs", "a")
    b = Node(shared_db, channel, tmp_path / "blobs", "b")
    try:
        await asyncio.gather(a.ready(), b.ready())
        yield a, b
    finally:
        a.stop()
        b.stop()


async def seed(db: Database) -> None:
    engine = make_engine(db.url, db.schema)
    hasher = make_hasher(FAST_ARGON2)
    async with sessionmaker(engine)() as s:
        now = Clock()()
        tenant = await repo.create_tenant(s, "Kreis", now)
        await repo.add_domain(s, tenant, "kreis.example")
        for name in ("alice", "bob"):
            await repo.create_user(
                s, f"{name}@kreis.example", now, password_hash=hasher.hash(PASSWORD)
            )
        await s.commit()
    await engine.dispose()


async def login(url: str, email: str) -> MessengerClient:
    client = MessengerClient(url, retries=1)
    await client.login(email, PASSWORD)
    await client.register_device("d", secrets.token_bytes(32), secrets.token_bytes(32), b"sig")
    return client


async def test_clients_on_two_nodes_reach_each_other(
    shared_db: Database, nodes: tuple[Node, Node]
) -> None:
    a, b = nodes
    await seed(shared_db)
    alice = await login(a.url, "alice@kreis.example")
    bob = await login(b.url, "bob@kreis.example")
    assert bob.user_id and bob.device_id
    try:
        cid = (await alice.create_conversation("group", [bob.user_id]))["conversation_id"]
        async with alice.events() as a_stream, bob.events() as b_stream:
            await next_of(a_stream, "synced")
            await next_of(b_stream, "synced")
            await alice.send_raw(cid, b"from node a")
            assert decode_ciphertext(await next_of(b_stream, "message")) == b"from node a"
            # Every member device gets each message, the sender's own included.
            assert decode_ciphertext(await next_of(a_stream, "message")) == b"from node a"
            await bob.send_raw(cid, b"from node b")
            assert decode_ciphertext(await next_of(a_stream, "message")) == b"from node b"
            await alice.send_to_device([Envelope(bob.user_id, bob.device_id, b"pairwise")])
            assert decode_ciphertext(await next_of(b_stream, "to_device")) == b"pairwise"
            await alice.remove_member(cid, bob.user_id)
            removal = await next_of(b_stream, "membership")
            assert (removal["action"], removal["user_id"]) == ("removed", bob.user_id)
            # Removing bob's device through node a closes his stream on node b.
            second = await login(a.url, "bob@kreis.example")
            await second.remove_device(bob.device_id)
            with pytest.raises(Unauthenticated):
                await next_of(b_stream, "never")
            await second.aclose()
    finally:
        await alice.aclose()
        await bob.aclose()
