"""med's folder cache against the lab: a new session finds the folders an earlier one
learnt without asking, and whatever the server says since (a folder gone, rights changed)
wins over the cache. Requests are counted where exchangelib sends them."""

from __future__ import annotations

import json
import stat
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from med import (
    AccessDenied,
    DelegateSession,
    EditScope,
    Event,
    Folder,
    ItemQuery,
    Message,
    NotFound,
    Role,
)
from med.folder_cache import FolderCache
from tests.e2e.conftest import ASSISTENZ, CHEF, TEAMKALENDER, backend_for
from tests.e2e.test_med_round_trips import deliver_mails
from tests.lab.conftest import LabServer

NOBODY = "niemand@musterstadt.example"


@pytest.fixture
async def cached_session(
    lab: LabServer, tmp_path: Path
) -> AsyncIterator[Callable[..., DelegateSession]]:
    """New sessions of one user sharing one cache directory, as one command after another."""
    made: list[DelegateSession] = []

    def make(user: str = ASSISTENZ) -> DelegateSession:
        cache = FolderCache(tmp_path / "cache", backend="ews", endpoint=lab.url, user=user)
        session = DelegateSession(backend_for(lab, user), mailboxes=(CHEF,), folder_cache=cache)
        made.append(session)
        return session

    yield make
    for s in made:
        await s.close()


def cache_file(tmp_path: Path) -> Path:
    (path,) = (tmp_path / "cache").glob("folders-*.json")
    return path


