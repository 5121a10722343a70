"""Organisation operations: ResolveNames, ConvertId, GetDelegate, GetServerTimeZones
(GetUserAvailability lives in `availability`; automatic replies and user configurations in
`mailbox_settings`)."""

from __future__ import annotations

import base64
import binascii
import sqlite3

from exlab.core import items as store_items
from exlab.core.access import DELEGATE_FOLDERS, delegate_level
from exlab.core.errors import denied, not_found
from exlab.core.store import Mailbox
from exlab.core.timezones import zone_by_id, zones
from exlab.ews.ids import decode_id, encode_id, mailbox_of
from exlab.ews.soap import (
    Element,
    EwsContext,
    EwsError,
    SoapFault,
    bool_text,
    error_message,
    fill_error,
    m,
    operation,
    response,
    response_message,
    sub,
    t,
    text_of,
)
from exlab.ews.timezones import zone_element

XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"

# -- ResolveNames ---------------------------------------------------------------------------------


def _candidates(ctx: EwsContext, entry: str) -> list[Mailbox]:
    """Ambiguous name resolution: SMTP address, alias, or a prefix of a display-name word."""
    needle = entry.strip().lower()
    if needle.startswith("smtp:"):
        needle = needle[5:]
    exact = [mb for mb in _directory(ctx) if mb.address == needle]
    if exact:
        return exact
    found = []
    for mb in _directory(ctx):
        alias = mb.address.split("@", 1)[0]
        words = mb.display_name.lower().replace(".", " ").split()
        if (
            alias.startswith(needle)
            or mb.display_name.lower().startswith(needle)
            or any(w.startswith(needle) for w in words)
        ):
            found.append(mb)
    return found


def _directory(ctx: EwsContext) -> list[Mailbox]:
    return [mb for mb in ctx.lab.store.mailboxes() if mb.kind != "public"]


def _mailbox_element(parent: Element, mb: Mailbox, tag: str = "Mailbox") -> Element:
    el = sub(parent, t(tag))
    sub(el, t("Name"), mb.display_name)
    sub(el, t("EmailAddress"), mb.address)
    sub(el, t("RoutingType"), "SMTP")
    sub(el, t("MailboxType"), "Mailbox")
    return el


def _contact_element(parent: Element, mb: Mailbox) -> None:
    contact = sub(parent, t("Contact"))
    sub(contact, t("DisplayName"), mb.display_name)
    parts = mb.display_name.split()
    if mb.kind == "user" and len(parts) >= 2:
        sub(contact, t("GivenName"), parts[-2])
    addresses = sub(contact, t("EmailAddresses"))
    sub(addresses, t("Entry"), f"SMTP:{mb.address}", Key="EmailAddress1")
    sub(contact, t("ContactSource"), "ActiveDirectory")
    if mb.kind == "user" and len(parts) >= 2:
        sub(contact, t("Surname"), parts[-1])


@operation("ResolveNames")
def resolve_names(ctx: EwsContext, request: Element) -> Element:
    """One response message per UnresolvedEntry (exchangelib sends several in one request)."""
    entries = [text_of(el) for el in request.findall(m("UnresolvedEntry"))]
    if not entries or not all(entries):
        raise SoapFault(
            "ErrorSchemaValidation", "The request failed schema validation: UnresolvedEntry."
        )
    full = request.get("ReturnFullContactData", "false") == "true"
    return response("ResolveNames", [_resolve_one(ctx, entry, full) for entry in entries])


def _resolve_one(ctx: EwsContext, entry: str, full: bool) -> Element:
    found = _candidates(ctx, entry)
    if not found:
        return error_message(
            "ResolveNames", EwsError("ErrorNameResolutionNoResults", "No results were found.")
        )
    if len(found) == 1:
        message = response_message("ResolveNames")
    else:
        message = Element(m("ResolveNamesResponseMessage"), {"ResponseClass": "Warning"})
        fill_error(
            message,
            EwsError("ErrorNameResolutionMultipleResults", "Multiple results were found."),
        )
    resolution_set = sub(
        message,
        m("ResolutionSet"),
        TotalItemsInView=str(len(found)),
        IncludesLastItemInRange="true",
    )
    for mb in found[:100]:
        resolution = sub(resolution_set, t("Resolution"))
        _mailbox_element(resolution, mb)
        if full:
            _contact_element(resolution, mb)
    return message


