"""Folder operations: GetFolder, FindFolder, SyncFolderHierarchy, and Create/Update/Move/
DeleteFolder.

Folders are shown in the shape the caller asks for (IdOnly, Default, AllProperties plus
additional properties, incl. the MAPI properties Outlook reads) and in the response shape of the
requested API version. Only folders the caller may see are listed; a folder the caller may not see
is ErrorAccessDenied when asked for by id.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from exlab.core.access import (
    CALENDAR_ONLY_ROLES,
    READ_FROM_EWS,
    READ_TO_EWS,
    ROLES,
    SCOPE_FROM_EWS,
    SCOPE_TO_EWS,
    Rights,
    grant,
    rights_from_row,
)
from exlab.core.errors import denied
from exlab.core.mapi import folder_property
from exlab.core.store import PUBLIC, Folder
from exlab.ews.ids import (
    encode_id,
    folder_id_element,
    folder_id_elements,
    resolve_folder,
    rights_on,
)
from exlab.ews.restrictions import RestrictionError, matches, parse_restriction
from exlab.ews.soap import (
    Element,
    EwsContext,
    EwsError,
    SoapFault,
    bool_text,
    error_message,
    m,
    operation,
    response,
    response_message,
    sub,
    t,
    text_of,
)

# Response element per folder class (everything else is a plain t:Folder).
FOLDER_TAGS = {
    "IPF.Appointment": "CalendarFolder",
    "IPF.Contact": "ContactsFolder",
    "IPF.Task": "TasksFolder",
}
FOLDER_FIELDS = (
    "FolderId",
    "ParentFolderId",
    "FolderClass",
    "DisplayName",
    "TotalCount",
    "ChildFolderCount",
    "ExtendedProperty",
    "EffectiveRights",
    "DistinguishedFolderId",
    "PermissionSet",
    "UnreadCount",
)
DEFAULT_SHAPE = frozenset(
    {"FolderId", "DisplayName", "TotalCount", "ChildFolderCount", "UnreadCount"}
)
ALL_PROPERTIES = frozenset(FOLDER_FIELDS) - {"ExtendedProperty"}

# MAPI properties of folders that clients ask for by tag.
PR_CONTAINER_CLASS = 0x3613
PR_URL_COMP_NAME = 0x10F3
PR_ATTR_HIDDEN = 0x10F4
PR_FOLDER_TYPE = 0x3601


@dataclass
class FolderShape:
    fields: set[str] = field(default_factory=set)
    extended: list[Element] = field(default_factory=list)


def parse_shape(el: Element | None) -> FolderShape:
    """The fields a `m:FolderShape` asks for (BaseShape plus AdditionalProperties)."""
    if el is None:
        raise SoapFault(
            "ErrorSchemaValidation", "The request failed schema validation: FolderShape missing."
        )
    base = text_of(el.find(t("BaseShape")))
    if base == "IdOnly":
        fields = {"FolderId"}
    elif base == "Default":
        fields = set(DEFAULT_SHAPE)
    elif base == "AllProperties":
        fields = set(ALL_PROPERTIES)
    else:
        raise SoapFault(
            "ErrorSchemaValidation",
            f"The request failed schema validation: BaseShape '{base}' is not valid.",
        )
    shape = FolderShape(fields)
    extra = el.find(t("AdditionalProperties"))
    for prop in extra if extra is not None else ():
        if prop.tag == t("FieldURI"):
            uri = prop.get("FieldURI", "")
            if not uri.startswith("folder:"):
                raise EwsError(
                    "ErrorInvalidPropertyRequest", f"The property {uri} is not valid for folders."
                )
            shape.fields.add(uri.split(":", 1)[1])
        elif prop.tag == t("ExtendedFieldURI"):
            shape.extended.append(prop)
    return shape


def folder_tag(folder: Folder) -> str:
    """CalendarFolder, ContactsFolder, TasksFolder by class (and its subclasses), else Folder."""
    if folder.is_search:
        return "SearchFolder"
    folder_class = folder.folder_class or ""
    for prefix, tag in FOLDER_TAGS.items():
        if folder_class == prefix or folder_class.startswith(prefix + "."):
            return tag
    return "Folder"


def folder_counts(ctx: EwsContext, folder: Folder) -> tuple[int, int]:
    return ctx.lab.store.folder_counts(folder.id)


def folder_element(parent: Element, ctx: EwsContext, folder: Folder, shape: FolderShape) -> Element:
    """Append the folder in the requested shape, elements in schema order."""
    tag = folder_tag(folder)
    el = sub(parent, t(tag))
    rights = rights_on(ctx, folder)
    wants = shape.fields
    total, unread = folder_counts(ctx, folder)
    if "FolderId" in wants:
        folder_id_element(el, folder)
    if "ParentFolderId" in wants and folder.parent_id is not None:
        parent_row = ctx.lab.store.folder(folder.parent_id)
        if parent_row is not None:
            folder_id_element(el, parent_row, "ParentFolderId")
    if "FolderClass" in wants and folder.folder_class:
        sub(el, t("FolderClass"), folder.folder_class)
    if "DisplayName" in wants:
        sub(el, t("DisplayName"), folder.display_name)
    if "TotalCount" in wants:
        sub(el, t("TotalCount"), str(total))
    if "ChildFolderCount" in wants:
        sub(el, t("ChildFolderCount"), str(len(ctx.lab.store.children(folder.id))))
    for ext in shape.extended:
        _extended_property(el, ctx, folder, ext)
    if "EffectiveRights" in wants:
        _effective_rights(el, rights)
    if "DistinguishedFolderId" in wants and folder.distinguished and ctx.at_least("Exchange2013"):
        sub(el, t("DistinguishedFolderId"), folder.distinguished)
    if tag == "CalendarFolder" and "SharingEffectiveRights" in wants and folder.mailbox != ctx.user:
        sub(el, t("SharingEffectiveRights"), READ_TO_EWS[rights.read])
    if "PermissionSet" in wants:
        _permission_set(el, ctx, folder, calendar=tag == "CalendarFolder")
    if "UnreadCount" in wants and tag in ("Folder", "TasksFolder"):
        sub(el, t("UnreadCount"), str(unread))
    return el


def _effective_rights(parent: Element, rights: Rights) -> None:
    el = sub(parent, t("EffectiveRights"))
    sub(el, t("CreateAssociated"), bool_text(rights.folder_owner or rights.create_items))
    sub(el, t("CreateContents"), bool_text(rights.create_items))
    sub(el, t("CreateHierarchy"), bool_text(rights.create_subfolders))
    sub(el, t("Delete"), bool_text(rights.folder_owner))
    sub(el, t("Modify"), bool_text(rights.folder_owner))
    sub(el, t("Read"), bool_text(rights.folder_visible))
    sub(el, t("ViewPrivateItems"), bool_text(rights.view_private))


def _permission_set(parent: Element, ctx: EwsContext, folder: Folder, *, calendar: bool) -> None:
    """Default and Anonymous entries first (always present, as on Exchange), then users."""
    store = ctx.lab.store
    rows = {row["principal"]: row for row in store.permissions(folder.id)}
    el = sub(parent, t("PermissionSet"))
    container = sub(el, t("CalendarPermissions" if calendar else "Permissions"))
    others = sorted(p for p in rows if p not in ("default", "anonymous"))
    order = ["default", "anonymous", *others]
    for principal in order:
        row = rows.get(principal)
        rights = rights_from_row(row) if row is not None else Rights()
        role = str(row["role"]) if row is not None else "None"
        if not calendar and role in CALENDAR_ONLY_ROLES:
            role = "Custom"
        entry = sub(container, t("CalendarPermission" if calendar else "Permission"))
        user = sub(entry, t("UserId"))
        if principal in ("default", "anonymous"):
            sub(user, t("DistinguishedUser"), principal.capitalize())
        else:
            mailbox = store.mailbox(principal)
            sub(user, t("PrimarySmtpAddress"), principal)
            sub(user, t("DisplayName"), mailbox.display_name if mailbox else principal)
        sub(entry, t("CanCreateItems"), bool_text(rights.create_items))
        sub(entry, t("CanCreateSubFolders"), bool_text(rights.create_subfolders))
        sub(entry, t("IsFolderOwner"), bool_text(rights.folder_owner))
        sub(entry, t("IsFolderVisible"), bool_text(rights.folder_visible))
        sub(entry, t("IsFolderContact"), bool_text(rights.folder_contact))
        sub(entry, t("EditItems"), SCOPE_TO_EWS[rights.edit])
        sub(entry, t("DeleteItems"), SCOPE_TO_EWS[rights.delete])
        read = rights.read
        if not calendar and read not in ("none", "full"):
            read = "none"
        sub(entry, t("ReadItems"), READ_TO_EWS[read])
        sub(entry, t("CalendarPermissionLevel" if calendar else "PermissionLevel"), role)


def _property_tag(ext: Element) -> int | None:
    raw = ext.get("PropertyTag")
    if raw is None:
        return None
    try:
        return int(raw, 16) if raw.lower().startswith("0x") else int(raw)
    except ValueError:
        raise EwsError("ErrorInvalidExtendedProperty", f"PropertyTag {raw} is invalid.") from None


def _extended_property(parent: Element, ctx: EwsContext, folder: Folder, ext: Element) -> None:
    """The MAPI properties a folder has; properties it lacks are left out, as Exchange does."""
    tag = _property_tag(ext)
    value: str | None = None
    if tag == PR_CONTAINER_CLASS:
        value = folder.folder_class
    elif tag == PR_URL_COMP_NAME:
        value = folder.display_name
    elif tag == PR_ATTR_HIDDEN:
        value = bool_text(folder.hidden)
    elif tag == PR_FOLDER_TYPE:
        value = "1"
    elif tag is not None:
        value = folder_property(ctx, folder, tag)
    if value is None:
        return
    prop = sub(parent, t("ExtendedProperty"))
    sub(prop, t("ExtendedFieldURI"), **dict(ext.attrib))
    sub(prop, t("Value"), value)


def folder_props(folder: Folder, ctx: EwsContext) -> dict[str, object]:
    """A folder's properties under the keys restrictions use (FieldURI names and ext: keys)."""
    total, unread = folder_counts(ctx, folder)
    return {
        "folder:DisplayName": folder.display_name,
        "folder:FolderClass": folder.folder_class,
        "folder:TotalCount": total,
        "folder:UnreadCount": unread,
        "folder:ChildFolderCount": len(ctx.lab.store.children(folder.id)),
        f"ext:tag:{PR_CONTAINER_CLASS:#06x}:String": folder.folder_class,
        f"ext:tag:{PR_URL_COMP_NAME:#06x}:String": folder.display_name,
    }


