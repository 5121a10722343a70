"""med over Graph end to end: DelegateSession → GraphBackend (O365) → the lab's Graph face.

The assistant signs in with the device-code flow (MSAL against the lab's authority over TLS);
the scenarios are the delegate's daily work on the boss's mailbox.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from exlab.demo import open_demo
from exlab.graph.oauth import PUBLIC_CLIENT_ID
from exlab.graph.serve import GraphLab
from med import DelegateSession, SyncChange, SyncCheckpoint
from med.auth.oauth import MEDBRIDGE_CLIENT_ID, DeviceCodePrompt, OAuthConfig, OAuthSignIn
from med.backends.graph import GraphBackend
from med.errors import AccessDenied, AuthError, InvalidInput, Throttled, Unsupported
from med.model import (
    Address,
    Attendee,
    AuthMethod,
    Event,
    EventKind,
    Feature,
    FlagStatus,
    Folder,
    ItemQuery,
    Mailbox,
    MailboxKind,
    Message,
    OutgoingAttachment,
    Profile,
    Recurrence,
    ResponseType,
    SendOptions,
    Sensitivity,
    SyncChangeKind,
    Task,
    TaskStatus,
    Weekday,
    Weekly,
)

DOMAIN = "musterstadt.example"
CHEF = f"chef@{DOMAIN}"
ASSISTENZ = f"assistenz@{DOMAIN}"
SACH = f"sachbearbeitung@{DOMAIN}"
PASSWORD = "Demo-2026!"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphLab]:
    lab = open_demo()
    with GraphLab(lab, tmp_path_factory.mktemp("tls")) as running:
        running.face.oauth.settings.device_interval_s = 1
        yield running
    lab.close()


@pytest.fixture(autouse=True)
def calm_lab(served: GraphLab) -> Iterator[None]:
    yield
    served.lab.knobs.outage = False
    served.lab.knobs.throttle_budget.clear()
    served.lab.knobs.reset_throttle()


def _approve(served: GraphLab, user: str) -> Callable[[DeviceCodePrompt], None]:
    """The user's side of the device flow: open the page and enter the code (in a thread)."""

    def prompt(p: DeviceCodePrompt) -> None:
        def approve() -> None:
            ctx = ssl.create_default_context(cafile=str(served.ca_file))
            with httpx.Client(verify=ctx) as http:
                http.post(
                    p.verification_uri,
                    data={"user_code": p.user_code, "username": user, "password": PASSWORD},
                )

        threading.Thread(target=approve).start()

    return prompt


@pytest.fixture(scope="module")
def sign_in(served: GraphLab, tmp_path_factory: pytest.TempPathFactory) -> OAuthSignIn:
    """The assistant and the clerk signed in once by device code; tokens in a 0600 cache."""
    cache = tmp_path_factory.mktemp("data") / "graph-tokens.json"
    signer = OAuthSignIn(
        OAuthConfig(
            client_id=MEDBRIDGE_CLIENT_ID,
            authority=served.authority,
            cache_file=cache,
            ca_file=served.ca_file,
        )
    )
    assert signer.sign_in_device_code(_approve(served, ASSISTENZ)) == ASSISTENZ
    assert signer.sign_in_device_code(_approve(served, SACH)) == SACH
    return signer


def _backend(served: GraphLab, sign_in: OAuthSignIn, user: str) -> GraphBackend:
    return GraphBackend(
        base_url=served.url, user=user, token=lambda: sign_in.token(user), ca_file=served.ca_file
    )


@pytest.fixture
async def assistenz(served: GraphLab, sign_in: OAuthSignIn) -> AsyncIterator[DelegateSession]:
    session = DelegateSession(_backend(served, sign_in, ASSISTENZ), mailboxes=[CHEF])
    yield session
    await session.close()


@pytest.fixture
async def sach(served: GraphLab, sign_in: OAuthSignIn) -> AsyncIterator[DelegateSession]:
    session = DelegateSession(_backend(served, sign_in, SACH))
    yield session
    await session.close()


