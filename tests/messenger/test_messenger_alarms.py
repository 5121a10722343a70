"""Alarm lists and alarms over real HTTP and WebSocket, end to end encrypted.

Tenant admins manage alarm lists (others are refused); an alarm reaches every device of the
first tier as ciphertext the server cannot read; answers reach the sender and the list's admins
live; unanswered recipients are alarmed again at the repeat interval and the next tier after the
escalation timeout (a settable clock drives it); enough acknowledgements or the sender close it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from alarm_people import Person, person
from messenger_harness import Harness
from sqlalchemy import select, update

from messenger.client import (
    BadRequest,
    Conflict,
    Envelope,
    Forbidden,
    MessengerError,
    NotFound,
    QuotaExceeded,
)
from messenger.client.alarms import Position
from messenger.store.models import Alarm, AlarmKey, AlarmLog, Tenant, User

pytestmark = pytest.mark.parametrize("database", ["sqlite", "pg"], indirect=True)


@pytest.fixture
def server_options() -> dict[str, Any]:
    return {"alarm_interval": 0.05}


@dataclass
class Crew:
    admin: Person  # tenant admin, admin of the list
    sender: Person
    a1: Person  # tier 1
    a2: Person  # tier 1
    b1: Person  # tier 2
    stranger: Person  # tenant admin of another tenant
    list_id: str

    def everyone(self) -> list[Person]:
        return [self.admin, self.sender, self.a1, self.a2, self.b1, self.stranger]


@pytest.fixture
async def crew(msg: Harness) -> AsyncIterator[Crew]:
    await msg.tenant("Leitstelle", "leitstelle.example")
    await msg.tenant("Nachbarkreis", "nachbar.example")
    await msg.user("chefin@leitstelle.example", role="tenant_admin")
    for name in ("disponent", "a1", "a2", "b1"):
        await msg.user(f"{name}@leitstelle.example")
    await msg.user("admin@nachbar.example", role="tenant_admin")
    people = [
        await person(msg.url, "chefin@leitstelle.example", "admin"),
        await person(msg.url, "disponent@leitstelle.example", "sender"),
        await person(msg.url, "a1@leitstelle.example"),
        await person(msg.url, "a2@leitstelle.example"),
        await person(msg.url, "b1@leitstelle.example"),
        await person(msg.url, "admin@nachbar.example", "stranger"),
    ]
    admin, _, a1, a2, b1, _ = people
    created = await admin.client.create_alarm_list(
        "Rettungsdienst",
        [
            {"user_id": a1.user_id, "tier": 1},
            {"user_id": a2.user_id, "tier": 1},
            {"user_id": b1.user_id, "tier": 2},
            {"user_id": admin.user_id, "tier": 3, "role": "admin"},
        ],
        repeat_seconds=60,
        escalation_seconds=300,
    )
    team = Crew(*people, list_id=created["list_id"])
    try:
        yield team
    finally:
        for p in people:
            await p.close()


async def test_tenant_admins_manage_alarm_lists_and_nobody_else(crew: Crew) -> None:
    admin, user, stranger = crew.admin.client, crew.sender.client, crew.stranger.client
    shown = await admin.alarm_list(crew.list_id)
    assert [(m["tier"], m["role"]) for m in shown["members"]] == [
        (1, "member"),
        (1, "member"),
        (2, "member"),
        (3, "admin"),
    ]
    changed = await admin.update_alarm_list(crew.list_id, repeat_seconds=30, ack_needed=2)
    assert (changed["repeat_seconds"], changed["ack_needed"]) == (30, 2)
    moved = await admin.set_alarm_list_member(crew.list_id, crew.a2.user_id, tier=2)
    assert {m["user_id"]: m["tier"] for m in moved["members"]}[crew.a2.user_id] == 2
    await admin.remove_alarm_list_member(crew.list_id, crew.a2.user_id)
    assert crew.a2.user_id not in {
        m["user_id"] for m in (await admin.alarm_list(crew.list_id))["members"]
    }

    # A plain user sees the lists (to raise alarms), not their members, and changes nothing.
    listed = await user.alarm_lists()
    assert [row["name"] for row in listed] == ["Rettungsdienst"] and "members" not in listed[0]
    with pytest.raises(Forbidden):
        await user.create_alarm_list("Eigene Liste")
    with pytest.raises(Forbidden):
        await user.update_alarm_list(crew.list_id, repeat_seconds=5)
    with pytest.raises(Forbidden):
        await user.set_alarm_list_member(crew.list_id, crew.sender.user_id)
    # Another tenant's administrator does not even find the list, nor may add its users.
    with pytest.raises(NotFound):
        await stranger.alarm_list(crew.list_id)
    with pytest.raises(NotFound):
        await stranger.delete_alarm_list(crew.list_id)
    assert await stranger.alarm_lists() == []
    with pytest.raises(NotFound):
        await stranger.create_alarm_list("Fremd", [{"user_id": crew.a1.user_id}])
    with pytest.raises(NotFound):
        await stranger.alarm_list_devices(crew.list_id)
    # Bad input is refused with a clear error and changes nothing.
    with pytest.raises(BadRequest):
        await admin.create_alarm_list("Null", repeat_seconds=0)
    with pytest.raises(BadRequest):
        await admin.set_alarm_list_member(crew.list_id, crew.a1.user_id, tier=0)
    with pytest.raises(Conflict):
        await admin.create_alarm_list("Rettungsdienst")
    # The emergency flag moves: one emergency list per tenant.
    first = await admin.create_alarm_list("Notfall", emergency=True)
    await admin.update_alarm_list(crew.list_id, emergency=True)
    flags = {row["name"]: row["emergency"] for row in await admin.alarm_lists()}
    assert flags == {"Notfall": False, "Rettungsdienst": True}
    await admin.delete_alarm_list(first["list_id"])
    assert [row["name"] for row in await admin.alarm_lists()] == ["Rettungsdienst"]


async def test_an_alarm_reaches_the_first_tier_encrypted_and_answers_show_live(
    crew: Crew, msg: Harness
) -> None:
    for p in (crew.sender, crew.admin, crew.a1, crew.a2, crew.b1):
        await p.listen()
    raised = await crew.sender.alarms.raise_alarm(
        crew.list_id,
        "Verkehrsunfall A7, drei Verletzte",
        level="urgent",
        position=Position(53.55, 9.99, 12.0),
    )
    assert raised.state == "notifying" and not raised.duplicate
    aid = raised.alarm_id
    for p in (crew.a1, crew.a2):
        await p.until(lambda p: bool(p.received(aid)))
        (got,) = p.received(aid)
        assert (got.text, got.level, got.round, got.tier) == (
            "Verkehrsunfall A7, drei Verletzte",
            "urgent",
            1,
            1,
        )
        assert got.position == Position(53.55, 9.99, 12.0)
        assert got.sender_user_id == crew.sender.user_id
        assert aid in p.alarms.active  # highlighted until answered
    # Delivery is reported by each device on its own, and the sender sees it live.
    await crew.sender.until(
        lambda p: (
            p.saw(aid, "delivered", user_id=crew.a1.user_id)
            and p.saw(aid, "delivered", user_id=crew.a2.user_id)
        )
    )
    await crew.a1.alarms.seen(aid)
    await crew.a2.alarms.decline(aid, "selbst im Einsatz")
    for watcher in (crew.sender, crew.admin):  # the list's admin sees what the sender sees
        await watcher.until(
            lambda p: (
                p.saw(aid, "seen", user_id=crew.a1.user_id)
                and p.saw(aid, "declined", user_id=crew.a2.user_id, reason="selbst im Einsatz")
            )
        )
    assert aid not in crew.a2.alarms.active
    await crew.a1.alarms.acknowledge(aid)
    await crew.sender.until(lambda p: p.saw(aid, "state", state="closed"))
    assert crew.sender.saw(aid, "acknowledged", user_id=crew.a1.user_id)
    assert crew.sender.saw(aid, "state", state="acknowledged")
    await crew.a1.until(lambda p: aid not in p.alarms.active)

    status = await crew.sender.alarms.status(aid)
    states = [e["detail"]["to"] for e in status["log"] if e["kind"] == "state"]
    assert states == ["notifying", "acknowledged", "closed"]
    assert [e["kind"] for e in status["log"]][:2] == ["raised", "notified"]
    answers = {r["user_id"]: r for r in status["recipients"]}
    assert answers[crew.a1.user_id]["acknowledged_at"] and answers[crew.a1.user_id]["seen_at"]
    assert answers[crew.a2.user_id]["decline_reason"] == "selbst im Einsatz"
    assert answers[crew.b1.user_id]["rounds"] == 0  # tier 2 was never needed
    assert crew.b1.received(aid) == []

    with pytest.raises(Conflict):  # answered once
        await crew.a2.alarms.acknowledge(aid)
    with pytest.raises(NotFound):  # only alarmed recipients answer
        await crew.b1.alarms.acknowledge(aid)
    with pytest.raises(NotFound):  # the status is for the sender and admins
        await crew.a1.alarms.status(aid)
    with pytest.raises(NotFound):
        await crew.stranger.alarms.status(aid)

    # The server holds ciphertext only: no text in the alarm's rows.
    async with msg.sessions() as db:
        alarm = await db.scalar(select(Alarm).where(Alarm.id == aid))
        keys = list(await db.scalars(select(AlarmKey).where(AlarmKey.alarm_id == aid)))
        log = list(await db.scalars(select(AlarmLog).where(AlarmLog.alarm_id == aid)))
    assert alarm is not None and b"Verkehrsunfall" not in alarm.ciphertext
    assert len(keys) == 4 and all(b"Verkehrsunfall" not in k.ciphertext for k in keys)
    assert all("Verkehrsunfall" not in str(e.detail) for e in log)


async def test_unanswered_recipients_are_alarmed_again_and_the_next_tier_after_the_timeout(
    crew: Crew, msg: Harness
) -> None:
    for p in (crew.sender, crew.a1, crew.a2, crew.b1):
        await p.listen()
    aid = (await crew.sender.alarms.raise_alarm(crew.list_id, "Zweiter Alarm")).alarm_id
    await crew.a1.until(lambda p: p.has_round(aid, 1))
    await crew.a2.until(lambda p: p.has_round(aid, 1))
    await crew.a2.alarms.decline(aid, "krank")
    msg.clock.shift(seconds=61)
    await crew.a1.until(lambda p: p.has_round(aid, 2))  # re-alarmed: not answered
    msg.clock.shift(seconds=61)
    await crew.a1.until(lambda p: p.has_round(aid, 3))
    assert not crew.a2.has_round(aid, 2)  # declined: not alarmed again
    assert crew.b1.received(aid) == []
    msg.clock.shift(seconds=300 - 122 + 1)
    await crew.b1.until(lambda p: p.has_round(aid, 1))  # escalated to tier 2
    await crew.sender.until(lambda p: p.saw(aid, "escalated", tier=2))
    (got,) = crew.b1.received(aid)
    assert (got.text, got.tier) == ("Zweiter Alarm", 2)
    # Tier 3 next, then nobody is left: the alarm is exhausted and stays open for the sender.
    msg.clock.shift(seconds=301)
    await crew.admin.listen()
    await crew.admin.until(lambda p: bool(p.received(aid)))
    msg.clock.shift(seconds=301)
    await crew.sender.until(lambda p: p.saw(aid, "state", state="exhausted"))
    await crew.sender.alarms.end(aid)
    await crew.b1.until(lambda p: p.saw(aid, "state", state="closed"))
    assert aid not in crew.b1.alarms.active
    status = await crew.sender.alarms.status(aid)
    kinds = [e["kind"] for e in status["log"]]
    assert kinds.count("escalated") == 2 and kinds.count("notified") == 1
    states = [e["detail"]["to"] for e in status["log"] if e["kind"] == "state"]
    assert states == ["notifying", "exhausted", "closed"]
    with pytest.raises(Conflict):
        await crew.sender.alarms.end(aid)


async def test_a_device_that_was_offline_gets_open_alarms_when_it_connects(
    crew: Crew, msg: Harness
) -> None:
    # A second device of a1 that nobody approved (not cross-signed) gets no key.
    unapproved = await person(msg.url, "a1@leitstelle.example", "a1-phone")
    try:
        aid = (await crew.sender.alarms.raise_alarm(crew.list_id, "Evakuierung")).alarm_id
        await crew.a1.listen()  # replayed before `synced`
        assert [r.text for r in crew.a1.received(aid)] == ["Evakuierung"]
        assert [a["alarm_id"] for a in await crew.a1.client.open_alarms()] == [aid]
        assert await unapproved.client.open_alarms() == []
    finally:
        await unapproved.close()
    await crew.a1.alarms.acknowledge(aid)
    assert await crew.a2.client.open_alarms() == []  # closed by a1's acknowledgement
    # A repeated raise with the same transaction id raises nothing new.
    first = await crew.sender.alarms.raise_alarm(crew.list_id, "Einmal", txn_id="txn-1")
    again = await crew.sender.alarms.raise_alarm(crew.list_id, "Einmal", txn_id="txn-1")
    assert again.alarm_id == first.alarm_id and again.duplicate
    # A list whose members have no verified device cannot be alarmed: said before any upload.
    nobody = await msg.user("ohne-geraet@leitstelle.example")
    empty = await crew.admin.client.create_alarm_list("Leer", [{"user_id": nobody}])
    used_before = (await crew.sender.client.quota())["used"]
    with pytest.raises(MessengerError, match="no member of this alarm list"):
        await crew.sender.alarms.raise_alarm(empty["list_id"], "ins Leere", attachment=b"x")
    assert (await crew.sender.client.quota())["used"] == used_before
    # Only users of the list's tenant may raise to it; unknown devices are refused.
    with pytest.raises(NotFound):
        await crew.stranger.alarms.raise_alarm(crew.list_id, "von außen")
    with pytest.raises(ValueError):
        await crew.sender.alarms.raise_alarm(crew.list_id, "x", level="weltuntergang")
    device = crew.a1.session.device_id
    with pytest.raises(BadRequest):  # the server refuses an unknown level as well
        await crew.sender.client.raise_alarm_raw(
            crew.list_id, "weltuntergang", b"x", [Envelope(crew.a1.user_id, device, b"k")]
        )
    with pytest.raises(NotFound):  # a device that is not a member's
        await crew.sender.client.raise_alarm_raw(
            crew.list_id, "info", b"x", [Envelope(crew.sender.user_id, "nope", b"k")]
        )


async def test_panic_sends_position_and_voice_to_the_emergency_list_past_a_full_quota(
    crew: Crew, msg: Harness
) -> None:
    admin = crew.admin.client
    with pytest.raises(NotFound):  # no emergency list yet
        await crew.sender.alarms.panic(Position(1, 1), b"OggS", duration_ms=1000)
    await admin.create_alarm_list(
        "Notruf",
        [{"user_id": crew.a1.user_id}, {"user_id": crew.admin.user_id, "role": "admin"}],
        emergency=True,
    )
    # The sender shares no conversation with anyone, and its storage quota is used up.
    assert await crew.sender.client.conversations() == []
    async with msg.sessions() as db:
        await db.execute(update(User).where(User.id == crew.sender.user_id).values(quota_bytes=0))
        await db.commit()
    with pytest.raises(QuotaExceeded):  # an ordinary alarm with an attachment does not fit
        await crew.sender.alarms.raise_alarm(crew.list_id, "Foto", attachment=b"\xff" * 100)
    for p in (crew.a1, crew.admin):
        await p.listen()
    voice = b"OggS\x00\x02" + bytes(range(256)) * 40
    raised = await crew.sender.alarms.panic(
        Position(48.137, 11.575, 5.0), voice, duration_ms=4200, text="Hilfe, Tiefgarage"
    )
    await crew.a1.until(lambda p: bool(p.received(raised.alarm_id)))
    (got,) = crew.a1.received(raised.alarm_id)
    assert (got.level, got.text, got.position) == (
        "panic",
        "Hilfe, Tiefgarage",
        Position(48.137, 11.575, 5.0),
    )
    assert got.attachment is not None
    assert (got.attachment.mime, got.attachment.duration_ms) == ("audio/ogg", 4200)
    assert await crew.a1.alarms.fetch_attachment(got.attachment) == voice
    # The list's admin watches the panic alarm live and may fetch the voice message too.
    await crew.admin.until(lambda p: p.saw(raised.alarm_id, "delivered", user_id=crew.a1.user_id))
    assert await crew.admin.alarms.fetch_attachment(got.attachment) == voice
    # Nobody else gets the attachment, and the blob store holds ciphertext only.
    for outsider in (crew.b1, crew.stranger):
        with pytest.raises(NotFound):
            await outsider.client.download_alarm_attachment(got.attachment.attachment_id)
    blobs = [f.read_bytes() for f in (msg.settings.blob_dir).rglob("*") if f.is_file()]
    assert blobs and all(voice[6:200] not in blob for blob in blobs)
    # A wav recording works as well; other formats are refused before anything is sent.
    wav = await crew.sender.alarms.panic(
        Position(0, 0), b"RIFF....WAVE", duration_ms=900, mime="audio/wav"
    )
    await crew.a1.until(lambda p: bool(p.received(wav.alarm_id)))
    with pytest.raises(ValueError):
        await crew.sender.alarms.panic(Position(0, 0), b"ID3", duration_ms=900, mime="audio/mpeg")
    with pytest.raises(ValueError):
        await crew.sender.alarms.panic(Position(0, 0), b"OggS", duration_ms=0)
    with pytest.raises(ValueError):
        Position(91, 0)


async def test_closed_alarms_leave_with_the_retention_and_give_their_bytes_back(
    crew: Crew, msg: Harness
) -> None:
    from messenger.server.blobs import BlobStore
    from messenger.server.retention import run_purge

    open_one = await crew.sender.alarms.raise_alarm(crew.list_id, "bleibt offen")
    closed = await crew.sender.alarms.raise_alarm(
        crew.list_id, "mit Foto", attachment=b"\x89PNG" * 50, mime="image/png"
    )
    await crew.sender.alarms.end(closed.alarm_id)
    used = (await crew.sender.client.quota())["used"]
    assert used > 0
    blobs = BlobStore(msg.settings.blob_dir)
    async with msg.sessions() as db:
        await db.execute(update(Tenant).values(retention_days=1))
        await db.commit()
    msg.clock.shift(days=2)  # past the retention
    result = await run_purge(msg.sessions, blobs, msg.clock())
    assert result.alarms == 1 and len(result.attachment_ids) == 1
    assert not blobs.path(result.attachment_ids[0]).exists()
    with pytest.raises(NotFound):
        await crew.sender.alarms.status(closed.alarm_id)
    assert (await crew.sender.alarms.status(open_one.alarm_id))["state"] == "notifying"
    assert 0 < (await crew.sender.client.quota())["used"] < used