def _restriction_key(path: Element) -> str:
    if path.tag == t("FieldURI"):
        return path.get("FieldURI", "")
    if path.tag == t("ExtendedFieldURI"):
        tag = _property_tag(path)
        if tag is not None:
            return f"ext:tag:{tag:#06x}:{path.get('PropertyType', '')}"
    raise EwsError(
        "ErrorUnsupportedPathForQuery", "The property path is not supported for folders."
    )


# -- GetFolder ------------------------------------------------------------------------------------


@operation("GetFolder")
def get_folder(ctx: EwsContext, request: Element) -> Element:
    shape = parse_shape(request.find(m("FolderShape")))
    ids = folder_id_elements(request.find(m("FolderIds")))
    if not ids:
        raise SoapFault(
            "ErrorSchemaValidation", "The request failed schema validation: FolderIds is empty."
        )
    messages = []
    for el in ids:
        try:
            folder = resolve_folder(ctx, el)
            folders = Element(m("Folders"))
            folder_element(folders, ctx, folder, shape)
            messages.append(response_message("GetFolder", [folders]))
        except EwsError as err:
            messages.append(error_message("GetFolder", err))
    return response("GetFolder", messages)


# -- FindFolder -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    offset: int = 0
    max_entries: int | None = None
    from_end: bool = False
    fraction: tuple[int, int] | None = None


