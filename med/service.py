"""`DelegateSession`: the one public entry to mailboxes, folders and items.

Example::

    from med import DelegateSession, ItemQuery, Profile

    async with DelegateSession.open(profile, password="...") as session:
        boss = (await session.mailboxes())[1]
        inbox = await session.default_folder(boss.address, "inbox")
        page = await session.items(inbox, ItemQuery(limit=50, unread_only=True))

The session is async; every backend call (blocking: exchangelib, O365) runs in a worker
thread pool. It knows the current user's effective rights on folders it has seen and refuses
what they do not allow with `AccessDenied` before asking the server; the server still
decides everything else. It holds no retry loop: the backend has the one retry layer; the
one call it repeats is one refused on a folder its folder cache named, once it has asked
the server for that folder afresh (`default_folder`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import threading
import typing
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from med.assistant import AssistantMixin
from med.backends.base import Backend
from med.errors import (
    AccessDenied,
    InvalidInput,
    MedError,
    NotFound,
    Unreachable,
    Unsupported,
)
from med.folder_cache import FolderCache, path_key, well_known_key
from med.model import (
    Address,
    Attachment,
    AttachmentContent,
    Delegate,
    EditScope,
    Event,
    EventKind,
    Feature,
    Flag,
    FlagStatus,
    Folder,
    FolderKind,
    FolderNode,
    FreeBusy,
    Item,
    ItemQuery,
    Mailbox,
    MailboxEvent,
    MailboxKind,
    MeetingDelivery,
    Message,
    Page,
    Permission,
    Profile,
    ResponseType,
    Rights,
    Role,
    SendOptions,
    Sensitivity,
    SortField,
    SyncCheckpoint,
    SyncEvent,
    Task,
    Voicemail,
    WellKnownFolder,
)
from med.planner import SchedulingMixin

__all__ = ["DelegateSession"]

T = TypeVar("T")

#: How many items one sync round asks for (EWS allows up to 512).
SYNC_BATCH = 512
#: How long closing a watch waits for its thread to unsubscribe.
WATCH_STOP_S = 1.0
#: The longest calendar range one request covers; longer views are split.
MAX_VIEW_DAYS = 62

#: The public folder tree, listed as one more mailbox.
_PUBLIC = Mailbox("public", "Public Folders", MailboxKind.PUBLIC)

_RESPONSES = (ResponseType.ACCEPT, ResponseType.TENTATIVE, ResponseType.DECLINE)


class DelegateSession(AssistantMixin, SchedulingMixin):
    """Work in one's own and other people's mailboxes through one `Backend`.

    Args:
        backend: any object implementing `med.backends.base.Backend`.
        mailboxes: the mailboxes besides one's own the user works in: addresses or names
            (resolved by the server), "functional:ADDRESS" / "shared:ADDRESS" for mailboxes
            whose kind the server cannot tell, or `Mailbox` values.
        max_workers: threads for blocking backend calls.
        folder_cache: where well-known folders and folders found by path are remembered
            across sessions (`med.folder_cache`); None: each session asks the server afresh.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        mailboxes: Sequence[str | Mailbox] = (),
        max_workers: int = 4,
        folder_cache: FolderCache | None = None,
    ) -> None:
        self._backend = backend
        self._cache = folder_cache
        #: Folders served from the cache this session and not learnt afresh since: a refusal
        #: on one of them may be the cache's error, not the user's.
        self._from_cache: set[str] = set()
        self._configured = [_configured_mailbox(m) if isinstance(m, str) else m for m in mailboxes]
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="med")
        self._folders: dict[str, Folder] = {}
        self._lock = threading.Lock()
        self._mailboxes: list[Mailbox] | None = None
        self._closed = False
        self._watches: set[_WatchThread] = set()

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def open(
        cls,
        profile: Profile,
        *,
        password: str | None = None,
        token_cache: Path | None = None,
        max_workers: int = 4,
        cache_dir: Path | None = None,
    ) -> DelegateSession:
        """A session for a profile, with the backend and sign-in the profile names.

        Connecting is lazy: the first call talks to the server. `password` serves Basic, NTLM
        and Kerberos without a ticket cache; an OAuth (Graph) profile takes its tokens from
        MSAL's cache file `token_cache`, where a sign-in put them. With `cache_dir` the
        session remembers folders there across sessions (`med.folder_cache`), and the
        server's version when the profile names none.

        Raises:
            InvalidInput: the profile names an unknown backend or lacks what it needs.
        """
        from med.backends import create_backend

        cache = FolderCache.for_profile(cache_dir, profile) if cache_dir is not None else None
        if cache is not None and profile.version is None and cache.server_version:
            profile = dataclasses.replace(profile, version=cache.server_version)
        backend = create_backend(profile, password=password, token_cache=token_cache)
        return cls(
            backend, mailboxes=profile.mailboxes, max_workers=max_workers, folder_cache=cache
        )

    async def close(self) -> None:
        """Close the backend and the worker pool; the session is unusable afterwards."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            watches = list(self._watches)
        for watch in watches:  # open streams end now, not when the server times them out
            watch.stop()
        if self._cache is not None:
            self._cache.learn_server_version(getattr(self._backend, "server_version", None))
        await self._run(self._backend.close)
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> DelegateSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))
        except Unreachable as exc:
            # Which server could not be reached: a backend may name its address in `url`.
            if exc.url is None:
                exc.url = getattr(self._backend, "url", None) or None
            raise

    # ------------------------------------------------------------------ who and what

    @property
    def user(self) -> str:
        """The signed-in user's address."""
        return self._backend.user

    @property
    def backend_name(self) -> str:
        return self._backend.name

    @property
    def capabilities(self) -> frozenset[str]:
        """Feature names the backend supports (`med.model.Feature` values)."""
        return self._backend.capabilities

    def supports(self, feature: Feature | str) -> bool:
        return str(feature) in self._backend.capabilities

    def _require(self, feature: Feature) -> None:
        if not self.supports(feature):
            # A backend class may say why it lacks a feature (Graph has no public folder API).
            reasons: Mapping[str, str] = getattr(type(self._backend), "unsupported_reasons", {})
            raise Unsupported(str(feature), self._backend.name, reasons.get(str(feature)))

    # ------------------------------------------------------------------ mailboxes

    async def mailboxes(self, *, refresh: bool = False) -> list[Mailbox]:
        """Own mailbox, the configured ones, their archives and the public folder tree.

        Archives are listed when the backend has them and we may see them; a configured
        mailbox that cannot be resolved is left out rather than failing the whole list.

        Raises:
            AuthError: sign-in failed.
        """
        if self._mailboxes is not None and not refresh:
            return list(self._mailboxes)
        own = await self._run(self._backend.own_mailbox)
        found: list[Mailbox] = [own]
        for entry in self._configured:
            if isinstance(entry, Mailbox):
                found.append(await self._named(entry))
                continue
            with contextlib.suppress(NotFound, InvalidInput):  # unknown or ambiguous: left out
                found.append(await self._resolve_one(entry))
        if self.supports(Feature.ARCHIVE):
            for box in [m for m in found if m.kind in (MailboxKind.OWN, MailboxKind.DELEGATED)]:
                with contextlib.suppress(NotFound, AccessDenied):
                    archive = await self._run(self._backend.archive_of, box)
                    if archive is not None:
                        found.append(archive)
        if self.supports(Feature.PUBLIC_FOLDERS):
            found.append(_PUBLIC)
        unique: dict[str, Mailbox] = {}
        for box in found:
            unique.setdefault(box.key, box)
        self._mailboxes = list(unique.values())
        return list(self._mailboxes)

    async def _named(self, box: Mailbox) -> Mailbox:
        """A configured mailbox with its display name from the server when only its address
        was given; the kind stays as configured. Kept in the configuration list, so the
        server is asked once per session."""
        if box.display_name.lower() != box.address.lower():
            return box
        with contextlib.suppress(NotFound, InvalidInput, AccessDenied):
            matches = await self._run(self._backend.resolve_names, box.address)
            name = next(
                (m.display_name for m in matches if m.address.lower() == box.address.lower()),
                None,
            )
            if name:
                named = dataclasses.replace(box, display_name=name)
                self._configured = [named if e is box else e for e in self._configured]
                return named
        return box

    async def _resolve_one(self, query: str) -> Mailbox:
        matches = await self._run(self._backend.resolve_names, query)
        if not matches:
            raise NotFound(f"No mailbox matches {query!r}.", mailbox=query)
        exact = [m for m in matches if m.address.lower() == query.strip().lower()]
        if exact:
            return exact[0]
        if len(matches) > 1:
            names = ", ".join(m.address for m in matches[:5])
            raise InvalidInput(f"{query!r} is ambiguous: {names}. Give the address.")
        return matches[0]

    async def add_mailbox(self, query: str) -> Mailbox:
        """Add a mailbox by address or name (resolved by the server) to this session.

        Raises:
            NotFound: nothing matches.
            InvalidInput: the name matches several mailboxes (the message lists them).
        """
        if not query.strip():
            raise InvalidInput("Give an address or a name.")
        box = await self._resolve_one(query)
        boxes = await self.mailboxes()
        if all(b.key != box.key for b in boxes):
            insert_at = next(
                (i for i, b in enumerate(boxes) if b.kind is MailboxKind.PUBLIC), len(boxes)
            )
            boxes.insert(insert_at, box)
            self._mailboxes = boxes
        return box

    async def resolve_names(self, query: str) -> list[Mailbox]:
        """Mailboxes matching an address or (part of a) name.

        Raises:
            InvalidInput: the query is empty.
        """
        if not query.strip():
            raise InvalidInput("Give an address or a name.")
        return list(await self._run(self._backend.resolve_names, query))

    # ------------------------------------------------------------------ folders

    def _remember(self, folders: Iterable[Folder]) -> None:
        with self._lock:
            for folder in folders:
                self._folders[folder.id] = folder

    def _known_rights(self, folder_id: str | None) -> Rights | None:
        if folder_id is None:
            return None
        with self._lock:
            folder = self._folders.get(folder_id)
        return folder.rights if folder is not None else None

    async def folder_tree(self, mailbox: Mailbox | str) -> FolderNode:
        """The whole folder tree of a mailbox (or the public folders, or an archive).

        Raises:
            NotFound: no such mailbox.
            AccessDenied: no folder of it is visible to us.
            Unsupported: public folders or archives on a backend without them.
        """
        box = await self._as_mailbox(mailbox)
        if box.kind is MailboxKind.PUBLIC:
            self._require(Feature.PUBLIC_FOLDERS)
        if box.kind is MailboxKind.ARCHIVE:
            self._require(Feature.ARCHIVE)
        tree = await self._run(self._backend.folder_tree, box)
        self._remember(tree.walk())
        if self._cache is not None:  # the tree names the well-known folders: learnt for free
            self._cache.learn_all(
                (well_known_key(f.distinguished), f) for f in tree.walk() if f.distinguished
            )
        return tree

    async def _as_mailbox(self, mailbox: Mailbox | str) -> Mailbox:
        """The mailbox a key names. Only an archive's key needs the mailbox list (which asks
        the server for names and archives); the public folders and plain addresses do not."""
        if isinstance(mailbox, Mailbox):
            return mailbox
        if mailbox == "public":
            return _PUBLIC
        listed = self._mailboxes if not mailbox.startswith("archive:") else await self.mailboxes()
        for box in listed or ():
            if box.key == mailbox:
                return box
        kind = MailboxKind.OWN if mailbox.lower() == self.user.lower() else MailboxKind.DELEGATED
        return Mailbox(mailbox, mailbox, kind)

    async def folder(self, folder_id: str, *, refresh: bool = False) -> Folder:
        """A folder by id (from the session's cache unless `refresh`).

        Raises:
            NotFound: no such folder.
            AccessDenied: it is not visible to us.
        """
        if not refresh:
            with self._lock:
                cached = self._folders.get(folder_id)
            if cached is not None:
                return cached
        folder = await self._run(self._backend.get_folder, folder_id)
        self._remember([folder])
        return folder

    async def default_folder(self, mailbox: str, name: str) -> Folder:
        """A well-known folder of a mailbox: inbox, calendar, contacts, tasks, notes, drafts,
        sentitems, deleteditems, voicemail ...

        With a folder cache the folder comes from there when it is known (no request; its
        counts are 0 then: `folder(id, refresh=True)` has them). Should the server later say
        it is gone or refuse us, the session forgets it, asks the server once more and, when
        the answer differs (a new id, other rights), repeats the refused call once with it.

        Raises:
            NotFound: no such mailbox or folder.
            AccessDenied: it is not visible to us.
        """
        (folder,) = await self.default_folders([(mailbox, name)])
        if isinstance(folder, MedError):
            raise folder
        return folder

    async def default_folders(self, wanted: Sequence[tuple[str, str]]) -> list[Folder | MedError]:
        """Several well-known folders, (mailbox, name) each, in as few requests as the
        backend allows (EWS: the ones not in the folder cache in one GetFolder, across
        mailboxes): the boss's calendar, a team calendar and ours at once.

        Returns one outcome per pair, in order: the folder, or the `MedError` (NotFound,
        AccessDenied, InvalidInput) that refused it.
        """
        out: list[Folder | MedError | None] = []
        missing: list[int] = []
        for i, (mailbox, name) in enumerate(wanted):
            cached = self._cached(mailbox, well_known_key(name))
            out.append(cached)
            if cached is None:
                missing.append(i)
        if missing:
            asked = [(wanted[i][0], wanted[i][1]) for i in missing]
            batch: Callable[..., Sequence[Folder | MedError]] | None = getattr(
                self._backend, "default_folders", None
            )  # optional: a backend without a batch request is asked folder by folder
            if batch is not None and len(asked) > 1:
                found = list(await self._run(batch, asked))
            else:
                found = [await self._fresh_default(m, n) for m, n in asked]
            learnt: list[tuple[str, Folder]] = []
            for i, result in zip(missing, found, strict=True):
                if isinstance(result, Folder):
                    self._remember([result])
                    learnt.append((well_known_key(wanted[i][1]), result))
                out[i] = result
            if self._cache is not None:
                self._cache.learn_all(learnt)
        return [o for o in out if o is not None]

    async def _fresh_default(self, mailbox: str, name: str) -> Folder | MedError:
        try:
            return await self._run(self._backend.default_folder, mailbox, name)
        except MedError as exc:
            return exc

    async def folder_at(self, mailbox: str, path: str) -> Folder:
        """A folder by its path of names from the top of a mailbox (or of the public
        folders, mailbox "public"): "Posteingang/Vorgänge", or from a well-known folder,
        "inbox/Vorgänge". Names compare without regard to case.

        With a folder cache a path once found is remembered as the folder it named, the way
        Outlook's Quick Steps and inbox rules hold a target folder: renamed or moved since,
        it is still that folder (until the entry expires, `med.folder_cache.MAX_AGE`); gone or
        refused, the path is looked up again (see `default_folder`).

        Raises:
            InvalidInput: an empty path.
            NotFound: no folder at that path.
            AccessDenied: the mailbox's folders are not visible to us.
        """
        parts = [p.strip() for p in path.strip().strip("/").split("/") if p.strip()]
        if not parts:
            raise InvalidInput("Give a folder path, such as inbox/Projects.")
        box = mailbox.strip().lower()
        cached = self._cached(box, path_key(parts))
        if cached is not None:
            return cached
        return await self._find_path(box, parts)

    async def _find_path(self, mailbox: str, parts: list[str]) -> Folder:
        tree = await self.folder_tree(mailbox)
        nodes = [tree]
        rest = parts
        if mailbox != "public" and parts[0].lower() in {str(w) for w in WellKnownFolder}:
            nodes = [n for n in _nodes(tree) if n.folder.distinguished == parts[0].lower()]
            rest = parts[1:]
        for part in rest:
            nodes = [c for n in nodes for c in n.children if c.folder.name.lower() == part.lower()]
        if not nodes:
            raise NotFound(
                f"No folder {'/'.join(parts)!r} in {mailbox}.",
                mailbox=mailbox,
                folder="/".join(parts),
            )
        folder = nodes[0].folder
        self._learn(path_key(parts), folder)
        return folder

    # ------------------------------------------------------------------ the folder cache

    def _cached(self, mailbox: str, key: str) -> Folder | None:
        """A folder from the cache, known to the session (and its backend) from now on."""
        if self._cache is None:
            return None
        folder = self._cache.folder(mailbox, key)
        if folder is None:
            return None
        with self._lock:
            known = self._folders.get(folder.id)
        if known is not None and known.rights == folder.rights:
            return known  # learnt afresh this session already
        self._remember([folder])
        self._from_cache.add(folder.id)
        # Optional: a backend that keeps what it learnt of folders (EWS: the rights that
        # decide how items are written) hears of folders it never fetched itself.
        learn = getattr(self._backend, "know_folders", None)
        if learn is not None:
            learn([folder])
        return folder

    def _learn(self, key: str, folder: Folder) -> None:
        if self._cache is not None:
            self._cache.learn(key, folder)

    async def _relearn(self, folder: Folder) -> Folder | None:
        """After the server refused a call on `folder` as gone or forbidden: the cache
        forgets it; when it came from the cache, the folder as the server knows it now, or
        None when that is the same (the refusal stands)."""
        if self._cache is None:
            return None
        where = self._cache.key_of(folder.id)
        self._cache.forget(folder.id)
        if where is None or folder.id not in self._from_cache:
            return None
        self._from_cache.discard(folder.id)
        mailbox, key = where
        kind, _, name = key.partition(":")
        if kind == "well-known":
            fresh = await self._run(self._backend.default_folder, mailbox, name)
            self._remember([fresh])
            self._learn(key, fresh)
        else:
            fresh = await self._find_path(mailbox, name.split("/"))
        if fresh.id == folder.id and fresh.rights == folder.rights:
            return None
        return fresh

    async def _relearn_folder_of(self, item: Item | str) -> None:
        """The server refused a write to an item whose folder came from the cache: our
        rights there may have changed; the session and the cache learn them afresh."""
        if isinstance(item, str) or item.folder_id not in self._from_cache:
            return
        with self._lock:
            folder = self._folders.get(item.folder_id)
        if folder is not None:
            with contextlib.suppress(NotFound, AccessDenied):  # forgotten by the cache anyway
                await self._relearn(folder)

    @contextlib.asynccontextmanager
    async def _learning_from_refusal(self, item: Item | str) -> AsyncIterator[None]:
        try:
            yield
        except AccessDenied:
            await self._relearn_folder_of(item)
            raise

    async def _on_folder(self, folder: Folder, call: Callable[[Folder], Awaitable[T]]) -> T:
        """`call(folder)`, which gates and asks the backend; refused as gone or forbidden on a
        folder from the cache, once more with the folder as the server knows it now."""
        try:
            return await call(folder)
        except (NotFound, AccessDenied) as exc:
            own = isinstance(exc, AccessDenied) and exc.right is not None
            if own and folder.id not in self._from_cache:
                raise  # med's refusal on rights the server gave this session: it stands
            fresh = await self._relearn(folder)
            if fresh is None:
                raise
        return await call(fresh)

    # ------------------------------------------------------------------ rights gating

    def _deny(self, what: str, folder: Folder, right: str) -> AccessDenied:
        return AccessDenied(
            f"Your rights on {folder.name!r} in {folder.mailbox} do not allow you to {what}; "
            "ask the owner for more rights.",
            mailbox=folder.mailbox,
            folder=folder.name,
            right=right,
        )

    def _gate_folder(
        self, folder: Folder, what: str, allowed: Callable[[Rights], bool], right: str
    ) -> None:
        """Refuse with AccessDenied naming the missing Exchange `right` when the known rights
        on the folder do not allow the operation."""
        rights = self._known_rights(folder.id) or folder.rights
        if rights is not None and not allowed(rights):
            raise self._deny(what, folder, right)

    async def _gate_item(
        self, item: Item | str, what: str, allowed: Callable[[Rights], bool], right: str
    ) -> None:
        if isinstance(item, str) or item.folder_id is None:
            return
        with self._lock:
            folder = self._folders.get(item.folder_id)
        if folder is not None and folder.rights is not None and not allowed(folder.rights):
            if folder.id in self._from_cache:  # the cache's rights may be old: ask first
                with contextlib.suppress(NotFound, AccessDenied):
                    fresh = await self._relearn(folder)
                    if fresh is not None and fresh.id == folder.id and fresh.rights is not None:
                        if allowed(fresh.rights):
                            return
                        folder = fresh
            raise self._deny(what, folder, right)

    def _hides_private(self, folder: Folder) -> bool:
        rights = self._known_rights(folder.id) or folder.rights
        return (
            rights is not None
            and not rights.view_private
            and folder.mailbox.lower() != self.user.lower()
        )

    # ------------------------------------------------------------------ items

    async def items(self, folder: Folder, query: ItemQuery | None = None) -> Page[Item]:
        """One page of a folder's items (one request), without bodies.

        Private items of someone else's folder are left out when we lack ViewPrivateItems.

        Raises:
            AccessDenied: we may not read items in this folder.
            InvalidInput: a negative offset or a page size outside 1..1000.
            NotFound: the folder is gone.
        """
        query = query or ItemQuery()
        if query.offset < 0 or not 1 <= query.limit <= 1000:
            raise InvalidInput("Page offset must be ≥ 0 and the page size 1 to 1000.")
        if query.start and query.end and query.end <= query.start:
            raise InvalidInput("The end of the range must be after its start.")
        sorts = typing.get_args(SortField)
        if query.sort is not None and query.sort not in sorts:
            raise InvalidInput(f"Sort by one of {', '.join(sorts)}.")

        async def page_of(folder: Folder) -> Page[Item]:
            self._gate_folder(folder, "read its items", lambda r: r.can_read_items, "ReadItems")
            page = await self._run(self._backend.find_items, folder, query)
            if self._hides_private(folder):
                kept = tuple(i for i in page.items if i.sensitivity is not Sensitivity.PRIVATE)
                page = dataclasses.replace(page, items=kept, span=len(page.items))
            return page

        return await self._on_folder(folder, page_of)

    async def iter_items(
        self, folder: Folder, query: ItemQuery | None = None
    ) -> AsyncIterator[Item]:
        """All items matching `query` from its offset on, fetched page by page.

        Raises:
            as `items`.
        """
        query = query or ItemQuery()
        while True:
            page = await self.items(folder, query)
            for item in page.items:
                yield item
            if page.next_offset is None:
                return
            query = dataclasses.replace(query, offset=page.next_offset)

    async def get(self, item_id: str) -> Item:
        """The full item: body, recipients, attachment list.

        Raises:
            NotFound: no such item.
            AccessDenied: we may not read it.
        """
        (item,) = await self.get_many([item_id])
        return item

    async def get_many(self, item_ids: Sequence[str]) -> list[Item]:
        """Several full items in one request, in the order asked.

        Raises:
            as `get`.
        """
        if not item_ids:
            return []
        return list(await self._run(self._backend.get_items, list(item_ids)))

    async def create(self, folder: Folder, item: Item, *, send_invitations: bool = True) -> Item:
        """Create an item of any kind in a folder; returns it with id set.

        Meetings (events with attendees) are sent to the attendees when `send_invitations`.

        Raises:
            AccessDenied: we may not create items in this folder.
            InvalidInput: the item does not fit the folder or is inconsistent.
        """
        _check_item(item)
        _check_kind_fits(item, folder)

        async def create_in(folder: Folder) -> Item:
            self._gate_folder(folder, "create items there", lambda r: r.create_items, "CreateItems")
            return await self._run(
                self._backend.create_item, folder, item, send_invitations=send_invitations
            )

        return await self._on_folder(folder, create_in)

    async def update(
        self,
        item: Item,
        fields: Sequence[str],
        *,
        series: bool = False,
        send_updates: bool = True,
    ) -> Item:
        """Write the named fields of `item` (change it with `dataclasses.replace` first).

        For an occurrence, `series=True` applies the change to the whole series (the
        master), else to this occurrence only.

        Raises:
            AccessDenied: we may not edit items in this folder.
            Conflict: the item changed on the server meanwhile; reload and retry.
            InvalidInput: no such field on this kind of item, or the item is inconsistent.
            NotFound: the item is gone.
        """
        self._check_update(item, fields)
        await self._gate_item(
            item, "edit its items", lambda r: r.edit is not EditScope.NONE, "EditItems"
        )
        async with self._learning_from_refusal(item):
            return await self._update(item, fields, series=series, send_updates=send_updates)

    async def _update(
        self, item: Item, fields: Sequence[str], *, series: bool, send_updates: bool
    ) -> Item:
        if (
            series
            and isinstance(item, Event)
            and item.event_kind
            in (
                EventKind.OCCURRENCE,
                EventKind.EXCEPTION,
            )
        ):
            master = await self._run(self._backend.series_master, item.id)
            values = {name: getattr(item, name) for name in fields}
            if "start" in values or "end" in values:
                # Shift the series by how far this occurrence moved, keeping its pattern.
                values["start"] = master.start + (item.start - _original_start(item, master))
                values["end"] = values["start"] + (item.end - item.start)
            item = dataclasses.replace(master, **values)
        return await self._run(
            self._backend.update_item, item, list(fields), send_updates=send_updates
        )

    async def update_many(
        self, items: Sequence[Item], fields: Sequence[str], *, send_updates: bool = True
    ) -> list[Item | MedError]:
        """`update` for many items at once (mark 50 mails read and flagged, say): as few
        round trips as the backend allows (EWS: one UpdateItem per 100 items).

        Returns one outcome per item, in order: its new state, or the `MedError` that
        refused it (InvalidInput, AccessDenied, Conflict, NotFound); the others are written
        all the same. Occurrences are changed as themselves, never their series.

        Raises:
            InvalidInput: no fields named.
        """
        if not fields:
            raise InvalidInput("Name the fields to change.")
        outcomes: list[Item | MedError | None] = [None] * len(items)
        to_write: list[int] = []
        for i, item in enumerate(items):
            try:
                self._check_update(item, fields)
                await self._gate_item(
                    item, "edit its items", lambda r: r.edit is not EditScope.NONE, "EditItems"
                )
            except MedError as exc:
                outcomes[i] = exc
                continue
            to_write.append(i)
        if to_write:
            written = await self._run(
                self._backend.update_items,
                [items[i] for i in to_write],
                list(fields),
                send_updates=send_updates,
            )
            for i, outcome in zip(to_write, written, strict=True):
                outcomes[i] = outcome
                if isinstance(outcome, AccessDenied):
                    await self._relearn_folder_of(items[i])
        return [o for o in outcomes if o is not None]

    def _check_update(self, item: Item, fields: Sequence[str]) -> None:
        if not item.id:
            raise InvalidInput("This item has not been created yet.")
        unknown = [f for f in fields if f not in {x.name for x in dataclasses.fields(item)}]
        if unknown or not fields:
            raise InvalidInput(
                f"Cannot update {', '.join(unknown) or 'nothing'} on a {item.kind.value}."
            )
        _check_item(item)

    async def move_many(self, items: Sequence[Item | str], folder: Folder) -> list[str | MedError]:
        """`move` for many items into one folder (EWS: one MoveItem per 100 items).

        Returns one outcome per item, in order: its new id, or the `MedError` that refused it.

        Raises:
            AccessDenied: we may not create items in `folder` (nothing is moved).
        """

        async def move_into(folder: Folder) -> list[str | MedError]:
            self._gate_folder(folder, "create items there", lambda r: r.create_items, "CreateItems")
            outcomes: list[str | MedError | None] = [None] * len(items)
            to_move: list[int] = []
            for i, item in enumerate(items):
                try:
                    await self._gate_item(
                        item,
                        "remove its items",
                        lambda r: r.delete is not EditScope.NONE,
                        "DeleteItems",
                    )
                except MedError as exc:
                    outcomes[i] = exc
                    continue
                to_move.append(i)
            if to_move:
                ids = [_item_id(items[i]) for i in to_move]
                moved = await self._run(self._backend.move_items, ids, folder)
                refused = [o for o in moved if isinstance(o, NotFound | AccessDenied)]
                if folder.id in self._from_cache and len(refused) == len(moved):
                    raise refused[0]  # the target itself, perhaps: `_on_folder` asks afresh
                for i, outcome in zip(to_move, moved, strict=True):
                    outcomes[i] = outcome
            return [o for o in outcomes if o is not None]

        return await self._on_folder(folder, move_into)

    async def delete(
        self,
        item: Item | str,
        *,
        series: bool = False,
        hard: bool = False,
        send_cancellations: bool = True,
    ) -> None:
        """Delete an item (to Deleted Items unless `hard`); `series` deletes a whole series.

        Raises:
            AccessDenied: we may not delete items in this folder.
            NotFound: the item is gone.
        """
        await self._gate_item(
            item, "delete its items", lambda r: r.delete is not EditScope.NONE, "DeleteItems"
        )
        item_id = _item_id(item)
        if (
            series
            and isinstance(item, Event)
            and item.event_kind
            in (
                EventKind.OCCURRENCE,
                EventKind.EXCEPTION,
            )
        ):
            item_id = (await self._run(self._backend.series_master, item.id)).id
        await self._run(
            self._backend.delete_item, item_id, hard=hard, send_cancellations=send_cancellations
        )

    async def move(self, item: Item | str, folder: Folder) -> str:
        """Move an item to another folder (also across mailboxes); returns its new id.

        Raises:
            AccessDenied: we may not delete at the source or create at the target.
            NotFound: item or folder gone.
        """
        await self._gate_item(
            item, "remove its items", lambda r: r.delete is not EditScope.NONE, "DeleteItems"
        )

        async def move_into(folder: Folder) -> str:
            self._gate_folder(folder, "create items there", lambda r: r.create_items, "CreateItems")
            return await self._run(self._backend.move_item, _item_id(item), folder)

        return await self._on_folder(folder, move_into)

    async def copy(self, item: Item | str, folder: Folder) -> str:
        """Copy an item to a folder; returns the copy's id.

        Raises:
            AccessDenied: we may not create items at the target.
            NotFound: item or folder gone.
        """

        async def copy_into(folder: Folder) -> str:
            self._gate_folder(folder, "create items there", lambda r: r.create_items, "CreateItems")
            return await self._run(self._backend.copy_item, _item_id(item), folder)

        return await self._on_folder(folder, copy_into)

    # convenience edits ---------------------------------------------------------------

    async def mark_read(self, item: Message, read: bool = True) -> Item:
        """Mark a message read or unread.

        Raises:
            as `update`.
        """
        return await self.update(dataclasses.replace(item, is_read=read), ["is_read"])

    async def set_flag(
        self,
        item: Item,
        status: FlagStatus,
        *,
        start: datetime | None = None,
        due: datetime | None = None,
        completed: datetime | None = None,
    ) -> Item:
        """Flag for follow-up (with start/due), mark complete, or clear the flag.

        Raises:
            InvalidInput: due before start, or dates given for a cleared flag.
            as `update`.
        """
        if status is FlagStatus.NOT_FLAGGED and (start or due or completed):
            raise InvalidInput("A cleared flag has no dates.")
        if start and due and due < start:
            raise InvalidInput("The due date must not be before the start date.")
        if status is FlagStatus.COMPLETE and completed is None:
            completed = datetime.now().astimezone()
        flag = Flag(status=status, start=start, due=due, completed=completed)
        return await self.update(dataclasses.replace(item, flag=flag), ["flag"])

    async def set_categories(self, item: Item, categories: Sequence[str]) -> Item:
        """Replace an item's categories.

        Raises:
            InvalidInput: an empty category name.
            as `update`.
        """
        cleaned = tuple(dict.fromkeys(c.strip() for c in categories))
        if any(not c for c in cleaned):
            raise InvalidInput("Category names must not be empty.")
        return await self.update(dataclasses.replace(item, categories=cleaned), ["categories"])

    async def master_categories(self, mailbox: str) -> list[str]:
        """The mailbox's master category list (empty when there is none).

        Raises:
            Unsupported: the backend cannot read it.
            AccessDenied: we may not read the owner's configuration.
        """
        self._require(Feature.MASTER_CATEGORIES)
        return list(await self._run(self._backend.master_categories, mailbox))

    # attachments and export ---------------------------------------------------------

    async def attachment(self, attachment: Attachment | str) -> AttachmentContent:
        """An attachment with its bytes.

        Raises:
            NotFound: no such attachment.
        """
        att_id = attachment if isinstance(attachment, str) else attachment.id
        return await self._run(self._backend.attachment, att_id)

    async def save_attachment(
        self, attachment: Attachment, directory: Path, *, overwrite: bool = False
    ) -> Path:
        """Save an attachment into `directory` under its own (sanitised) name.

        Writes to a temporary file first so that no half-written file is left behind.

        Raises:
            InvalidInput: the file exists and `overwrite` is False, or the directory is missing.
            NotFound: no such attachment.
        """
        if not directory.is_dir():
            raise InvalidInput(f"{directory} is not a directory.")
        target = directory / _safe_filename(attachment.name, ".eml" if attachment.is_item else "")
        if target.exists() and not overwrite:
            raise InvalidInput(f"{target} exists already.")
        content = await self.attachment(attachment)
        await self._run(_write_atomically, target, content.content)
        return target

    async def export_mime(self, item: Item | str) -> bytes:
        """An item as MIME (.eml).

        Raises:
            NotFound: no such item.
            Unsupported: the backend has no MIME export.
        """
        self._require(Feature.MIME_EXPORT)
        item_id = _item_id(item)
        return await self._run(self._backend.export_mime, item_id)

    async def voicemail_audio(self, voicemail: Voicemail) -> AttachmentContent:
        """The recording of a voicemail.

        Raises:
            Unsupported: the backend has no voicemail.
            NotFound: the voicemail carries no audio attachment.
        """
        self._require(Feature.VOICEMAIL)
        if not voicemail.attachments:
            full = await self.get(voicemail.id)
            if isinstance(full, Voicemail):
                voicemail = full
        audio = voicemail.audio
        if audio is None:
            raise NotFound("This voicemail has no recording attached.", item=voicemail.id)
        return await self.attachment(audio)

    # ------------------------------------------------------------------ sending

    async def send(self, message: Message, options: SendOptions | None = None) -> None:
        """Send a new message; on behalf of `options.from_mailbox` when given.

        Raises:
            InvalidInput: no recipients.
            AccessDenied: no right to send on behalf of that mailbox.
        """
        _check_sender(options)
        if not (message.to or message.cc or message.bcc):
            raise InvalidInput("A message needs at least one recipient.")
        _check_addresses([*message.to, *message.cc, *message.bcc])
        await self._run(self._backend.send, message, options or SendOptions())

    async def save_draft(self, message: Message, options: SendOptions | None = None) -> Message:
        """Save a draft in the Drafts folder of the From mailbox (ours by default).

        Raises:
            AccessDenied: we may not create items in that Drafts folder.
        """
        _check_sender(options)
        _check_addresses([*message.to, *message.cc, *message.bcc])
        return await self._run(self._backend.save_draft, message, options or SendOptions())

    async def reply(
        self,
        item: Item | str,
        body: str,
        *,
        reply_all: bool = False,
        options: SendOptions | None = None,
    ) -> None:
        """Reply (or reply to all) to a message.

        Raises:
            NotFound: the message is gone.
            AccessDenied: no right to send on behalf of the From mailbox.
        """
        _check_sender(options)
        item_id = _item_id(item)
        await self._run(
            self._backend.reply,
            item_id,
            body,
            reply_all=reply_all,
            options=options or SendOptions(),
        )

    async def forward(
        self,
        item: Item | str,
        to: Sequence[Address | str],
        body: str = "",
        *,
        options: SendOptions | None = None,
    ) -> None:
        """Forward a message with its attachments.

        Raises:
            InvalidInput: no recipients or a malformed address.
            NotFound: the message is gone.
        """
        recipients = [a if isinstance(a, Address) else Address(a) for a in to]
        _check_sender(options)
        if not recipients:
            raise InvalidInput("Forwarding needs at least one recipient.")
        _check_addresses(recipients)
        item_id = _item_id(item)
        await self._run(
            self._backend.forward, item_id, recipients, body, options=options or SendOptions()
        )

    # ------------------------------------------------------------------ calendar

    async def calendar_view(
        self, calendars: Sequence[Folder], start: datetime, end: datetime
    ) -> list[Event]:
        """Events of several calendars overlapping [start, end), occurrences expanded,
        sorted by start. Each event's `folder_id`/`mailbox` tell which calendar it is from.

        Private events of others are shown as busy blocks without details when we lack
        ViewPrivateItems.

        Raises:
            InvalidInput: naive datetimes, or end not after start.
            AccessDenied: we may not even see free/busy of one of the calendars.
        """
        if start.tzinfo is None or end.tzinfo is None:
            raise InvalidInput("Give calendar ranges with a time zone.")
        if end <= start:
            raise InvalidInput("The end of the range must be after its start.")
        for cal in calendars:
            if cal.kind is not FolderKind.CALENDAR:
                raise InvalidInput(f"{cal.name!r} is not a calendar.", folder=cal.name)
        for cal in calendars:  # refused before anything is asked
            if cal.id not in self._from_cache:
                self._gate_folder(
                    cal, "see its calendar", lambda r: r.can_see_free_busy, "FreeBusyTimeOnly"
                )
        chunks = _split_range(start, end, MAX_VIEW_DAYS)

        async def view(cal: Folder) -> dict[tuple[str, str], Event]:
            self._gate_folder(
                cal, "see its calendar", lambda r: r.can_see_free_busy, "FreeBusyTimeOnly"
            )
            results = await asyncio.gather(
                *(self._run(self._backend.calendar_view, cal, a, b) for a, b in chunks)
            )
            hide = self._hides_private(cal)
            found: dict[tuple[str, str], Event] = {}
            for result in results:
                for event in result:
                    if hide and event.sensitivity is Sensitivity.PRIVATE:
                        event = _redacted(event)
                    found.setdefault((cal.id, event.id), event)
            return found

        events: dict[tuple[str, str], Event] = {}
        for found in await asyncio.gather(*(self._on_folder(c, view) for c in calendars)):
            events.update(found)
        return sorted(events.values(), key=lambda e: (e.start, e.end, e.subject))

    async def series(self, item_id: str) -> list[Event]:
        """A whole series: its master, then its modified occurrences by original start.

        `item_id` may name the master, an occurrence or an exception.

        Raises:
            NotFound: no such item, or it belongs to no series.
            AccessDenied: we may not read it.
        """
        master = await self._run(self._backend.series_master, item_id)
        exceptions = [
            e for e in await self.get_many(master.modified_occurrences) if isinstance(e, Event)
        ]
        exceptions.sort(key=lambda e: e.original_start or e.start)
        return [master, *exceptions]

    async def respond(
        self,
        item: Item | str,
        response: ResponseType,
        message: str | None = None,
        *,
        send: bool = True,
        proposal: tuple[datetime, datetime] | None = None,
    ) -> None:
        """Accept, tentatively accept or decline a meeting (on behalf of its mailbox owner);
        with `proposal`, a tentative answer or a decline proposes a new (start, end).

        Raises:
            InvalidInput: `response` is not accept, tentative or decline, the item is no
                meeting, or the proposal is no future range with time zones or comes with accept.
            AccessDenied: we may not edit the owner's calendar.
            NotFound: the request is gone.
            Unsupported: the backend cannot propose a new time.
        """
        if response not in _RESPONSES:
            raise InvalidInput("Respond with accept, tentative or decline.")
        if proposal is not None:
            start, end = proposal
            if response is ResponseType.ACCEPT:
                raise InvalidInput("Propose a new time with tentative or decline, not accept.")
            if start.tzinfo is None or end.tzinfo is None or end <= start:
                raise InvalidInput("Propose a time with a time zone whose end is after its start.")
            if end <= datetime.now(UTC):
                raise InvalidInput("The proposed time is in the past; propose a future one.")
        if isinstance(item, Event) and not item.is_meeting:
            raise InvalidInput("This is an appointment, not a meeting: nobody to answer.")
        await self._gate_item(
            item, "answer its meetings", lambda r: r.edit is not EditScope.NONE, "EditItems"
        )
        # A listed meeting request or meeting carries its change key: no need to read it again.
        known_meeting = (isinstance(item, Message) and item.is_meeting_request) or (
            isinstance(item, Event) and item.is_meeting
        )
        await self._run(
            self._backend.respond,
            _item_id(item),
            response,
            message,
            send=send,
            proposal=proposal,
            change_key=item.change_key if known_meeting and isinstance(item, Item) else None,
        )

    async def free_busy(
        self, addresses: Sequence[str], start: datetime, end: datetime
    ) -> list[FreeBusy]:
        """Busy times of several people; people without data come back with `error` set.

        Raises:
            InvalidInput: no address, naive datetimes, or end not after start.
            Unsupported: the backend has no free/busy.
        """
        self._require(Feature.FREE_BUSY)
        if not addresses:
            raise InvalidInput("Name at least one person.")
        if start.tzinfo is None or end.tzinfo is None or end <= start:
            raise InvalidInput("Give a range with a time zone whose end is after its start.")
        return list(await self._run(self._backend.free_busy, list(addresses), start, end))

    # ------------------------------------------------------------------ permissions

    async def permissions(self, folder: Folder) -> list[Permission]:
        """The folder's permission list.

        Raises:
            Unsupported: the backend has no folder permissions.
            AccessDenied: only the folder owner may see it.
        """
        self._require(Feature.FOLDER_PERMISSIONS)
        self._gate_folder(folder, "see its permissions", lambda r: r.folder_owner, "FolderOwner")
        return list(await self._run(self._backend.permissions, folder))

    async def set_permission(self, folder: Folder, principal: str, role: Role) -> list[Permission]:
        """Give `principal` (an address, "default" or "anonymous") a role on the folder;
        `Role.NONE` removes a named user. Returns the new list.

        Raises:
            Unsupported: the backend cannot change folder permissions.
            AccessDenied: we are not folder owner.
            InvalidInput: Role.CUSTOM (give rights through the server's own tools).
            NotFound: the server knows no user `principal`.
        """
        from med.permissions import permission_for_role

        if role is Role.CUSTOM:
            raise InvalidInput("Choose a named role; custom rights cannot be set here.")
        current = await self.permissions(folder)
        key = principal.strip().lower()
        known = {p.principal.lower() for p in current}
        if key not in ("default", "anonymous") and key not in known:
            matches = await self.resolve_names(key)
            if all(m.address.lower() != key for m in matches):
                raise NotFound(
                    f"There is no user {principal.strip()!r} to give rights on {folder.name!r} to.",
                    mailbox=folder.mailbox,
                    folder=folder.name,
                )
        entry = permission_for_role(key, role)
        updated = [p for p in current if p.principal.lower() != key]
        if role is not Role.NONE or key in ("default", "anonymous"):
            updated.append(entry)
        await self._run(self._backend.set_permissions, folder, updated)
        return updated

    async def delegates(self, mailbox: str) -> tuple[list[Delegate], MeetingDelivery]:
        """The delegates of a mailbox we own, and where meeting requests go.

        Raises:
            Unsupported: the backend has no delegate API.
            AccessDenied: we are not the owner.
        """
        self._require(Feature.DELEGATES)
        if mailbox.strip().lower() == "public":
            raise InvalidInput("The public folders have no delegates.")
        delegates, delivery = await self._run(self._backend.delegates, mailbox)
        return list(delegates), delivery

    async def effective_rights(self, folder: Folder) -> Rights | None:
        """Our rights on a folder as far as known (None: the server decides alone)."""
        return self._known_rights(folder.id) or folder.rights

    # ------------------------------------------------------------------ sync & notifications

    async def sync(self, folder: Folder, state: str | None = None) -> AsyncIterator[SyncEvent]:
        """Changes in a folder since `state`, as `SyncChange` events each batch followed by a
        `SyncCheckpoint` whose state the caller persists after handling the batch. Ends when
        the folder is in sync; with no changes that is one request and one checkpoint.

        Raises:
            Unsupported: the backend has no sync.
            InvalidInput: the state does not belong to this folder (start with None).
            AccessDenied: we may not read items in this folder.
        """
        self._require(Feature.SYNC)
        self._gate_folder(folder, "read its items", lambda r: r.can_read_items, "ReadItems")
        while True:
            changes, new_state, done = await self._run(
                self._backend.sync_items, folder, state, SYNC_BATCH
            )
            for change in changes:
                yield change
            yield SyncCheckpoint(state=new_state, done=done)
            state = new_state
            if done:
                return

    async def subscribe(self, folders: Sequence[Folder]) -> AsyncIterator[MailboxEvent]:
        """Events of the folders as they happen (streaming, or polling where the server has
        no streaming). Close the iterator (`aclose`), break out or cancel the task waiting on
        it to unsubscribe; the wait for the server ends within a second.

        The watch reads in a thread of its own, not in the session's worker pool: it waits
        on the server for minutes, and other calls must not queue behind it. While the
        server cannot be reached it yields OFFLINE and retries; RESUBSCRIBED follows once
        it answers again (events may have been missed: sync).

        Raises:
            Unsupported: the backend has no notifications.
            NotFound: a folder is gone.
        """
        if not (self.supports(Feature.STREAMING) or self.supports(Feature.PULL_NOTIFICATIONS)):
            raise Unsupported("notifications", self._backend.name)
        if not folders:
            raise InvalidInput("Name at least one folder to watch.")
        source = await self._subscribed(folders)
        reader = _WatchThread(source, asyncio.get_running_loop())
        with self._lock:
            closed = self._closed
            if not closed:
                self._watches.add(reader)
        if closed:
            reader.stop()
            return
        reader.start()
        try:
            while True:
                kind, value = await reader.queue.get()
                if kind == "end":
                    return
                if kind == "error":
                    assert isinstance(value, BaseException)
                    if isinstance(value, Unreachable) and value.url is None:
                        value.url = getattr(self._backend, "url", None) or None
                    raise value
                assert isinstance(value, MailboxEvent)
                yield value
        finally:
            with self._lock:
                self._watches.discard(reader)
            reader.stop()
            # The reading thread unsubscribes once its read is broken; give it that moment,
            # but never wait on a server that does not answer.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(WATCH_STOP_S):
                    await asyncio.shield(reader.finished)

    async def _subscribed(self, folders: Sequence[Folder]) -> Iterator[MailboxEvent]:
        """The backend's watch; a subscription made after the caller gave up is ended."""
        loop = asyncio.get_running_loop()
        made = loop.run_in_executor(self._pool, self._backend.subscribe, list(folders))
        try:
            return await asyncio.shield(made)
        except asyncio.CancelledError:

            def end(future: asyncio.Future[Iterator[MailboxEvent]]) -> None:
                if not future.cancelled() and future.exception() is None:
                    _WatchThread(future.result(), loop).stop()

            made.add_done_callback(end)
            raise
        except Unreachable as exc:
            if exc.url is None:
                exc.url = getattr(self._backend, "url", None) or None
            raise


