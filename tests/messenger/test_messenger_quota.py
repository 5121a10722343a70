"""The per-user quota counts messages and to-device envelopes, not only attachments, and
gives their bytes back when they are delivered or purged."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from messenger_harness import Harness, next_of

from messenger.client import Envelope, QuotaExceeded
from messenger.store.models import User


@pytest.fixture
def server_options() -> dict[str, Any]:
    return {"purge_interval": 0.1, "session_ttl": dt.timedelta(days=365)}


async def set_quota(msg: Harness, user_id: str, quota: int) -> None:
    async with msg.sessions() as db:
        user = await db.get(User, user_id)
        assert user
        user.quota_bytes = quota
        await db.commit()


async def test_messages_and_envelopes_count_against_the_quota(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    anna = await msg.member("anna@kreis.example")
    bert = await msg.member("bert@kreis.example")
    assert anna.user_id and bert.user_id and bert.device_id
    cid = (await anna.create_conversation("group", [bert.user_id]))["conversation_id"]
    await set_quota(msg, anna.user_id, 3000)
    for _ in range(2):
        await anna.send_raw(cid, b"m" * 1000)
    assert (await anna.quota())["used"] == 2000
    with pytest.raises(QuotaExceeded):
        await anna.send_raw(cid, b"m" * 1500)
    await anna.send_to_device([Envelope(bert.user_id, bert.device_id, b"k" * 900)])
    assert (await anna.quota())["used"] == 2900
    with pytest.raises(QuotaExceeded):
        await anna.send_to_device([Envelope(bert.user_id, bert.device_id, b"k" * 200)])
    # Bert's device receives the envelope and acknowledges it when it reconnects: its bytes
    # go back to anna.
    async with bert.events() as stream:
        await next_of(stream, "to_device")
    async with bert.events() as stream:
        await next_of(stream, "synced")
    assert (await anna.quota())["used"] == 2000
    # After the retention the messages are purged and their bytes come back too.
    msg.clock.shift(days=31)
    deadline = asyncio.get_running_loop().time() + 20
    while (await anna.quota())["used"] != 0:
        assert asyncio.get_running_loop().time() < deadline, "messages not purged"
        await asyncio.sleep(0.02)
    await anna.send_raw(cid, b"m" * 2500)