def parse_page(request: Element) -> Page:
    indexed = request.find(m("IndexedPageFolderView"))
    fractional = request.find(m("FractionalPageFolderView"))
    view = indexed if indexed is not None else fractional
    if view is None:
        return Page()
    try:
        max_raw = view.get("MaxEntriesReturned")
        max_entries = int(max_raw) if max_raw is not None else None
        if indexed is not None:
            return Page(
                offset=int(view.get("Offset", "0")),
                max_entries=max_entries,
                from_end=view.get("BasePoint", "Beginning") == "End",
            )
        denominator = int(view.get("Denominator", "1"))
        if denominator <= 0:
            raise ValueError("denominator")
        return Page(
            max_entries=max_entries, fraction=(int(view.get("Numerator", "0")), denominator)
        )
    except ValueError:
        raise SoapFault(
            "ErrorSchemaValidation", "The request failed schema validation: bad paging value."
        ) from None


def visible_subtree(ctx: EwsContext, folder: Folder, *, deep: bool) -> list[Folder]:
    """Children (or all descendants, depth first) the caller may see."""
    found: list[Folder] = []
    for child in ctx.lab.store.children(folder.id):
        if not rights_on(ctx, child).folder_visible:
            continue
        found.append(child)
        if deep:
            found.extend(visible_subtree(ctx, child, deep=True))
    return found


