"""An in-memory `Backend` shaped like the demo organisation, for TUI tests and the TUI benchmark.

A test double of the one seam `DelegateSession` offers (any Backend): it keeps items in lists,
expands weekly/daily series with moved and deleted occurrences, and records what was sent and
answered so tests can assert on behalf sending and meeting responses. Rights come from
`med.permissions.rights_for_role` as the real backends report them on `Folder.rights`.
"""

from __future__ import annotations

import dataclasses
import itertools
import queue
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from med.backends.base import one_by_one
from med.errors import AccessDenied, InvalidInput, MedError, NotFound, Unreachable, Unsupported
from med.model import (
    Address,
    Attachment,
    AttachmentContent,
    Attendee,
    BusySlot,
    Contact,
    Daily,
    Event,
    EventKind,
    Feature,
    Flag,
    FlagStatus,
    Folder,
    FolderKind,
    FolderNode,
    FreeBusy,
    Importance,
    Item,
    ItemQuery,
    Mailbox,
    MailboxEvent,
    MailboxEventKind,
    MailboxKind,
    Message,
    Note,
    Page,
    Recurrence,
    ResponseType,
    Rights,
    Role,
    SendOptions,
    Task,
    Voicemail,
    Weekday,
    Weekly,
)
from med.permissions import rights_for_role
from med.scheduling import (
    Availability,
    MeetingSearch,
    Room,
    RoomList,
    SlotSuggestion,
    WorkingHours,
    suggest,
)

DOMAIN = "musterstadt.example"
ME = f"assistenz@{DOMAIN}"
CHEF = f"chef@{DOMAIN}"
POST = f"poststelle@{DOMAIN}"
TEAM = f"teamkalender@{DOMAIN}"
#: Monday 23 November 2026, 09:00 local (UTC in tests): the frozen "now" of the TUI tests.
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def _fid(mailbox: str, name: str) -> str:
    return f"{mailbox.split('@')[0]}:{name}"


