"""Folder ids in EWS requests: `t:FolderId`, `t:DistinguishedFolderId` (with `t:Mailbox`).

The ids themselves are the core's (`exlab.core.ids`), re-exported here for the EWS modules.
"""

from __future__ import annotations

from exlab.core.access import Rights, effective_rights
from exlab.core.errors import denied
from exlab.core.folders import KNOWN_DISTINGUISHED
from exlab.core.ids import decode_id, encode_id
from exlab.core.store import PUBLIC, Folder
from exlab.ews.soap import Element, EwsContext, EwsError, SoapFault, sub, t, text_of


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
        raise denied()
    return folder


def rights_on(ctx: EwsContext, folder: Folder) -> Rights:
    return effective_rights(ctx.lab.store, ctx.user, folder)


def folder_id_elements(container: Element | None) -> list[Element]:
    """The folder id children of a container such as `m:FolderIds` or `m:ParentFolderIds`."""
    if container is None:
        return []
    return [c for c in container if c.tag in (t("FolderId"), t("DistinguishedFolderId"))]


__all__ = [
    "decode_id",
    "encode_id",
    "find_folder_row",
    "folder_ews_id",
    "folder_id_element",
    "folder_id_elements",
    "mailbox_of",
    "resolve_folder",
    "rights_on",
]