def _slice(folders: list[Folder], page: Page) -> tuple[list[Folder], int]:
    """Apply a page; returns the page and the offset after it."""
    total = len(folders)
    if page.fraction is not None:
        numerator, denominator = page.fraction
        start = total * numerator // denominator
    elif page.from_end:
        start = max(total - page.offset - (page.max_entries or total), 0)
    else:
        start = min(max(page.offset, 0), total)
    end = total if page.max_entries is None else min(start + page.max_entries, total)
    return folders[start:end], end


@operation("FindFolder")
def find_folder(ctx: EwsContext, request: Element) -> Element:
    shape = parse_shape(request.find(m("FolderShape")))
    traversal = request.get("Traversal", "Shallow")
    if traversal not in ("Shallow", "Deep", "SoftDeleted"):
        raise SoapFault(
            "ErrorSchemaValidation",
            f"The request failed schema validation: Traversal '{traversal}' is not valid.",
        )
    page = parse_page(request)
    restriction_el = request.find(m("Restriction"))
    restriction = None
    if restriction_el is not None and len(restriction_el):
        try:
            restriction = parse_restriction(restriction_el[0], _restriction_key)
        except RestrictionError as exc:
            raise EwsError("ErrorInvalidRestriction", str(exc)) from None
    parents = folder_id_elements(request.find(m("ParentFolderIds")))
    if not parents:
        raise SoapFault(
            "ErrorSchemaValidation",
            "The request failed schema validation: ParentFolderIds is empty.",
        )
    messages = []
    for el in parents:
        try:
            parent = resolve_folder(ctx, el)
            if traversal == "Deep" and parent.mailbox == PUBLIC:
                raise EwsError(
                    "ErrorInvalidRequest",
                    "Deep traversal queries are not allowed on public folders.",
                )
            folders = (
                []
                if traversal == "SoftDeleted"
                else visible_subtree(ctx, parent, deep=traversal == "Deep")
            )
            if restriction is not None:
                folders = [f for f in folders if matches(restriction, folder_props(f, ctx))]
            chosen, next_offset = _slice(folders, page)
            root = Element(
                m("RootFolder"),
                {
                    "IndexedPagingOffset": str(next_offset),
                    "TotalItemsInView": str(len(folders)),
                    "IncludesLastItemInRange": bool_text(next_offset >= len(folders)),
                },
            )
            container = sub(root, t("Folders"))
            for folder in chosen:
                folder_element(container, ctx, folder, shape)
            messages.append(response_message("FindFolder", [root]))
        except EwsError as err:
            messages.append(error_message("FindFolder", err))
    return response("FindFolder", messages)


