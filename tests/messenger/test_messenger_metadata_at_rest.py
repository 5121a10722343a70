"""Names at rest: a dump of the database (SQLite file, PostgreSQL tables) shows no conversation
name, display name or audit reason; the server still lists and searches them; the key
rotation rewraps every name and the running server keeps reading and writing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from messenger_harness import Harness
from sqlalchemy import text

from messenger.server.app import open_state
from messenger.server.config import metadata_key_path
from messenger.store import repo, sealing
from messenger.store.engine import make_engine, sessionmaker
from messenger.store.models import Base

REPO = Path(__file__).resolve().parents[2]
NAMES = ("Intensivstation Nord", "Dr. Erika Musterfrau", "Bereitschaft Süd", "Kurt Wächter")


async def dump(msg: Harness) -> bytes:
    """Every row of every table as stored, plus the SQLite file itself (WAL included)."""
    out = bytearray()
    async with msg.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in await conn.execute(text(f"SELECT * FROM {table.name}")):
                out += repr(tuple(row)).encode("utf-8")
    if msg.database.schema is None:
        db_file = Path(msg.database.url.removeprefix("sqlite:///"))
        out += b"".join(p.read_bytes() for p in db_file.parent.glob(db_file.name + "*"))
    return bytes(out)


def assert_no_names(data: bytes) -> None:
    for name in NAMES:
        for encoded in (name.encode("utf-8"), name.encode("utf-16-le")):
            assert encoded not in data, f"{name!r} is readable in the dump"


async def seed(msg: Harness) -> tuple[str, str]:
    await msg.tenant("Kreis", "kreis.example")
    await msg.user("admin@kreis.example", role="tenant_admin")
    admin = await msg.login("admin@kreis.example")
    invited = await admin._json(
        "POST",
        "/v1/admin/invitations",
        json_body={"email": "erika@kreis.example", "display_name": "Dr. Erika Musterfrau"},
    )
    erika = msg.client()
    await erika.register(invited["invite_token"], "erikas password")
    kurt = await msg.member("kurt@kreis.example")
    async with msg.sessions() as db:  # a name written by an admin tool (sealed as well)
        user = await repo.user_by_email(db, "kurt@kreis.example")
        assert user is not None
        user.display_name = "Kurt Wächter"
        await db.commit()
    conv = await erika.create_conversation(
        "group", [str(kurt.user_id)], name="Intensivstation Nord"
    )
    await erika.create_conversation("group", [str(kurt.user_id)], name="Bereitschaft Süd")
    return str(erika.user_id), str(conv["conversation_id"])


async def test_a_dump_shows_no_names_and_the_server_still_uses_them(msg: Harness) -> None:
    erika_id, cid = await seed(msg)
    assert_no_names(await dump(msg))

    kurt = msg.clients[-1]
    names = {c["name"] for c in await kurt.conversations()}
    assert names == {"Intensivstation Nord", "Bereitschaft Süd"}
    assert (await kurt.conversation(cid))["name"] == "Intensivstation Nord"
    found = await kurt.directory("musterfrau")  # search by display name still works
    assert [(u["user_id"], u["display_name"]) for u in found] == [
        (erika_id, "Dr. Erika Musterfrau")
    ]
    assert [u["email"] for u in await kurt.directory("kreis.example")] == [
        "admin@kreis.example",
        "erika@kreis.example",
        "kurt@kreis.example",
    ]
    assert (await kurt.user(erika_id))["display_name"] == "Dr. Erika Musterfrau"


async def test_names_written_in_plain_text_are_sealed_at_the_next_start(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    plain = make_engine(msg.database.url, msg.database.schema)  # an engine without the key
    try:
        async with sessionmaker(plain)() as db:
            await repo.create_user(
                db, "kurt@kreis.example", msg.clock(), display_name="Kurt Wächter"
            )
            await db.commit()
    finally:
        await plain.dispose()
    assert b"Kurt W" in await dump(msg)
    state = await open_state(msg.settings)  # what a starting server does
    await state.engine.dispose()
    assert_no_names(await dump(msg))
    async with msg.sessions() as db:
        user = await repo.user_by_email(db, "kurt@kreis.example")
        assert user is not None and user.display_name == "Kurt Wächter"


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
    assert result.returncode == 0, result.stderr
    return result


async def stored_key_ids(msg: Harness) -> set[str]:
    async with msg.engine.connect() as conn:
        rows = await conn.execute(text("SELECT name FROM conversations"))
        return {str(r[0]).split(":")[1] for r in rows}


async def test_key_rotation_rewraps_every_name_and_the_server_follows(msg: Harness) -> None:
    _, cid = await seed(msg)
    path = metadata_key_path(msg.settings)
    old = sealing.load_keyring(path).current
    assert await stored_key_ids(msg) == {old}

    rotated = json.loads(cli(msg, "keys", "rotate").stdout)
    new = rotated["current_key"]
    assert new != old and rotated["rewrapped"] >= 5
    assert await stored_key_ids(msg) == {new}
    kurt = msg.clients[-1]
    assert (await kurt.conversation(cid))["name"] == "Intensivstation Nord"
    await kurt.create_conversation("group", [], name="Kurt allein")  # sealed under the new key
    assert await stored_key_ids(msg) == {new}

    retired = json.loads(cli(msg, "keys", "retire").stdout)
    assert retired["retired"] == [old]
    assert set(json.loads(path.read_text())["keys"]) == {new}
    # Everything opens with the file as it is now (what a restarted server reads).
    fresh = make_engine(msg.database.url, msg.database.schema)
    sealing.attach(fresh, sealing.load_keyring(path))
    try:
        async with sessionmaker(fresh)() as db:
            user = await repo.user_by_email(db, "erika@kreis.example")
            assert user is not None and user.display_name == "Dr. Erika Musterfrau"
            assert sorted(c.name for c, _ in await repo.conversations_of(db, user)) == [
                "Bereitschaft Süd",
                "Intensivstation Nord",
            ]
    finally:
        await fresh.dispose()
    assert_no_names(await dump(msg))