def test_the_lab_registers_medbridges_client_id() -> None:
    assert MEDBRIDGE_CLIENT_ID == PUBLIC_CLIENT_ID


async def test_mailboxes_are_own_and_the_boss_without_archive_or_public_folders(
    assistenz: DelegateSession,
) -> None:
    boxes = await assistenz.mailboxes()
    assert [(b.address, b.kind) for b in boxes] == [
        (ASSISTENZ, MailboxKind.OWN),
        (CHEF, MailboxKind.DELEGATED),
    ]
    assert not assistenz.supports(Feature.ARCHIVE)
    assert not assistenz.supports(Feature.PUBLIC_FOLDERS)


async def test_paging_through_the_boss_inbox(assistenz: DelegateSession) -> None:
    inbox = await assistenz.default_folder(CHEF, "inbox")
    seen: list[str] = []
    query = ItemQuery(limit=40)
    total = None
    while True:
        page = await assistenz.items(inbox, query)
        total = page.total
        seen += [i.id for i in page.items]
        if not page.more:
            break
        query = query.next()
    assert total and len(seen) == len(set(seen)) == total == inbox.total_count


async def test_unread_filter_and_subject_sort(assistenz: DelegateSession) -> None:
    inbox = await assistenz.default_folder(CHEF, "inbox")
    page = await assistenz.items(
        inbox, ItemQuery(limit=200, unread_only=True, sort="subject", descending=False)
    )
    assert page.items
    assert all(isinstance(m, Message) and not m.is_read for m in page.items)
    subjects = [m.subject.lower() for m in page.items]
    assert subjects == sorted(subjects)


async def test_search_finds_words_in_bodies(
    assistenz: DelegateSession, sach: DelegateSession
) -> None:
    await sach.send(
        Message(
            subject="Rückfrage", body="Es geht um die Zuckerrübenernte.", to=(Address(ASSISTENZ),)
        )
    )
    inbox = await assistenz.default_folder(ASSISTENZ, "inbox")
    found = await assistenz.items(inbox, ItemQuery(limit=10, search="zuckerrübenernte"))
    assert [m.subject for m in found.items] == ["Rückfrage"]


async def test_folder_tree_of_the_boss_has_mail_and_calendar(assistenz: DelegateSession) -> None:
    tree = await assistenz.folder_tree(CHEF)
    names = {f.distinguished for f in tree.walk() if f.distinguished}
    assert {"msgfolderroot", "calendar"} <= names
    assert "Posteingang" in {f.name for f in tree.walk()}


async def test_send_on_behalf_arrives_from_the_boss_sent_by_the_assistant(
    assistenz: DelegateSession, sach: DelegateSession
) -> None:
    await assistenz.send(
        Message(
            subject="Termin bestätigt (Graph)",
            body="Der Termin am Montag passt.",
            to=(Address(SACH),),
            new_attachments=(OutgoingAttachment("agenda.txt", b"TOP 1", "text/plain"),),
        ),
        SendOptions(from_mailbox=CHEF),
    )
    inbox = await sach.default_folder(SACH, "inbox")
    page = await sach.items(inbox, ItemQuery(limit=5, search="Termin bestätigt (Graph)"))
    got = await sach.get(page.items[0].id)
    assert isinstance(got, Message)
    assert got.from_ is not None and got.from_.email == CHEF
    assert got.sender is not None and got.sender.email == ASSISTENZ
    content = await sach.attachment(got.attachments[0])
    assert content.content == b"TOP 1"


async def test_forward_from_the_boss_mailbox_keeps_the_attachments(
    assistenz: DelegateSession, sach: DelegateSession
) -> None:
    inbox = await assistenz.default_folder(CHEF, "inbox")
    page = await assistenz.items(inbox, ItemQuery(limit=200, has_attachments=True))
    original = page.items[0]
    await assistenz.forward(
        original, [Address(SACH)], "Zur Kenntnis.", options=SendOptions(from_mailbox=CHEF)
    )
    own = await sach.default_folder(SACH, "inbox")
    found = await sach.items(own, ItemQuery(limit=5, search=original.subject))
    forwarded = await sach.get(next(m for m in found.items if m.subject.startswith("WG:")).id)
    assert isinstance(forwarded, Message)
    assert forwarded.from_ is not None and forwarded.from_.email == CHEF
    assert forwarded.attachments and "Zur Kenntnis." in (forwarded.body or "")


