"""Four-eyes audit against a real server (uvicorn on loopback; SQLite, and PostgreSQL when
MEDBRIDGE_TEST_PG is set).

A tenant admin publishes an audit key split 2-of-3 among auditors; members' clients pin it,
show the banner and seal every sender key to it. Two auditors together export a conversation
range to the requester, once; one auditor alone, or the server with everything it stores,
opens nothing. Every step is in the hash-chained audit log, which `medbridge messenger audit
verify` checks.
"""

from __future__ import annotations

import base64
import datetime as dt
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import nacl.public
import pytest
from messenger_harness import Harness, next_of
from sqlalchemy import func, select, text, update

from messenger.audit import log, service
from messenger.client import BadRequest, Conflict, Forbidden, Gone, MessengerClient, NotFound
from messenger.client.audit import (
    AuditKeyChanged,
    TenantAudit,
    approve_request,
    download_export,
    publish_audit_key,
    request_audit,
)
from messenger.client.e2e import E2ESession
from messenger.crypto import (
    AuditShare,
    CryptoError,
    DeviceKeys,
    IdentityError,
    MalformedError,
    combine_partials,
    open_sealed,
    partial_decrypt,
)
from messenger.server.config import metadata_key_path
from messenger.store import repo
from messenger.store.models import AuditLogEntry, AuditSealRow, Base
from messenger.store.models import AuditShare as ShareRow

REPO = Path(__file__).resolve().parents[2]
CANARY = "Befund Zimmer 7: Verdacht auf Sepsis"
VOICE = b"OggS voice canary 0815" * 40


@dataclass
class Person:
    client: MessengerClient
    session: E2ESession

    @property
    def user_id(self) -> str:
        return self.session.user_id


async def person(msg: Harness, email: str, role: str = "user") -> Person:
    await msg.user(email, role=role)
    client = await msg.login(email, device=False)
    assert client.user_id is not None
    session = E2ESession.for_client(client, DeviceKeys.generate(client.user_id, uuid.uuid4().hex))
    await session.register_device(email.partition("@")[0])
    return Person(client, session)


@dataclass
class Office:
    admin: Person
    auditors: list[Person]
    alice: Person
    bob: Person
    cid: str


@pytest.fixture
async def office(msg: Harness) -> Office:
    await msg.tenant("Kreis", "kreis.example")
    admin = await person(msg, "leitung@kreis.example", "tenant_admin")
    auditors = [await person(msg, f"pruefer{i}@kreis.example") for i in (1, 2, 3)]
    alice = await person(msg, "alice@kreis.example")
    bob = await person(msg, "bob@kreis.example")
    await publish_audit_key(admin.client, admin.session, [a.user_id for a in auditors])
    await admin.client.set_audit_enabled(True)
    conv = await alice.client.create_conversation("group", [bob.user_id], name="Station Nord")
    cid = str(conv["conversation_id"])
    for member in (alice, bob):
        audit = TenantAudit(member.client, member.session)
        assert (await audit.refresh()).banner
        member.session.audit_source = audit
    await alice.session.send_text(cid, CANARY)
    await alice.session.send_attachment(cid, VOICE, name="memo.ogg", mime="audio/ogg", body="Ton")
    await bob.session.send_text(cid, "Verstanden")
    return Office(admin, auditors, alice, bob, cid)


def hour_around() -> tuple[dt.datetime, dt.datetime]:
    now = dt.datetime.now(dt.UTC)
    return now - dt.timedelta(hours=1), now + dt.timedelta(hours=1)