class _WatchThread:
    """Reads a backend watch in its own daemon thread and hands its events to the loop."""

    def __init__(self, source: Iterator[MailboxEvent], loop: asyncio.AbstractEventLoop) -> None:
        self._source = source
        self._loop = loop
        self._stopping = threading.Event()
        self.queue: asyncio.Queue[tuple[str, object]] = asyncio.Queue()
        self.finished: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(target=self._pump, name="med-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """From the loop's thread: end the watch; a `Watch` breaks its read at once."""
        self._stopping.set()
        cancel = getattr(self._source, "cancel", None)
        if cancel is not None:
            cancel()
        if not self._thread.ident:  # never started: unsubscribe without blocking the loop
            self._thread = threading.Thread(
                target=self._close_quietly, name="med-unwatch", daemon=True
            )
            self._thread.start()

    def _hand(self, kind: str, value: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody listens
            self._loop.call_soon_threadsafe(self.queue.put_nowait, (kind, value))

    def _done(self) -> None:
        def finish() -> None:
            if not self.finished.done():
                self.finished.set_result(None)

        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(finish)

    def _close_source(self) -> None:
        close = getattr(self._source, "close", None)
        if close is not None:
            close()  # unsubscribes (the backend swallows what a gone server answers)

    def _close_quietly(self) -> None:
        try:
            with contextlib.suppress(MedError):
                self._close_source()
        finally:
            self._done()

    def _pump(self) -> None:
        try:
            for event in self._source:
                if self._stopping.is_set():
                    break
                self._hand("event", event)
            else:
                self._hand("end", None)
        except BaseException as exc:  # handed to the reader, who raises it
            if not self._stopping.is_set():
                self._hand("error", exc)
        finally:
            try:
                self._close_source()
            finally:
                self._done()


# --------------------------------------------------------------------------- helpers


def _configured_mailbox(entry: str) -> str | Mailbox:
    """A profile's mailbox entry: an address or name, or "kind:address" with a known kind."""
    kind, sep, address = entry.partition(":")
    if sep and "@" in address:
        try:
            return Mailbox(address.strip().lower(), address.strip().lower(), MailboxKind(kind))
        except ValueError:
            pass
    return entry


def _check_sender(options: SendOptions | None) -> None:
    """The public folders are no mailbox to send from; never fall back to our own."""
    if options is not None and (options.from_mailbox or "").strip().lower() == "public":
        raise InvalidInput("Mail cannot be sent from the public folders; give a mailbox address.")


def _item_id(item: Item | str) -> str:
    return item if isinstance(item, str) else item.id


def _check_item(item: Item) -> None:
    if isinstance(item, Event):
        if item.start.tzinfo is None or item.end.tzinfo is None:
            raise InvalidInput("Give event times with a time zone.")
        if item.end < item.start:
            raise InvalidInput("An event cannot end before it starts.")
        rec = item.recurrence
        if rec is not None:
            if rec.end is not None and rec.count is not None:
                raise InvalidInput("A series ends by date or after a count, not both.")
            if rec.count is not None and rec.count < 1:
                raise InvalidInput("A series needs at least one occurrence.")
            if rec.end is not None and rec.end < rec.start:
                raise InvalidInput("A series cannot end before it starts.")
    if isinstance(item, Message):
        _check_addresses([*item.to, *item.cc, *item.bcc])
    if isinstance(item, Task) and not 0 <= item.percent_complete <= 100:
        raise InvalidInput(f"A task is 0 to 100 percent complete, not {item.percent_complete}.")


_KIND_FOLDERS = {
    "Event": FolderKind.CALENDAR,
    "Contact": FolderKind.CONTACTS,
    "Task": FolderKind.TASKS,
    "Note": FolderKind.NOTES,
}


def _check_kind_fits(item: Item, folder: Folder) -> None:
    wanted = _KIND_FOLDERS.get(type(item).__name__)
    if wanted is not None and folder.kind not in (wanted, FolderKind.OTHER):
        raise InvalidInput(
            f"A {item.kind.value} belongs in a {wanted.value} folder, not in {folder.name!r}.",
            folder=folder.name,
        )


def _check_addresses(addresses: Sequence[Address]) -> None:
    for addr in addresses:
        if not addr.looks_valid:
            raise InvalidInput(f"{addr.email!r} is not an e-mail address.")


def _nodes(node: FolderNode) -> list[FolderNode]:
    out = [node]
    for child in node.children:
        out.extend(_nodes(child))
    return out


def _original_start(occurrence: Event, master: Event) -> datetime:
    """Where an occurrence would start had it not been moved: same day, master's time."""
    local = occurrence.start.astimezone(master.start.tzinfo)
    return local.replace(
        hour=master.start.hour,
        minute=master.start.minute,
        second=master.start.second,
        microsecond=0,
    )


def _split_range(start: datetime, end: datetime, days: int) -> list[tuple[datetime, datetime]]:
    from datetime import timedelta

    step = timedelta(days=days)
    out = []
    cursor = start
    while cursor < end:
        out.append((cursor, min(cursor + step, end)))
        cursor += step
    return out


def _redacted(event: Event) -> Event:
    return dataclasses.replace(
        event,
        subject="Private appointment",
        body=None,
        location="",
        attendees=(),
        categories=(),
        attachments=(),
    )


def _safe_filename(name: str, default_suffix: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in " ._-()" else "_" for c in name).strip(" .")
    if not cleaned:
        cleaned = "attachment"
    if default_suffix and not cleaned.lower().endswith(default_suffix):
        cleaned += default_suffix
    return cleaned[:200]


def _write_atomically(target: Path, data: bytes) -> None:
    tmp = target.with_name(f".{target.name}.part")
    try:
        tmp.write_bytes(data)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
