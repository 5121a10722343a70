"""A node configured for Redis keeps serving its own clients while Redis is unreachable."""

from __future__ import annotations

from typing import Any

import pytest
from messenger_harness import Harness, free_port, next_of

from messenger.client import decode_ciphertext


@pytest.fixture
def server_options() -> dict[str, Any]:
    return {"redis_url": f"redis://127.0.0.1:{free_port()}/0"}  # nothing listens there


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_sends_succeed_and_reach_local_streams_without_redis(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    anna = await msg.member("anna@kreis.example")
    bert = await msg.member("bert@kreis.example")
    assert bert.user_id
    cid = (await anna.create_conversation("group", [bert.user_id]))["conversation_id"]
    async with bert.events() as stream:
        await next_of(stream, "synced")
        await anna.send_raw(cid, b"still here")
        assert decode_ciphertext(await next_of(stream, "message")) == b"still here"