async def test_delete_moves_to_deleted_items_and_hard_delete_removes(
    assistenz: DelegateSession,
) -> None:
    drafts = await assistenz.default_folder(ASSISTENZ, "drafts")
    soft = await assistenz.create(drafts, Message(subject="Weg damit (weich)"))
    hard = await assistenz.create(drafts, Message(subject="Weg damit (hart)"))
    await assistenz.delete(soft)
    await assistenz.delete(hard, hard=True)
    bin_ = await assistenz.default_folder(ASSISTENZ, "deleteditems")
    subjects = {m.subject for m in (await assistenz.items(bin_, ItemQuery(limit=100))).items}
    assert "Weg damit (weich)" in subjects and "Weg damit (hart)" not in subjects


async def test_flag_categories_and_read_state(assistenz: DelegateSession) -> None:
    inbox = await assistenz.default_folder(CHEF, "inbox")
    message = (await assistenz.items(inbox, ItemQuery(limit=1))).items[0]
    assert isinstance(message, Message)
    flagged = await assistenz.set_flag(message, FlagStatus.FLAGGED)
    assert flagged.flag.status is FlagStatus.FLAGGED
    tagged = await assistenz.set_categories(flagged, ["Wichtig"])
    assert tagged.categories == ("Wichtig",)
    read = await assistenz.mark_read(tagged, True)  # type: ignore[arg-type]
    assert isinstance(read, Message) and read.is_read
    assert "Wichtig" in await assistenz.master_categories(CHEF)


async def test_a_weekly_series_expands_in_the_calendar_view(assistenz: DelegateSession) -> None:
    calendar = await assistenz.default_folder(CHEF, "calendar")
    start = datetime(2027, 5, 3, 7, 0, tzinfo=UTC)
    series = Event(
        subject="Lagebesprechung (Graph)",
        start=start,
        end=start + timedelta(minutes=30),
        recurrence=Recurrence(Weekly((Weekday.MONDAY,)), date(2027, 5, 3), count=3),
    )
    await assistenz.create(calendar, series)
    view = await assistenz.calendar_view(
        [calendar], datetime(2027, 5, 1, tzinfo=UTC), datetime(2027, 6, 1, tzinfo=UTC)
    )
    mine = [e for e in view if e.subject == "Lagebesprechung (Graph)"]
    assert [e.start for e in mine] == [start + timedelta(weeks=i) for i in range(3)]
    assert {e.event_kind for e in mine} == {EventKind.OCCURRENCE}
    master = (await assistenz.series(mine[0].id))[0]
    assert master.recurrence is not None and master.recurrence.count == 3


async def test_the_assistant_accepts_a_meeting_for_the_boss(
    assistenz: DelegateSession, sach: DelegateSession
) -> None:
    own_calendar = await sach.default_folder(SACH, "calendar")
    start = datetime(2027, 6, 9, 8, 0, tzinfo=UTC)
    await sach.create(
        own_calendar,
        Event(
            subject="Haushaltsklausur (Graph)",
            start=start,
            end=start + timedelta(hours=2),
            attendees=(Attendee(Address(CHEF)),),
        ),
    )
    boss_calendar = await assistenz.default_folder(CHEF, "calendar")
    view = await assistenz.calendar_view([boss_calendar], start, start + timedelta(hours=2))
    meeting = next(e for e in view if e.subject == "Haushaltsklausur (Graph)")
    assert meeting.my_response is ResponseType.NO_RESPONSE
    later = (start + timedelta(days=1), start + timedelta(days=1, hours=2))
    with pytest.raises(Unsupported, match="EWS"):
        await assistenz.respond(meeting, ResponseType.TENTATIVE, proposal=later)
    await assistenz.respond(meeting, ResponseType.ACCEPT)
    again = await assistenz.get(meeting.id)
    assert isinstance(again, Event) and again.my_response is ResponseType.ACCEPT


