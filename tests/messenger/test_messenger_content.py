"""Message content beyond text against a real server (uvicorn on loopback): images with an
encrypted thumbnail, voice messages, positions and live sharing, replies, edits, reactions,
deletion for everyone, and content outside the schema. The group of four E2E clients is the
`members` fixture of the E2E tests.
"""

# ruff: noqa: F811
from __future__ import annotations

import io
import struct
import time
import wave

import pytest
from messenger_harness import Harness, next_of
from PIL import Image
from test_e2e_messenger import Member, has_texts, make_group, members  # noqa: F401

from messenger.client import Conflict, Forbidden, NotFound
from messenger.client.content import (
    ContentError,
    Edit,
    File,
    LiveShare,
    Location,
    Reaction,
    Text,
    Timeline,
    Voice,
)
from messenger.client.e2e import DecryptedMessage, MessageDeleted, UndecodableMessage


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def wav(seconds: float, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x01\x00" * int(rate * seconds))
    return out.getvalue()


def ogg_page(granule: int, serial: int, seqno: int, payload: bytes, flags: int = 0) -> bytes:
    segments = [255] * (len(payload) // 255) + [len(payload) % 255]
    header = b"OggS" + struct.pack("<BBqIII", 0, flags, granule, serial, seqno, 0)
    return header + bytes([len(segments)]) + bytes(segments) + payload


def ogg_opus(seconds: float, pre_skip: int = 312) -> bytes:
    """An Ogg Opus stream's pages: OpusHead, OpusTags, one audio page ending at `seconds`."""
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, pre_skip, 48000, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 4) + b"test" + struct.pack("<I", 0)
    end = pre_skip + int(48000 * seconds)
    return (
        ogg_page(0, 7, 0, head, flags=2)
        + ogg_page(0, 7, 1, tags)
        + ogg_page(end, 7, 2, b"\xfc" * 100, flags=4)
    )


def received(m: Member) -> list[DecryptedMessage]:
    return [r for r in m.results if isinstance(r, DecryptedMessage)]


def timeline(m: Member) -> Timeline:
    t = Timeline()
    for r in m.results:
        if isinstance(r, DecryptedMessage):
            t.add(r.seq, r.sender_user_id, r.parsed)
        elif isinstance(r, MessageDeleted):
            t.delete(r.target)
    return t


async def test_image_arrives_with_its_size_and_an_encrypted_thumbnail(
    members: dict[str, Member],
) -> None:
    cid = await make_group(members)
    alice, bob = members["alice"], members["bob"]
    bob.open_stream()
    image = png(800, 600)
    seq = await alice.session.send_attachment(
        cid, image, name="wunde.png", mime="image/png", body="Wundverlauf"
    )
    await bob.pump_until(has_texts("Wundverlauf"))
    [message] = received(bob)
    assert message.seq == seq and isinstance(message.content, File)
    content = message.content
    assert (content.width, content.height) == (800, 600)
    assert content.thumbnail is not None
    assert (content.thumbnail.width, content.thumbnail.height) == (256, 192)
    thumb = await bob.session.fetch_attachment(content.thumbnail.ref)
    with Image.open(io.BytesIO(thumb)) as opened:
        assert (opened.format, opened.size) == ("JPEG", (256, 192))
    assert await bob.session.fetch_attachment(content.attachment) == image
    # the server holds ciphertext of both
    assert thumb not in await bob.client.download(content.thumbnail.ref.attachment_id)


async def test_file_that_is_no_image_goes_without_thumbnail(members: dict[str, Member]) -> None:
    cid = await make_group(members)
    alice, bob = members["alice"], members["bob"]
    bob.open_stream()
    await alice.session.send_attachment(cid, b"%PDF-1.7 ...", name="befund.pdf", mime="image/png")
    await bob.pump_until(lambda m: bool(received(m)))
    [message] = received(bob)
    assert isinstance(message.content, File) and message.content.thumbnail is None
    assert message.content.width is None


@pytest.mark.parametrize(
    ("data", "mime", "duration"),
    [(ogg_opus(3.0), "audio/ogg", 3000), (wav(1.5), "audio/wav", 1500)],
    ids=["ogg-opus", "wav"],
)
async def test_voice_message_carries_its_measured_duration(
    members: dict[str, Member], data: bytes, mime: str, duration: int
) -> None:
    cid = await make_group(members)
    alice, bob = members["alice"], members["bob"]
    bob.open_stream()
    await alice.session.send_voice(cid, data, mime=mime, body="Rückruf bitte")
    await bob.pump_until(has_texts("Rückruf bitte"))
    [message] = received(bob)
    assert isinstance(message.content, Voice)
    assert (message.content.duration_ms, message.content.attachment.mime) == (duration, mime)
    assert await bob.session.fetch_voice(message.content) == data


async def test_voice_with_a_wrong_container_is_refused_before_upload(
    members: dict[str, Member],
) -> None:
    cid = await make_group(members)
    alice = members["alice"]
    before = await alice.client.quota()
    for data, mime in [
        (b"RIFF\x00\x00\x00\x00WAVE", "audio/ogg"),  # WAV named Ogg
        (ogg_page(0, 1, 0, b"OpusHeaX" + bytes(11)), "audio/ogg"),  # Ogg without Opus
        (wav(1.0)[:20], "audio/wav"),  # truncated
        (wav(1.0), "audio/mpeg"),  # not a voice type
    ]:
        with pytest.raises(ContentError):
            await alice.session.send_voice(cid, data, mime=mime)
    assert await alice.client.quota() == before


async def test_received_voice_whose_blob_is_no_audio_is_refused(
    members: dict[str, Member],
) -> None:
    cid = await make_group(members)
    alice, bob = members["alice"], members["bob"]
    bob.open_stream()
    # a sender without the SDK's checks announces a text file as Opus
    ref = await alice.session._upload(cid, b"kein Ton", "x.ogg", "audio/ogg")
    await alice.session.send_content(
        cid, Voice(ref, 2000, "Sprachnachricht"), attachment_ids=[ref.attachment_id]
    )
    await bob.pump_until(has_texts("Sprachnachricht"))
    [message] = received(bob)
    assert isinstance(message.content, Voice)
    with pytest.raises(ContentError):
        await bob.session.fetch_voice(message.content)


async def test_position_and_live_sharing_with_updates_and_an_end(
    members: dict[str, Member],
) -> None:
    cid = await make_group(members)
    alice, bob, carol = members["alice"], members["bob"], members["carol"]
    bob.open_stream()
    await alice.session.send_location(cid, 52.5200, 13.4050, 12.5)
    _, share = await alice.session.share_live_location(cid, 52.52, 13.40, 20, seconds=600)
    await alice.session.update_live_location(cid, share, 52.53, 13.41, 8)
    # someone else cannot move alice's share
    await carol.session.send_content(cid, Location(1.0, 2.0, 3.0, share))
    await bob.pump_until(lambda m: len(received(m)) == 4)
    t = timeline(bob)
    now_ms = int(time.time() * 1000)
    [live] = t.live_positions(now_ms).values()
    assert (live.sender_user_id, live.location.lat, live.location.lon) == (
        alice.user_id,
        52.53,
        13.41,
    )
    assert len(t.refused) == 1
    fixed = [e.content for e in t.entries.values() if isinstance(e.content, Location)]
    assert fixed[0] == Location(52.52, 13.405, 12.5)

    await alice.session.update_live_location(cid, share, 52.54, 13.42, 5, final=True)
    await bob.pump_until(lambda m: len(received(m)) == 5)
    t = timeline(bob)
    assert t.live_positions(now_ms) == {}
    assert t.live[share.id].location.lat == 52.54
    # and a share past its time takes no more updates
    assert t.live_positions(share.until_ms) == {}
    expired = LiveShare(share.id, now_ms - 1)
    with pytest.raises(ContentError):
        await alice.session.update_live_location(cid, expired, 1.0, 1.0, 1.0)
    with pytest.raises(ContentError):
        await alice.session.send_location(cid, 91.0, 0.0, 1.0)


async def test_replies_edits_and_reactions(members: dict[str, Member]) -> None:
    cid = await make_group(members)
    alice, bob, carol = members["alice"], members["bob"], members["carol"]
    dave = members["dave"]
    dave.open_stream()
    question = await alice.session.send_text(cid, "Wer übernimmt Zimmer 4?")
    answer = await bob.session.send_text(cid, "Ich", reply_to=question)
    await alice.session.edit(cid, question, "Wer übernimmt Zimmer 5?")
    await carol.session.edit(cid, question, "gefälscht")  # not carol's message
    await carol.session.react(cid, answer, "👍")
    await alice.session.react(cid, answer, "👍")
    await alice.session.react(cid, answer, "🙏")
    await alice.session.react(cid, answer, "🙏", remove=True)
    await dave.pump_until(lambda m: len(received(m)) == 8)
    by_seq = {r.seq: r for r in received(dave)}
    assert by_seq[answer].reply_to == question
    assert isinstance(by_seq[question + 2].content, Edit)
    t = timeline(dave)
    entry = t.entries[question]
    assert (entry.content, entry.edited) == (Text("Wer übernimmt Zimmer 5?"), True)
    assert t.entries[answer].reactions == {"👍": {carol.user_id, alice.user_id}}
    assert t.refused == [question + 3]
    assert isinstance(by_seq[question + 4].content, Reaction)


async def test_deleted_message_is_gone_for_everyone_with_its_attachment(
    msg: Harness, members: dict[str, Member]
) -> None:
    cid = await make_group(members)
    alice, bob, carol = members["alice"], members["bob"], members["carol"]
    bob.open_stream()
    keep = await alice.session.send_text(cid, "bleibt")
    before = await alice.client.quota()
    gone = await alice.session.send_attachment(cid, png(64, 64), name="x.png", mime="image/png")
    await bob.pump_until(lambda m: len(received(m)) == 2)
    [photo] = [r for r in received(bob) if r.seq == gone]
    assert photo.attachment is not None

    with pytest.raises(Forbidden):
        await bob.session.delete_for_everyone(cid, gone)
    deletion = await alice.session.delete_for_everyone(cid, gone)
    with pytest.raises(Conflict):
        await alice.session.delete_for_everyone(cid, gone)
    with pytest.raises(NotFound):
        await alice.session.delete_for_everyone(cid, deletion)  # not a message

    await bob.pump_until(lambda m: any(isinstance(r, MessageDeleted) for r in m.results))
    [deleted] = [r for r in bob.results if isinstance(r, MessageDeleted)]
    assert (deleted.seq, deleted.target, deleted.by_user_id) == (deletion, gone, alice.user_id)
    assert timeline(bob).entries[gone].deleted and not timeline(bob).entries[keep].deleted
    with pytest.raises(NotFound):
        await bob.client.download(photo.attachment.attachment_id)
    # the server keeps no ciphertext of it; the sender's storage is given back
    history = {e["seq"]: e for e in await carol.client.history(cid)}
    assert history[gone]["deleted"] is True and history[gone]["ciphertext"] == ""
    assert history[deletion]["type"] == "redaction"
    assert await alice.client.quota() == before
    # a member reading later sees the deletion, never the message
    carol.open_stream()
    await carol.pump_until(lambda m: any(isinstance(r, MessageDeleted) for r in m.results))
    assert [r.seq for r in received(carol)] == [keep]


async def test_content_outside_the_schema_is_reported_not_raised(
    members: dict[str, Member],
) -> None:
    cid = await make_group(members)
    alice, bob = members["alice"], members["bob"]
    bob.open_stream()
    bad = [
        {"type": "location", "lat": 500, "lon": 0, "accuracy_m": 1},
        {"type": "hologram", "body": "x"},
        {"type": "text", "body": "aus der Zukunft", "v": 99},
        {"type": "reaction", "target": "eins", "emoji": "👍"},
        {"type": "voice", "attachment_id": "a", "key": "AA==", "sha256": "AA==", "size": 1},
        ["not", "an", "object"],
    ]
    for doc in bad:
        await alice.session._send(cid, doc)  # type: ignore[arg-type]
    await alice.session.send_text(cid, "danach")
    await bob.pump_until(has_texts("danach"))
    undecodable = [r for r in bob.results if isinstance(r, UndecodableMessage)]
    assert len(undecodable) == len(bad)
    assert all(r.sender_user_id == alice.user_id for r in undecodable)
    assert "newer" in undecodable[2].reason


async def test_typing_reaches_the_members_streams_only(msg: Harness) -> None:
    await msg.tenant("Kreisklinik", "klinik.example")
    anna = await msg.member("anna@klinik.example")
    bob = await msg.member("bob@klinik.example")
    eve = await msg.member("eve@klinik.example")
    assert bob.user_id is not None
    cid = (await anna.create_conversation("direct", [bob.user_id]))["conversation_id"]
    stream = bob.events()
    await next_of(stream, "synced")
    await anna.typing(cid)
    event = await next_of(stream, "typing")
    assert (event["conversation_id"], event["user_id"], event["typing"]) == (
        cid,
        anna.user_id,
        True,
    )
    await anna.typing(cid, False)
    assert (await next_of(stream, "typing"))["typing"] is False
    await stream.aclose()
    with pytest.raises(NotFound):
        await eve.typing(cid)
    # nothing of it is kept: the history has only the membership events
    assert {e["type"] for e in await bob.history(cid)} == {"membership"}
