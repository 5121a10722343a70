"""Mailbox commands against the lab: which mailbox and folder a command works in, and how a
wrong one is refused."""

from __future__ import annotations

import json

from tests.e2e.conftest import ASSISTENZ, CHEF, SACHBEARBEITUNG
from tests.e2e.test_cli_mailbox import as_user, cli, ok

__all__ = ["as_user"]


def test_mailbox_public_never_falls_back_to_the_own_mailbox(as_user) -> None:
    as_user(ASSISTENZ)
    own = json.loads(ok("folders", "tree", "--json"))
    public = json.loads(ok("folders", "tree", "--mailbox", "public", "--json"))
    assert public["mailbox"] == "public"
    assert public["tree"]["distinguished"] == "publicfoldersroot"
    assert public["tree"]["id"] != own["tree"]["id"]
    for args in (
        ("mail", "ls", "--mailbox", "public"),
        ("notes", "ls", "--mailbox", "public"),
        ("calendar", "day", "2026-11-23", "--mailbox", "public"),
        ("mail", "send", "--mailbox", "public", "--to", CHEF, "--subject", "x", "--body", "y"),
    ):
        refused = cli(*args)
        assert refused.returncode == 2, (args, refused.stdout)
        assert refused.stderr.count("\n") == 1 and "public folders" in refused.stderr
    listed = json.loads(ok("mail", "ls", "--mailbox", "public", "-f", "Verwaltung", "--json"))
    assert listed["folder"]["mailbox"] == "public"


def test_folder_path_may_start_with_a_well_known_name(as_user) -> None:
    as_user(ASSISTENZ)
    german = json.loads(ok("mail", "ls", "-m", CHEF, "-f", "Posteingang/Kreistag", "--json"))
    english = json.loads(ok("mail", "ls", "-m", CHEF, "-f", "inbox/Kreistag", "--json"))
    assert english["folder"]["id"] == german["folder"]["id"]
    assert english["folder"]["name"] == "Kreistag"
    missing = cli("mail", "ls", "-m", CHEF, "-f", "inbox/Gibtsnicht")
    assert missing.returncode == 5


def test_a_mailbox_that_is_no_address_gets_our_sentence(as_user) -> None:
    as_user(ASSISTENZ)
    bad = cli("mail", "ls", "--mailbox", "foo")
    assert bad.returncode == 2
    assert "primary_smtp_address" not in bad.stderr and "not an e-mail address" in bad.stderr


def test_mail_move_says_where_to(as_user) -> None:
    as_user(ASSISTENZ)
    first = json.loads(ok("mail", "ls", "-m", CHEF, "--limit", "1", "--json"))["items"][0]
    said = ok("mail", "move", first["id"], "inbox/Kreistag", "-m", CHEF)
    assert said.startswith(f"moved to Kreistag ({CHEF}), new id: ")
    new_id = said.rsplit(" ", 1)[1].strip()
    shown = json.loads(ok("mail", "show", new_id, "--json"))["item"]
    assert shown["subject"] == first["subject"]


def test_permission_set_keeps_the_delegates_grant(as_user) -> None:
    as_user(CHEF)
    before = json.loads(ok("permissions", "show", "inbox", "--json"))["permissions"]
    granted = {p["principal"]: p["role"] for p in before}
    assert granted[ASSISTENZ] == "Editor"
    ok("permissions", "set", "inbox", SACHBEARBEITUNG, "Reviewer")
    after = json.loads(ok("permissions", "show", "inbox", "--json"))["permissions"]
    roles = {p["principal"]: p["role"] for p in after}
    assert roles[SACHBEARBEITUNG] == "Reviewer" and roles[ASSISTENZ] == "Editor"
    delegates = json.loads(ok("delegates", "show", "--json"))["delegates"]
    tom = next(d for d in delegates if d["address"] == ASSISTENZ)
    assert tom["levels"]["inbox"] == "Editor"


def test_commands_remember_folders_in_the_users_cache_dir(as_user) -> None:
    import os
    import stat
    from pathlib import Path

    as_user(ASSISTENZ)
    first = json.loads(ok("mail", "ls", "-m", CHEF, "-f", "inbox/Kreistag", "--json"))
    cache_dir = Path(os.environ["XDG_CACHE_HOME"]) / "medbridge"
    assert f"cache: {cache_dir}" in ok("locate")
    (path,) = cache_dir.glob("folders-*.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert doc["user"] == ASSISTENZ
    (entry,) = [e for k, e in doc["folders"].items() if k == f"{CHEF}|path:inbox/kreistag"]
    assert entry["folder"]["id"] == first["folder"]["id"]
    again = json.loads(ok("mail", "ls", "-m", CHEF, "-f", "inbox/Kreistag", "--json"))
    assert again["folder"]["id"] == first["folder"]["id"]
    assert [i["id"] for i in again["items"]] == [i["id"] for i in first["items"]]