async def test_private_appointments_stay_hidden_from_the_assistant(
    served: GraphLab, assistenz: DelegateSession
) -> None:
    token = served.face.issuer.access_token(
        base_url=served.url,
        now=served.lab.now(),
        client_id=PUBLIC_CLIENT_ID,
        user=CHEF,
        scopes=frozenset({"Calendars.ReadWrite"}),
    )
    chef = DelegateSession(
        GraphBackend(base_url=served.url, user=CHEF, token=lambda: token, ca_file=served.ca_file)
    )
    calendar = await chef.default_folder(CHEF, "calendar")
    start = datetime(2027, 7, 1, 9, 0, tzinfo=UTC)
    await chef.create(
        calendar,
        Event(
            subject="Privat (Graph)",
            start=start,
            end=start + timedelta(hours=1),
            sensitivity=Sensitivity.PRIVATE,
        ),
    )
    await chef.close()
    boss = await assistenz.default_folder(CHEF, "calendar")
    view = await assistenz.calendar_view([boss], start, start + timedelta(hours=1))
    assert "Privat (Graph)" not in [e.subject for e in view]


async def test_own_tasks_are_a_to_do_list_the_boss_tasks_are_unsupported(
    assistenz: DelegateSession,
) -> None:
    tasks = await assistenz.default_folder(ASSISTENZ, "tasks")
    due = datetime(2027, 2, 1, tzinfo=UTC)
    created = await assistenz.create(tasks, Task(subject="Akte Müller anfordern", due=due))
    listed = (await assistenz.items(tasks, ItemQuery(limit=50, sort="due"))).items
    assert "Akte Müller anfordern" in [t.subject for t in listed]
    done = await assistenz.update(replace(created, status=TaskStatus.COMPLETED), ["status"])
    assert isinstance(done, Task) and done.status is TaskStatus.COMPLETED and done.due == due
    with pytest.raises(Unsupported, match="To Do"):
        await assistenz.default_folder(CHEF, "tasks")


async def test_free_busy_shows_details_only_where_the_rights_allow(
    assistenz: DelegateSession, sach: DelegateSession
) -> None:
    calendar = await assistenz.default_folder(CHEF, "calendar")
    start = datetime(2027, 8, 2, 9, 0, tzinfo=UTC)
    await assistenz.create(
        calendar,
        Event(subject="Kreistagssitzung (Graph)", start=start, end=start + timedelta(hours=3)),
    )
    window = (start - timedelta(hours=1), start + timedelta(hours=4))
    (detailed,) = await assistenz.free_busy([CHEF], *window)
    assert [(s.start, s.subject) for s in detailed.slots] == [(start, "Kreistagssitzung (Graph)")]
    plain, unknown = await sach.free_busy([CHEF, f"niemand@{DOMAIN}"], *window)
    assert [(s.start, s.end, s.subject) for s in plain.slots] == [
        (start, start + timedelta(hours=3), None)
    ]
    assert unknown.error and not unknown.slots


async def test_a_clerk_without_rights_is_denied(sach: DelegateSession) -> None:
    with pytest.raises(AccessDenied):
        inbox = await sach.default_folder(CHEF, "inbox")
        await sach.items(inbox, ItemQuery(limit=1))


@pytest.mark.parametrize(
    ("call", "feature"),
    [
        (
            lambda s: s.folder_tree(Mailbox("public", "Public", MailboxKind.PUBLIC)),
            "public_folders",
        ),
        (lambda s: s.delegates(CHEF), "delegates"),
        (lambda s: s.default_folder(CHEF, "notes"), "notes"),
        (lambda s: s.default_folder(CHEF, "voicemail"), "voicemail"),
    ],
)
async def test_what_graph_cannot_do_is_unsupported_with_a_reason(
    assistenz: DelegateSession, call: Callable[[DelegateSession], object], feature: str
) -> None:
    with pytest.raises(Unsupported) as caught:
        await call(assistenz)  # type: ignore[misc]
    assert caught.value.feature == feature
    assert "Graph" in str(caught.value) or "graph" in str(caught.value)


