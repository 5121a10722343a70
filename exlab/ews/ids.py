"""EWS ids: opaque base64 blobs outside, (kind, key) inside; and folder id resolution.

Exchange ids are base64 strings a client must not parse; ours carry a marker, the kind of object
(`folder`, `item`, `occurrence`, `attachment`, `subscription`, ...) and the row key, so that a
tampered or foreign id is refused with ErrorInvalidIdMalformed rather than looked up.
"""

from __future__ import annotations

import base64
import binascii
import re

from exlab.access import Rights, effective_rights
from exlab.ews.soap import Element, EwsContext, EwsError, SoapFault, sub, t, text_of
from exlab.store import PUBLIC, Folder

_MARK = b"MBLAB\x01"
_KIND = re.compile(r"[a-z]{1,16}")
_KEY = re.compile(r"[A-Za-z0-9._:@+-]{1,200}")

KNOWN_DISTINGUISHED = frozenset(
    {
        "calendar",
        "contacts",
        "deleteditems",
        "drafts",
        "inbox",
        "journal",
        "notes",
        "outbox",
        "sentitems",
        "tasks",
        "msgfolderroot",
        "publicfoldersroot",
        "root",
        "junkemail",
        "searchfolders",
        "voicemail",
        "recoverableitemsroot",
        "recoverableitemsdeletions",
        "recoverableitemsversions",
        "recoverableitemspurges",
        "archiveroot",
        "archivemsgfolderroot",
        "archivedeleteditems",
        "archiveinbox",
        "archiverecoverableitemsroot",
        "archiverecoverableitemsdeletions",
        "archiverecoverableitemsversions",
        "archiverecoverableitemspurges",
        "syncissues",
        "conflicts",
        "localfailures",
        "serverfailures",
        "recipientcache",
        "quickcontacts",
        "conversationhistory",
        "adminauditlogs",
        "todosearch",
        "mycontacts",
        "directory",
        "imcontactlist",
        "peopleconnect",
        "favorites",
    }
)


def encode_id(kind: str, key: str) -> str:
    """The id a client sees for the row `key` of kind `kind`."""
    if not _KIND.fullmatch(kind) or not _KEY.fullmatch(key):
        raise ValueError(f"cannot encode id kind={kind!r} key={key!r}")
    return base64.b64encode(_MARK + kind.encode() + b"\x00" + key.encode()).decode("ascii")


def decode_id(value: str | None) -> tuple[str, str]:
    """(kind, key) of a client's id; ErrorInvalidIdMalformed (or ...Empty) if it is not ours."""
    if value is None or not value.strip():
        raise EwsError("ErrorInvalidIdEmpty", "Id must be non-empty.")
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.") from None
    if not raw.startswith(_MARK) or b"\x00" not in raw:
        raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.")
    kind_raw, _, key_raw = raw[len(_MARK) :].partition(b"\x00")
    try:
        kind, key = kind_raw.decode("ascii"), key_raw.decode("ascii")
    except UnicodeDecodeError:
        raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.") from None
    if not _KIND.fullmatch(kind) or not _KEY.fullmatch(key):
        raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.")
    return kind, key


def folder_ews_id(folder: Folder) -> str:
    return encode_id("folder", folder.id)


def folder_id_element(parent: Element, folder: Folder, tag: str = "FolderId") -> Element:
    """Append `t:FolderId Id=... ChangeKey=...` (or another tag of FolderIdType) for a folder."""
    return sub(parent, t(tag), Id=folder_ews_id(folder), ChangeKey=folder.change_key)


def mailbox_of(el: Element | None, ctx: EwsContext) -> str:
    """The address in a `t:Mailbox` child, or the caller's own; unknown: ErrorNonExistentMailbox."""
    if el is None:
        return ctx.user
    address = text_of(el.find(t("EmailAddress"))).lower()
    if not address:
        raise EwsError(
            "ErrorMissingEmailAddress", "The e-mail address is missing from the Mailbox element."
        )
    mailbox = ctx.lab.store.mailbox(address)
    if mailbox is None or mailbox.kind == "public":
        raise EwsError(
            "ErrorNonExistentMailbox", f"No mailbox with such guid or SMTP address: {address}"
        )
    return mailbox.address


def find_folder_row(ctx: EwsContext, el: Element) -> Folder:
    """The folder a `t:FolderId` or `t:DistinguishedFolderId` names, without a rights check."""
    store = ctx.lab.store
    if el.tag == t("FolderId"):
        kind, key = decode_id(el.get("Id"))
        if kind != "folder":
            raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.")
        folder = store.folder(key)
        if folder is None:
            raise EwsError(
                "ErrorFolderNotFound", "The specified folder could not be found in the store."
            )
        return folder
    if el.tag == t("DistinguishedFolderId"):
        name = el.get("Id", "")
        if name not in KNOWN_DISTINGUISHED:
            raise SoapFault(
                "ErrorSchemaValidation",
                f"The request failed schema validation: '{name}' is not a distinguished folder id.",
            )
        if name == "publicfoldersroot":
            folder = store.distinguished_folder(PUBLIC, name)
        else:
            owner = mailbox_of(el.find(t("Mailbox")), ctx)
            folder = store.distinguished_folder(owner, name)
        if folder is None:
            raise EwsError(
                "ErrorFolderNotFound", "The specified folder could not be found in the store."
            )
        return folder
    raise SoapFault(
        "ErrorSchemaValidation",
        f"The request failed schema validation: unexpected element {el.tag} for a folder id.",
    )


def resolve_folder(ctx: EwsContext, el: Element, *, require_visible: bool = True) -> Folder:
    """The folder named by `el`, which the caller must be allowed to see (or ErrorAccessDenied)."""
    folder = find_folder_row(ctx, el)
    if require_visible and not rights_on(ctx, folder).folder_visible:
        raise EwsError("ErrorAccessDenied", "Access is denied. Check credentials and try again.")
    return folder


def rights_on(ctx: EwsContext, folder: Folder) -> Rights:
    return effective_rights(ctx.lab.store, ctx.user, folder)


def folder_id_elements(container: Element | None) -> list[Element]:
    """The folder id children of a container such as `m:FolderIds` or `m:ParentFolderIds`."""
    if container is None:
        return []
    return [c for c in container if c.tag in (t("FolderId"), t("DistinguishedFolderId"))]