# -- ConvertId ------------------------------------------------------------------------------------

ID_FORMATS = ("EwsLegacyId", "EwsId", "EntryId", "HexEntryId", "StoreId", "OwaId")


def _raw_of(value: str, fmt: str) -> tuple[str, str]:
    """(kind, key) from an id in any of the formats Exchange converts between."""
    if fmt in ("EwsId", "EwsLegacyId"):
        return decode_id(value)
    try:
        if fmt == "HexEntryId":
            raw = bytes.fromhex(value)
        elif fmt == "OwaId":
            raw = base64.urlsafe_b64decode(value.encode("ascii") + b"==")
        else:
            raw = base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.") from None
    return decode_id(base64.b64encode(raw).decode("ascii"))


def _format(kind: str, key: str, fmt: str) -> str:
    ews = encode_id(kind, key)
    if fmt in ("EwsId", "EwsLegacyId", "EntryId", "StoreId"):
        return ews
    raw = base64.b64decode(ews)
    if fmt == "HexEntryId":
        return raw.hex().upper()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _owner_of_id(ctx: EwsContext, kind: str, key: str) -> str:
    """The mailbox address an id belongs to, read from the object it names ('' if none)."""
    store = ctx.lab.store
    if kind == "folder":
        folder = store.folder(key)
        return folder.mailbox if folder is not None else ""
    if kind == "occurrence":
        kind, key = "item", key.rpartition(":")[0]
    if kind == "attachment":
        attachment = store_items.get_attachment(store, key)
        if attachment is None:
            return ""
        kind, key = "item", attachment.item_id
    if kind == "item":
        item = store_items.get_item(store, key)
        return item.mailbox if item is not None else ""
    if kind == "config":
        return key.partition(":")[0]
    return ""


@operation("ConvertId")
def convert_id(ctx: EwsContext, request: Element) -> Element:
    destination = request.get("DestinationFormat", "")
    if destination not in ID_FORMATS:
        raise SoapFault(
            "ErrorSchemaValidation",
            f"The request failed schema validation: DestinationFormat '{destination}'.",
        )
    sources = request.find(m("SourceIds"))
    messages = []
    for source in list(sources) if sources is not None else []:
        try:
            if source.tag != t("AlternateId"):
                raise EwsError("ErrorInvalidRequest", "Only mailbox ids can be converted.")
            fmt = source.get("Format", "")
            if fmt not in ID_FORMATS:
                raise SoapFault(
                    "ErrorSchemaValidation", f"The request failed schema validation: '{fmt}'."
                )
            kind, key = _raw_of(source.get("Id", ""), fmt)
            # The id names its mailbox; the request's Mailbox is a placeholder for many clients.
            mailbox = ctx.lab.store.mailbox(_owner_of_id(ctx, kind, key))
            if mailbox is None or mailbox.kind == "public":
                raise not_found()
            message = response_message("ConvertId")
            sub(
                message,
                m("AlternateId"),
                **{
                    XSI_TYPE: "t:AlternateIdType",
                    "Format": destination,
                    "Id": _format(kind, key, destination),
                    "Mailbox": mailbox.address,
                },
            )
            messages.append(message)
        except EwsError as err:
            messages.append(error_message("ConvertId", err))
    return response("ConvertId", messages)


# -- GetDelegate ----------------------------------------------------------------------------------

_LEVEL_TAGS = {
    "calendar": "CalendarFolderPermissionLevel",
    "tasks": "TasksFolderPermissionLevel",
    "inbox": "InboxFolderPermissionLevel",
    "contacts": "ContactsFolderPermissionLevel",
    "notes": "NotesFolderPermissionLevel",
    "journal": "JournalFolderPermissionLevel",
}