async def test_two_auditors_together_export_the_range_once(msg: Harness, office: Office) -> None:
    start, end = hour_around()
    request = await request_audit(
        office.admin.client, office.admin.session, office.cid, start, end, "Beschwerde 2026-17"
    )
    rid = request["request_id"]
    first, second, _ = office.auditors
    await approve_request(first.client, first.session, rid)
    with pytest.raises(Conflict):  # one auditor twice is still one auditor
        await approve_request(first.client, first.session, rid)
    with pytest.raises(Conflict):  # not ready after one approval
        await office.admin.client.audit_export(rid)
    listed = await office.admin.client.audit_requests()
    assert [(r["request_id"], r["approved_by"]) for r in listed] == [(rid, [first.user_id])]

    done = await approve_request(second.client, second.session, rid)
    assert done["status"] == "ready"
    with pytest.raises(NotFound):  # members do not even see the request
        await office.alice.client.audit_export(rid)
    with pytest.raises(Forbidden):  # only the requester downloads, not an auditor
        await office.auditors[2].client.audit_export(rid)
    export = await download_export(office.admin.client, office.admin.session, rid)
    assert [m.body for m in export.messages] == [CANARY, "Ton", "Verstanden"]
    assert [m.sender_user_id for m in export.messages] == [office.alice.user_id] * 2 + [
        office.bob.user_id
    ]
    memo = export.messages[1]
    assert (memo.attachment_name, memo.attachment_mime) == ("memo.ogg", "audio/ogg")
    assert export.attachments[str(memo.attachment_id)] == VOICE
    assert export.undecryptable == []
    with pytest.raises(Gone):
        await office.admin.client.audit_export(rid)

    actions = [e["action"] for e in reversed(await office.admin.client.audit_log())]
    assert actions == [
        "key_published",
        "enabled",
        "request_created",
        "request_approved",
        "request_approved",
        "export_ready",
        "export_downloaded",
    ]
    async with msg.sessions() as db:
        assert (await log.verify(db)).ok


async def test_messages_outside_the_range_stay_out(msg: Harness, office: Office) -> None:
    msg.clock.shift(hours=3)
    await office.alice.session.send_text(office.cid, "später")
    start, end = hour_around()  # the range ends before the clock's "later"
    rid = (
        await request_audit(
            office.auditors[2].client, office.auditors[2].session, office.cid, start, end, "Prüfung"
        )
    )["request_id"]
    for auditor in office.auditors[:2]:
        await approve_request(auditor.client, auditor.session, rid)
    export = await download_export(office.auditors[2].client, office.auditors[2].session, rid)
    assert "später" not in [m.body for m in export.messages]
    assert CANARY in [m.body for m in export.messages]


async def test_one_auditor_alone_cannot_decrypt_anything(msg: Harness, office: Office) -> None:
    start, end = hour_around()
    first, second, _ = office.auditors
    rid = (await request_audit(first.client, first.session, office.cid, start, end, "allein"))[
        "request_id"
    ]
    await approve_request(first.client, first.session, rid)
    with pytest.raises(Conflict):
        await first.client.audit_export(rid)
    # What the lone auditor holds: its own share and the seals of the request.
    detail = await first.client.audit_request(rid)
    share = AuditShare.from_bytes(_open_share(first, detail))
    assert detail["seals"], "the senders deposited their seals"
    for seal in detail["seals"]:
        sealed = base64.b64decode(seal["sealed"])
        own = partial_decrypt(share, sealed)
        with pytest.raises(CryptoError):
            open_sealed(sealed, combine_partials([own]))
        # nor with a made-up second share
        forged = partial_decrypt(AuditShare(x=share.x % 3 + 1, y=12345), sealed)
        with pytest.raises(CryptoError):
            open_sealed(sealed, combine_partials([own, forged]))
    # the second auditor's answer is what it takes
    await approve_request(second.client, second.session, rid)
    export = await download_export(first.client, first.session, rid)
    assert CANARY in [m.body for m in export.messages]


def _open_share(p: Person, detail: dict[str, object]) -> bytes:
    share = detail["share"]
    assert isinstance(share, dict)
    box = nacl.public.SealedBox(p.session.keys.exchange_private)
    return bytes(box.decrypt(base64.b64decode(share["sealed_share"])))