# -- SyncFolderHierarchy --------------------------------------------------------------------------


def _encode_state(mailbox: str, folder_id: str, seq: int) -> str:
    raw = json.dumps({"v": 1, "mb": mailbox, "f": folder_id, "seq": seq}).encode()
    return base64.b64encode(raw).decode("ascii")


def _decode_state(value: str, mailbox: str, folder_id: str) -> int:
    try:
        data = json.loads(base64.b64decode(value, validate=True))
        if data.get("v") != 1 or data.get("mb") != mailbox or data.get("f") != folder_id:
            raise ValueError("foreign sync state")
        return int(data["seq"])
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise EwsError(
            "ErrorInvalidSyncStateData",
            "Synchronization state data is corrupt or otherwise invalid.",
        ) from None


def _in_scope(ctx: EwsContext, folder: Folder, scope: Folder) -> bool:
    current: Folder | None = folder
    while current is not None and current.parent_id is not None:
        if current.parent_id == scope.id:
            return True
        current = ctx.lab.store.folder(current.parent_id)
    return False


@operation("SyncFolderHierarchy")
def sync_folder_hierarchy(ctx: EwsContext, request: Element) -> Element:
    shape = parse_shape(request.find(m("FolderShape")))
    try:
        sync_el = request.find(m("SyncFolderId"))
        ids = folder_id_elements(sync_el)
        if ids:
            scope = resolve_folder(ctx, ids[0])
        else:
            top = ctx.lab.store.distinguished_folder(ctx.user, "msgfolderroot")
            if top is None:
                raise EwsError("ErrorFolderNotFound", "The specified folder could not be found.")
            scope = top
        store = ctx.lab.store
        state_text = text_of(request.find(m("SyncState")))
        now_seq = store.last_folder_change(scope.mailbox)
        changes = Element(m("Changes"))
        if not state_text:
            for folder in visible_subtree(ctx, scope, deep=True):
                folder_element(sub(changes, t("Create")), ctx, folder, shape)
        else:
            since = _decode_state(state_text, scope.mailbox, scope.id)
            _changes_since(ctx, scope, since, changes, shape)
        message = response_message("SyncFolderHierarchy")
        sub(message, m("SyncState"), _encode_state(scope.mailbox, scope.id, now_seq))
        sub(message, m("IncludesLastFolderInRange"), "true")
        message.append(changes)
        return response("SyncFolderHierarchy", [message])
    except EwsError as err:
        return response("SyncFolderHierarchy", [error_message("SyncFolderHierarchy", err)])


def _changes_since(
    ctx: EwsContext, scope: Folder, since: int, changes: Element, shape: FolderShape
) -> None:
    """One entry per folder touched since `since`: Create, Update or Delete, in log order."""
    store = ctx.lab.store
    latest: dict[str, tuple[int, bool]] = {}
    for seq, folder_id, change in store.folder_changes(scope.mailbox, since):
        created_before = latest.get(folder_id, (seq, change != "create"))[1]
        latest[folder_id] = (seq, created_before)
    for folder_id, (_, existed_before) in sorted(latest.items(), key=lambda kv: kv[1][0]):
        folder = store.folder(folder_id)
        if folder is None:
            if existed_before:
                delete = sub(changes, t("Delete"))
                sub(delete, t("FolderId"), Id=encode_id("folder", folder_id))
            continue
        if not _in_scope(ctx, folder, scope) or not rights_on(ctx, folder).folder_visible:
            continue
        kind = "Update" if existed_before else "Create"
        folder_element(sub(changes, t(kind)), ctx, folder, shape)


