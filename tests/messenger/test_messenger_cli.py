"""`medbridge messenger` commands against the server's own database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from messenger_harness import Harness, Inbox, next_of

from messenger.client import NotFound, Unauthenticated
from messenger.server.config import metadata_key_path

REPO = Path(__file__).resolve().parents[2]


def cli(msg: Harness, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
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
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def out(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(result.stdout)


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_admin_sets_up_tenants_users_and_groups(msg: Harness, tmp_path: Path) -> None:
    kreis = out(cli(msg, "admin", "tenant", "create", "Kreis", "--domain", "kreis.example"))
    cli(msg, "admin", "domain", "add", "Kreis", "kreis-intern.example")
    refused = cli(msg, "admin", "domain", "add", "Kreis", "kreis.example", ok=False)
    assert refused.returncode == 1 and "belongs to a tenant already" in refused.stderr
    listed = out(cli(msg, "admin", "tenant", "list"))
    assert listed[0]["domains"] == ["kreis-intern.example", "kreis.example"]
    assert listed[0]["tenant_id"] == kreis["tenant_id"]

    invited = out(
        cli(msg, "admin", "user", "invite", "anna@kreis.example", "--role", "tenant_admin")
    )
    anna = msg.client()
    await anna.register(invited["invite_token"], "anna's password", phone="+49 1")
    assert (await anna.me())["role"] == "tenant_admin"
    with pytest.raises(NotFound):  # an invitation works once
        await msg.client().register(invited["invite_token"], "another password")

    roster = tmp_path / "staff.csv"
    roster.write_text(
        "email,display_name\nbert@kreis.example,Bert\ncleo@kreis-intern.example,Cleo\n"
    )
    imported = out(cli(msg, "admin", "user", "import", str(roster)))
    assert [u["email"] for u in imported] == ["bert@kreis.example", "cleo@kreis-intern.example"]
    bad = tmp_path / "bad.csv"
    bad.write_text("email\ndora@kreis.example\nnobody@elsewhere.example\n")
    failed = cli(msg, "admin", "user", "import", str(bad), ok=False)
    assert "line 3" in failed.stderr
    assert [u["email"] for u in await anna.directory("dora")] == []  # all or none

    bert = msg.client()
    await bert.register(imported[0]["invite_token"], "bert's password")
    await bert.register_device("b", b"s" * 32, b"x" * 32, b"sig")
    group = out(
        cli(
            msg,
            "admin",
            "group",
            "create",
            "Kreis",
            "Leitstelle",
            "--member",
            "bert@kreis.example",
            "--admin",
            "anna@kreis.example",
        )
    )
    assert group["members"] == 2
    cli(msg, "admin", "group", "add", group["group_id"], "cleo@kreis-intern.example")
    members = (await anna.conversation(group["group_id"]))["members"]
    assert len(members) == 3
    async with bert.events() as stream:
        await next_of(stream, "synced")
    # Without Redis the CLI's change reaches a device at its next check or (re)connect.
    cli(msg, "admin", "group", "remove", group["group_id"], "bert@kreis.example")
    async with bert.events() as stream:
        removal = await next_of(stream, "membership")
    assert (removal["action"], removal["user_id"]) == ("removed", bert.user_id)

    cli(msg, "admin", "user", "disable", "bert@kreis.example")
    with pytest.raises(Unauthenticated):
        await bert.me()


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_policy_set_opens_a_partner_pair_only_from_both_sides(msg: Harness) -> None:
    cli(msg, "admin", "tenant", "create", "Kreis", "--domain", "kreis.example")
    cli(msg, "admin", "tenant", "create", "Klinik", "--domain", "klinik.example")
    anna = await msg.member("anna@kreis.example")
    await msg.user("kurt@klinik.example")
    one = out(
        cli(
            msg,
            "admin",
            "policy",
            "set",
            "Kreis",
            "--allow-partner",
            "Klinik",
            "--retention-days",
            "7",
        )
    )
    assert one["active_partners"] == [] and one["retention_days"] == 7
    assert await anna.directory("kurt") == []
    both = out(cli(msg, "admin", "policy", "set", "Klinik", "--allow-partner", "Kreis"))
    assert len(both["active_partners"]) == 1
    assert [u["email"] for u in await anna.directory("kurt")] == ["kurt@klinik.example"]
    bad = cli(msg, "admin", "policy", "set", "Kreis", "--retention-days", "0", ok=False)
    assert "between 1 and 365 days" in bad.stderr


async def test_purge_command_applies_retention(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    anna = await msg.member("anna@kreis.example")
    cid = (await anna.create_conversation("group", []))["conversation_id"]
    await anna.send_raw(cid, b"x")
    await anna.upload(cid, b"blob")
    kept = out(cli(msg, "purge", "--blob-dir", str(msg.settings.blob_dir)))
    assert kept["events"] == 0
    import datetime as dt

    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=31)).isoformat()
    refused = cli(msg, "purge", "--blob-dir", str(msg.settings.blob_dir), "--at", later, ok=False)
    assert refused.returncode != 0 and "--allow-future" in refused.stderr
    assert len(await anna.history(cid)) == 2
    gone = out(
        cli(msg, "purge", "--blob-dir", str(msg.settings.blob_dir), "--at", later, "--allow-future")
    )
    assert gone["events"] == 2 and gone["attachments"] == 1
    assert await anna.history(cid) == []
    assert (await anna.quota())["used"] == 0


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_serve_refuses_a_newer_schema(msg: Harness) -> None:
    from sqlalchemy import text

    async with msg.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    refused = cli(msg, "serve", "--port", "1", ok=False)
    assert refused.returncode == 1
    assert "revision 9999" in refused.stderr


def test_cli_without_a_database_uses_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "messenger", "admin", "tenant", "list"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    assert (tmp_path / "xdg_data_home" / "medbridge" / "messenger" / "messenger.db").exists()


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_invitation_is_mailed_and_redeemable(msg: Harness) -> None:
    import re

    from aiosmtpd.controller import Controller
    from messenger_harness import free_port

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        await msg.tenant("Kreis", "kreis.example")
        smtp = ["--smtp", f"smtp://127.0.0.1:{port}", "--smtp-from", "chat@kreis.example"]
        result = out(cli(msg, "admin", "user", "invite", "anna@kreis.example", *smtp))
        assert "invite_token" not in result and result["mailed"] == "true"
    finally:
        controller.stop()
    (mail,) = inbox.messages
    assert (mail["To"], mail["From"]) == ("anna@kreis.example", "chat@kreis.example")
    token = re.search(r"^ {4}(\S+)\s*$", mail.get_content(), re.M)
    assert token is not None
    anna = msg.client()
    await anna.register(token.group(1), "anna's password")
    assert (await anna.me())["email"] == "anna@kreis.example"


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_invitation_that_cannot_be_mailed_invites_nobody(msg: Harness) -> None:
    from messenger_harness import free_port

    await msg.tenant("Kreis", "kreis.example")
    refused = cli(
        msg,
        "admin",
        "user",
        "invite",
        "anna@kreis.example",
        "--smtp",
        f"smtp://127.0.0.1:{free_port()}",
        ok=False,
    )
    assert refused.returncode == 1 and "nobody was invited" in refused.stderr
    again = out(cli(msg, "admin", "user", "invite", "anna@kreis.example"))
    assert again["email"] == "anna@kreis.example"


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_serve_logs_json_lines_without_secrets(msg: Harness, tmp_path: Path) -> None:
    import httpx
    from messenger_harness import free_port, wait_ready

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bridge.cli",
            "messenger",
            "--db",
            msg.database.url,
            "serve",
            "--port",
            str(port),
            "--blob-dir",
            str(tmp_path / "blobs"),
            "--log-json",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        await wait_ready(f"http://127.0.0.1:{port}", proc)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            refused = await http.post(
                "/v1/login", json={"email": "x@kreis.example", "password": "hunter2-secret"}
            )
            assert refused.status_code == 401
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=20)
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    assert any(entry["msg"].startswith("messenger server ready") for entry in lines)
    assert any(entry["msg"] == "login failed" for entry in lines)
    assert "hunter2-secret" not in stderr


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_serve_refuses_a_port_out_of_range(msg: Harness) -> None:
    refused = cli(msg, "serve", "--port", "99999", ok=False)
    assert refused.returncode == 2
    assert "65535" in refused.stderr and "Traceback" not in refused.stderr