@operation("GetDelegate")
def get_delegate(ctx: EwsContext, request: Element) -> Element:
    """The owner's delegates; the owner and the owner's delegates may read the list."""
    root = Element(m("GetDelegateResponse"))
    try:
        owner = mailbox_of(request.find(m("Mailbox")), ctx)
        store = ctx.lab.store
        if owner != ctx.user and store.delegate(owner, ctx.user) is None:
            raise denied()
        rows = store.delegates(owner)
        wanted = _user_ids(request.find(m("UserIds")))
        with_permissions = request.get("IncludePermissions", "false") == "true"
        messages: list[Element] = []
        for row in rows:
            if wanted is not None and row["delegate"] not in wanted:
                continue
            messages.append(_delegate_message(ctx, owner, row, with_permissions))
        for missing in sorted((wanted or set()) - {r["delegate"] for r in rows}):
            messages.append(
                error_message(
                    "DelegateUser",
                    EwsError("ErrorDelegateNoUser", f"{missing} is not a delegate."),
                    tag=m("DelegateUserResponseMessageType"),
                )
            )
        root.set("ResponseClass", "Success")
        sub(root, m("ResponseCode"), "NoError")
        if messages:
            container = sub(root, m("ResponseMessages"))
            container.extend(messages)
        mailbox = store.mailbox(owner)
        if mailbox is not None and mailbox.kind != "room":
            sub(root, m("DeliverMeetingRequests"), mailbox.meeting_delivery)
    except EwsError as err:
        root.attrib.clear()
        root[:] = []
        root.set("ResponseClass", "Error")
        fill_error(root, err)
    return root


def _user_ids(el: Element | None) -> set[str] | None:
    if el is None:
        return None
    found = set()
    for user in el.findall(t("UserId")):
        address = text_of(user.find(t("PrimarySmtpAddress"))).lower()
        if address:
            found.add(address)
    return found


def _delegate_message(
    ctx: EwsContext, owner: str, row: sqlite3.Row, with_permissions: bool
) -> Element:
    store = ctx.lab.store
    address = str(row["delegate"])
    message = Element(m("DelegateUserResponseMessageType"), {"ResponseClass": "Success"})
    sub(message, m("ResponseCode"), "NoError")
    user = sub(message, m("DelegateUser"))
    user_id = sub(user, t("UserId"))
    mailbox = store.mailbox(address)
    sub(user_id, t("PrimarySmtpAddress"), address)
    sub(user_id, t("DisplayName"), mailbox.display_name if mailbox else address)
    if with_permissions:
        levels = sub(user, t("DelegatePermissions"))
        for folder in DELEGATE_FOLDERS:
            sub(levels, t(_LEVEL_TAGS[folder]), delegate_level(store, owner, address, folder))
    sub(
        user,
        t("ReceiveCopiesOfMeetingMessages"),
        bool_text(bool(row["receive_meeting_copies"])),
    )
    sub(user, t("ViewPrivateItems"), bool_text(bool(row["view_private"])))
    return message


# -- GetServerTimeZones ---------------------------------------------------------------------------


@operation("GetServerTimeZones", min_version="Exchange2010")
def get_server_time_zones(ctx: EwsContext, request: Element) -> Element:
    full = request.get("ReturnFullTimeZoneData", "true") != "false"
    ids_el = request.find(m("Ids"))
    messages = []
    if ids_el is not None:
        wanted = [text_of(el) for el in ids_el.findall(t("Id"))]
        unknown = [zone_id for zone_id in wanted if zone_by_id(zone_id) is None]
        if unknown:
            raise EwsError("ErrorTimeZone", f"The time zone {unknown[0]} is not known.")
        chosen = [z for z in map(zone_by_id, wanted) if z is not None]
    else:
        chosen = list(zones())
    message = response_message("GetServerTimeZones")
    definitions = sub(message, m("TimeZoneDefinitions"))
    for zone in chosen:
        zone_element(definitions, zone, full=full)
    messages.append(message)
    return response("GetServerTimeZones", messages)