# -- CreateFolder / DeleteFolder ------------------------------------------------------------------


@operation("CreateFolder")
def create_folder(ctx: EwsContext, request: Element) -> Element:
    parents = folder_id_elements(request.find(m("ParentFolderId")))
    if len(parents) != 1:
        raise SoapFault(
            "ErrorSchemaValidation", "The request failed schema validation: one ParentFolderId."
        )
    parent = resolve_folder(ctx, parents[0])
    if not rights_on(ctx, parent).create_subfolders:
        raise denied()
    messages = []
    for spec in _children_of(request.find(m("Folders"))):
        name = text_of(spec.find(t("DisplayName")))
        if not name:
            messages.append(
                error_message(
                    "CreateFolder", EwsError("ErrorInvalidFolderId", "DisplayName is required.")
                )
            )
            continue
        if any(c.display_name.lower() == name.lower() for c in ctx.lab.store.children(parent.id)):
            messages.append(
                error_message(
                    "CreateFolder",
                    EwsError(
                        "ErrorFolderExists", "A folder with the specified name already exists."
                    ),
                )
            )
            continue
        default_class = {
            t("CalendarFolder"): "IPF.Appointment",
            t("ContactsFolder"): "IPF.Contact",
            t("TasksFolder"): "IPF.Task",
        }.get(spec.tag)
        folder_class = text_of(spec.find(t("FolderClass"))) or default_class
        folder = ctx.lab.add_folder(parent, name, folder_class, inherit_class=False)
        folders = Element(m("Folders"))
        folder_element(folders, ctx, folder, FolderShape({"FolderId"}))
        messages.append(response_message("CreateFolder", [folders]))
    return response("CreateFolder", messages)


def _children_of(el: Element | None) -> Iterable[Element]:
    return list(el) if el is not None else []


@operation("DeleteFolder")
def delete_folder(ctx: EwsContext, request: Element) -> Element:
    """HardDelete/SoftDelete remove the subtree; MoveToDeletedItems moves it to Deleted Items
    (a folder already there, or a public folder, is removed)."""
    delete_type = request.get("DeleteType", "")
    if delete_type not in ("HardDelete", "SoftDelete", "MoveToDeletedItems"):
        raise SoapFault(
            "ErrorSchemaValidation",
            f"The request failed schema validation: DeleteType '{delete_type}' is not valid.",
        )
    messages = []
    for el in folder_id_elements(request.find(m("FolderIds"))):
        try:
            folder = resolve_folder(ctx, el)
            if folder.distinguished is not None:
                raise EwsError(
                    "ErrorDeleteDistinguishedFolder", "Distinguished folders cannot be deleted."
                )
            if not rights_on(ctx, folder).folder_owner:
                raise denied()
            trash = ctx.lab.store.distinguished_folder(folder.mailbox, "deleteditems")
            in_trash = trash is not None and (
                folder.parent_id == trash.id
                or any(d.id == folder.id for d in ctx.lab.store.descendants(trash.id))
            )
            if delete_type == "MoveToDeletedItems" and trash is not None and not in_trash:
                ctx.lab.store.update_folder(folder.id, parent_id=trash.id, now=ctx.lab.now())
            else:
                ctx.lab.store.delete_folder(folder.id)
            messages.append(response_message("DeleteFolder"))
        except EwsError as err:
            messages.append(error_message("DeleteFolder", err))
    return response("DeleteFolder", messages)


# -- UpdateFolder / MoveFolder --------------------------------------------------------------------


_ENTRY_ORDER = (
    "UserId",
    "CanCreateItems",
    "CanCreateSubFolders",
    "IsFolderOwner",
    "IsFolderVisible",
    "IsFolderContact",
    "EditItems",
    "DeleteItems",
    "ReadItems",
)
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


