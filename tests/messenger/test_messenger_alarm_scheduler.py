"""The alarm scheduler keeps its word across a server restart and with two nodes on one database.

Repeats and escalations are due by the database (`next_due_at`) and done under a lease on the
alarm's row, so a restarted server neither loses nor repeats an escalation, and two nodes
ticking at once do each one exactly once. A settable clock shared by the nodes drives time.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alarm_people import Person, person
from messenger_harness import Harness, ServerThread, make_settings

from messenger.client import MessengerClient

pytestmark = pytest.mark.parametrize("database", ["sqlite", "pg"], indirect=True)
REDIS = os.environ.get("MEDBRIDGE_TEST_REDIS")


@pytest.fixture
def server_options() -> dict[str, Any]:
    return {"alarm_interval": 0.02, "node_name": "a", "stream_recheck_interval": 0.2}


async def setup(msg: Harness, url: str) -> tuple[Person, Person, Person, str]:
    """A sender, a tier-1 and a tier-2 recipient, and a list (repeat 60 s, escalation 120 s)."""
    await msg.tenant("Kreis", "kreis.example")
    await msg.user("admin@kreis.example", role="tenant_admin")
    for name in ("sender", "erste", "zweite"):
        await msg.user(f"{name}@kreis.example")
    admin = await person(url, "admin@kreis.example")
    sender = await person(url, "sender@kreis.example")
    first = await person(url, "erste@kreis.example")
    second = await person(url, "zweite@kreis.example")
    created = await admin.client.create_alarm_list(
        "Bereitschaft",
        [{"user_id": first.user_id, "tier": 1}, {"user_id": second.user_id, "tier": 2}],
        repeat_seconds=60,
        escalation_seconds=120,
    )
    await admin.close()
    return sender, first, second, created["list_id"]


def kinds(status: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in status["log"]]


def rounds(status: dict[str, Any]) -> dict[str, int]:
    return {r["user_id"]: r["rounds"] for r in status["recipients"]}


async def wait_for(client: MessengerClient, alarm_id: str, kind: str, count: int) -> dict[str, Any]:
    """The alarm's status once its log holds `count` entries of `kind` (fails after 20 s)."""
    for _ in range(400):
        status = await client.alarm_status(alarm_id)
        if kinds(status).count(kind) >= count:
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"{kind} x{count} not reached: {kinds(status)}")


async def test_a_restart_neither_loses_nor_repeats_an_escalation(msg: Harness) -> None:
    sender, first, second, list_id = await setup(msg, msg.url)
    try:
        aid = (await sender.alarms.raise_alarm(list_id, "Gasgeruch Keller")).alarm_id
        await first.listen()
        await first.until(lambda p: p.has_round(aid, 1))
        await msg.server.stop()  # the server is down when the escalation falls due
        msg.clock.shift(seconds=121)
        await msg.server.start()  # a new process state on the same database and port
        status = await wait_for(sender.client, aid, "escalated", 1)
        assert rounds(status)[second.user_id] == 1
        await second.listen()
        await second.until(lambda p: p.has_round(aid, 1))
        assert [r.text for r in second.received(aid)] == ["Gasgeruch Keller"]
        # Restarted again at the same moment: nothing is due, nothing is done twice.
        await msg.server.stop()
        await msg.server.start()
        msg.clock.shift(seconds=61)  # the next repeat is due: done once, after the restart
        status = await wait_for(sender.client, aid, "repeated", 1)
        assert kinds(status).count("escalated") == 1
        assert rounds(status) == {first.user_id: 2, second.user_id: 2}
        await first.until(lambda p: p.has_round(aid, 2))  # its stream resumed by itself
    finally:
        for p in (sender, first, second):
            await p.close()


@pytest.fixture
async def second_node(msg: Harness, tmp_path: Path) -> AsyncIterator[ServerThread]:
    options: dict[str, Any] = {
        "alarm_interval": 0.02,
        "node_name": "b",
        "stream_recheck_interval": 0.2,
    }
    if REDIS:  # with Redis, either node's fan-out reaches streams on the other at once
        channel = f"medbridge-test-alarms-{os.getpid()}-{id(tmp_path)}"
        options.update(redis_url=REDIS, redis_channel=channel)
        msg.settings.redis_url, msg.settings.redis_channel = REDIS, channel
    node = ServerThread(make_settings(msg.database, tmp_path, msg.clock, **options))
    await node.start()
    try:
        yield node
    finally:
        await node.stop()


async def test_two_nodes_escalate_and_repeat_each_alarm_exactly_once(
    msg: Harness, second_node: ServerThread
) -> None:
    if REDIS:  # restart node a so it uses the Redis fan-out as well
        await msg.server.stop()
        await msg.server.start()
    sender, first, second, list_id = await setup(msg, msg.url)
    try:
        ids = [(await sender.alarms.raise_alarm(list_id, f"Alarm {i}")).alarm_id for i in range(6)]
        await second.listen()
        msg.clock.shift(seconds=121)  # both nodes find all six due at once
        for aid in ids:
            status = await wait_for(sender.client, aid, "escalated", 1)
            assert rounds(status)[second.user_id] == 1
        # The tier-2 device, connected to node a, gets each alarm once, whoever escalated it.
        await second.until(lambda p: all(p.has_round(a, 1) for a in ids))
        msg.clock.shift(seconds=61)
        for aid in ids:
            status = await wait_for(sender.client, aid, "repeated", 1)
        await asyncio.sleep(0.3)  # let both schedulers tick again: nothing more is due
        for aid in ids:
            status = await sender.client.alarm_status(aid)
            assert kinds(status).count("escalated") == 1
            assert kinds(status).count("repeated") == 1
            assert rounds(status) == {first.user_id: 2, second.user_id: 2}
        assert sorted(r.round for r in second.received() if r.round == 1) == [1] * 6
    finally:
        for p in (sender, first, second):
            await p.close()
