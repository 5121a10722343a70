"""A stream that falls too far behind is closed and resumes from the database, losing nothing."""

from __future__ import annotations

from typing import Any

import pytest
from messenger_harness import Harness, next_of


@pytest.fixture
def server_options() -> dict[str, Any]:
    return {"stream_queue_limit": 3}


async def test_overflowing_stream_reconnects_and_gets_every_event_once(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    anna = await msg.member("anna@kreis.example")
    bert = await msg.member("bert@kreis.example")
    others = await msg.users([f"c{i}@kreis.example" for i in range(9)])
    assert bert.user_id
    async with bert.events() as stream:
        await next_of(stream, "synced")
        # One request publishes eleven events at once: more than the stream may queue.
        conv = await anna.create_conversation("group", [bert.user_id, *others])
        got = []
        while len(got) < 10:
            event = await stream.next()
            if event["type"] == "membership":
                got.append(event)
        assert stream.connects == 2
    assert [e["seq"] for e in got] == list(range(2, 12))
    assert {e["conversation_id"] for e in got} == {conv["conversation_id"]}
    assert [e["user_id"] for e in got] == [bert.user_id, *others]