def test_graph_finds_no_archive_and_says_why(served: GraphLab, sign_in: OAuthSignIn) -> None:
    backend = _backend(served, sign_in, ASSISTENZ)
    try:
        with pytest.raises(Unsupported, match="archive") as caught:
            backend.archive_of(Mailbox(CHEF, "Chef", MailboxKind.DELEGATED))
    finally:
        backend.close()
    assert caught.value.feature == "archive"


async def test_calendar_notifications_are_unsupported_with_a_reason(
    assistenz: DelegateSession,
) -> None:
    calendar = await assistenz.default_folder(CHEF, "calendar")
    with pytest.raises(Unsupported, match="delta"):
        await anext(assistenz.subscribe([calendar]))


async def test_folder_permissions_are_unsupported(assistenz: DelegateSession) -> None:
    inbox = await assistenz.default_folder(ASSISTENZ, "inbox")
    with pytest.raises(Unsupported):
        await assistenz.permissions(inbox)


async def test_incremental_sync_sees_new_mail(
    assistenz: DelegateSession, sach: DelegateSession
) -> None:
    inbox = await assistenz.default_folder(ASSISTENZ, "inbox")
    state = None
    async for event in assistenz.sync(inbox):
        if isinstance(event, SyncCheckpoint):
            state = event.state
    await sach.send(Message(subject="Neu für die Synchronisation", to=(Address(ASSISTENZ),)))
    changes = [e async for e in assistenz.sync(inbox, state) if isinstance(e, SyncChange)]
    assert [c.item.subject for c in changes if c.item] == ["Neu für die Synchronisation"]


async def test_a_to_do_list_syncs_new_changed_and_deleted_tasks(
    assistenz: DelegateSession, served: GraphLab
) -> None:
    tasks = await assistenz.default_folder(ASSISTENZ, "tasks")

    async def round_from(state: str | None) -> tuple[list[SyncChange], str]:
        changes: list[SyncChange] = []
        async for event in assistenz.sync(tasks, state):
            if isinstance(event, SyncChange):
                changes.append(event)
            else:
                state = event.state
        assert state is not None
        return changes, state

    _, state = await round_from(None)
    created = await assistenz.create(tasks, Task(subject="Sitzungsvorlage prüfen"))
    news, state = await round_from(state)
    assert [(c.kind, c.item_id) for c in news] == [(SyncChangeKind.CREATED, created.id)]
    assert news[0].item is not None and news[0].item.subject == "Sitzungsvorlage prüfen"
    [full] = await assistenz.get_many([created.id])  # the watcher reads what it notifies
    assert isinstance(full, Task) and full.folder_id == tasks.id
    later = datetime.now(UTC) + timedelta(seconds=5)  # the lab's times are whole seconds
    served.lab.clock = lambda: later
    try:
        await assistenz.update(replace(created, status=TaskStatus.COMPLETED), ["status"])
    finally:
        served.lab.clock = None
    changed, state = await round_from(state)
    assert [(c.kind, c.item_id) for c in changed] == [(SyncChangeKind.UPDATED, created.id)]
    await assistenz.delete(created)
    gone, state = await round_from(state)
    assert [(c.kind, c.item_id) for c in gone] == [(SyncChangeKind.DELETED, created.id)]
    # The delta token of another folder: the server refuses it, the caller starts over.
    inbox_state = None
    async for event in assistenz.sync(await assistenz.default_folder(ASSISTENZ, "inbox")):
        if isinstance(event, SyncCheckpoint):
            inbox_state = event.state
    assert inbox_state is not None and "$deltatoken=" in state
    foreign = state.partition("$deltatoken=")[0] + "$deltatoken="
    with pytest.raises(InvalidInput):
        await round_from(foreign + inbox_state.partition("$deltatoken=")[2])