async def _dump(msg: Harness) -> bytes:
    """Every row of every table, as the database hands it out (a dump)."""
    out = bytearray()
    async with msg.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in await conn.execute(text(f"SELECT * FROM {table.name}")):
                for value in row:
                    out += value if isinstance(value, bytes) else str(value).encode()
                    out += b"\x00"
    return bytes(out)


async def test_the_server_alone_cannot_decrypt(msg: Harness, office: Office) -> None:
    start, end = hour_around()
    rid = (
        await request_audit(office.admin.client, office.admin.session, office.cid, start, end, "x")
    )["request_id"]
    await approve_request(office.auditors[0].client, office.auditors[0].session, rid)
    dump = await _dump(msg)
    blobs = b"".join(p.read_bytes() for p in msg.settings.blob_dir.rglob("*") if p.is_file())
    assert CANARY.encode() not in dump and VOICE not in blobs and VOICE not in dump
    async with msg.sessions() as db:
        shares = list(await db.scalars(select(ShareRow)))
        seals = list(await db.scalars(select(AuditSealRow)))
    assert len(shares) == 3 and seals
    # The stored shares are sealed to the auditors' devices: no share can be read from them,
    # so no pair of them opens a seal.
    for row in shares:
        with pytest.raises(MalformedError):
            AuditShare.from_bytes(row.sealed_share)


async def test_members_pin_the_audit_key_and_refuse_a_new_one_until_accepted(
    msg: Harness, office: Office
) -> None:
    alice = office.alice
    audit = alice.session.audit_source
    assert isinstance(audit, TenantAudit)
    pinned = audit.pinned
    auditors = [a.user_id for a in office.auditors[:2]]
    await publish_audit_key(office.admin.client, office.admin.session, auditors)
    status = await audit.refresh()
    assert status.changed and status.public_key != pinned
    alice.session.rotate(office.cid)
    with pytest.raises(AuditKeyChanged):
        await alice.session.send_text(office.cid, "gesperrt")
    audit.accept_new_key()
    await alice.session.send_text(office.cid, "wieder frei")
    async with msg.sessions() as db:
        keys = {s.audit_key_id for s in await db.scalars(select(AuditSealRow))}
    assert len(keys) == 2  # seals under the old and the new key

    # Switched off, the banner goes and new sender keys are no longer sealed.
    await office.admin.client.set_audit_enabled(False)
    assert not (await TenantAudit(alice.client, alice.session).refresh()).banner


async def test_only_tenant_admins_publish_and_signatures_must_hold(office: Office) -> None:
    with pytest.raises(Forbidden):
        await publish_audit_key(
            office.alice.client, office.alice.session, [a.user_id for a in office.auditors]
        )
    state = await office.admin.client.audit_state()
    body = {
        "public_key": state["key"]["public_key"],
        "epoch": 2,
        "threshold": 2,
        "admin_device_id": office.admin.session.device_id,
        "signature": state["key"]["signature"],  # signed for epoch 1
        "shares": [
            {
                "auditor_user_id": a.user_id,
                "auditor_device_id": a.session.device_id,
                "x": i,
                "sealed_share": "AAAA",
            }
            for i, a in enumerate(office.auditors[:2], start=1)
        ],
    }
    with pytest.raises(BadRequest):
        await office.admin.client.publish_audit_key(body)
    with pytest.raises(Forbidden):
        await office.alice.client.set_audit_enabled(False)
    with pytest.raises(Forbidden):
        await office.alice.client.audit_requests()


def cli(msg: Harness, *args: str) -> subprocess.CompletedProcess[str]:
    db = ["--db", msg.database.url, "--metadata-keys", str(metadata_key_path(msg.settings))]
    if msg.database.schema:
        db += ["--schema", msg.database.schema]
    result = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "messenger", *db, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