def _check_entry(entry: Element, calendar: bool) -> dict[str, str]:
    """The children of one permission entry, checked against the schema's sequence.

    Exchange validates requests against its schema; an entry with elements out of order, a
    misspelt or foreign element (CalendarPermissionLevel in a Permission) is refused whole.
    """
    level_tag = "CalendarPermissionLevel" if calendar else "PermissionLevel"
    order = (*_ENTRY_ORDER, level_tag)
    values: dict[str, str] = {}
    position = -1
    for child in entry:
        name = child.tag.split("}", 1)[-1]
        if child.tag != t(name) or name not in order or order.index(name) <= position:
            raise SoapFault(
                "ErrorSchemaValidation",
                "The request failed schema validation: The element "
                f"'{entry.tag.split('}', 1)[-1]}' has invalid child element '{name}'.",
                violation=f"unexpected {name}",
            )
        position = order.index(name)
        values[name] = text_of(child)
    if "UserId" not in values or level_tag not in values:
        raise SoapFault(
            "ErrorSchemaValidation",
            f"The request failed schema validation: UserId and {level_tag} are required.",
        )
    for name in _ENTRY_ORDER[1:6]:
        if name in values and values[name] not in _BOOLEANS:
            raise SoapFault(
                "ErrorSchemaValidation",
                f"The request failed schema validation: '{values[name]}' is not a boolean.",
            )
    return values


def _parse_permissions(ctx: EwsContext, container: Element) -> list[tuple[str, str | Rights]]:
    """(principal, role or custom rights) from a `t:PermissionSet` being set."""
    entries: list[tuple[str, str | Rights]] = []
    for entry in container.iter():
        if entry.tag not in (t("Permission"), t("CalendarPermission")):
            continue
        values = _check_entry(entry, calendar=entry.tag == t("CalendarPermission"))
        user = entry.find(t("UserId"))
        principal = text_of(user.find(t("PrimarySmtpAddress")) if user is not None else None)
        distinguished = text_of(user.find(t("DistinguishedUser")) if user is not None else None)
        principal = (distinguished or principal).lower()
        if not principal:
            raise EwsError("ErrorInvalidUserInfo", "A permission entry names no user.")
        if principal not in ("default", "anonymous") and ctx.lab.store.mailbox(principal) is None:
            raise EwsError("ErrorInvalidUserInfo", f"The user {principal} is not known.")
        level = values.get("PermissionLevel") or values.get("CalendarPermissionLevel", "")
        if level != "Custom":
            if level not in ROLES:
                raise EwsError("ErrorInvalidPermissionSettings", f"Unknown level {level}.")
            entries.append((principal, level))
            continue

        def flag(name: str, values: dict[str, str] = values) -> bool:
            return _BOOLEANS.get(values.get(name, "false"), False)

        entries.append(
            (
                principal,
                Rights(
                    read=READ_FROM_EWS.get(values.get("ReadItems", "None"), "none"),
                    create_items=flag("CanCreateItems"),
                    create_subfolders=flag("CanCreateSubFolders"),
                    edit=SCOPE_FROM_EWS.get(values.get("EditItems", "None"), "none"),
                    delete=SCOPE_FROM_EWS.get(values.get("DeleteItems", "None"), "none"),
                    folder_owner=flag("IsFolderOwner"),
                    folder_visible=flag("IsFolderVisible"),
                    folder_contact=flag("IsFolderContact"),
                ),
            )
        )
    return entries


@operation("UpdateFolder")
def update_folder(ctx: EwsContext, request: Element) -> Element:
    changes = request.find(m("FolderChanges"))
    messages = []
    for change in list(changes) if changes is not None else []:
        try:
            ids = folder_id_elements(change)
            if len(ids) != 1:
                raise SoapFault(
                    "ErrorSchemaValidation", "The request failed schema validation: FolderChange."
                )
            folder = resolve_folder(ctx, ids[0])
            if not rights_on(ctx, folder).folder_owner:
                raise denied()
            updated = _apply_updates(ctx, folder, change.find(t("Updates")))
            folders = Element(m("Folders"))
            folder_element(folders, ctx, updated, FolderShape({"FolderId"}))
            messages.append(response_message("UpdateFolder", [folders]))
        except EwsError as err:
            messages.append(error_message("UpdateFolder", err))
    return response("UpdateFolder", messages)


