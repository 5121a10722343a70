"""The EWS backend on exchangelib: delegate access, explicit endpoint, version and auth.

Everything of exchangelib stays in this package: items and folders are converted to
`med.model` values at the edge (`convert`), and every exchangelib error is translated in
`errors.ews_errors` using one table of EWS response codes. The one retry layer is exchangelib's
`FaultTolerance`, which honours the server's BackOffMilliseconds; we only stop it from retrying
a refused login.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
from exchangelib import (
    DELEGATE,
    Account,
    Build,
    Configuration,
    Credentials,
    FaultTolerance,
    Q,
    Version,
)
from exchangelib import errors as exerr
from exchangelib.attachments import FileAttachment
from exchangelib.ewsdatetime import EWSDate, EWSTimeZone
from exchangelib.fields import FieldPath
from exchangelib.folders import Folder as ExFolder
from exchangelib.folders import FolderCollection, PublicFoldersRoot, Root
from exchangelib.folders.queryset import DEEP, SHALLOW
from exchangelib.indexed_properties import EmailAddress as IndexedEmailAddress
from exchangelib.indexed_properties import PhoneNumber as IndexedPhoneNumber
from exchangelib.items import (
    ID_ONLY,
    SAVE_ONLY,
    SEND_AND_SAVE_COPY,
    AcceptItem,
    CalendarItem,
    DeclineItem,
    MeetingRequest,
    TentativelyAcceptItem,
)
from exchangelib.items import Contact as ExContact
from exchangelib.items import Message as ExMessage
from exchangelib.items import Task as ExTask
from exchangelib.properties import (
    DistinguishedFolderId,
    ItemId,
    PermissionSet,
)
from exchangelib.properties import Mailbox as ExMailbox
from exchangelib.services import (
    FindFolder,
    FindItem,
    GetFolder,
    GetUserConfiguration,
    SyncFolderItems,
    UpdateFolder,
)

from med.auth import login
from med.auth.negotiate import register as register_negotiate
from med.backends.base import Watch
from med.backends.ews import patches
from med.backends.ews.convert import (
    BUSY,
    BUSY_BACK,
    DELEGATE_FOLDER_FIELDS,
    DELIVERY,
    EVENT_KIND,
    IMPORTANCE,
    IMPORTANCE_BACK,
    LAST_VERB_CODES,
    LAST_VERBS,
    LIST_FIELDS,
    RESPONSE,
    SENSITIVITY,
    SENSITIVITY_BACK,
    SORT_FIELDS,
    TASK_STATUS,
    TASK_STATUS_BACK,
    UPDATE_FIELDS,
    CalendarFolder,
    StickyNote,
    apply_flag,
    aware_datetime,
    ews_datetime,
    ex_attendees,
    ex_mailboxes,
    flag_of,
    from_ex_permission,
    from_ex_recurrence,
    rights_from_effective,
    to_address,
    to_addresses,
    to_attachment,
    to_ex_permission,
    to_ex_recurrence,
    zone_name_of,
)
from med.backends.ews.discovery import discover_ews_url
from med.backends.ews.errors import (
    check_answer,
    ews_errors,
    raise_if_error,
    seen_response,
    translate_error,
)
from med.backends.ews.events import open_subscription, watch_events
from med.backends.ews.patches import TLS_LOCK, TLS_VERIFY
from med.backends.ews.scheduling import EwsScheduling
from med.backends.ews.settings import EwsSettings
from med.errors import (
    AccessDenied,
    BadCredentials,
    Conflict,
    InvalidInput,
    MedError,
    NotFound,
)
from med.model import (
    ARCHIVE_FOLDERS,
    DEFAULT_FOLDERS,
    Address,
    AttachmentContent,
    Attendee,
    AttendeeKind,
    AuthMethod,
    BusyStatus,
    Contact,
    Delegate,
    DelegateLevel,
    EditScope,
    Event,
    EventKind,
    Feature,
    Folder,
    FolderKind,
    FolderNode,
    FreeBusy,
    Importance,
    Item,
    ItemQuery,
    Mailbox,
    MailboxKind,
    MeetingDelivery,
    Message,
    Note,
    OutgoingAttachment,
    Page,
    Permission,
    Profile,
    ResponseType,
    Rights,
    SendOptions,
    Sensitivity,
    SyncChange,
    SyncChangeKind,
    Task,
    TaskStatus,
    Voicemail,
)
from med.quoting import answer_subject, quote_header, reply_recipients

log = logging.getLogger(__name__)

#: Items per UpdateItem/MoveItem/GetItem request when many items are changed at once
#: (exchangelib's default chunk; Exchange's throttling policies accept it).
BATCH_SIZE = 100

# --------------------------------------------------------------------------- retry policy


class _CountingFindItem(FindItem):  # type: ignore[misc]
    """FindItem that keeps the server's TotalItemsInView of the last page."""

    total: int | None = None

    def _get_paging_values(self, elem: Any) -> tuple[int, int | None]:
        count, next_offset = super()._get_paging_values(elem)
        self.total = int(count)
        return count, next_offset


class _Patience(FaultTolerance):  # type: ignore[misc]
    """FaultTolerance that honours back-off but never retries a refused login (HTTP 401)."""

    def raise_response_errors(self, response: requests.Response) -> None:
        seen_response.response = True
        seen_response.status = response.status_code
        if response.status_code == 401:
            raise exerr.UnauthorizedError(f"Invalid credentials for {response.url}")
        if response.status_code == 403:
            raise exerr.ErrorUserNotAllowedByPolicy("EWS access forbidden")
        check_answer(response)
        super().raise_response_errors(response)


# --------------------------------------------------------------------------- backend