async def test_audit_verify_names_an_edited_row(msg: Harness, office: Office) -> None:
    start, end = hour_around()
    await request_audit(office.admin.client, office.admin.session, office.cid, start, end, "y")
    ok = cli(msg, "audit", "verify")
    assert ok.returncode == 0 and "intact: 3 rows" in ok.stdout
    async with msg.sessions() as db:
        await db.execute(
            update(AuditLogEntry).where(AuditLogEntry.seq == 2).values(action="disabled")
        )
        await db.commit()
    broken = cli(msg, "audit", "verify")
    assert broken.returncode == 1
    assert "row 2: content does not match its hash" in broken.stderr
    assert "row 3" not in broken.stderr  # the rows after it still link to it as stored
    async with msg.sessions() as db:
        await db.execute(text("DELETE FROM audit_log WHERE seq = 2"))
        await db.commit()
    gone = cli(msg, "audit", "verify")
    assert gone.returncode == 1 and "row 3" in gone.stderr
    listed = cli(msg, "audit", "requests", "Kreis")
    assert listed.returncode == 0 and '"reason": "y"' in listed.stdout


async def test_members_see_audit_switched_on_and_off_live(msg: Harness, office: Office) -> None:
    bob = office.bob
    audit = bob.session.audit_source
    assert isinstance(audit, TenantAudit)
    async with bob.client.events() as stream:
        await next_of(stream, "synced")
        await office.admin.client.set_audit_enabled(False)
        event = await next_of(stream, "audit")
        assert event["enabled"] is False
        status = await audit.handle_event(event)
        assert status is not None and not status.banner
        assert bob.session.audit_key is None
        await office.admin.client.set_audit_enabled(True)
        status = await audit.handle_event(await next_of(stream, "audit"))
        assert status is not None and status.banner and bob.session.audit_key == audit.pinned


async def test_an_auditor_rejects_and_nothing_is_exported(msg: Harness, office: Office) -> None:
    start, end = hour_around()
    rid = (
        await request_audit(office.admin.client, office.admin.session, office.cid, start, end, "z")
    )["request_id"]
    first, second, _ = office.auditors
    await approve_request(first.client, first.session, rid)
    rejected = await second.client.reject_audit_request(rid, "kein Anlass")
    assert rejected["status"] == "rejected"
    with pytest.raises(Conflict):
        await approve_request(office.auditors[2].client, office.auditors[2].session, rid)
    with pytest.raises(Conflict):
        await office.admin.client.audit_export(rid)
    actions = [e["action"] for e in await office.admin.client.audit_log()]
    assert actions[0] == "request_rejected"
    async with msg.sessions() as db:
        approvals = await service.approvals_of(db, rid)
    assert [a.partials for a in approvals] == [None]  # the lone answer is dropped


async def test_retention_drops_seals_that_can_open_nothing_any_more(
    msg: Harness, office: Office
) -> None:
    async with msg.sessions() as db:
        assert await db.scalar(select(func.count()).select_from(AuditSealRow))
        kept = await repo.purge(db, msg.clock() + dt.timedelta(days=30))
        assert kept.audit_seals == 0  # within retention (30 days) plus a chain's 7 days
        gone = await repo.purge(db, msg.clock() + dt.timedelta(days=38))
        await db.commit()
    assert gone.audit_seals == 2  # alice's chain and bob's


async def test_a_key_signed_from_an_unverified_admin_device_is_refused(
    msg: Harness, office: Office
) -> None:
    # The admin's password on a new device: the device is not approved by the master key.
    client = await msg.login("leitung@kreis.example", device=False)
    assert client.user_id is not None
    second = E2ESession.for_client(client, DeviceKeys.generate(client.user_id, uuid.uuid4().hex))
    await second.register_device("unbekannt")
    await publish_audit_key(client, second, [a.user_id for a in office.auditors[:2]])
    with pytest.raises(IdentityError, match="not verified"):
        await TenantAudit(office.alice.client, office.alice.session).refresh()
