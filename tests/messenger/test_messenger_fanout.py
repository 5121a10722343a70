"""Live fan-out: frames made once and written straight to idle streams arrive intact and in
order, whatever their size (each length encoding of RFC 6455)."""

from __future__ import annotations

import pytest
from messenger_harness import Harness, next_of
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from messenger.client import decode_ciphertext
from messenger.server.limits import text_frame


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 70000])
def test_a_frame_made_once_parses_as_the_same_text(size: int) -> None:
    text = "ä" * (size // 2) + "x" * (size % 2)
    reader = StreamReader()
    reader.feed_data(text_frame(text))
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        frame = done.value
    assert frame.opcode == Opcode.TEXT and frame.fin
    assert frame.data.decode() == text


async def test_live_messages_of_every_frame_size_arrive_in_order(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    anna = await msg.member("anna@kreis.example")
    bert = await msg.member("bert@kreis.example")
    assert bert.user_id
    cid = (await anna.create_conversation("group", [bert.user_id]))["conversation_id"]
    bodies = [b"a" * n for n in (1, 60, 100, 49_000, 60_000)]
    async with bert.events() as stream:
        await next_of(stream, "synced")
        sent = [await anna.send_raw(cid, body) for body in bodies]
        got = [await next_of(stream, "message") for _ in bodies]
    assert [e["seq"] for e in got] == [s.seq for s in sent]
    assert [decode_ciphertext(e) for e in got] == bodies