class EwsBackend(EwsSettings, EwsScheduling):
    """Exchange Web Services through exchangelib, always as a delegate (never impersonation).

    Args:
        endpoint: the EWS URL (https://host/EWS/Exchange.asmx); with `autodiscover`, the
            host whose Autodiscover service names the EWS URL, or None to discover it from
            the address's domain.
        user: the signed-in user's primary address.
        auth: Basic, NTLM or Kerberos (Negotiate).
        password: for Basic and NTLM; Kerberos uses the ticket cache.
        username: login name when it differs from the address (DOMAIN\\user).
        version: e.g. "Exchange2016"; None asks the server once.
        ca_bundle: CA file to verify the server with; `verify_tls=False` only for labs.
        max_wait_s: the longest single back-off the retry layer accepts before giving up
            with `Throttled`.
        streaming: use streaming notifications where the server has them (else pull).
        ccache: with Kerberos, a ticket cache of this backend's own instead of the process's
            (a service acting with a caller's forwarded ticket).
    """

    name = "ews"
    capabilities = frozenset(str(f) for f in Feature)

    def __init__(
        self,
        *,
        endpoint: str | None,
        user: str,
        auth: AuthMethod = AuthMethod.NTLM,
        password: str | None = None,
        username: str | None = None,
        version: str | None = None,
        autodiscover: bool = False,
        ca_bundle: str | None = None,
        verify_tls: bool = True,
        timeout_s: float = 60.0,
        max_wait_s: float = 60.0,
        streaming: bool = True,
        ccache: str | None = None,
    ) -> None:
        patches.install()
        if "@" not in user:
            raise InvalidInput(f"{user!r} is not an e-mail address.")
        if not endpoint and not autodiscover:
            raise InvalidInput("Give the EWS endpoint URL, or switch on autodiscover.")
        if auth in (AuthMethod.BASIC, AuthMethod.NTLM) and not password:
            raise BadCredentials(f"{auth.value} sign-in needs a password; it is empty.")
        if auth is AuthMethod.OAUTH:
            raise InvalidInput(
                "OAuth is for the Graph backend; EWS here uses Basic, NTLM or Kerberos."
            )
        self.user = user.lower()
        self._verify: bool | str = False if not verify_tls else (ca_bundle or True)
        #: The address in errors about reaching the server.
        self.url = endpoint or ""
        # With autodiscover, a given `endpoint` is the host whose Autodiscover service names
        # the EWS URL (asked once, on first use); without one exchangelib discovers from DNS.
        self._discovery_host = endpoint if autodiscover else None
        self._autodiscover = autodiscover and not endpoint
        if endpoint and not autodiscover:
            with TLS_LOCK:
                TLS_VERIFY[endpoint] = self._verify
        self._timeout = timeout_s
        self._streaming = streaming
        sign = login(
            Profile(self.user, endpoint or "", self.user, auth, "ews", username=username),
            password=password,
        )
        assert sign.requests_auth is not None  # every method the ews backend takes has one
        auth_type = sign.requests_auth
        if ccache is not None and auth is AuthMethod.KERBEROS and not password:
            auth_type = register_negotiate(ccache)
        credentials = Credentials(sign.username, sign.password) if sign.password else None
        ex_version = None
        if version:
            ex_version = _version(version)
        self._credentials, self._auth_type = credentials, auth_type
        self._config = Configuration(
            credentials=credentials,
            service_endpoint=None if autodiscover else endpoint,
            auth_type=auth_type,
            version=ex_version,
            retry_policy=_Patience(max_wait=max_wait_s),
            max_connections=4,
        )
        self._accounts: dict[str, Account] = {}
        self._lock = threading.Lock()
        self._folder_mailbox: dict[str, str] = {}
        self._folder_rights: dict[str, Rights | None] = {}
        self._folder_kind: dict[str, FolderKind] = {}
        self._closed = False

    @classmethod
    def from_profile(
        cls,
        profile: Profile,
        *,
        password: str | None = None,
        token_cache: Path | None = None,
        ccache: str | None = None,
    ) -> EwsBackend:
        """A backend for a profile; the password comes from the caller, never the profile.

        `token_cache` is for OAuth profiles, which EWS here does not take (see `__init__`);
        `ccache` is a Kerberos ticket cache of this backend's own.
        """
        return cls(
            endpoint=profile.server or None,
            user=profile.user,
            auth=profile.auth,
            password=password,
            username=profile.username,
            version=profile.version,
            autodiscover=profile.autodiscover,
            ca_bundle=profile.ca_bundle,
            verify_tls=profile.verify_tls,
            timeout_s=profile.timeout_s,
            max_wait_s=profile.max_wait_s,
            ccache=ccache,
        )

    # ------------------------------------------------------------------ plumbing

    def _account(self, address: str | None = None) -> Account:
        addr = (address or self.user).lower()
        if addr == "public":
            addr = self.user
        with self._lock:
            acc = self._accounts.get(addr)
            if acc is None:
                if self._discovery_host is not None:
                    self._use_discovered_endpoint()
                with ews_errors(mailbox=addr):
                    acc = Account(
                        primary_smtp_address=addr,
                        config=self._config,
                        autodiscover=self._autodiscover,
                        access_type=DELEGATE,
                        default_timezone=EWSTimeZone("UTC"),
                        locale="en_US",
                    )
                    acc.protocol.TIMEOUT = self._timeout
                    _ = acc.version  # ask the server once when no version was configured
                self._accounts[addr] = acc
            return acc

    def _use_discovered_endpoint(self) -> None:
        """Ask the Autodiscover host for the signed-in user's EWS URL and use it from now on."""
        host = self._discovery_host
        assert host is not None  # called only while discovery is pending
        url = discover_ews_url(
            host,
            self.user,
            credentials=self._credentials,
            auth_type=self._auth_type,
            verify=self._verify,
        )
        with TLS_LOCK:
            TLS_VERIFY[url] = self._verify
        self.url = url
        self._config = Configuration(
            credentials=self._credentials,
            service_endpoint=url,
            auth_type=self._auth_type,
            version=self._config.version,
            retry_policy=self._config.retry_policy,
            max_connections=self._config.max_connections,
        )
        self._discovery_host = None

    def _root(self, mailbox: str, *, archive: bool = False) -> Any:
        acc = self._account(mailbox)
        if mailbox == "public":
            return PublicFoldersRoot(
                account=acc, _distinguished_id=DistinguishedFolderId(id="publicfoldersroot")
            )
        name = "archiveroot" if archive else "root"
        return Root(
            account=acc,
            _distinguished_id=DistinguishedFolderId(
                id=name, mailbox=ExMailbox(email_address=mailbox)
            ),
        )

    def _fetch(self, acc: Any, ids: Any, **kwargs: Any) -> Any:
        """GetItem through `acc`. exchangelib checks the fields asked for against a folder and
        by default fetches the mailbox root for that (a GetFolder per account); a folder
        object under a root we build ourselves checks the same without asking the server."""
        mailbox = str(acc.primary_smtp_address).lower()
        return acc.fetch(ids=ids, folder=ExFolder(root=self._root(mailbox)), **kwargs)

    def _ex_folder(self, folder: Folder) -> Any:
        root = self._root(folder.mailbox, archive=folder.archive)
        return ExFolder(id=folder.id, changekey=folder.change_key, root=root)

    def _distinguished(self, mailbox: str, name: str, *, archive: bool = False) -> Any:
        root = self._root(mailbox, archive=archive)
        box = None if mailbox == "public" else ExMailbox(email_address=mailbox)
        return ExFolder(_distinguished_id=DistinguishedFolderId(id=name, mailbox=box), root=root)

    def _to_folder(
        self, f: Any, mailbox: str, distinguished: str | None = None, *, archive: bool = False
    ) -> Folder:
        kind = FolderKind.from_container_class(getattr(f, "folder_class", None))
        if distinguished in ("calendar",):
            kind = FolderKind.CALENDAR
        parent = getattr(f, "parent_folder_id", None)
        # One's own archive is one's own too: full rights, as the server grants them.
        own = mailbox.lower() == self.user and mailbox != "public"
        rights = rights_from_effective(
            getattr(f, "effective_rights", None),
            own=own,
            user=self.user,
            permission_set=None if own else getattr(f, "permission_set", None),
        )
        folder = Folder(
            id=str(f.id),
            change_key=getattr(f, "changekey", None),
            mailbox=mailbox.lower(),
            name=str(getattr(f, "name", None) or distinguished or ""),
            kind=kind,
            parent_id=str(parent.id) if parent is not None and parent.id else None,
            distinguished=distinguished,
            container_class=getattr(f, "folder_class", None),
            total_count=int(getattr(f, "total_count", None) or 0),
            unread_count=int(getattr(f, "unread_count", None) or 0),
            child_folder_count=int(getattr(f, "child_folder_count", None) or 0),
            rights=rights,
            archive=archive,
        )
        with self._lock:
            self._folder_mailbox[folder.id] = folder.mailbox
            self._folder_kind[folder.id] = folder.kind
            self._folder_rights[folder.id] = rights
        return folder

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._lock:
            accounts = list(self._accounts.values())
            self._accounts.clear()
        for acc in accounts[:1]:
            with contextlib.suppress(Exception):
                acc.protocol.close()  # shared by every account of this configuration

    # ------------------------------------------------------------------ mailboxes & folders

    def own_mailbox(self) -> Mailbox:
        acc = self._account()
        name = self.user
        with ews_errors(mailbox=self.user):
            for res in acc.protocol.resolve_names([self.user]):
                mb = res[0] if isinstance(res, tuple) else res
                if isinstance(mb, ExMailbox) and mb.email_address and mb.name:
                    name = str(mb.name)
                    break
        return Mailbox(self.user, name, MailboxKind.OWN)

    def resolve_names(self, query: str) -> Sequence[Mailbox]:
        if not query.strip():
            raise InvalidInput("Give an address or a name.")
        acc = self._account()
        out: list[Mailbox] = []
        with ews_errors():
            try:
                results = list(acc.protocol.resolve_names([query.strip()]))
            except exerr.ErrorNameResolutionNoResults:
                return []
        for res in results:
            if isinstance(res, exerr.ErrorNameResolutionNoResults):
                continue
            raise_if_error(res)
            mb = res[0] if isinstance(res, tuple) else res
            if not getattr(mb, "email_address", None):
                continue
            address = str(mb.email_address).lower()
            mtype = str(getattr(mb, "mailbox_type", "") or "")
            if mtype == "PublicFolder":
                kind = MailboxKind.PUBLIC
            elif address == self.user:
                kind = MailboxKind.OWN
            else:
                kind = MailboxKind.DELEGATED
            out.append(Mailbox(address, str(mb.name or address), kind))
        return out

    def archive_of(self, mailbox: Mailbox) -> Mailbox | None:
        folder = self._distinguished(mailbox.address, "archivemsgfolderroot", archive=True)
        with ews_errors(mailbox=mailbox.address):
            try:
                results = list(
                    GetFolder(account=self._account(mailbox.address)).call(
                        folders=[folder],
                        additional_fields={
                            FieldPath(field=ExFolder.get_field_by_fieldname("name"))
                        },
                        shape=ID_ONLY,
                    )
                )
            except (exerr.ErrorFolderNotFound, exerr.ErrorAccessDenied, exerr.ErrorItemNotFound):
                return None
        if not results or isinstance(results[0], Exception):
            return None
        name = f"Online Archive - {mailbox.display_name}"
        return Mailbox(mailbox.address, name, MailboxKind.ARCHIVE)

    def folder_tree(self, mailbox: Mailbox) -> FolderNode:
        address = mailbox.address.lower()
        archive = mailbox.kind is MailboxKind.ARCHIVE
        public = mailbox.kind is MailboxKind.PUBLIC
        acc = self._account(address)
        fields = _folder_fields()
        if public:
            top_name = "publicfoldersroot"
            known: tuple[str, ...] = ()
        elif archive:
            top_name = "archivemsgfolderroot"
            known = ARCHIVE_FOLDERS
        else:
            top_name = "msgfolderroot"
            known = DEFAULT_FOLDERS
        ctx = {"mailbox": address}
        # Request 1: the top folder and the well-known folders (to mark them) in one GetFolder.
        asked = [self._distinguished(address, n, archive=archive) for n in (top_name, *known)]
        with ews_errors(**ctx):
            got = list(
                GetFolder(account=acc).call(folders=asked, additional_fields=fields, shape=ID_ONLY)
            )
        top = got[0]
        raise_if_error(top, **ctx)
        distinguished_ids: dict[str, str] = {}
        for name, res in zip(known, got[1:], strict=False):
            if not isinstance(res, Exception) and res.id:
                distinguished_ids[str(res.id)] = name
        top_folder = self._to_folder(top, address, top_name, archive=archive)
        # Request 2 (mailboxes): all subfolders at any depth in one FindFolder. Public folders
        # allow no deep traversal (as Exchange): one request per level, all parents at once.
        found: list[Any] = []
        with ews_errors(**ctx):
            if public:
                level = [top]
                while level:
                    children = list(
                        FindFolder(account=acc).call(
                            folders=level,
                            additional_fields=fields,
                            restriction=None,
                            shape=ID_ONLY,
                            depth=SHALLOW,
                            max_items=None,
                            offset=0,
                        )
                    )
                    level = []
                    for child in children:
                        if isinstance(child, exerr.ErrorAccessDenied):
                            continue
                        raise_if_error(child, **ctx)
                        found.append(child)
                        if child.child_folder_count:
                            level.append(child)
            else:
                for child in FindFolder(account=acc).call(
                    folders=[top],
                    additional_fields=fields,
                    restriction=None,
                    shape=ID_ONLY,
                    depth=DEEP,
                    max_items=None,
                    offset=0,
                ):
                    if isinstance(child, exerr.ErrorAccessDenied):
                        continue
                    raise_if_error(child, **ctx)
                    found.append(child)
        folders = [
            self._to_folder(f, address, distinguished_ids.get(str(f.id)), archive=archive)
            for f in found
        ]
        by_parent: dict[str | None, list[Folder]] = {}
        for folder in folders:
            by_parent.setdefault(folder.parent_id, []).append(folder)

        def build(folder: Folder, seen: frozenset[str]) -> FolderNode:
            kids = sorted(by_parent.get(folder.id, []), key=lambda f: f.name.lower())
            return FolderNode(
                folder, tuple(build(k, seen | {k.id}) for k in kids if k.id not in seen)
            )

        return build(top_folder, frozenset({top_folder.id}))

    def default_folder(self, mailbox: str, name: str) -> Folder:
        name = name.lower()
        if mailbox.lower() == "public":  # never the own mailbox in disguise
            raise InvalidInput(f"The public folders have no well-known folder {name!r}.")
        archive = name.startswith("archive")
        ex = self._distinguished(mailbox.lower(), name, archive=archive)
        fields = _folder_fields()
        with ews_errors(mailbox=mailbox, folder=name):
            try:
                (res,) = list(
                    GetFolder(account=self._account(mailbox)).call(
                        folders=[ex], additional_fields=fields, shape=ID_ONLY
                    )
                )
            except ValueError as exc:  # exchangelib refuses unknown distinguished names
                raise InvalidInput(f"{name!r} is no well-known folder name.") from exc
        raise_if_error(res, mailbox=mailbox, folder=name)
        return self._to_folder(res, mailbox, name, archive=archive)

    def default_folders(self, wanted: Sequence[tuple[str, str]]) -> Sequence[Folder | MedError]:
        """Several well-known folders, (mailbox, name) each, in one GetFolder: Exchange
        answers each DistinguishedFolderId, whichever mailbox it names, in one request."""
        asked: list[tuple[str, str, Any]] = []
        for mailbox, name in wanted:
            box, key = mailbox.lower(), name.lower()
            if box == "public":
                return [self._one_default(m, n) for m, n in wanted]
            asked.append(
                (box, key, self._distinguished(box, key, archive=key.startswith("archive")))
            )
        if not asked:
            return []
        try:
            with ews_errors(mailbox=asked[0][0]):
                got = list(
                    GetFolder(account=self._account(asked[0][0])).call(
                        folders=[ex for _, _, ex in asked],
                        additional_fields=_folder_fields(),
                        shape=ID_ONLY,
                    )
                )
        except (ValueError, NotFound, AccessDenied, InvalidInput):
            # An unknown well-known name, or a mailbox refused for the whole request (exchangelib
            # raises ErrorNonExistentMailbox for all): asked one by one, each says its own.
            return [self._one_default(m, n) for m, n in wanted]
        out: list[Folder | MedError] = []
        for (box, key, _), res in zip(asked, got, strict=True):
            if isinstance(res, Exception):
                out.append(translate_error(res, mailbox=box, folder=key))
            else:
                out.append(self._to_folder(res, box, key, archive=key.startswith("archive")))
        return out

    def _one_default(self, mailbox: str, name: str) -> Folder | MedError:
        try:
            return self.default_folder(mailbox, name)
        except MedError as exc:
            return exc

    def know_folders(self, folders: Sequence[Folder]) -> None:
        """Folders the session knows without this backend having fetched them (its folder
        cache): their mailbox and our rights, which decide how items in them are written."""
        with self._lock:
            for folder in folders:
                self._folder_mailbox[folder.id] = folder.mailbox
                self._folder_kind[folder.id] = folder.kind
                self._folder_rights[folder.id] = folder.rights

    @property
    def server_version(self) -> str | None:
        """The server's version name ("Exchange2016"), given or asked, once known; None
        while no account has asked or when the name is none `version=` takes."""
        version = self._config.version
        if version is None:
            with self._lock:
                accounts = list(self._accounts.values())
            version = accounts[0].version if accounts else None
        name = getattr(version, "api_version", None)
        return name if name in _VERSION_BUILDS else None

    def _holder_of(self, folder_id: str, *, exists: bool = False) -> str | None:
        """The mailbox holding a folder we have not listed: the server names it when it
        converts the folder's id (ConvertId answers with the mailbox of the id's moniker).

        With `exists` (we just read an item in the folder), a refusal to convert means the
        public folders, whose ids belong to no user's mailbox: "public"."""
        from exchangelib.properties import AlternateId

        with self._lock:
            known = self._folder_mailbox.get(folder_id)
        if known is not None:
            return known
        try:
            (res,) = list(
                self._account().protocol.convert_ids(
                    [AlternateId(id=folder_id, format="EwsId", mailbox=self.user)],
                    destination_format="EwsId",
                )
            )
        except (exerr.EWSError, requests.RequestException):
            return None  # no answer: the caller keeps what it knew
        holder = getattr(res, "mailbox", None)
        unconvertible = (
            exerr.ErrorItemNotFound,
            exerr.ErrorFolderNotFound,
            exerr.ErrorInvalidRequest,
        )
        if isinstance(res, unconvertible) and exists:
            holder = "public"
        elif isinstance(res, Exception) or not holder:
            return None
        with self._lock:
            self._folder_mailbox[folder_id] = str(holder).lower()
        return str(holder).lower()

    def get_folder(self, folder_id: str) -> Folder:
        mailbox = self._holder_of(folder_id) or self.user
        fields = _folder_fields()
        ex = ExFolder(id=folder_id, root=self._root(mailbox))
        with ews_errors(mailbox=mailbox, folder=folder_id):
            (res,) = list(
                GetFolder(account=self._account(mailbox)).call(
                    folders=[ex], additional_fields=fields, shape=ID_ONLY
                )
            )
        raise_if_error(res, mailbox=mailbox, folder=folder_id)
        return self._to_folder(res, mailbox)

    # ------------------------------------------------------------------ items: reading

    def _query(self, query: ItemQuery, kind: FolderKind) -> Any:
        q = Q()
        if query.unread_only:
            q &= Q(is_read=False)
        if query.flagged_only:
            q &= Q(med_flag_status=2)
        if query.importance is not None:
            q &= Q(importance=IMPORTANCE_BACK[query.importance])
        if query.category:
            q &= Q(categories__contains=[query.category])
        if query.has_attachments is not None:
            q &= Q(has_attachments=query.has_attachments)
        if query.sender:
            q &= Q(author=query.sender)
        time_field = {
            FolderKind.CALENDAR: "start",
            FolderKind.TASKS: "due_date",
            FolderKind.NOTES: "last_modified_time",
            FolderKind.CONTACTS: "last_modified_time",
        }.get(kind, "datetime_received")
        if query.start is not None:
            q &= Q(**{f"{time_field}__gte": ews_datetime(query.start)})
        if query.end is not None:
            q &= Q(**{f"{time_field}__lt": ews_datetime(query.end)})
        if query.search:
            text = query.search.strip()
            q &= Q(subject__icontains=text) | Q(body__icontains=text)
        return q

    def _find(
        self,
        acc: Any,
        ex: Any,
        q: Any,
        fields: Sequence[str],
        *,
        order: str | None,
        limit: int | None,
        offset: int = 0,
        calendar_view: Any = None,
    ) -> tuple[list[Any], int | None]:
        """One FindItem (per page) with the summary fields, complex ones included.

        exchangelib's QuerySet turns a request for From, Sender or Categories into FindItem
        plus GetItem; Exchange returns them in FindItem, so we call the service directly.
        """
        from exchangelib.fields import FieldOrder
        from exchangelib.restriction import Restriction

        valid = {f.name for f in ex.allowed_item_fields(version=acc.version)}
        additional = {
            fp
            for fp in ex.normalize_fields(fields=[f for f in fields if f in valid])
            if not fp.field.is_attribute
        }
        restriction = None
        if not q.is_empty():
            restriction = Restriction(q, folders=[ex], applies_to=Restriction.ITEMS)
        order_fields = [FieldOrder.from_string(order, folder=ex)] if order else None
        service = _CountingFindItem(account=acc, page_size=limit or 1000)
        items = list(
            service.call(
                folders=[ex],
                additional_fields=additional,
                restriction=restriction,
                order_fields=order_fields,
                shape=ID_ONLY,
                query_string=None,
                depth=SHALLOW,
                calendar_view=calendar_view,
                max_items=calendar_view.max_items if calendar_view else limit,
                offset=offset,
            )
        )
        return items, service.total

    def find_items(self, folder: Folder, query: ItemQuery) -> Page[Item]:
        acc, ex = self._folder_of(folder)
        ctx = {"mailbox": folder.mailbox, "folder": folder.name}
        fields = LIST_FIELDS.get(folder.kind, LIST_FIELDS[FolderKind.MAIL])
        default_sort = {
            FolderKind.CALENDAR: "start",
            FolderKind.CONTACTS: "name",
            FolderKind.TASKS: "due",
        }.get(folder.kind, "received")
        sort = SORT_FIELDS.get(query.sort or default_sort, "datetime_received")
        if query.sort == "from":
            sort = "author"
        descending = query.descending if query.sort is not None else default_sort == "received"
        order = f"-{sort}" if descending else sort
        with ews_errors(**ctx):
            raw, total = self._find(
                acc,
                ex,
                self._query(query, folder.kind),
                fields,
                order=order,
                limit=query.limit,
                offset=query.offset,
            )
        items = []
        for res in raw:
            raise_if_error(res, **ctx)
            items.append(self._to_item(res, folder.mailbox, folder.id))
        # Without a total from the server a full page means there may be more.
        more = len(items) >= query.limit if total is None else query.offset + len(items) < total
        return Page(tuple(items), query.offset, total, more)

    def calendar_view(self, folder: Folder, start: datetime, end: datetime) -> Sequence[Event]:
        from exchangelib.properties import CalendarView

        acc, ex = self._folder_of(folder)
        ctx = {"mailbox": folder.mailbox, "folder": folder.name}
        with ews_errors(**ctx):
            view = CalendarView(start=ews_datetime(start), end=ews_datetime(end))
            raw, _ = self._find(
                acc,
                ex,
                Q(),
                LIST_FIELDS[FolderKind.CALENDAR],
                order=None,
                limit=None,
                calendar_view=view,
            )
        out = []
        for res in raw:
            raise_if_error(res, **ctx)
            item = self._to_item(res, folder.mailbox, folder.id)
            if isinstance(item, Event):
                out.append(item)
        with ews_errors(**ctx):
            return self._with_series_ids(acc, out, one_folder=True)

    def _with_series_ids(
        self, acc: Any, events: list[Event], *, one_folder: bool = False
    ) -> list[Event]:
        """Occurrences and exceptions with `series_id`, their master's id.

        EWS names no master on an occurrence; one GetItem by RecurringMasterItemId asks the
        server for all of them at once. Within one folder a series is told apart by UID, so
        a view asks once per series (across folders a meeting's copies share the UID).
        """
        from exchangelib.properties import RecurringMasterItemId

        linked = (EventKind.OCCURRENCE, EventKind.EXCEPTION)

        def key(ev: Event) -> str:
            return (ev.uid or ev.id) if one_folder else ev.id

        wanted: dict[str, Event] = {}
        for ev in events:
            if ev.event_kind in linked and not ev.series_id:
                wanted.setdefault(key(ev), ev)
        if not wanted:
            return events
        keys = list(wanted)
        raw = list(
            self._fetch(
                acc,
                ids=[RecurringMasterItemId(id=wanted[k].id) for k in keys],
                only_fields=["uid"],
            )
        )
        pairs = zip(keys, raw, strict=True)
        masters = {k: str(res.id) for k, res in pairs if not isinstance(res, Exception)}
        return [
            dataclasses.replace(ev, series_id=masters.get(key(ev)))
            if ev.event_kind in linked and not ev.series_id
            else ev
            for ev in events
        ]

    def get_items(self, item_ids: Sequence[str]) -> Sequence[Item]:
        acc = self._account()
        with ews_errors(item=item_ids[0] if len(item_ids) == 1 else None):
            raw = list(self._fetch(acc, ids=[ItemId(id=i) for i in item_ids]))
        out = []
        for item_id, res in zip(item_ids, raw, strict=True):
            raise_if_error(res, item=item_id)
            out.append(self._to_item(res, None, None))
        events = [i for i in out if isinstance(i, Event)]
        if not events:
            return out
        with ews_errors(item=item_ids[0] if len(item_ids) == 1 else None):
            linked = {e.id: e for e in self._with_series_ids(acc, events)}
        return [linked.get(i.id, i) if isinstance(i, Event) else i for i in out]

    def series_master(self, item_id: str) -> Event:
        from exchangelib.properties import RecurringMasterItemId

        acc = self._account()
        with ews_errors(item=item_id):
            (occ,) = list(self._fetch(acc, ids=[ItemId(id=item_id)], only_fields=["type"]))
            raise_if_error(occ, item=item_id)
            if not isinstance(occ, CalendarItem) or occ.type not in (
                "Occurrence",
                "Exception",
                "RecurringMaster",
            ):
                raise NotFound("This event is not part of a series.", item=item_id)
            # GetItem by RecurringMasterItemId: the server resolves the master of an occurrence
            # (and a master to itself).
            (master,) = list(
                self._fetch(acc, ids=[RecurringMasterItemId(id=occ.id, changekey=occ.changekey)])
            )
        raise_if_error(master, item=item_id)
        ev = self._to_item(master, None, None)
        if not isinstance(ev, Event):
            raise NotFound("This event is not part of a series.", item=item_id)
        return ev

    def attachment(self, attachment_id: str) -> AttachmentContent:
        from exchangelib.attachments import AttachmentId
        from exchangelib.services import GetAttachment

        acc = self._account()
        with ews_errors(item=attachment_id):
            (res,) = list(
                GetAttachment(account=acc).call(
                    items=[AttachmentId(id=attachment_id)],
                    include_mime_content=True,
                    body_type=None,
                    filter_html_content=None,
                    additional_fields=None,
                )
            )
        raise_if_error(res, item=attachment_id)
        meta = to_attachment(res)
        if isinstance(res, FileAttachment):
            content = bytes(res.content or b"")
        else:
            inner = getattr(res, "item", None)
            content = bytes(getattr(inner, "mime_content", None) or b"")
        return AttachmentContent(dataclasses.replace(meta, size=len(content)), content)

    def export_mime(self, item_id: str) -> bytes:
        acc = self._account()
        with ews_errors(item=item_id):
            (res,) = list(self._fetch(acc, ids=[ItemId(id=item_id)], only_fields=["mime_content"]))
        raise_if_error(res, item=item_id)
        mime = res.mime_content
        if not mime:
            raise NotFound("The server returned no MIME content for this item.", item=item_id)
        return bytes(mime) if not isinstance(mime, str) else mime.encode()

    def master_categories(self, mailbox: str) -> Sequence[str]:
        from defusedxml import ElementTree
        from exchangelib.properties import UserConfigurationNameMNS

        acc = self._account(mailbox)
        calendar = self._distinguished(mailbox.lower(), "calendar")
        with ews_errors(mailbox=mailbox):
            try:
                res = GetUserConfiguration(account=acc).get(
                    user_configuration_name=UserConfigurationNameMNS(
                        name="CategoryList", folder=calendar
                    ),
                    properties="XmlData",
                )
            except exerr.ErrorItemNotFound:
                return []
        raise_if_error(res, mailbox=mailbox)
        xml = getattr(res, "xml_data", None)
        if not xml:
            return []
        root = ElementTree.fromstring(xml)
        names = []
        for el in root.iter():
            if el.tag.rsplit("}", 1)[-1] == "category" and el.get("name"):
                names.append(str(el.get("name")))
        return names

    # ------------------------------------------------------------------ conversion

    def _to_item(self, ex: Any, mailbox: str | None, folder_id: str | None) -> Item:
        parent = getattr(ex, "parent_folder_id", None)
        if parent is not None and getattr(parent, "id", None):
            folder_id = str(parent.id)
        if mailbox is None and folder_id is not None:
            mailbox = self._holder_of(folder_id, exists=True)
        attachments = tuple(to_attachment(a) for a in (getattr(ex, "attachments", None) or ()))
        body = getattr(ex, "body", None)
        common: dict[str, Any] = {
            "id": str(ex.id),
            "change_key": getattr(ex, "changekey", None),
            "folder_id": folder_id,
            "mailbox": mailbox,
            "item_class": getattr(ex, "item_class", None),
            "subject": str(getattr(ex, "subject", None) or ""),
            "body": str(body) if body is not None else None,
            "body_is_html": type(body).__name__ == "HTMLBody",
            "importance": IMPORTANCE.get(
                getattr(ex, "importance", None) or "Normal", Importance.NORMAL
            ),
            "sensitivity": SENSITIVITY.get(
                getattr(ex, "sensitivity", None) or "Normal", Sensitivity.NORMAL
            ),
            "categories": tuple(getattr(ex, "categories", None) or ()),
            "created": aware_datetime(getattr(ex, "datetime_created", None)),
            "last_modified": aware_datetime(getattr(ex, "last_modified_time", None)),
            "has_attachments": bool(getattr(ex, "has_attachments", False) or attachments),
            "attachments": attachments,
            "size": getattr(ex, "size", None),
            "reminder_minutes": (
                getattr(ex, "reminder_minutes_before_start", None)
                if getattr(ex, "reminder_is_set", False)
                else None
            ),
            "flag": flag_of(ex),
        }
        item_class = str(common["item_class"] or "")
        if isinstance(ex, CalendarItem):
            return self._to_event(ex, common)
        if isinstance(ex, ExContact):
            emails = tuple(str(e.email) for e in (ex.email_addresses or ()) if e.email)
            phones = {
                str(p.label): str(p.phone_number)
                for p in (ex.phone_numbers or ())
                if p.phone_number
            }
            return Contact(
                **common,
                display_name=str(ex.display_name or ""),
                given_name=str(ex.given_name or ""),
                surname=str(ex.surname or ""),
                company=str(ex.company_name or ""),
                department=str(ex.department or ""),
                job_title=str(ex.job_title or ""),
                emails=emails,
                phones=phones,
            )
        if isinstance(ex, ExTask):
            return Task(
                **common,
                start=aware_datetime(ex.start_date),
                due=aware_datetime(ex.due_date),
                completed=aware_datetime(ex.complete_date),
                status=TASK_STATUS.get(ex.status or "NotStarted", TaskStatus.NOT_STARTED),
                percent_complete=int(ex.percent_complete or 0),
                owner=str(ex.owner or ""),
                reminder_at=aware_datetime(ex.reminder_due_by) if ex.reminder_is_set else None,
            )
        if item_class.lower().startswith("ipm.stickynote"):
            return Note(**common)
        fields: dict[str, Any] = {
            "from_": to_address(getattr(ex, "author", None)),
            "sender": to_address(getattr(ex, "sender", None)),
            "to": to_addresses(getattr(ex, "to_recipients", None)),
            "cc": to_addresses(getattr(ex, "cc_recipients", None)),
            "bcc": to_addresses(getattr(ex, "bcc_recipients", None)),
            "reply_to": to_addresses(getattr(ex, "reply_to", None)),
            "received": aware_datetime(getattr(ex, "datetime_received", None)),
            "sent": aware_datetime(getattr(ex, "datetime_sent", None)),
            "is_read": bool(getattr(ex, "is_read", False)),
            "is_draft": bool(getattr(ex, "is_draft", False)),
            "internet_message_id": getattr(ex, "message_id", None),
            "is_meeting_request": isinstance(ex, MeetingRequest),
            "last_verb": LAST_VERBS.get(getattr(ex, "med_last_verb", None) or 0),
        }
        proposed_start = aware_datetime(getattr(ex, "proposed_start", None))
        proposed_end = aware_datetime(getattr(ex, "proposed_end", None))
        if proposed_start and proposed_end:
            fields["proposed_time"] = (proposed_start, proposed_end)
        conv = getattr(ex, "conversation_id", None)
        fields["conversation_id"] = str(conv.id) if conv is not None and conv.id else None
        if item_class.lower().startswith("ipm.note.microsoft.voicemail"):
            duration = getattr(ex, "med_voice_duration", None)
            return Voicemail(
                **common,
                **fields,
                duration_s=int(duration) if duration is not None else None,
                caller=getattr(ex, "med_voice_caller", None),
            )
        return Message(**common, **fields)

    def _to_event(self, ex: Any, common: dict[str, Any]) -> Event:
        attendees = []
        for att_kind, attr in (
            (AttendeeKind.REQUIRED, "required_attendees"),
            (AttendeeKind.OPTIONAL, "optional_attendees"),
            (AttendeeKind.RESOURCE, "resources"),
        ):
            for att in getattr(ex, attr, None) or ():
                addr = to_address(att.mailbox)
                if addr is not None:
                    attendees.append(
                        Attendee(
                            addr,
                            att_kind,
                            RESPONSE.get(att.response_type or "Unknown", ResponseType.UNKNOWN),
                        )
                    )
        start = aware_datetime(ex.start) or datetime.now(UTC)
        end = aware_datetime(ex.end) or start
        kind = EVENT_KIND.get(ex.type or "Single", EventKind.SINGLE)
        return Event(
            **common,
            start=start,
            end=end,
            is_all_day=bool(ex.is_all_day),
            location=str(ex.location or ""),
            organizer=to_address(ex.organizer),
            attendees=tuple(attendees),
            event_kind=kind,
            recurrence=from_ex_recurrence(getattr(ex, "recurrence", None)),
            show_as=BUSY.get(ex.legacy_free_busy_status or "Busy", BusyStatus.BUSY),
            my_response=RESPONSE.get(ex.my_response_type or "Unknown", ResponseType.UNKNOWN),
            is_meeting=bool(ex.is_meeting) or bool(attendees),
            is_cancelled=bool(ex.is_cancelled),
            uid=getattr(ex, "uid", None),
            timezone=zone_name_of(getattr(ex, "_start_timezone", None)),
            original_start=aware_datetime(getattr(ex, "original_start", None)),
            modified_occurrences=tuple(
                str(occ.id) for occ in getattr(ex, "modified_occurrences", None) or () if occ.id
            ),
            deleted_occurrences=tuple(
                moment
                for occ in getattr(ex, "deleted_occurrences", None) or ()
                if (moment := aware_datetime(occ.start)) is not None
            ),
        )

    def _to_ews(self, item: Item, acc: Any, ex_folder: Any | None) -> Any:
        common: dict[str, Any] = {
            "account": acc,
            "subject": item.subject,
            "importance": IMPORTANCE_BACK[item.importance],
            "sensitivity": SENSITIVITY_BACK[item.sensitivity],
            "categories": list(item.categories) or None,
        }
        if ex_folder is not None:
            common["folder"] = ex_folder
        if item.body is not None:
            from exchangelib import Body as ExBody
            from exchangelib import HTMLBody

            common["body"] = HTMLBody(item.body) if item.body_is_html else ExBody(item.body)
        if item.reminder_minutes is not None:
            common["reminder_is_set"] = True
            common["reminder_minutes_before_start"] = item.reminder_minutes
        else:
            common["reminder_is_set"] = False
        if isinstance(item, Event):
            return CalendarItem(
                **common,
                start=ews_datetime(item.start, item.timezone)
                if not item.is_all_day
                else EWSDate.from_date(item.start.date()),
                end=ews_datetime(item.end, item.timezone)
                if not item.is_all_day
                else EWSDate.from_date(item.end.date()),
                is_all_day=item.is_all_day,
                location=item.location or None,
                uid=item.uid or None,  # an imported event keeps its iCalendar UID
                legacy_free_busy_status=BUSY_BACK[item.show_as],
                required_attendees=ex_attendees(item, AttendeeKind.REQUIRED),
                optional_attendees=ex_attendees(item, AttendeeKind.OPTIONAL),
                resources=ex_attendees(item, AttendeeKind.RESOURCE),
                recurrence=to_ex_recurrence(item.recurrence) if item.recurrence else None,
            )
        if isinstance(item, Contact):
            common["subject"] = item.subject or item.display_name
            return ExContact(
                **common,
                display_name=item.display_name or item.subject or None,
                given_name=item.given_name or None,
                surname=item.surname or None,
                company_name=item.company or None,
                department=item.department or None,
                job_title=item.job_title or None,
                email_addresses=[
                    IndexedEmailAddress(email=e, label=f"EmailAddress{i + 1}")
                    for i, e in enumerate(item.emails[:3])
                ]
                or None,
                phone_numbers=[
                    IndexedPhoneNumber(label=k, phone_number=v) for k, v in item.phones.items()
                ]
                or None,
            )
        if isinstance(item, Task):
            # A completion date means done; done is 100 %, as Outlook shows it.
            done = item.completed is not None or item.status is TaskStatus.COMPLETED
            common["reminder_is_set"] = item.reminder_at is not None
            if item.reminder_at is not None:
                common["reminder_due_by"] = ews_datetime(item.reminder_at)
            return ExTask(
                **common,
                start_date=EWSDate.from_date(item.start.date()) if item.start else None,
                due_date=EWSDate.from_date(item.due.date()) if item.due else None,
                status=TASK_STATUS_BACK[TaskStatus.COMPLETED if done else item.status],
                percent_complete=Decimal(100 if done else item.percent_complete),
            )
        if isinstance(item, Note):
            note = StickyNote(**common)
            note.item_class = "IPM.StickyNote"
            return note
        msg = ExMessage(**common)
        if isinstance(item, Message):
            msg.to_recipients = ex_mailboxes(item.to)
            msg.cc_recipients = ex_mailboxes(item.cc)
            msg.bcc_recipients = ex_mailboxes(item.bcc)
            msg.is_read = item.is_read
            if item.last_verb is not None:
                msg.med_last_verb = LAST_VERB_CODES[item.last_verb]
            if item.in_reply_to:  # threading: the answered message's Message-ID
                msg.in_reply_to = item.in_reply_to
                msg.references = item.in_reply_to
            if item.from_ is not None:
                msg.author = ExMailbox(email_address=item.from_.email, name=item.from_.name or None)
        apply_flag(msg, item.flag)
        return msg

    # ------------------------------------------------------------------ items: writing

    def _folder_of(self, folder: Folder) -> tuple[Any, Any]:
        acc = self._account(folder.mailbox)
        return acc, self._ex_folder(folder)

    def create_item(self, folder: Folder, item: Item, *, send_invitations: bool) -> Item:
        acc, ex_folder = self._folder_of(folder)
        ctx = {"mailbox": folder.mailbox, "folder": folder.name}
        ex = self._to_ews(item, acc, ex_folder)
        with ews_errors(**ctx):
            if isinstance(ex, CalendarItem):
                ex.save(
                    send_meeting_invitations="SendToAllAndSaveCopy"
                    if send_invitations and isinstance(item, Event) and item.attendees
                    else "SendToNone"
                )
            else:
                ex.save()
            for att in item.new_attachments:
                ex.attach(_file_attachment(att))
        local = dataclasses.replace(
            item,
            id=str(ex.id),
            change_key=ex.changekey,
            folder_id=folder.id,
            mailbox=folder.mailbox,
            new_attachments=(),
        )
        # What the server stored (series kind, organizer, created, item class), not our input;
        # the item exists either way, so a failing read falls back to the input.
        try:
            (stored,) = self.get_items([local.id])
        except MedError:
            return local
        return dataclasses.replace(stored, folder_id=folder.id, mailbox=folder.mailbox)

    def _edits_own_only(self, item: Item) -> bool:
        """Whether our rights on the item's folder let us change only items we created
        (Author): then the item's own EffectiveRights decide."""
        with self._lock:
            rights = self._folder_rights.get(item.folder_id or "")
        return rights is not None and rights.edit is EditScope.OWN

    def _update_plan(self, item: Item, fields: Sequence[str], acc: Any) -> tuple[Any, list[str]]:
        """The exchangelib item carrying `item`'s values and the exchangelib field names for
        the med `fields` (`start` is `start_date` on tasks)."""
        ex = self._to_ews(item, acc, None)
        ex._id = ItemId(id=item.id, changekey=item.change_key)
        valid = {f.name for f in type(ex).FIELDS}
        names: list[str] = []
        for f in fields:
            mapped = [n for n in UPDATE_FIELDS.get(f, (f,)) if n in valid]
            if not mapped:
                raise InvalidInput(f"Cannot update {f} on a {item.kind.value}.")
            names.extend(n for n in mapped if n not in names)
        if isinstance(ex, ExTask) and "status" in names and "percent_complete" not in names:
            names.append("percent_complete")  # completing also makes it 100 %
        if isinstance(ex, ExTask) and ex.reminder_due_by is None and "reminder_due_by" in names:
            names.remove("reminder_due_by")  # a cleared reminder is ReminderIsSet false alone
        return ex, names

    def update_item(self, item: Item, fields: Sequence[str], *, send_updates: bool) -> Item:
        (outcome,) = self.update_items([item], fields, send_updates=send_updates)
        if isinstance(outcome, MedError):
            raise outcome
        return outcome

    def update_items(
        self, items: Sequence[Item], fields: Sequence[str], *, send_updates: bool
    ) -> Sequence[Item | MedError]:
        """Write the same fields of many items in one UpdateItem per BATCH_SIZE items.

        Items without a change key, and items in folders where we may change only our own
        (Author), are read first, all in one GetItem: the current change key, and whether
        the item is ours. With the change key we listed, the server refuses to overwrite a
        newer version (Conflict); without one it resolves itself.
        """
        outcomes: list[Item | MedError | None] = [None] * len(items)

        def context(item: Item) -> dict[str, str | None]:
            return {"mailbox": item.mailbox, "item": item.subject or item.id}

        # 1. One GetItem for what must be read before writing.
        to_read = [i for i, it in enumerate(items) if not it.change_key or self._edits_own_only(it)]
        current_keys: dict[int, str] = {}
        if to_read:
            first = items[to_read[0]]
            with ews_errors(**context(first)):
                read = list(
                    self._fetch(
                        self._account(first.mailbox or self.user),
                        ids=[ItemId(id=items[i].id) for i in to_read],
                        only_fields=["effective_rights"],
                        chunk_size=BATCH_SIZE,
                    )
                )
            for i, cur in zip(to_read, read, strict=True):
                if isinstance(cur, Exception):
                    outcomes[i] = translate_error(cur, **context(items[i]))
                    continue
                eff = getattr(cur, "effective_rights", None)
                if self._edits_own_only(items[i]) and eff is not None and not eff.modify:
                    outcomes[i] = AccessDenied(
                        "Your rights on this folder let you change only items you created.",
                        mailbox=items[i].mailbox,
                    )
                    continue
                current_keys[i] = str(cur.changekey)
        # 2. Group what is left by what one UpdateItem request shares.
        groups: dict[tuple[str, str, str], list[tuple[int, Any, list[str]]]] = {}
        for i, item in enumerate(items):
            if outcomes[i] is not None:
                continue
            mailbox = (item.mailbox or self.user).lower()
            try:
                with ews_errors(**context(item)):
                    ex, names = self._update_plan(item, fields, self._account(mailbox))
            except MedError as exc:
                outcomes[i] = exc
                continue
            if not item.change_key:
                ex._id = ItemId(id=item.id, changekey=current_keys[i])
            invite = send_updates and isinstance(item, Event) and bool(item.attendees)
            key = (
                mailbox,
                "NeverOverwrite" if item.change_key else "AutoResolve",
                "SendToAllAndSaveCopy" if invite else "SendToNone",
            )
            groups.setdefault(key, []).append((i, ex, names))
        # 3. One UpdateItem per group and batch.
        for (mailbox, conflict, invitations), members in groups.items():
            acc = self._account(mailbox)
            # An error failing the whole request names the item when there is one.
            whole = context(items[members[0][0]]) if len(members) == 1 else {"mailbox": mailbox}
            with ews_errors(**whole):
                results = acc.bulk_update(
                    items=[(ex, names) for _, ex, names in members],
                    conflict_resolution=conflict,
                    send_meeting_invitations_or_cancellations=invitations,
                    chunk_size=BATCH_SIZE,
                )
            for (i, ex, _), res in zip(members, results, strict=True):
                item = items[i]
                if isinstance(res, Exception):
                    outcomes[i] = translate_error(res, **context(item))
                    continue
                ex._id = ItemId(id=res[0] or item.id, changekey=res[1])  # a task's id may change
                try:
                    with ews_errors(**context(item)):
                        for att in item.new_attachments:
                            ex.attach(_file_attachment(att))
                except MedError as exc:
                    outcomes[i] = exc
                    continue
                outcomes[i] = dataclasses.replace(item, change_key=ex.changekey, new_attachments=())
        return [o for o in outcomes if o is not None]

    def delete_item(self, item_id: str, *, hard: bool, send_cancellations: bool) -> None:
        from exchangelib.services import DeleteItem

        acc = self._account()
        with ews_errors(item=item_id):
            res = list(
                DeleteItem(account=acc).call(
                    items=[ItemId(id=item_id)],
                    delete_type="HardDelete" if hard else "MoveToDeletedItems",
                    send_meeting_cancellations="SendToAllAndSaveCopy"
                    if send_cancellations
                    else "SendToNone",
                    affected_task_occurrences="SpecifiedOccurrenceOnly",
                    suppress_read_receipts=True,
                )
            )
        for r in res:
            raise_if_error(r, item=item_id)

    def _move_or_copy(self, service: Any, item_id: str, folder: Folder) -> str:
        ex_folder = self._ex_folder(folder)
        ctx = {"mailbox": folder.mailbox, "folder": folder.name, "item": item_id}
        with ews_errors(**ctx):
            res = list(
                service(account=self._account()).call(
                    items=[ItemId(id=item_id)], to_folder=ex_folder
                )
            )
        (new,) = res
        raise_if_error(new, **ctx)
        new_id = new[0] if isinstance(new, tuple) else getattr(new, "id", None)
        return str(new_id or "")

    def move_item(self, item_id: str, folder: Folder) -> str:
        from exchangelib.services import MoveItem

        return self._move_or_copy(MoveItem, item_id, folder)

    def move_items(self, item_ids: Sequence[str], folder: Folder) -> Sequence[str | MedError]:
        """Move many items to one folder in one MoveItem per BATCH_SIZE items."""
        ex_folder = self._ex_folder(folder)
        ctx = {"mailbox": folder.mailbox, "folder": folder.name}
        with ews_errors(**ctx):
            results = self._account().bulk_move(
                ids=[ItemId(id=i) for i in item_ids], to_folder=ex_folder, chunk_size=BATCH_SIZE
            )
        if len(results) != len(item_ids):
            # Across mailboxes and into public folders EWS answers without the new ids, so
            # answers cannot be matched to items: the first refusal speaks for the batch.
            for res in results:
                raise_if_error(res, **ctx)
            return ["" for _ in item_ids]
        out: list[str | MedError] = []
        for item_id, res in zip(item_ids, results, strict=True):
            if isinstance(res, Exception):
                out.append(translate_error(res, item=item_id, **ctx))
            else:
                new_id = res[0] if isinstance(res, tuple) else getattr(res, "id", None)
                out.append(str(new_id or ""))
        return out

    def copy_item(self, item_id: str, folder: Folder) -> str:
        from exchangelib.services import CopyItem

        return self._move_or_copy(CopyItem, item_id, folder)

    # ------------------------------------------------------------------ sending

    def _sender_account(self, options: SendOptions) -> tuple[Any, str]:
        owner = (options.from_mailbox or self.user).lower()
        return self._account(owner), owner

    def send(self, message: Message, options: SendOptions) -> None:
        """Send; on behalf of another mailbox From is that mailbox and the server sets Sender.

        Our copy goes to our own Sent Items; Exchange (and the lab) put the owner's copy into
        the owner's Sent Items themselves, whatever our rights there.
        """
        _, owner = self._sender_account(options)
        # Our copy in Sent Items is read, as in Outlook; the recipients' copies arrive unread.
        mine = dataclasses.replace(message, from_=None, is_read=True)
        msg = self._to_ews(mine, self._account(), None)
        if owner != self.user:
            msg.author = ExMailbox(email_address=owner)
        sent = self._distinguished(self.user, "sentitems")
        # Attachments travel inside the one CreateItem that sends (Exchange 2013 on);
        # exchangelib saves, attaches and sends in three steps only for older servers.
        for att in message.new_attachments:
            msg.attach(_file_attachment(att))
        with ews_errors(mailbox=owner):
            if options.save_copy:
                msg.send(save_copy=True, copy_to_folder=sent)
            else:
                msg.send(save_copy=False)

    def save_draft(self, message: Message, options: SendOptions) -> Message:
        """A draft in the From mailbox's Drafts; where we may not write there, in our own
        Drafts with From set to that mailbox (sending it later sends on behalf)."""
        _, owner = self._sender_account(options)
        try:
            return self._save_draft_in(message, owner, owner)
        except AccessDenied:
            if owner == self.user:
                raise
            return self._save_draft_in(message, owner, self.user)

    def _save_draft_in(self, message: Message, owner: str, drafts_of: str) -> Message:
        drafts = self._distinguished(drafts_of, "drafts")
        msg = self._to_ews(
            dataclasses.replace(message, from_=None, is_read=True), self._account(drafts_of), drafts
        )
        if owner != self.user:
            msg.author = ExMailbox(email_address=owner)
        with ews_errors(mailbox=drafts_of, folder="drafts"):
            msg.save()
            for att in message.new_attachments:
                msg.attach(_file_attachment(att))
        return dataclasses.replace(
            message,
            id=str(msg.id),
            change_key=msg.changekey,
            mailbox=drafts_of,
            is_draft=True,
            new_attachments=(),
            from_=Address(owner),
        )

    def reply(self, item_id: str, body: str, *, reply_all: bool, options: SendOptions) -> None:
        from exchangelib.items import ReplyAllToItem, ReplyToItem
        from exchangelib.properties import ReferenceItemId

        _, owner = self._sender_account(options)
        with ews_errors(item=item_id, mailbox=owner):
            (orig,) = list(
                self._fetch(self._account(), ids=[ItemId(id=item_id)], only_fields=["subject"])
            )
            raise_if_error(orig, item=item_id)
            cls = ReplyAllToItem if reply_all else ReplyToItem
            reply = cls(
                account=self._account(),
                reference_item_id=ReferenceItemId(id=orig.id, changekey=orig.changekey),
                new_body=body,
                author=ExMailbox(email_address=owner) if owner != self.user else None,
            )
            try:
                reply.send(
                    save_copy=options.save_copy,
                    copy_to_folder=self._distinguished(self.user, "sentitems"),
                )
                return
            except exerr.ErrorInvalidRequest:
                pass  # a server without reply response objects: compose the reply ourselves
        self._compose_reply(item_id, body, reply_all=reply_all, options=options, owner=owner)

    def _compose_reply(
        self, item_id: str, body: str, *, reply_all: bool, options: SendOptions, owner: str
    ) -> None:
        (orig,) = self.get_items([item_id])
        if not isinstance(orig, Message):
            raise InvalidInput("Only messages can be answered.", item=item_id)
        to, cc = reply_recipients(orig, reply_all=reply_all, me={self.user, owner.lower()})
        message = Message(
            subject=answer_subject(orig.subject, forward=False),
            body=f"{body}\n\n{quote_header(orig)}\n{orig.body or ''}",
            to=to,
            cc=cc,
            in_reply_to=orig.internet_message_id,
        )
        self.send(message, options)

    def forward(
        self, item_id: str, to: Sequence[Address], body: str, *, options: SendOptions
    ) -> None:
        from exchangelib.items import ForwardItem
        from exchangelib.properties import ReferenceItemId

        _, owner = self._sender_account(options)
        with ews_errors(item=item_id, mailbox=owner):
            (orig,) = list(
                self._fetch(self._account(), ids=[ItemId(id=item_id)], only_fields=["subject"])
            )
            raise_if_error(orig, item=item_id)
            fwd = ForwardItem(
                account=self._account(),
                reference_item_id=ReferenceItemId(id=orig.id, changekey=orig.changekey),
                subject=answer_subject(orig.subject or "", forward=True),
                new_body=body,
                to_recipients=ex_mailboxes(to),
                author=ExMailbox(email_address=owner) if owner != self.user else None,
            )
            try:
                fwd.send(
                    save_copy=options.save_copy,
                    copy_to_folder=self._distinguished(self.user, "sentitems"),
                )
                return
            except exerr.ErrorInvalidRequest:
                pass  # a server without forward response objects: compose it ourselves
        (full,) = self.get_items([item_id])
        if not isinstance(full, Message):
            raise InvalidInput("Only messages can be forwarded.", item=item_id)
        files = []
        for att in full.attachments:
            content = self.attachment(att.id)
            files.append(
                OutgoingAttachment(att.name, content.content, att.content_type, att.is_inline)
            )
        message = Message(
            subject=answer_subject(full.subject, forward=True),
            body=f"{body}\n\n{quote_header(full)}\n{full.body or ''}",
            to=tuple(to),
            new_attachments=tuple(files),
        )
        self.send(message, options)

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
        cls = {
            ResponseType.ACCEPT: AcceptItem,
            ResponseType.TENTATIVE: TentativelyAcceptItem,
            ResponseType.DECLINE: DeclineItem,
        }.get(response)
        if cls is None:
            raise InvalidInput("Respond with accept, tentative or decline.")
        if change_key is None:
            self._answer(cls, item_id, self._meeting_change_key(item_id), message, send, proposal)
            return
        try:
            self._answer(cls, item_id, change_key, message, send, proposal)
        except Conflict:  # changed since it was listed (an update, read elsewhere): read it now
            self._answer(cls, item_id, self._meeting_change_key(item_id), message, send, proposal)

    def _meeting_change_key(self, item_id: str) -> str:
        """The current change key of a meeting request or meeting (one GetItem)."""
        with ews_errors(item=item_id):
            (orig,) = list(
                self._fetch(
                    self._account(), ids=[ItemId(id=item_id)], only_fields=["subject", "item_class"]
                )
            )
        raise_if_error(orig, item=item_id)
        if not isinstance(orig, MeetingRequest | CalendarItem):
            raise InvalidInput("This item is no meeting request.", item=item_id)
        return str(orig.changekey)

    def _answer(
        self,
        cls: Any,
        item_id: str,
        change_key: str,
        message: str | None,
        send: bool,
        proposal: tuple[datetime, datetime] | None,
    ) -> None:
        from exchangelib.properties import ReferenceItemId

        kwargs: dict[str, Any] = {
            "account": self._account(),
            "reference_item_id": ReferenceItemId(id=item_id, changekey=change_key),
            # Our own Sent Items (or Drafts when not sent), named without looking them up.
            "folder": self._distinguished(self.user, "sentitems" if send else "drafts"),
        }
        if message:
            from exchangelib import Body as ExBody

            kwargs["body"] = ExBody(message)
        if proposal is not None:
            kwargs["proposed_start"] = ews_datetime(proposal[0])
            kwargs["proposed_end"] = ews_datetime(proposal[1])
        with ews_errors(item=item_id):
            cls(**kwargs).send(message_disposition=SEND_AND_SAVE_COPY if send else SAVE_ONLY)

    def free_busy(
        self, addresses: Sequence[str], start: datetime, end: datetime
    ) -> Sequence[FreeBusy]:
        found = self.availability(addresses, start, end)
        return [FreeBusy(a.address, a.slots, a.error) for a in found]

    # ------------------------------------------------------------------ permissions

    def permissions(self, folder: Folder) -> Sequence[Permission]:
        acc, ex = self._folder_of(folder)
        ctx = {"mailbox": folder.mailbox, "folder": folder.name}
        fields = {FieldPath(field=ExFolder.get_field_by_fieldname("permission_set"))}
        with ews_errors(**ctx):
            (res,) = list(
                GetFolder(account=acc).call(folders=[ex], additional_fields=fields, shape=ID_ONLY)
            )
        raise_if_error(res, **ctx)
        pset = res.permission_set
        out: list[Permission] = []
        if pset is None:
            return out
        for p in list(pset.permissions or ()) + list(pset.calendar_permissions or ()):
            out.append(from_ex_permission(p))
        return out

    def set_permissions(self, folder: Folder, permissions: Sequence[Permission]) -> None:
        acc, ex = self._folder_of(folder)
        if folder.kind is FolderKind.CALENDAR:
            root = self._root(folder.mailbox, archive=folder.archive)
            ex = CalendarFolder(id=folder.id, changekey=folder.change_key, root=root)
        ctx = {"mailbox": folder.mailbox, "folder": folder.name}
        calendar = folder.kind is FolderKind.CALENDAR
        entries = [to_ex_permission(p, calendar=calendar) for p in permissions]
        if calendar:
            pset = PermissionSet(calendar_permissions=entries)
        else:
            pset = PermissionSet(permissions=entries)
        ex.permission_set = pset
        with ews_errors(**ctx):
            res = list(UpdateFolder(account=acc).call(folders=[(ex, ["permission_set"])]))
        for r in res:
            raise_if_error(r, **ctx)

    def delegates(self, mailbox: str) -> tuple[Sequence[Delegate], MeetingDelivery]:
        from exchangelib.services import GetDelegate

        acc = self._account(mailbox)
        svc = GetDelegate(account=acc)
        with ews_errors(mailbox=mailbox):
            raw = list(svc.call(user_ids=None, include_permissions=True))
        out = []
        for d in raw:
            raise_if_error(d, mailbox=mailbox)
            user = d.user_id
            perms = d.delegate_permissions
            levels = (
                {
                    name: DelegateLevel(getattr(perms, attr, None) or "None")
                    for name, attr in DELEGATE_FOLDER_FIELDS.items()
                }
                if perms is not None
                else {}
            )
            out.append(
                Delegate(
                    address=str(user.primary_smtp_address or "").lower(),
                    display_name=str(user.display_name or ""),
                    levels=levels,
                    view_private=bool(d.view_private_items),
                    receive_meeting_copies=bool(d.receive_copies_of_meeting_messages),
                )
            )
        delivery = DELIVERY.get(
            str(getattr(svc, "deliver_meeting_requests", None) or "DelegatesAndMe"),
            MeetingDelivery.DELEGATES_AND_ME,
        )
        return out, delivery

    # ------------------------------------------------------------------ sync & notifications

    def sync_items(
        self, folder: Folder, state: str | None, max_changes: int
    ) -> tuple[Sequence[SyncChange], str, bool]:
        acc, ex = self._folder_of(folder)
        ctx = {"mailbox": folder.mailbox, "folder": folder.name}
        fields = LIST_FIELDS.get(folder.kind, LIST_FIELDS[FolderKind.MAIL])
        svc = SyncFolderItems(account=acc)
        changes: list[SyncChange] = []
        with ews_errors(**ctx):
            valid = {f.name for f in ex.allowed_item_fields(version=acc.version)}
            additional = {
                fp
                for fp in ex.normalize_fields(fields=[f for f in fields if f in valid])
                if not fp.field.is_attribute
            }
            for change_type, obj in svc.call(
                folder=ex,
                shape=ID_ONLY,
                additional_fields=additional,
                sync_state=state,
                ignore=None,
                max_changes_returned=max_changes,
                sync_scope=None,
            ):
                if change_type == SyncFolderItems.READ_FLAG_CHANGE:
                    item_id, is_read = obj
                    changes.append(
                        SyncChange(SyncChangeKind.READ_FLAG, str(item_id.id), is_read=bool(is_read))
                    )
                elif change_type == SyncFolderItems.DELETE:
                    changes.append(SyncChange(SyncChangeKind.DELETED, str(obj.id)))
                else:
                    kind = (
                        SyncChangeKind.CREATED
                        if change_type == SyncFolderItems.CREATE
                        else SyncChangeKind.UPDATED
                    )
                    item = self._to_item(obj, folder.mailbox, folder.id)
                    changes.append(SyncChange(kind, item.id, item=item))
        return changes, str(svc.sync_state), bool(svc.includes_last_item_in_range)

    def subscribe(self, folders: Sequence[Folder]) -> Watch:
        if not folders:
            raise InvalidInput("Name at least one folder to watch.")
        mailbox = folders[0].mailbox
        if any(f.mailbox != mailbox for f in folders):
            raise InvalidInput("One subscription watches folders of one mailbox.")
        acc = self._account(mailbox)
        collection = FolderCollection(account=acc, folders=[self._ex_folder(f) for f in folders])
        ctx = {"mailbox": mailbox}
        first = open_subscription(
            collection, self._streaming, ctx
        )  # errors surface here, not later
        return watch_events(self, collection, acc, first, ctx)


