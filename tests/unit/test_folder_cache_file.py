"""The folder cache's file: one per account and server, private, whole, and never a reason
to fail (what it cannot trust it ignores)."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from med import EditScope, Folder, FolderKind, ReadAccess, Rights
from med.folder_cache import MAX_AGE, FolderCache, path_key, well_known_key

INBOX = Folder(
    id="AAMk-inbox",
    mailbox="chef@example.org",
    name="Posteingang",
    kind=FolderKind.MAIL,
    distinguished="inbox",
    container_class="IPF.Note",
    total_count=12,
    unread_count=3,
    rights=Rights(read=ReadAccess.FULL, create_items=True, edit=EditScope.ALL),
)


def cache(directory: Path, user: str = "assistenz@example.org", **kwargs: object) -> FolderCache:
    return FolderCache(
        directory,
        backend="ews",
        endpoint="https://mail.example.org/EWS/Exchange.asmx",
        user=user,
        **kwargs,  # type: ignore[arg-type]
    )


def test_a_folder_learnt_is_found_by_the_next_cache_without_its_counts(tmp_path: Path) -> None:
    cache(tmp_path).learn(well_known_key("Inbox"), INBOX)
    found = cache(tmp_path).folder("CHEF@example.org", well_known_key("inbox"))
    assert found is not None
    assert (found.id, found.rights, found.container_class) == (INBOX.id, INBOX.rights, "IPF.Note")
    assert (found.total_count, found.unread_count) == (0, 0)
    (path,) = tmp_path.iterdir()  # no temporary file left behind
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_another_account_or_server_has_a_file_of_its_own(tmp_path: Path) -> None:
    cache(tmp_path).learn(path_key(["inbox", "Vorgänge"]), INBOX)
    assert (
        cache(tmp_path, user="chef@example.org").folder(
            INBOX.mailbox, path_key(["inbox", "vorgänge"])
        )
        is None
    )
    other = FolderCache(
        tmp_path, backend="ews", endpoint="https://other/EWS", user="assistenz@example.org"
    )
    assert other.folder(INBOX.mailbox, path_key(["inbox", "vorgänge"])) is None


def test_a_file_claiming_another_account_is_ignored(tmp_path: Path) -> None:
    mine = cache(tmp_path)
    mine.learn(well_known_key("inbox"), INBOX)
    doc = json.loads(mine.path.read_text())
    doc["user"] = "someone@example.org"
    mine.path.write_text(json.dumps(doc))
    assert cache(tmp_path).folder(INBOX.mailbox, well_known_key("inbox")) is None


def test_old_entries_are_not_trusted(tmp_path: Path) -> None:
    then = datetime(2026, 1, 1, tzinfo=UTC)
    cache(tmp_path, now=lambda: then).learn(well_known_key("inbox"), INBOX)
    later = then + MAX_AGE + timedelta(minutes=1)
    assert cache(tmp_path, now=lambda: later).folder(INBOX.mailbox, well_known_key("inbox")) is None
    sooner = then + MAX_AGE - timedelta(minutes=1)
    assert cache(tmp_path, now=lambda: sooner).folder(INBOX.mailbox, well_known_key("inbox"))


def test_a_damaged_entry_is_dropped_and_the_rest_kept(tmp_path: Path) -> None:
    mine = cache(tmp_path)
    mine.learn(well_known_key("inbox"), INBOX)
    mine.learn(
        well_known_key("calendar"),
        Folder(id="cal", mailbox=INBOX.mailbox, name="Kalender", kind=FolderKind.CALENDAR),
    )
    doc = json.loads(mine.path.read_text())
    entry = next(e for e in doc["folders"].values() if e["folder"]["id"] == INBOX.id)
    entry["folder"]["rights"]["read"] = "everything"
    mine.path.write_text(json.dumps(doc))
    again = cache(tmp_path)
    assert again.folder(INBOX.mailbox, well_known_key("inbox")) is None
    assert again.folder(INBOX.mailbox, well_known_key("calendar")) is not None


def test_forgetting_drops_every_entry_of_the_folder(tmp_path: Path) -> None:
    mine = cache(tmp_path)
    mine.learn(well_known_key("inbox"), INBOX)
    mine.learn(path_key(["Posteingang"]), INBOX)
    assert mine.forget(INBOX.id) and not mine.forget(INBOX.id)
    assert INBOX.id not in mine.path.read_text()
    assert cache(tmp_path).folder(INBOX.mailbox, path_key(["posteingang"])) is None


def test_an_unwritable_directory_costs_nothing_but_the_saving(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    mine = cache(blocked / "cache")
    mine.learn(well_known_key("inbox"), INBOX)  # no error
    assert mine.folder(INBOX.mailbox, well_known_key("inbox")) is not None  # kept in memory


def test_the_server_version_is_remembered(tmp_path: Path) -> None:
    cache(tmp_path).learn_server_version("Exchange2016")
    assert cache(tmp_path).server_version == "Exchange2016"