async def test_several_items_come_in_one_batch(assistenz: DelegateSession) -> None:
    inbox = await assistenz.default_folder(CHEF, "inbox")
    ids = [i.id for i in (await assistenz.items(inbox, ItemQuery(limit=3))).items]
    items = await assistenz.get_many(ids)
    assert [i.id for i in items] == ids
    assert all(i.body is not None for i in items)


async def test_mime_export(assistenz: DelegateSession) -> None:
    inbox = await assistenz.default_folder(CHEF, "inbox")
    first = (await assistenz.items(inbox, ItemQuery(limit=1))).items[0]
    raw = await assistenz.export_mime(first)
    assert b"Subject:" in raw


async def test_outage_ends_in_throttled_after_the_retries(
    served: GraphLab, assistenz: DelegateSession
) -> None:
    served.face.outage_retry_after_s = 0
    served.lab.knobs.outage = True
    with pytest.raises(Throttled) as caught:
        await assistenz.default_folder(ASSISTENZ, "inbox")
    assert caught.value.retry_after == 0


async def test_throttled_requests_are_retried_after_the_servers_delay(
    served: GraphLab, assistenz: DelegateSession
) -> None:
    knobs = served.lab.knobs
    # A window far longer than two requests take, so the second is refused on any machine.
    knobs.throttle_window_s = 2.0
    knobs.throttle_back_off_ms = 100
    knobs.throttle_budget[ASSISTENZ] = 1
    try:
        first = await assistenz.default_folder(ASSISTENZ, "inbox")
        again = await assistenz.folder(first.id, refresh=True)  # answered 429 first, then retried
        assert again.id == first.id
        assert knobs.throttled > 0
    finally:
        knobs.throttle_window_s = 10.0
        knobs.throttle_back_off_ms = 1000


async def test_a_graph_profile_opens_like_an_ews_one_with_the_signed_in_tokens(
    served: GraphLab, sign_in: OAuthSignIn, tmp_path: Path
) -> None:
    profile = Profile(
        "lab-graph", served.url, ASSISTENZ, AuthMethod.OAUTH, "graph", ca_bundle=str(served.ca_file)
    )
    async with DelegateSession.open(profile, token_cache=sign_in.config.cache_file) as session:
        assert (await session.mailboxes())[0].address == ASSISTENZ
    # Nobody signed in with this cache: the first call says so.
    async with DelegateSession.open(profile, token_cache=tmp_path / "tokens.json") as session:
        with pytest.raises(AuthError, match="sign in"):
            await session.mailboxes()


def test_a_graph_profile_signs_in_with_oauth_not_a_password() -> None:
    from med.errors import InvalidInput
    from med.model import AuthMethod, Profile

    profile = Profile("cloud", "https://graph.microsoft.com", ASSISTENZ, AuthMethod.OAUTH, "graph")
    with pytest.raises(InvalidInput, match="takes no password"):
        GraphBackend.from_profile(profile, password="secret")
    backend = GraphBackend.from_profile(profile, token=lambda: "t")
    assert backend.base_url == "https://graph.microsoft.com" and backend.user == ASSISTENZ


async def test_the_folder_cache_serves_graph_sessions_too(
    served: GraphLab, sign_in: OAuthSignIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from med.folder_cache import FolderCache

    def session() -> DelegateSession:
        cache = FolderCache(tmp_path, backend="graph", endpoint=served.url, user=ASSISTENZ)
        backend = _backend(served, sign_in, ASSISTENZ)
        return DelegateSession(backend, mailboxes=[CHEF], folder_cache=cache)

    first = session()
    inbox = await first.default_folder(CHEF, "inbox")
    await first.close()

    asked: list[tuple[str, str]] = []
    original = GraphBackend.default_folder

    def counted(self: GraphBackend, mailbox: str, name: str) -> Folder:
        asked.append((mailbox, name))
        return original(self, mailbox, name)

    monkeypatch.setattr(GraphBackend, "default_folder", counted)
    second = session()
    try:
        again = await second.default_folder(CHEF, "inbox")
        assert asked == [] and again.id == inbox.id
        assert (await second.items(again, ItemQuery(limit=5))).items
    finally:
        await second.close()