#: What a folder is read with: names, counts, parent, and our rights on it.
_FOLDER_FIELD_NAMES = (
    "name",
    "folder_class",
    "total_count",
    "unread_count",
    "child_folder_count",
    "parent_folder_id",
    "effective_rights",
    "permission_set",
)


def _file_attachment(att: OutgoingAttachment) -> Any:
    """The exchangelib attachment for a file to attach (inline ones keep their content id)."""
    return FileAttachment(
        name=att.name,
        content=att.content,
        content_type=att.content_type,
        is_inline=att.is_inline,
        content_id=att.content_id,
    )


def _folder_fields() -> set[Any]:
    return {FieldPath(field=ExFolder.get_field_by_fieldname(n)) for n in _FOLDER_FIELD_NAMES}


_VERSION_BUILDS = {
    "Exchange2010": Build(14, 0),
    "Exchange2010_SP1": Build(14, 1),
    "Exchange2010_SP2": Build(14, 2),
    "Exchange2013": Build(15, 0),
    "Exchange2013_SP1": Build(15, 0, 847),
    "Exchange2016": Build(15, 1),
    "Exchange2019": Build(15, 2),
}


def _version(name: str) -> Any:
    build = _VERSION_BUILDS.get(name)
    if build is None:
        names = ", ".join(_VERSION_BUILDS)
        raise InvalidInput(f"Unknown Exchange version {name!r}; use one of {names}.")
    api = "Exchange2016" if name == "Exchange2019" else name
    return Version(build=build, api_version=api)
