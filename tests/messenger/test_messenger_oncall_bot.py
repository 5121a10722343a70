"""The on-call rota bot against a real server (uvicorn on loopback): it answers "who is on call"
from its rota file end to end encrypted, and raises an alarm that reaches the person on call
(and not the one off duty); the rota file's mistakes are clear errors; the admin CLI manages
bots on the database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nacl.pwhash
import pytest
from alarm_people import Person, person
from messenger_harness import Harness

from messenger.bots.oncall import OnCallBot, Rota, RotaError
from messenger.client import MessengerClient
from messenger.client.bot import Bot
from messenger.client.e2e import DecryptedMessage
from messenger.server.config import metadata_key_path

REPO = Path(__file__).resolve().parents[2]
FAST_KEYS = (nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE, nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE)


def rota_text(now: dt.datetime) -> str:
    def iso(t: dt.datetime) -> str:
        return t.astimezone(dt.timezone(dt.timedelta(hours=1))).isoformat()

    return f"""
alarm_list = "Rufdienst Schulz"

[[shift]]
who = "schulz@klinik.example"
name = "Dr. Schulz"
start = {iso(now - dt.timedelta(hours=13))}
end = {iso(now - dt.timedelta(hours=1))}

[[shift]]
who = "Meier@klinik.example"
name = "Dr. Meier"
start = {iso(now - dt.timedelta(hours=1))}
end = {iso(now + dt.timedelta(hours=11))}
alarm_list = "Rufdienst Meier"
"""


@pytest.fixture
def server_options() -> dict[str, Any]:
    return {"alarm_interval": 0.05}


@pytest.fixture
async def ward(msg: Harness, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    await msg.tenant("Kreisklinik", "klinik.example")
    await msg.user("admin@klinik.example", role="tenant_admin")
    for name in ("anna", "meier", "schulz"):
        await msg.user(f"{name}@klinik.example")
    admin = await person(msg.url, "admin@klinik.example", "admin")
    people = {
        n: await person(msg.url, f"{n}@klinik.example", n) for n in ("anna", "meier", "schulz")
    }
    for name in ("meier", "schulz"):
        await admin.client.create_alarm_list(
            f"Rufdienst {name.capitalize()}", [{"user_id": people[name].user_id, "tier": 1}]
        )
    rota = tmp_path / "rota.toml"
    rota.write_text(rota_text(dt.datetime.now(dt.UTC)), encoding="utf-8")
    try:
        yield {"admin": admin, "rota": rota, **people}
    finally:
        for p in (admin, *people.values()):
            await p.close()


async def start_bot(
    msg: Harness, ward: dict[str, Any], tmp_path: Path, scopes: list[str]
) -> tuple[Bot, asyncio.Task[None], str]:
    admin: MessengerClient = ward["admin"].client
    created = await admin._json(
        "POST", "/v1/admin/bots", json_body={"name": "Rufdienst-Bot", "scopes": scopes}
    )
    bot = Bot(msg.url, created["token"], tmp_path / "bot", "pass", key_strength=FAST_KEYS)
    await bot.start()
    oncall = OnCallBot(bot, ward["rota"])
    task = asyncio.create_task(bot.run(oncall.on_message))
    conv = await ward["anna"].client.create_conversation(
        "group", [created["bot_id"]], name="Station 3"
    )
    return bot, task, str(conv["conversation_id"])


async def answer_from(anna: Person, bot_id: str, count: int) -> list[DecryptedMessage]:
    stream = anna.stream or anna.client.events()
    anna.stream = stream
    got: list[DecryptedMessage] = []
    while len(got) < count:
        for r in await anna.session.handle_event(await stream.next(20)):
            if isinstance(r, DecryptedMessage) and r.sender_user_id == bot_id:
                got.append(r)
    return got


async def test_bot_says_who_is_on_call_and_alarms_that_person(
    msg: Harness, ward: dict[str, Any], tmp_path: Path
) -> None:
    anna, meier = ward["anna"], ward["meier"]
    await meier.listen()
    bot, task, cid = await start_bot(msg, ward, tmp_path, ["read", "send", "alarm"])
    try:
        question = await anna.session.send_text(cid, "Wer hat Dienst?")
        [answer] = await answer_from(anna, bot.user_id, 1)
        assert answer.reply_to == question
        assert answer.body.startswith("On call now: Dr. Meier (meier@klinik.example) until ")
        assert "Schulz" not in answer.body

        await anna.session.send_text(cid, "alarm Patient in Zimmer 4 kollabiert")
        [confirmation] = await answer_from(anna, bot.user_id, 1)
        assert confirmation.body == "Alarm raised to Dr. Meier."
        await meier.until(lambda p: bool(p.received()))
        [alarm] = meier.received()
        assert alarm.level == "alarm" and alarm.sender_user_id == bot.user_id
        assert alarm.text.startswith("Patient in Zimmer 4 kollabiert (asked by ")
        # only the person on call is alarmed, not the one off duty
        status = await bot.client.alarm_status(alarm.alarm_id)
        assert [r["user_id"] for r in status["recipients"]] == [meier.user_id]

        await anna.session.send_text(cid, "hilfe")
        [usage] = await answer_from(anna, bot.user_id, 1)
        assert "who is on call" in usage.body
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await bot.aclose()


async def test_bot_without_the_alarm_scope_says_the_alarm_failed(
    msg: Harness, ward: dict[str, Any], tmp_path: Path
) -> None:
    anna = ward["anna"]
    bot, task, cid = await start_bot(msg, ward, tmp_path, ["read", "send"])
    try:
        await anna.session.send_text(cid, "/alarm Brand")
        [answer] = await answer_from(anna, bot.user_id, 1)
        assert answer.body.startswith("The alarm to Dr. Meier failed:")
        assert "alarm" in answer.body and "scope" in answer.body
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await bot.aclose()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[[shift]]\nwho = 'x@y'\nstart = 2026-01-01T08:00:00\nend = 2026-01-01T09:00:00Z",
            "offset",
        ),
        (
            "[[shift]]\nwho = 'x@y'\nstart = 2026-01-01T09:00:00Z\nend = 2026-01-01T08:00:00Z",
            "after",
        ),
        (
            "[[shift]]\nwho = 'niemand'\nstart = 2026-01-01T08:00:00Z\nend = 2026-01-01T09:00:00Z",
            "e-mail",
        ),
        ("shift = 3", "array"),
        ("[[shift]\n", "TOML"),
    ],
)
def test_rota_mistakes_are_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "rota.toml"
    path.write_text(text)
    with pytest.raises(RotaError, match=message):
        Rota.load(path)


def test_rota_picks_the_shift_running_at_a_time(tmp_path: Path) -> None:
    now = dt.datetime(2026, 12, 4, 12, tzinfo=dt.UTC)
    path = tmp_path / "rota.toml"
    path.write_text(rota_text(now))
    rota = Rota.load(path)
    assert [s.who for s in rota.on_call(now)] == ["meier@klinik.example"]
    assert [s.who for s in rota.on_call(now - dt.timedelta(hours=2))] == ["schulz@klinik.example"]
    assert rota.on_call(now + dt.timedelta(days=1)) == []


def cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "messenger", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    if ok:
        assert result.returncode == 0, result.stderr
    return result


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_admin_cli_manages_bots_and_checks_a_rota(msg: Harness, tmp_path: Path) -> None:
    await msg.tenant("Kreisklinik", "klinik.example")
    db = ["--db", msg.database.url, "--metadata-keys", str(metadata_key_path(msg.settings))]
    made = json.loads(
        cli(*db, "admin", "bot", "create", "Kreisklinik", "Rota", "--scope", "read").stdout
    )
    assert made["scopes"] == ["read"] and made["token"].startswith("mbb_")
    bot = MessengerClient(msg.url, retries=1)
    msg.clients.append(bot)
    bot.token = made["token"]
    assert (await bot.me())["user_id"] == made["bot_id"]
    listed = json.loads(cli(*db, "admin", "bot", "list", "Kreisklinik").stdout)
    assert [b["bot_id"] for b in listed] == [made["bot_id"]]
    refused = cli(*db, "admin", "bot", "create", "Kreisklinik", "X", "--scope", "all", ok=False)
    assert refused.returncode == 1 and "unknown scope" in refused.stderr
    new = json.loads(cli(*db, "admin", "bot", "token", "Kreisklinik", made["bot_id"]).stdout)
    bot.token = new["token"]
    assert (await bot.me())["user_id"] == made["bot_id"]
    assert (
        json.loads(cli(*db, "admin", "bot", "dead-letters", "Kreisklinik", made["bot_id"]).stdout)
        == []
    )

    rota = tmp_path / "rota.toml"
    rota.write_text(rota_text(dt.datetime.now(dt.UTC)))
    checked = json.loads(
        cli(
            "bot",
            "oncall",
            "--server",
            msg.url,
            "--rota",
            str(rota),
            "--state-dir",
            str(tmp_path),
            "--check",
        ).stdout
    )
    assert [s["who"] for s in checked["on_call"]] == ["meier@klinik.example"]
    rota.write_text("[[shift]]\nwho = 'x@y'\n")
    broken = cli(
        "bot",
        "oncall",
        "--server",
        msg.url,
        "--rota",
        str(rota),
        "--state-dir",
        str(tmp_path),
        ok=False,
    )
    assert broken.returncode == 1 and "shift 1" in broken.stderr