def _apply_updates(ctx: EwsContext, folder: Folder, updates: Element | None) -> Folder:
    """SetFolderField DisplayName/FolderClass/PermissionSet; DeleteFolderField PermissionSet.

    exchangelib sends DeleteFolderField for a PermissionSet it never read; the folder keeps
    its entries then (the owner's grants to delegates must not vanish on a rename).
    """
    store = ctx.lab.store
    name: str | None = None
    folder_class: str | None = None
    permissions: list[tuple[str, str | Rights]] | None = None
    for update in list(updates) if updates is not None else []:
        path = update.find(t("FieldURI"))
        uri = path.get("FieldURI", "") if path is not None else ""
        if update.tag == t("DeleteFolderField") and uri == "folder:PermissionSet":
            continue
        if update.tag != t("SetFolderField"):
            raise EwsError("ErrorInvalidPropertyDelete", f"The property {uri} cannot be deleted.")
        if uri == "folder:DisplayName":
            name = text_of(next((e for e in update.iter() if e.tag == t("DisplayName")), None))
            if not name:
                raise EwsError("ErrorInvalidPropertySet", "DisplayName must not be empty.")
        elif uri == "folder:FolderClass":
            folder_class = text_of(
                next((e for e in update.iter() if e.tag == t("FolderClass")), None)
            )
        elif uri == "folder:PermissionSet":
            found = next((e for e in update.iter() if e.tag == t("PermissionSet")), None)
            permissions = _parse_permissions(ctx, found) if found is not None else []
        else:
            raise EwsError("ErrorInvalidPropertySet", f"The property {uri} cannot be changed.")
    if name is not None and folder.parent_id is not None:
        for sibling in store.children(folder.parent_id):
            if sibling.id != folder.id and sibling.display_name.lower() == name.lower():
                raise EwsError(
                    "ErrorFolderExists", "A folder with the specified name already exists."
                )
    if folder_class is not None and folder_class != folder.folder_class:
        store.set_folder_class(folder.id, folder_class)
    if permissions is not None:
        for row in store.permissions(folder.id):
            store.remove_permission(folder.id, row["principal"])
        for principal, role in permissions:
            grant(store, folder.id, principal, role)
    return store.update_folder(folder.id, display_name=name, now=ctx.lab.now())


@operation("MoveFolder")
def move_folder(ctx: EwsContext, request: Element) -> Element:
    targets = folder_id_elements(request.find(m("ToFolderId")))
    if len(targets) != 1:
        raise SoapFault(
            "ErrorSchemaValidation", "The request failed schema validation: ToFolderId."
        )
    target = resolve_folder(ctx, targets[0])
    if not rights_on(ctx, target).create_subfolders:
        raise denied()
    messages = []
    for el in folder_id_elements(request.find(m("FolderIds"))):
        try:
            folder = resolve_folder(ctx, el)
            if folder.distinguished is not None:
                raise EwsError(
                    "ErrorMoveDistinguishedFolder", "Distinguished folders cannot be moved."
                )
            if not rights_on(ctx, folder).folder_owner:
                raise denied()
            if (
                folder.mailbox != target.mailbox
                or target.id == folder.id
                or any(d.id == target.id for d in ctx.lab.store.descendants(folder.id))
            ):
                raise EwsError("ErrorMoveCopyFailed", "The folder cannot be moved there.")
            moved = ctx.lab.store.update_folder(folder.id, parent_id=target.id, now=ctx.lab.now())
            folders = Element(m("Folders"))
            folder_element(folders, ctx, moved, FolderShape({"FolderId"}))
            messages.append(response_message("MoveFolder", [folders]))
        except EwsError as err:
            messages.append(error_message("MoveFolder", err))
    return response("MoveFolder", messages)