async def test_a_new_session_opens_the_boss_inbox_without_asking_for_it(
    cached_session: Callable[..., DelegateSession],
    tmp_path: Path,
    ews_requests: Counter[str],
) -> None:
    first = cached_session()
    inbox = await first.default_folder(CHEF, "inbox")
    assert ews_requests == Counter({"GetFolder": 1})
    path = cache_file(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    newest = (await first.items(inbox, ItemQuery(limit=1))).items[0]
    text = path.read_text()
    assert inbox.id in text and newest.subject not in text and "password" not in text.lower()
    await first.close()

    ews_requests.clear()
    second = cached_session()  # a new backend and session: nothing in memory
    again = await second.default_folder(CHEF, "inbox")
    assert ews_requests == Counter()  # from the cache
    assert (again.id, again.rights) == (inbox.id, inbox.rights)
    page = await second.items(again, ItemQuery(limit=1))
    assert ews_requests == Counter({"FindItem": 1}) and page.items


async def test_calendars_of_two_mailboxes_come_in_one_request_then_from_the_cache(
    cached_session: Callable[..., DelegateSession], ews_requests: Counter[str]
) -> None:
    wanted = [(CHEF, "calendar"), (TEAMKALENDER, "calendar")]
    found = await cached_session().default_folders(wanted)
    assert ews_requests == Counter({"GetFolder": 1})
    cals = [f for f in found if isinstance(f, Folder)]
    assert [c.mailbox for c in cals] == [CHEF, TEAMKALENDER]
    # One refused: the others are delivered all the same.
    mixed = await cached_session().default_folders([(NOBODY, "calendar"), (CHEF, "inbox")])
    assert isinstance(mixed[0], NotFound) and isinstance(mixed[1], Folder)

    ews_requests.clear()
    again = await cached_session().default_folders(wanted)
    assert ews_requests == Counter()
    assert [f.id for f in again if isinstance(f, Folder)] == [c.id for c in cals]


async def test_a_folder_by_path_is_found_once_then_remembered(
    cached_session: Callable[..., DelegateSession], ews_requests: Counter[str]
) -> None:
    target = await cached_session().folder_at(CHEF, "inbox/Vorgänge")
    assert target.name == "Vorgänge" and ews_requests["FindFolder"] == 1

    ews_requests.clear()
    session = cached_session()
    assert (await session.folder_at(CHEF, "INBOX/vorgänge")).id == target.id
    # The tree named the well-known folders too: the inbox comes without asking.
    await session.default_folder(CHEF, "inbox")
    assert ews_requests == Counter()


async def test_a_cached_folder_that_is_gone_is_looked_up_again_and_the_call_repeated(
    cached_session: Callable[..., DelegateSession],
    lab: LabServer,
    tmp_path: Path,
    ews_requests: Counter[str],
) -> None:
    store = lab.lab.store
    inbox = store.distinguished_folder(CHEF, "inbox")
    assert inbox is not None
    old = lab.lab.add_folder(inbox, "Ablage Test")
    stale = await cached_session().folder_at(CHEF, "inbox/Ablage Test")
    # The boss deletes the folder and makes a new one of the same name.
    store.delete_folder(old.id)
    lab.lab.add_folder(inbox, "Ablage Test")
    deliver_mails(lab, 2, "Umzug")

    session = cached_session()
    assert (await session.folder_at(CHEF, "inbox/Ablage Test")).id == stale.id  # the cache's
    source = await session.default_folder(CHEF, "inbox")
    mails = (await session.items(source, ItemQuery(limit=10, search="Umzug"))).items
    ews_requests.clear()
    moved = await session.move_many(list(mails), stale)
    assert len(moved) == 2 and all(isinstance(m, str) and m for m in moved)
    assert ews_requests["MoveItem"] == 2  # refused, then repeated once with the new folder
    fresh = await session.folder_at(CHEF, "inbox/Ablage Test")
    assert fresh.id != stale.id
    assert len((await session.items(fresh, ItemQuery(limit=10))).items) == 2
    assert stale.id not in cache_file(tmp_path).read_text()


async def test_rights_taken_away_since_refuse_the_write_and_correct_the_cache(
    cached_session: Callable[..., DelegateSession],
    session_for: Callable[..., DelegateSession],
    tmp_path: Path,
) -> None:
    cal = await cached_session().default_folder(CHEF, "calendar")
    assert cal.rights is not None and cal.rights.create_items  # Editor, cached
    chef = session_for(CHEF)
    await chef.set_permission(await chef.default_folder(CHEF, "calendar"), ASSISTENZ, Role.REVIEWER)

    session = cached_session()
    stale = await session.default_folder(CHEF, "calendar")
    assert stale.rights == cal.rights  # the cache does not know yet
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    with pytest.raises(AccessDenied) as refused:
        await session.create(stale, Event(subject="Nicht erlaubt", start=start, end=start))
    assert refused.value.right == "CreateItems"  # med's own refusal, with the fresh rights
    now_known = await cached_session().default_folder(CHEF, "calendar")
    assert now_known.rights is not None and not now_known.rights.create_items
    assert now_known.rights.edit is EditScope.NONE
    # Refused again on the rights just learnt: that refusal stands and the cache keeps them.
    with pytest.raises(AccessDenied):
        await session.create(stale, Event(subject="Nicht erlaubt", start=start, end=start))
    assert now_known.id in cache_file(tmp_path).read_text()
    view = await session.calendar_view(
        [now_known], start - timedelta(days=1), start + timedelta(days=1)
    )
    assert all(e.subject != "Nicht erlaubt" for e in view)


async def test_rights_given_since_are_used_although_the_cache_says_no(
    cached_session: Callable[..., DelegateSession],
    session_for: Callable[..., DelegateSession],
) -> None:
    chef = session_for(CHEF)
    cal = await chef.default_folder(CHEF, "calendar")
    await chef.set_permission(cal, ASSISTENZ, Role.REVIEWER)
    cached = await cached_session().default_folder(CHEF, "calendar")
    assert cached.rights is not None and not cached.rights.create_items
    await chef.set_permission(cal, ASSISTENZ, Role.EDITOR)

    session = cached_session()
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    made = await session.create(
        await session.default_folder(CHEF, "calendar"),
        Event(subject="Wieder erlaubt", start=start, end=start + timedelta(hours=1)),
    )
    assert made.id


async def test_access_taken_away_entirely_is_refused_and_forgotten(
    cached_session: Callable[..., DelegateSession],
    session_for: Callable[..., DelegateSession],
    tmp_path: Path,
) -> None:
    inbox = await cached_session().default_folder(CHEF, "inbox")
    chef = session_for(CHEF)
    await chef.set_permission(await chef.default_folder(CHEF, "inbox"), ASSISTENZ, Role.NONE)

    session = cached_session()
    with pytest.raises(AccessDenied):
        await session.items(await session.default_folder(CHEF, "inbox"), ItemQuery(limit=5))
    assert inbox.id not in cache_file(tmp_path).read_text()


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"\xff\xfe", b'{"format": 999, "folders": {}}', b"[]", b'{"format": 1}'],
)
async def test_a_corrupt_cache_file_is_ignored_and_written_anew(
    cached_session: Callable[..., DelegateSession], tmp_path: Path, content: bytes
) -> None:
    await cached_session().default_folder(CHEF, "inbox")
    path = cache_file(tmp_path)
    path.write_bytes(content)

    session = cached_session()
    inbox = await session.default_folder(CHEF, "inbox")
    page = await session.items(inbox, ItemQuery(limit=1))
    assert page.items and isinstance(page.items[0], Message)
    doc = json.loads(path.read_text())
    assert doc["format"] == 1 and any(
        inbox.id == e["folder"]["id"] for e in doc["folders"].values()
    )


async def test_the_server_version_asked_once_is_remembered_for_the_next_session(
    lab: LabServer, tmp_path: Path, ews_requests: Counter[str]
) -> None:
    from exlab.demo import DEMO_PASSWORD
    from med import AuthMethod, Profile

    profile = Profile("lab", lab.url, ASSISTENZ, AuthMethod.BASIC, mailboxes=(CHEF,))
    async with DelegateSession.open(
        profile, password=DEMO_PASSWORD, cache_dir=tmp_path / "cache"
    ) as first:
        await first.default_folder(CHEF, "inbox")
    asked_first = sum(ews_requests.values())
    assert json.loads(cache_file(tmp_path).read_text())["server_version"] == "Exchange2016"

    ews_requests.clear()
    async with DelegateSession.open(
        profile, password=DEMO_PASSWORD, cache_dir=tmp_path / "cache"
    ) as second:
        page = await second.items(await second.default_folder(CHEF, "inbox"), ItemQuery(limit=1))
    assert page.items
    assert ews_requests == Counter({"FindItem": 1}) and asked_first > 1
