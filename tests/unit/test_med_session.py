"""Session logic (paging, rights gating, validation) over a small in-memory Backend."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from med import (
    AccessDenied,
    Address,
    Attachment,
    AttachmentContent,
    DelegateSession,
    Event,
    EventKind,
    Feature,
    FlagStatus,
    Folder,
    FolderKind,
    FolderNode,
    InvalidInput,
    ItemQuery,
    Mailbox,
    MailboxEvent,
    MailboxEventKind,
    MailboxKind,
    Message,
    NotFound,
    Page,
    ResponseType,
    Rights,
    Role,
    Sensitivity,
    SyncChange,
    SyncChangeKind,
    SyncCheckpoint,
    Task,
    Unsupported,
)
from med.permissions import rights_for_role

ME = "assistenz@musterstadt.example"
BOSS = "chef@musterstadt.example"
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def folder(
    fid: str,
    kind: FolderKind = FolderKind.MAIL,
    rights: Rights | None = None,
    mailbox: str = BOSS,
    distinguished: str | None = None,
) -> Folder:
    return Folder(
        id=fid, mailbox=mailbox, name=fid, kind=kind, rights=rights, distinguished=distinguished
    )


class FakeBackend:
    """Answers from lists in memory and records every call."""

    name = "fake"
    user = ME

    def __init__(self, messages: int = 0, capabilities: Sequence[str] = tuple(Feature)) -> None:
        self.capabilities = frozenset(capabilities)
        self.calls: list[str] = []
        self.messages = [
            Message(
                id=f"m{i}",
                folder_id="inbox",
                subject=f"s{i}",
                sensitivity=Sensitivity.PRIVATE if i == 1 else Sensitivity.NORMAL,
            )
            for i in range(messages)
        ]
        self.events: list[Event] = []
        self.sync_rounds: list[tuple[list[SyncChange], bool]] = []
        self.tree = FolderNode(folder("root"), (FolderNode(folder("inbox", rights=Rights.full())),))

    def __getattr__(self, name: str):  # any other backend method: record and fail loudly
        raise AssertionError(f"unexpected backend call {name}")

    def close(self) -> None:
        self.calls.append("close")

    def own_mailbox(self) -> Mailbox:
        self.calls.append("own_mailbox")
        return Mailbox(ME, "Tom Weber", MailboxKind.OWN)

    def resolve_names(self, query: str) -> Sequence[Mailbox]:
        self.calls.append(f"resolve_names:{query}")
        people = [
            Mailbox(BOSS, "Dr. Anna Berg", MailboxKind.DELEGATED),
            Mailbox("poststelle@musterstadt.example", "Poststelle", MailboxKind.FUNCTIONAL),
            Mailbox("leitstelle@musterstadt.example", "Leitstelle", MailboxKind.FUNCTIONAL),
        ]
        q = query.lower()
        return [p for p in people if q in p.address or q in p.display_name.lower()]

    def archive_of(self, mailbox: Mailbox) -> Mailbox | None:
        self.calls.append(f"archive_of:{mailbox.address}")
        if mailbox.address == BOSS:
            return Mailbox(BOSS, "Archiv Dr. Anna Berg", MailboxKind.ARCHIVE)
        return None

    def folder_tree(self, mailbox: Mailbox) -> FolderNode:
        self.calls.append(f"folder_tree:{mailbox.key}")
        return self.tree

    def find_items(self, f: Folder, query: ItemQuery) -> Page[Message]:
        self.calls.append(f"find_items:{f.id}:{query.offset}:{query.limit}")
        chunk = self.messages[query.offset : query.offset + query.limit]
        more = query.offset + len(chunk) < len(self.messages)
        return Page(tuple(chunk), query.offset, len(self.messages), more)

    def get_items(self, ids: Sequence[str]) -> Sequence[Message]:
        self.calls.append(f"get_items:{','.join(ids)}")
        by_id = {m.id: m for m in self.messages}
        if any(i not in by_id for i in ids):
            raise NotFound("gone")
        return [dataclasses.replace(by_id[i], body="hello") for i in ids]

    def create_item(self, f: Folder, item, *, send_invitations: bool):
        self.calls.append(f"create_item:{f.id}")
        return dataclasses.replace(item, id="new", folder_id=f.id)

    def update_item(self, item, fields: Sequence[str], *, send_updates: bool):
        self.calls.append(f"update_item:{item.id}:{','.join(fields)}")
        return item

    def update_items(self, items, fields: Sequence[str], *, send_updates: bool):
        self.calls.append(f"update_items:{','.join(i.id for i in items)}:{','.join(fields)}")
        return [dataclasses.replace(i, change_key="new") for i in items]

    def move_items(self, item_ids: Sequence[str], folder: Folder):
        self.calls.append(f"move_items:{','.join(item_ids)}:{folder.id}")
        return [NotFound("gone", item=i) if i == "gone" else f"{i}-moved" for i in item_ids]

    def delete_item(self, item_id: str, *, hard: bool, send_cancellations: bool) -> None:
        self.calls.append(f"delete_item:{item_id}")

    def series_master(self, item_id: str) -> Event:
        self.calls.append(f"series_master:{item_id}")
        return Event(
            id="master",
            folder_id="cal",
            subject="Jour fixe",
            start=T0,
            end=T0 + timedelta(hours=1),
            event_kind=EventKind.SERIES,
            is_meeting=True,
        )

    def calendar_view(self, f: Folder, start: datetime, end: datetime) -> Sequence[Event]:
        self.calls.append(f"calendar_view:{f.id}:{start.date()}:{end.date()}")
        return [e for e in self.events if e.folder_id == f.id and e.start < end and e.end > start]

    def respond(
        self,
        item_id: str,
        response: ResponseType,
        message: str | None,
        *,
        send: bool,
        proposal=None,
        change_key=None,
    ):
        self.calls.append(f"respond:{item_id}:{response.value}:{message}:{change_key}")

    def send(self, message: Message, options) -> None:
        self.calls.append(f"send:{options.from_mailbox}")

    def attachment(self, attachment_id: str) -> AttachmentContent:
        self.calls.append(f"attachment:{attachment_id}")
        return AttachmentContent(Attachment(attachment_id, "x.pdf"), b"%PDF-1.7 data")

    def permissions(self, f: Folder):
        self.calls.append(f"permissions:{f.id}")
        return []

    def set_permissions(self, f: Folder, perms) -> None:
        self.calls.append(f"set_permissions:{f.id}:{[(p.principal, p.role.value) for p in perms]}")

    def sync_items(self, f: Folder, state: str | None, max_changes: int):
        self.calls.append(f"sync_items:{f.id}:{state}")
        n = int(state or "0")
        if n < len(self.sync_rounds):
            changes, done = self.sync_rounds[n]
            return changes, str(n + 1), done
        return [], str(n), True

    def subscribe(self, folders: Sequence[Folder]) -> Iterator[MailboxEvent]:
        self.calls.append("subscribe")

        def events() -> Iterator[MailboxEvent]:
            try:
                yield MailboxEvent(MailboxEventKind.NEW_MAIL, folder_id="inbox", item_id="m9")
                yield MailboxEvent(MailboxEventKind.DELETED, folder_id="inbox", item_id="m8")
            finally:
                self.calls.append("unsubscribed")

        return events()


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend(messages=120)


@pytest.fixture
async def session(backend: FakeBackend):
    s = DelegateSession(backend, mailboxes=[BOSS, "Poststelle"])
    yield s
    await s.close()


async def test_first_page_is_one_backend_call_with_the_page_size(session, backend) -> None:
    page = await session.items(folder("inbox", rights=Rights.full()), ItemQuery(limit=50))
    assert [m.id for m in page.items] == [f"m{i}" for i in range(50)]
    assert page.more and page.next_offset == 50 and page.total == 120
    assert backend.calls == ["find_items:inbox:0:50"]


async def test_iter_items_walks_every_page_once(session, backend) -> None:
    ids = [m.id async for m in session.iter_items(folder("inbox"), ItemQuery(limit=50))]
    assert ids == [f"m{i}" for i in range(120)]
    assert backend.calls == [
        "find_items:inbox:0:50",
        "find_items:inbox:50:50",
        "find_items:inbox:100:50",
    ]


async def test_bad_page_size_or_sort_is_refused_before_the_server(session, backend) -> None:
    with pytest.raises(InvalidInput):
        await session.items(folder("inbox"), ItemQuery(limit=0))
    with pytest.raises(InvalidInput, match="received"):
        await session.items(folder("inbox"), ItemQuery(sort="colour"))  # type: ignore[arg-type]
    assert backend.calls == []


async def test_folder_without_read_right_is_refused_before_the_server(session, backend) -> None:
    contributor = folder("inbox", rights=rights_for_role(Role.CONTRIBUTOR))
    with pytest.raises(AccessDenied) as err:
        await session.items(contributor)
    assert err.value.mailbox == BOSS and "inbox" in str(err.value)
    assert err.value.right == "ReadItems"
    assert backend.calls == []


async def test_unknown_rights_leave_the_decision_to_the_server(session, backend) -> None:
    await session.items(folder("inbox", rights=None))
    assert backend.calls == ["find_items:inbox:0:50"]


async def test_private_items_hidden_from_delegate_without_view_private(session) -> None:
    editor = folder("inbox", rights=rights_for_role(Role.EDITOR))
    page = await session.items(editor, ItemQuery(limit=3))
    assert [m.id for m in page.items] == ["m0", "m2"]
    owner_view = dataclasses.replace(rights_for_role(Role.EDITOR), view_private=True)
    page = await session.items(folder("inbox", rights=owner_view), ItemQuery(limit=3))
    assert [m.id for m in page.items] == ["m0", "m1", "m2"]


async def test_create_is_refused_in_a_reviewer_folder(session, backend) -> None:
    reviewer = folder("tasks", FolderKind.TASKS, rights=rights_for_role(Role.REVIEWER))
    with pytest.raises(AccessDenied) as err:
        await session.create(reviewer, Task(subject="Akte holen"))
    assert err.value.right == "CreateItems"
    assert backend.calls == []


async def test_create_in_author_folder_reaches_the_server(session, backend) -> None:
    author = folder("tasks", FolderKind.TASKS, rights=rights_for_role(Role.AUTHOR))
    created = await session.create(author, Task(subject="Akte holen"))
    assert created.id == "new"
    assert backend.calls == ["create_item:tasks"]


async def test_an_event_does_not_go_into_a_mail_folder(session, backend) -> None:
    ev = Event(subject="x", start=T0, end=T0 + timedelta(hours=1))
    with pytest.raises(InvalidInput):
        await session.create(folder("inbox"), ev)
    assert backend.calls == []


async def test_naive_or_inverted_event_times_are_invalid(session) -> None:
    cal = folder("cal", FolderKind.CALENDAR)
    with pytest.raises(InvalidInput):
        await session.create(
            cal, Event(subject="x", start=T0.replace(tzinfo=None), end=T0.replace(tzinfo=None))
        )
    with pytest.raises(InvalidInput):
        await session.create(cal, Event(subject="x", start=T0, end=T0 - timedelta(hours=1)))


async def test_delete_is_refused_for_reviewer_of_a_known_folder(session, backend) -> None:
    await session.folder_tree(Mailbox(BOSS, "Chef", MailboxKind.DELEGATED))
    backend.tree = FolderNode(folder("root"))
    reviewer_tree = FolderNode(
        folder("root"),
        (
            FolderNode(
                folder("contacts", FolderKind.CONTACTS, rights=rights_for_role(Role.REVIEWER))
            ),
        ),
    )
    backend.tree = reviewer_tree
    await session.folder_tree(Mailbox(BOSS, "Chef", MailboxKind.DELEGATED))
    msg = Message(id="c1", folder_id="contacts")
    with pytest.raises(AccessDenied):
        await session.delete(msg)
    assert not any(c.startswith("delete_item") for c in backend.calls)


async def test_update_rejects_unknown_fields(session, backend) -> None:
    with pytest.raises(InvalidInput):
        await session.update(Message(id="m0"), ["start"])
    assert backend.calls == []


async def test_flag_with_due_before_start_is_invalid(session, backend) -> None:
    with pytest.raises(InvalidInput):
        await session.set_flag(
            Message(id="m0"), FlagStatus.FLAGGED, start=T0, due=T0 - timedelta(days=1)
        )
    assert backend.calls == []


async def test_complete_flag_gets_a_completion_time(session, backend) -> None:
    updated = await session.set_flag(Message(id="m0"), FlagStatus.COMPLETE)
    assert updated.flag.status is FlagStatus.COMPLETE and updated.flag.completed is not None
    assert backend.calls == ["update_item:m0:flag"]


async def test_editing_the_series_from_an_occurrence_targets_the_master(session, backend) -> None:
    occ = Event(
        id="occ3",
        folder_id="cal",
        subject="Jour fixe (verlegt)",
        start=T0 + timedelta(days=7),
        end=T0 + timedelta(days=7, hours=1),
        event_kind=EventKind.OCCURRENCE,
        series_id="master",
    )
    await session.update(occ, ["subject"], series=True)
    assert backend.calls == ["series_master:occ3", "update_item:master:subject"]


async def test_editing_one_occurrence_stays_on_the_occurrence(session, backend) -> None:
    occ = Event(
        id="occ3",
        folder_id="cal",
        subject="x",
        start=T0,
        end=T0 + timedelta(hours=1),
        event_kind=EventKind.OCCURRENCE,
    )
    await session.update(occ, ["subject"])
    assert backend.calls == ["update_item:occ3:subject"]


async def test_deleting_the_series_from_an_occurrence_deletes_the_master(session, backend) -> None:
    occ = Event(
        id="occ3",
        folder_id="cal",
        start=T0,
        end=T0 + timedelta(hours=1),
        event_kind=EventKind.OCCURRENCE,
    )
    await session.delete(occ, series=True)
    assert backend.calls == ["series_master:occ3", "delete_item:master"]


async def test_mailboxes_list_own_configured_archive_and_public(session, backend) -> None:
    boxes = await session.mailboxes()
    assert [(b.address, b.kind) for b in boxes] == [
        (ME, MailboxKind.OWN),
        (BOSS, MailboxKind.DELEGATED),
        ("poststelle@musterstadt.example", MailboxKind.FUNCTIONAL),
        (BOSS, MailboxKind.ARCHIVE),
        ("public", MailboxKind.PUBLIC),
    ]
    calls = len(backend.calls)
    await session.mailboxes()
    assert len(backend.calls) == calls  # cached


async def test_ambiguous_name_lists_the_candidates(session) -> None:
    with pytest.raises(InvalidInput) as err:
        await session.add_mailbox("stelle")
    assert "poststelle@" in str(err.value) and "leitstelle@" in str(err.value)


async def test_add_mailbox_by_name(session) -> None:
    box = await session.add_mailbox("Leitstelle")
    assert box.address == "leitstelle@musterstadt.example"
    assert box in await session.mailboxes()


async def test_graph_like_backend_has_no_public_folders_or_archive() -> None:
    backend = FakeBackend(capabilities=[Feature.SYNC])
    async with DelegateSession(backend) as session:
        boxes = await session.mailboxes()
        assert [b.kind for b in boxes] == [MailboxKind.OWN]
        with pytest.raises(Unsupported) as err:
            await session.folder_tree(Mailbox("public", "Public Folders", MailboxKind.PUBLIC))
        assert err.value.feature == "public_folders" and err.value.backend == "fake"
        with pytest.raises(Unsupported):
            await session.delegates(BOSS)


async def test_calendar_view_overlays_calendars_sorted_by_start(session, backend) -> None:
    boss_cal = folder("cal", FolderKind.CALENDAR, rights=rights_for_role(Role.EDITOR))
    team_cal = folder(
        "team",
        FolderKind.CALENDAR,
        rights=rights_for_role(Role.AUTHOR),
        mailbox="teamkalender@musterstadt.example",
    )
    backend.events = [
        Event(
            id="b",
            folder_id="cal",
            subject="Kreistag",
            start=T0 + timedelta(hours=2),
            end=T0 + timedelta(hours=3),
        ),
        Event(id="a", folder_id="team", subject="Teamrunde", start=T0, end=T0 + timedelta(hours=1)),
        Event(
            id="p",
            folder_id="cal",
            subject="Arzt",
            start=T0 + timedelta(hours=4),
            end=T0 + timedelta(hours=5),
            sensitivity=Sensitivity.PRIVATE,
            location="Praxis",
        ),
    ]
    events = await session.calendar_view([boss_cal, team_cal], T0, T0 + timedelta(days=1))
    assert [e.id for e in events] == ["a", "b", "p"]
    private = events[2]
    assert private.subject == "Private appointment" and private.location == ""


async def test_long_calendar_range_is_split_into_chunks(session, backend) -> None:
    cal = folder("cal", FolderKind.CALENDAR)
    await session.calendar_view([cal], T0, T0 + timedelta(days=100))
    assert len([c for c in backend.calls if c.startswith("calendar_view")]) == 2


async def test_calendar_view_needs_free_busy_rights(session, backend) -> None:
    cal = folder("cal", FolderKind.CALENDAR, rights=rights_for_role(Role.NONE))
    with pytest.raises(AccessDenied):
        await session.calendar_view([cal], T0, T0 + timedelta(days=1))
    fb = folder("cal", FolderKind.CALENDAR, rights=rights_for_role(Role.FREE_BUSY_TIME_ONLY))
    await session.calendar_view([fb], T0, T0 + timedelta(days=1))
    assert backend.calls == [f"calendar_view:cal:{T0.date()}:{(T0 + timedelta(days=1)).date()}"]


async def test_respond_only_with_accept_tentative_decline(session, backend) -> None:
    with pytest.raises(InvalidInput):
        await session.respond("req1", ResponseType.ORGANIZER)
    await session.respond("req1", ResponseType.DECLINE, "Bin im Urlaub")
    assert backend.calls == ["respond:req1:decline:Bin im Urlaub:None"]


async def test_respond_to_a_listed_request_passes_its_change_key(session, backend) -> None:
    request = Message(id="req2", change_key="ck2", subject="Einladung", is_meeting_request=True)
    await session.respond(request, ResponseType.ACCEPT)
    # A plain mail handed in by id or as an item is read by the backend first (no key).
    await session.respond(Message(id="m3", change_key="ck3"), ResponseType.ACCEPT)
    assert backend.calls == ["respond:req2:accept:None:ck2", "respond:m3:accept:None:None"]


async def test_update_many_is_one_backend_call_and_keeps_refusals_per_item(
    session, backend
) -> None:
    await session.folder_tree(Mailbox(BOSS, "Chef", MailboxKind.DELEGATED))
    backend.tree = FolderNode(
        folder("root"),
        (
            FolderNode(folder("inbox", rights=Rights.full())),
            FolderNode(folder("read-only", rights=rights_for_role(Role.REVIEWER))),
        ),
    )
    await session.folder_tree(Mailbox(BOSS, "Chef", MailboxKind.DELEGATED))
    backend.calls.clear()
    mails = [Message(id=f"m{i}", folder_id="inbox", is_read=False) for i in range(50)]
    refused = Message(id="r1", folder_id="read-only")
    new = Message(id="")
    outcomes = await session.update_many(
        [dataclasses.replace(m, is_read=True) for m in [*mails[:25], refused, new, *mails[25:]]],
        ["is_read"],
    )
    assert len(outcomes) == 52
    assert isinstance(outcomes[25], AccessDenied) and isinstance(outcomes[26], InvalidInput)
    written = [o for o in outcomes if isinstance(o, Message)]
    assert [m.id for m in written] == [m.id for m in mails]
    assert all(m.is_read and m.change_key == "new" for m in written)
    assert backend.calls == [f"update_items:{','.join(m.id for m in mails)}:is_read"]
    with pytest.raises(InvalidInput):
        await session.update_many(mails, [])


async def test_move_many_is_one_backend_call_in_order(session, backend) -> None:
    target = folder("archiv", rights=Rights.full())
    outcomes = await session.move_many(["m1", "gone", Message(id="m2")], target)
    assert outcomes[0] == "m1-moved" and outcomes[2] == "m2-moved"
    assert isinstance(outcomes[1], NotFound)
    assert backend.calls == ["move_items:m1,gone,m2:archiv"]
    with pytest.raises(AccessDenied):
        await session.move_many(["m3"], folder("ro", rights=rights_for_role(Role.REVIEWER)))
    assert len(backend.calls) == 1


async def test_a_tree_by_key_lists_the_mailboxes_only_for_an_archive(session, backend) -> None:
    await session.folder_tree("public")
    await session.folder_tree(BOSS)
    assert backend.calls == ["folder_tree:public", f"folder_tree:{BOSS}"]
    backend.calls.clear()
    await session.folder_tree(f"archive:{BOSS}")
    assert "own_mailbox" in backend.calls and backend.calls[-1] == f"folder_tree:archive:{BOSS}"


async def test_send_needs_a_valid_recipient(session, backend) -> None:
    with pytest.raises(InvalidInput):
        await session.send(Message(subject="x"))
    with pytest.raises(InvalidInput):
        await session.send(Message(subject="x", to=(Address("not an address"),)))
    assert backend.calls == []


async def test_set_permission_replaces_the_principals_entry(session, backend) -> None:
    owned = folder("cal", FolderKind.CALENDAR, rights=Rights.full(), mailbox=ME)
    result = await session.set_permission(owned, "Poststelle@musterstadt.example", Role.REVIEWER)
    assert [(p.principal, p.role) for p in result] == [
        ("poststelle@musterstadt.example", Role.REVIEWER)
    ]
    with pytest.raises(NotFound, match="niemand@"):
        await session.set_permission(owned, "niemand@musterstadt.example", Role.REVIEWER)
    not_owner = folder("cal", FolderKind.CALENDAR, rights=rights_for_role(Role.EDITOR))
    with pytest.raises(AccessDenied):
        await session.set_permission(not_owner, "x@musterstadt.example", Role.REVIEWER)


async def test_sync_yields_changes_then_a_checkpoint_per_batch(session, backend) -> None:
    backend.sync_rounds = [
        (
            [SyncChange(SyncChangeKind.CREATED, "m1"), SyncChange(SyncChangeKind.DELETED, "m2")],
            False,
        ),
        ([SyncChange(SyncChangeKind.READ_FLAG, "m3", is_read=True)], True),
    ]
    events = [e async for e in session.sync(folder("inbox"))]
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["SyncChange", "SyncChange", "SyncCheckpoint", "SyncChange", "SyncCheckpoint"]
    assert events[-1] == SyncCheckpoint(state="2", done=True)


async def test_sync_without_changes_is_one_round(session, backend) -> None:
    events = [e async for e in session.sync(folder("inbox"), "7")]
    assert events == [SyncCheckpoint(state="7", done=True)]
    assert backend.calls == ["sync_items:inbox:7"]


async def test_subscription_delivers_events_and_unsubscribes_on_close(session, backend) -> None:
    stream = session.subscribe([folder("inbox")])
    first = await anext(stream)
    assert first.kind is MailboxEventKind.NEW_MAIL and first.item_id == "m9"
    await stream.aclose()
    assert backend.calls[-1] == "unsubscribed"


async def test_save_attachment_writes_the_file_and_refuses_to_overwrite(
    session, tmp_path: Path
) -> None:
    att = Attachment("a1", "../Befund 1.pdf")
    path = await session.save_attachment(att, tmp_path)
    assert path.parent == tmp_path and path.read_bytes() == b"%PDF-1.7 data"
    assert list(tmp_path.iterdir()) == [path]
    with pytest.raises(InvalidInput):
        await session.save_attachment(att, tmp_path)


async def test_get_fetches_body_in_one_call(session, backend) -> None:
    msg = await session.get("m3")
    assert msg.body == "hello"
    with pytest.raises(NotFound):
        await session.get("nope")


async def test_paging_goes_on_past_a_page_of_hidden_private_items() -> None:
    backend = FakeBackend(messages=6)
    backend.messages = [
        dataclasses.replace(m, sensitivity=Sensitivity.PRIVATE if i < 3 else Sensitivity.NORMAL)
        for i, m in enumerate(backend.messages)
    ]
    async with DelegateSession(backend) as session:
        editor = folder("inbox", rights=rights_for_role(Role.EDITOR))
        first = await session.items(editor, ItemQuery(limit=3))
        assert first.items == () and first.next_offset == 3
        ids = [m.id async for m in session.iter_items(editor, ItemQuery(limit=3))]
    assert ids == ["m3", "m4", "m5"]