class FakeOrg:
    """Backend protocol implementation over dicts; not thread-safe beyond the GIL (tests only)."""

    name = "fake"
    user = ME
    capabilities = frozenset(str(f) for f in Feature)

    def __init__(self, inbox_size: int = 40) -> None:
        self.ids = itertools.count(1)
        self.folders: dict[str, Folder] = {}
        self.trees: dict[str, FolderNode] = {}
        self.items: dict[str, Item] = {}
        self.order: dict[str, list[str]] = {}  # folder id → item ids, newest first
        self.exceptions: dict[tuple[str, date], Event] = {}  # (series id, day) → moved occurrence
        self.deleted: set[tuple[str, date]] = set()
        self.sent: list[
            tuple[Message | str, SendOptions, str]
        ] = []  # (message or item id, options, mode)
        self.responses: list[tuple[str, ResponseType]] = []
        #: (item id, response, comment, sent to the organizer) of every answer.
        self.answers: list[tuple[str, ResponseType, str | None, bool]] = []
        self.proposals: list[tuple[str, ResponseType, tuple[datetime, datetime]]] = []
        self.calls: list[str] = []
        #: While True every write answers as an unreachable server would (offline tests).
        self.unreachable = False
        #: While False, `subscribe` says the backend has no notifications (most tests).
        self.live = False
        #: While cleared, the directory (`resolve_names`) waits: a slow server's completion.
        self.directory_open = threading.Event()
        self.directory_open.set()
        self._subscribers: list[queue.Queue[MailboxEvent]] = []
        self._build(inbox_size)

    # ------------------------------------------------------------------ seeding

    def _folder(
        self,
        mailbox: str,
        name: str,
        kind: FolderKind,
        role: Role | None,
        distinguished: str | None = None,
        parent: str | None = None,
    ) -> Folder:
        rights = Rights.full() if role is None else rights_for_role(role)
        folder = Folder(
            id=_fid(mailbox, distinguished or name),
            mailbox=mailbox,
            name=name,
            kind=kind,
            parent_id=parent,
            distinguished=distinguished,
            rights=rights,
            unread_count=0,
            total_count=0,
        )
        self.folders[folder.id] = folder
        self.order[folder.id] = []
        return folder

    def _tree(
        self, mailbox: str, specs: Sequence[tuple[str, FolderKind, Role | None, str | None]]
    ) -> None:
        root = Folder(id=_fid(mailbox, "root"), mailbox=mailbox, name="Top", kind=FolderKind.OTHER)
        self.folders[root.id] = root
        children = tuple(
            FolderNode(self._folder(mailbox, name, kind, role, dist, root.id))
            for name, kind, role, dist in specs
        )
        self.trees[mailbox] = FolderNode(root, children)

    def _add(self, folder_id: str, item: Item, *, recount: bool = True) -> Item:
        item = dataclasses.replace(
            item,
            id=item.id or f"i{next(self.ids)}",
            folder_id=folder_id,
            mailbox=self.folders[folder_id].mailbox,
            change_key="1",
        )
        self.items[item.id] = item
        self.order[folder_id].insert(0, item.id)
        if recount:
            self._recount(folder_id)
        return item

    def _recount(self, folder_id: str) -> None:
        ids = self.order[folder_id]
        unread = sum(
            1 for i in ids if isinstance(self.items[i], Message) and not self.items[i].is_read
        )  # type: ignore[attr-defined]
        self.folders[folder_id] = dataclasses.replace(
            self.folders[folder_id], unread_count=unread, total_count=len(ids)
        )

    def _build(self, inbox_size: int) -> None:
        full: Role | None = None
        mail, cal = FolderKind.MAIL, FolderKind.CALENDAR
        self._tree(
            ME,
            [
                ("Posteingang", mail, full, "inbox"),
                ("Kalender", cal, full, "calendar"),
                ("Aufgaben", FolderKind.TASKS, full, "tasks"),
                ("Kontakte", FolderKind.CONTACTS, full, "contacts"),
                ("Notizen", FolderKind.NOTES, full, "notes"),
                ("Gesendete Elemente", mail, full, "sentitems"),
            ],
        )
        self._tree(
            CHEF,
            [
                ("Posteingang", mail, Role.EDITOR, "inbox"),
                ("Kalender", cal, Role.EDITOR, "calendar"),
                ("Aufgaben", FolderKind.TASKS, Role.EDITOR, "tasks"),
                ("Kontakte", FolderKind.CONTACTS, Role.REVIEWER, "contacts"),
                ("Erledigt", mail, Role.EDITOR, None),
                ("Entwürfe", mail, Role.EDITOR, "drafts"),
            ],
        )
        self._tree(
            POST,
            [
                ("Posteingang", mail, Role.EDITOR, "inbox"),
                ("Kalender", cal, Role.EDITOR, "calendar"),
            ],
        )
        self._tree(TEAM, [("Kalender", cal, Role.AUTHOR, "calendar")])
        self._tree(
            "public",
            [
                ("Verwaltung", mail, Role.EDITOR, None),
                ("Termine Kreistag", cal, Role.REVIEWER, None),
                ("Adressen extern", FolderKind.CONTACTS, Role.REVIEWER, None),
                ("Aufgaben Bauhof", FolderKind.TASKS, Role.REVIEWER, None),
            ],
        )
        self._tree(f"archive:{CHEF}", [("Archiv 2025", mail, Role.REVIEWER, None)])

        people = [
            ("Lena Koch", f"sachbearbeitung@{DOMAIN}"),
            ("Amt für Umwelt", f"umwelt@{DOMAIN}"),
            ("Bürgerbüro", f"buergerbuero@{DOMAIN}"),
            ("Dr. Jens Wolf", "wolf@kreis.example"),
        ]
        topics = [
            "Haushaltsplan 2027",
            "Sitzung Kreisausschuss",
            "Bauantrag Feldweg 3",
            "Presseanfrage Klinikum",
            "Dienstreise Berlin",
            "Personalrat",
            "Winterdienst",
        ]
        inbox = _fid(CHEF, "inbox")
        for n in range(inbox_size):
            name, email = people[n % len(people)]
            when = NOW - timedelta(hours=n * 3 + 1)
            html = n % 3 == 0
            body = (
                (
                    f"<p>Sehr geehrte Frau Dr. Berg,</p><p>anbei die Unterlagen zu "
                    f"<b>{topics[n % len(topics)]}</b>.</p><ul><li>Entwurf</li><li>Anlage</li></ul>"
                    f"<p>Mit freundlichen Grüßen<br>{name}</p>"
                )
                if html
                else (
                    f"Sehr geehrte Frau Dr. Berg,\n\nbitte um Rückmeldung zu "
                    f"{topics[n % len(topics)]}.\n\nGrüße\n{name}"
                )
            )
            self._add(
                inbox,
                Message(
                    id=f"m{n:05d}",
                    subject=f"{topics[n % len(topics)]} ({n + 1})",
                    from_=Address(email, name),
                    to=(Address(CHEF, "Dr. Anna Berg"),),
                    received=when,
                    sent=when,
                    is_read=n % 4 != 0,
                    body=body,
                    body_is_html=html,
                    importance=Importance.HIGH if n % 11 == 5 else Importance.NORMAL,
                    has_attachments=n % 5 == 2,
                    attachments=(Attachment(f"a{n}", "Unterlagen.pdf", "application/pdf", 48213),)
                    if n % 5 == 2
                    else (),
                ),
                recount=False,
            )
        self.order[inbox].reverse()  # newest first
        self._recount(inbox)
        self._add(
            inbox,
            Voicemail(
                id="vm1",
                subject="Sprachnachricht von +49 30 1234567",
                from_=Address(f"voicemail@{DOMAIN}", "Voicemail"),
                received=NOW - timedelta(minutes=20),
                caller="+49 30 1234567",
                duration_s=34,
                has_attachments=True,
                attachments=(Attachment("vm1-audio", "nachricht.wav", "audio/wav", 272000),),
                body="Sprachnachricht, 34 Sekunden.",
            ),
        )
        self._add(
            _fid(POST, "inbox"),
            Message(
                subject="Antrag auf Akteneinsicht",
                from_=Address("buerger@example.org", "K. Meier"),
                received=NOW - timedelta(days=1),
                body="Bitte um Akteneinsicht.",
            ),
        )
        self._add(
            _fid("public", "Verwaltung"),
            Message(
                subject="Rundschreiben 12/2026",
                from_=Address(f"hauptamt@{DOMAIN}", "Hauptamt"),
                received=NOW - timedelta(days=2),
                is_read=True,
                body="Dienstanweisung Winterdienst.",
            ),
        )
        self._add(
            _fid("public", "Adressen extern"),
            Contact(
                subject="Stadtwerke Musterstadt",
                display_name="Stadtwerke Musterstadt",
                company="Stadtwerke",
                emails=("info@stadtwerke.example",),
                phones={"business": "+49 1234 5670"},
            ),
        )
        self._add(
            _fid(CHEF, "contacts"),
            Contact(
                subject="Dr. Jens Wolf",
                display_name="Dr. Jens Wolf",
                company="Kreis",
                emails=("wolf@kreis.example",),
            ),
        )
        self._add(
            _fid(CHEF, "tasks"),
            Task(subject="Rede Neujahrsempfang vorbereiten", due=NOW + timedelta(days=10)),
        )
        self._add(
            _fid(ME, "notes"), Note(subject="Rückruf Presse", body="Rückruf Presse bis 12 Uhr")
        )
        monday = NOW.replace(hour=0)
        cal = _fid(CHEF, "calendar")
        self._add(
            cal,
            Event(
                subject="Jour fixe Dezernenten",
                start=monday.replace(hour=10),
                end=monday.replace(hour=11),
                location="Raum 204",
                is_meeting=True,
                organizer=Address(CHEF, "Dr. Anna Berg"),
                event_kind=EventKind.SERIES,
                recurrence=Recurrence(Weekly((Weekday.MONDAY,)), monday.date()),
            ),
        )
        self._add(
            cal,
            Event(
                subject="Einladung: Klinikum Aufsichtsrat",
                start=NOW + timedelta(days=1, hours=5),
                end=NOW + timedelta(days=1, hours=7),
                location="Klinikum",
                is_meeting=True,
                my_response=ResponseType.NO_RESPONSE,
                organizer=Address("wolf@kreis.example", "Dr. Jens Wolf"),
                attendees=(Attendee(Address(CHEF, "Dr. Anna Berg")),),
            ),
        )
        self._add(
            _fid(TEAM, "calendar"),
            Event(
                subject="Teambesprechung",
                start=NOW + timedelta(hours=5),
                end=NOW + timedelta(hours=6),
                location="Raum 101",
            ),
        )
        self._add(
            _fid("public", "Termine Kreistag"),
            Event(
                subject="Kreistag Sitzung",
                start=NOW + timedelta(days=3, hours=7),
                end=NOW + timedelta(days=3, hours=10),
                location="Kreishaus",
            ),
        )

    # ------------------------------------------------------------------ Backend protocol

    def close(self) -> None:
        self.calls.append("close")

    def own_mailbox(self) -> Mailbox:
        return Mailbox(ME, "Tom Weber", MailboxKind.OWN)

    def resolve_names(self, query: str) -> Sequence[Mailbox]:
        self.directory_open.wait(timeout=30)
        if not query.strip():
            raise InvalidInput("Give an address or a name.")
        people = [
            Mailbox(CHEF, "Dr. Anna Berg", MailboxKind.DELEGATED),
            Mailbox(POST, "Poststelle", MailboxKind.FUNCTIONAL),
            Mailbox(TEAM, "Teamkalender", MailboxKind.SHARED),
            Mailbox(f"sachbearbeitung@{DOMAIN}", "Lena Koch", MailboxKind.DELEGATED),
        ]
        q = query.strip().lower()
        return [p for p in people if q in p.address or q in p.display_name.lower()]

    def archive_of(self, mailbox: Mailbox) -> Mailbox | None:
        if mailbox.address == CHEF:
            return Mailbox(CHEF, "Archiv Dr. Anna Berg", MailboxKind.ARCHIVE)
        return None

    def _refresh(self, node: FolderNode) -> FolderNode:
        return FolderNode(
            self.folders[node.folder.id], tuple(self._refresh(c) for c in node.children)
        )

    def folder_tree(self, mailbox: Mailbox) -> FolderNode:
        key = mailbox.key if mailbox.kind is MailboxKind.ARCHIVE else mailbox.address
        if key not in self.trees:
            raise NotFound(f"No mailbox {mailbox.address}.", mailbox=mailbox.address)
        return self._refresh(self.trees[key])

    def default_folder(self, mailbox: str, name: str) -> Folder:
        try:
            return self.folders[_fid(mailbox, name)]
        except KeyError:
            raise NotFound(f"{mailbox} has no folder {name}.") from None

    def get_folder(self, folder_id: str) -> Folder:
        try:
            return self.folders[folder_id]
        except KeyError:
            raise NotFound("No such folder.") from None

    def find_items(self, folder: Folder, query: ItemQuery) -> Page[Item]:
        self.calls.append(f"find_items:{folder.id}:{query.offset}")
        items = [self.items[i] for i in self.order[folder.id]]
        if query.search:
            needle = query.search.lower()
            items = [
                i
                for i in items
                if needle in i.subject.lower()
                or needle in (i.body or "").lower()
                or (
                    isinstance(i, Message)
                    and i.from_
                    and needle in (i.from_.name + i.from_.email).lower()
                )
            ]
        chunk = items[query.offset : query.offset + query.limit]
        summaries = tuple(dataclasses.replace(i, body=None) for i in chunk)
        return Page(summaries, query.offset, len(items), query.offset + len(chunk) < len(items))

    def get_items(self, item_ids: Sequence[str]) -> Sequence[Item]:
        out = []
        for item_id in item_ids:
            item = self.items.get(item_id) or self._occurrence(item_id)
            if item is None:
                raise NotFound("The item no longer exists.", item=item_id)
            out.append(item)
        return out

    # calendar ----------------------------------------------------------

    def _occurrence(self, item_id: str) -> Event | None:
        series_id, _, day = item_id.partition("@")
        master = self.items.get(series_id)
        if not day or not isinstance(master, Event):
            return None
        d = date.fromisoformat(day)
        if (series_id, d) in self.exceptions:
            return self.exceptions[(series_id, d)]
        start = master.start.replace(year=d.year, month=d.month, day=d.day)
        return dataclasses.replace(
            master,
            id=item_id,
            start=start,
            end=start + (master.end - master.start),
            event_kind=EventKind.OCCURRENCE,
            series_id=series_id,
            recurrence=None,
        )

    def _expand(self, master: Event, start: datetime, end: datetime) -> Iterator[Event]:
        rec = master.recurrence
        assert rec is not None
        day = rec.start
        count = 0
        last = (end + timedelta(days=1)).date()
        while day <= last and (rec.end is None or day <= rec.end):
            pattern = rec.pattern
            hit = (
                isinstance(pattern, Daily) and (day - rec.start).days % pattern.interval == 0
            ) or (
                isinstance(pattern, Weekly)
                and WEEKDAYS[day.weekday()] in [str(w) for w in pattern.weekdays]
                and ((day - rec.start).days // 7) % pattern.interval == 0
            )
            if hit:
                count += 1
                if rec.count is not None and count > rec.count:
                    return
                if (master.id, day) not in self.deleted:
                    occ = self._occurrence(f"{master.id}@{day.isoformat()}")
                    if occ is not None and occ.start < end and occ.end > start:
                        yield occ
            day += timedelta(days=1)

    def calendar_view(self, folder: Folder, start: datetime, end: datetime) -> Sequence[Event]:
        out: list[Event] = []
        for item_id in self.order[folder.id]:
            item = self.items[item_id]
            if not isinstance(item, Event):
                continue
            if item.recurrence is not None:
                out.extend(self._expand(item, start, end))
            elif item.start < end and item.end > start:
                out.append(item)
        # moved occurrences may have left their own day
        for (series_id, _), occ in self.exceptions.items():
            if (
                self.items[series_id].folder_id == folder.id
                and occ.start < end
                and occ.end > start
                and occ not in out
            ):
                out.append(occ)
        return sorted(out, key=lambda e: e.start)

    def series_master(self, item_id: str) -> Event:
        master = self.items.get(item_id.partition("@")[0])
        if not isinstance(master, Event) or master.recurrence is None:
            raise NotFound("This is not part of a series.", item=item_id)
        return master

    # changes -------------------------------------------------------------

    def create_item(self, folder: Folder, item: Item, *, send_invitations: bool) -> Item:
        self.calls.append(f"create_item:{folder.id}")
        if isinstance(item, Event) and item.recurrence is not None:
            item = dataclasses.replace(item, event_kind=EventKind.SERIES)
        return self._add(folder.id, item)

    def update_item(self, item: Item, fields: Sequence[str], *, send_updates: bool) -> Item:
        if self.unreachable:
            raise Unreachable("The server cannot be reached.")
        self.calls.append(f"update_item:{item.id}:{','.join(fields)}")
        if "@" in item.id and isinstance(item, Event):
            series_id, _, day = item.id.partition("@")
            changed = dataclasses.replace(item, event_kind=EventKind.EXCEPTION)
            self.exceptions[(series_id, date.fromisoformat(day))] = changed
            return changed
        current = self.items.get(item.id)
        if current is None:
            raise NotFound("The item no longer exists.", item=item.id)
        updated = dataclasses.replace(
            current,
            **{f: getattr(item, f) for f in fields},
            change_key=str(int(current.change_key or "1") + 1),
        )
        self.items[item.id] = updated
        if updated.folder_id:
            self._recount(updated.folder_id)
        return dataclasses.replace(updated, body=None)

    def delete_item(self, item_id: str, *, hard: bool, send_cancellations: bool) -> None:
        self.calls.append(f"delete_item:{item_id}")
        if "@" in item_id:
            series_id, _, day = item_id.partition("@")
            self.deleted.add((series_id, date.fromisoformat(day)))
            return
        item = self.items.pop(item_id, None)
        if item is None:
            raise NotFound("The item no longer exists.", item=item_id)
        assert item.folder_id
        self.order[item.folder_id].remove(item_id)
        self._recount(item.folder_id)

    def move_item(self, item_id: str, folder: Folder) -> str:
        item = self.items[item_id]
        self.delete_item(item_id, hard=True, send_cancellations=False)
        return self._add(folder.id, dataclasses.replace(item, id="")).id

    def update_items(
        self, items: Sequence[Item], fields: Sequence[str], *, send_updates: bool
    ) -> Sequence[Item | MedError]:
        return one_by_one(
            lambda item: self.update_item(item, fields, send_updates=send_updates), items
        )

    def move_items(self, item_ids: Sequence[str], folder: Folder) -> Sequence[str | MedError]:
        return one_by_one(lambda item_id: self.move_item(item_id, folder), item_ids)

    def copy_item(self, item_id: str, folder: Folder) -> str:
        return self._add(folder.id, dataclasses.replace(self.items[item_id], id="")).id

    def attachment(self, attachment_id: str) -> AttachmentContent:
        for item in self.items.values():
            for att in item.attachments:
                if att.id == attachment_id:
                    data = (
                        b"RIFF\x00\x00\x00\x00WAVE"
                        if att.content_type.startswith("audio/")
                        else b"%PDF-1.7\n"
                    )
                    return AttachmentContent(att, data)
        raise NotFound("No such attachment.")

    def export_mime(self, item_id: str) -> bytes:
        raise Unsupported("mime_export", self.name)

    def master_categories(self, mailbox: str) -> Sequence[str]:
        return ["Rot", "Blau", "Presse"]

    def send(self, message: Message, options: SendOptions) -> None:
        self.sent.append((message, options, "new"))

    def save_draft(self, message: Message, options: SendOptions) -> Message:
        """In the From mailbox's Drafts where we may create items there, else refused."""
        if self.unreachable:
            raise Unreachable("The server cannot be reached.")
        owner = options.from_mailbox or ME
        drafts = self.folders.get(_fid(owner, "drafts"))
        if drafts is None or drafts.rights is None or not drafts.rights.create_items:
            raise AccessDenied("You may not create items in this mailbox's Drafts.", mailbox=owner)
        self.calls.append(f"save_draft:{owner}")
        return self._add(
            drafts.id, dataclasses.replace(message, is_draft=True, from_=Address(owner))
        )

    def reply(self, item_id: str, body: str, *, reply_all: bool, options: SendOptions) -> None:
        if item_id not in self.items:
            raise NotFound("The message no longer exists.", item=item_id)
        self.sent.append((item_id, options, "reply-all" if reply_all else "reply"))

    def forward(
        self, item_id: str, to: Sequence[Address], body: str, *, options: SendOptions
    ) -> None:
        self.sent.append((item_id, options, "forward"))

    def respond(
        self,
        item_id: str,
        response: ResponseType,
        message: str | None,
        *,
        send: bool,
        proposal: tuple[datetime, datetime] | None = None,
        change_key: str | None = None,
    ) -> None:
        self.responses.append((item_id, response))
        self.answers.append((item_id, response, message, send))
        if proposal is not None:
            self.proposals.append((item_id, response, proposal))
        item = self.items.get(item_id)
        if isinstance(item, Event):
            self.items[item_id] = dataclasses.replace(item, my_response=response)

    def free_busy(
        self, addresses: Sequence[str], start: datetime, end: datetime
    ) -> Sequence[FreeBusy]:
        out = []
        for address in addresses:
            cal = self.folders.get(_fid(address, "calendar"))
            if cal is None:
                out.append(FreeBusy(address, (), error="No free/busy data for this person."))
                continue
            slots = tuple(
                BusySlot(e.start, e.end, e.show_as) for e in self.calendar_view(cal, start, end)
            )
            out.append(FreeBusy(address, slots))
        return out

    # The scheduling seam (med.backends.scheduling): Exchange's default working hours for all,
    # slots by med's own rule, as the EWS backend computes them.

    def availability(
        self, addresses: Sequence[str], start: datetime, end: datetime
    ) -> Sequence[Availability]:
        hours = WorkingHours(tuple(Weekday)[:5], time(8), time(17), "UTC")
        return [
            Availability(f.address, f.slots, None if f.error else hours, f.error)
            for f in self.free_busy(addresses, start, end)
        ]

    def suggest_times(self, search: MeetingSearch) -> tuple[Sequence[SlotSuggestion], str]:
        found = self.availability([*search.people, *search.rooms], search.start, search.end)
        return suggest(search, {a.address.lower(): a for a in found})

    def room_lists(self) -> Sequence[RoomList]:
        return [RoomList(f"raeume@{DOMAIN}", "Räume Kreishaus")]

    def rooms(self, room_list: str | None) -> Sequence[Room]:
        return []

    def permissions(self, folder: Folder) -> Sequence[Any]:
        raise Unsupported("folder_permissions", self.name)

    def set_permissions(self, folder: Folder, permissions: Sequence[Any]) -> None:
        raise Unsupported("folder_permissions", self.name)

    def delegates(self, mailbox: str) -> Any:
        raise Unsupported("delegates", self.name)

    def sync_items(self, folder: Folder, state: str | None, max_changes: int) -> Any:
        raise Unsupported("sync", self.name)

    def subscribe(self, folders: Sequence[Folder]) -> Iterator[Any]:
        """Events put by `deliver`; a heartbeat every 0.1 s keeps each wait short."""
        if not self.live:
            raise Unsupported("notifications", self.name)
        watched = {f.id for f in folders}
        inbox: queue.Queue[MailboxEvent] = queue.Queue()
        self._subscribers.append(inbox)

        def events() -> Iterator[MailboxEvent]:
            try:
                while True:
                    try:
                        event = inbox.get(timeout=0.1)
                    except queue.Empty:
                        yield MailboxEvent(MailboxEventKind.STATUS)
                        continue
                    if event.folder_id in watched:
                        yield event
            finally:
                self._subscribers.remove(inbox)

        return events()

    def deliver(self, folder_id: str, message: Message) -> Message:
        """New mail arrives in a folder, as the transport would put it there."""
        added = self._add(folder_id, message)
        assert isinstance(added, Message)
        for subscriber in list(self._subscribers):
            subscriber.put(MailboxEvent(MailboxEventKind.NEW_MAIL, folder_id, added.id))
        return added


__all__ = ["CHEF", "ME", "NOW", "POST", "TEAM", "FakeOrg", "Flag", "FlagStatus"]
