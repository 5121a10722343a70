"""Which handler answers a Graph path: `/me/...` and `/users/{id}/...` dispatch."""

from __future__ import annotations

from typing import Any

from exlab.core import items as store_items
from exlab.core import targets
from exlab.core.caller import Caller
from exlab.core.ids import encode_id
from exlab.core.store import Folder
from exlab.graph import odata, settings
from exlab.graph.calendar import (
    RESPONSES,
    calendar_folder,
    calendar_json,
    calendar_view,
    calendars,
    create_event,
    event_delta,
    get_event,
    get_schedule,
    instances,
    list_events,
    respond,
)
from exlab.graph.changes import (
    delete_item,
    patch_item,
)
from exlab.graph.convert import (
    GraphInputError,
    attachment_out,
    graph_id,
    task_in,
)
from exlab.graph.core import (
    Call,
    GraphError,
    access_denied,
    body_json,
    check,
    collection,
    find_mailbox,
    need,
    not_allowed,
    readable,
    resolve_folder,
    resolve_item,
    user_json,
)
from exlab.graph.mail import (
    REPLY_PREFIX,
    add_attachment,
    all_mail_folders,
    attachment,
    attachments,
    create_folder,
    create_message,
    folder_json,
    get_message,
    list_messages,
    mail_folders,
    message_delta,
    mime,
    move_or_copy,
    reply_or_forward,
    send_draft,
    send_mail,
)
from exlab.graph.people import (
    contact_folder_json,
    contact_json,
    create_contact,
    is_task,
    list_contacts,
    master_categories,
    task_delta,
    task_json,
    todo_list_json,
)
from exlab.graph.scheduling import find_meeting_times, places_route


def segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def route(call: Call) -> tuple[int, Any]:
    """Run one Graph call; returns (status, JSON body or Response or None)."""
    segs = segments(call.path)
    if not segs:
        raise GraphError(400, "BadRequest", "Invalid request.")
    head = segs[0]
    p = call.principal
    if head == "me":
        if p.app_only or p.user is None:
            raise GraphError(
                400, "BadRequest", "/me request is only valid with delegated authentication flow."
            )
        call.mailbox = p.user
        rest = segs[1:]
    elif head == "users":
        if len(segs) == 1:
            if not (p.app_only or {"User.ReadBasic.All", "User.Read.All"} & (p.scopes | p.roles)):
                raise GraphError(
                    403,
                    "Authorization_RequestDenied",
                    "Insufficient privileges to complete the operation.",
                )
            rows = [user_json(m) for m in call.lab.store.mailboxes() if m.kind != "public"]
            return 200, collection(call, rows, context="users")
        call.mailbox = find_mailbox(call, segs[1])
        rest = segs[2:]
    elif head == "places":
        call.ctx = Caller(call.lab, p.user or "")
        return places_route(call, segs[1:])
    else:
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{head}'.")
    call.ctx = Caller(call.lab, p.user if p.user else call.mailbox)
    return mailbox_route(call, rest)


def mailbox_route(call: Call, rest: list[str]) -> tuple[int, Any]:
    m, n = call.method, len(rest)
    store = call.lab.store
    if n == 0:
        if m == "GET":
            mailbox = store.mailbox(call.mailbox)
            return 200, user_json(mailbox)
        raise not_allowed()
    first = rest[0]
    if settings.handles(rest):
        return settings.settings_route(call, rest)
    if first == "findMeetingTimes" and n == 1 and m == "POST":
        return 200, find_meeting_times(call)
    if first == "sendMail" and n == 1 and m == "POST":
        return send_mail(call)
    if first == "mailFolders":
        return mail_folder_route(call, rest[1:])
    if first == "messages":
        return message_route(call, rest[1:], None)
    if first in ("events", "calendarView", "calendar", "calendars"):
        return calendar_route(call, rest)
    if first in ("contacts", "contactFolders"):
        return contact_route(call, rest)
    if first == "todo" and rest[1:2] == ["lists"]:
        return todo_route(call, rest[2:])
    if first == "outlook" and rest[1:] == ["masterCategories"] and m == "GET":
        return 200, collection(call, master_categories(call), context="outlookCategory")
    if first in ("archive",):
        raise GraphError(
            404, "ErrorItemNotFound", "The specified object was not found in the store."
        )
    raise GraphError(400, "BadRequest", f"Resource not found for the segment '{first}'.")


def mail_folder_route(call: Call, rest: list[str]) -> tuple[int, Any]:
    m, n = call.method, len(rest)
    need(call, "Mail", write=m != "GET")
    if n == 0:
        root = resolve_folder(call, "msgfolderroot")
        if m == "GET":
            return 200, mail_folders(call, root)
        if m == "POST":
            return create_folder(call, root)
        raise not_allowed()
    folder = resolve_folder(call, rest[0])
    if n == 1:
        if m == "GET":
            return 200, odata.select(folder_json(call, folder), call.query.get("$select"))
        if m == "PATCH":
            name = str(body_json(call).get("displayName", "")).strip()
            if not name:
                raise GraphError(400, "ErrorInvalidRequest", "displayName is required.")
            if not targets.rights(call.ctx, folder).folder_owner:
                raise access_denied()
            updated = call.lab.store.update_folder(folder.id, display_name=name, now=call.lab.now())
            return 200, folder_json(call, updated)
        raise not_allowed()
    sub = rest[1]
    if sub == "childFolders" and n == 2:
        if m == "GET":
            return 200, mail_folders(call, folder)
        if m == "POST":
            return create_folder(call, folder)
        raise not_allowed()
    if sub == "messages":
        return message_route(call, rest[2:], folder)
    raise GraphError(400, "BadRequest", f"Resource not found for the segment '{sub}'.")


def message_route(call: Call, rest: list[str], folder: Folder | None) -> tuple[int, Any]:
    m, n = call.method, len(rest)
    if n == 0:
        if m == "GET":
            folders = [folder] if folder else all_mail_folders(call)
            if not folders:
                raise access_denied()
            return 200, list_messages(call, folders)
        if m == "POST":
            return create_message(call, folder or resolve_folder(call, "drafts"))
        raise not_allowed()
    if rest[0] == "delta" and n == 1 and m == "GET":
        if folder is None:
            raise GraphError(400, "BadRequest", "messages/delta needs a mail folder.")
        return 200, message_delta(call, folder)
    gid = rest[0]
    if n == 1:
        if m == "GET":
            return 200, get_message(call, gid)
        if m == "PATCH":
            return 200, patch_item(call, gid, "Mail")
        if m == "DELETE":
            delete_item(call, gid, "Mail")
            return 204, None
        raise not_allowed()
    action = rest[1]
    if m == "POST" and n == 2 and action in ("move", "copy"):
        return move_or_copy(call, gid, action == "copy")
    if m == "POST" and n == 2 and action == "send":
        return send_draft(call, gid)
    if m == "POST" and n == 2 and action in REPLY_PREFIX:
        return reply_or_forward(call, gid, action)
    if m == "POST" and n == 2 and action == "permanentDelete":
        delete_item(call, gid, "Mail", hard=True)
        return 204, None
    if m == "POST" and n == 2 and action in RESPONSES:
        return respond(call, gid, action)
    if action == "attachments":
        if n == 2 and m == "GET":
            return 200, attachments(call, gid)
        if n == 2 and m == "POST":
            need(call, "Mail", write=True)
            target = resolve_item(call, gid)
            check(targets.check_edit, call, target)
            att = add_attachment(call, target.item, body_json(call))
            return 201, attachment_out(
                att.as_dict(""), graph_id(encode_id("attachment", att.id)), with_content=False
            )
        if n in (3, 4) and m == "GET":
            return 200, attachment(call, gid, rest[2], raw=n == 4 and rest[3] == "$value")
    if action == "$value" and n == 2 and m == "GET":
        return 200, mime(call, gid)
    raise GraphError(400, "BadRequest", f"Resource not found for the segment '{action}'.")


def calendar_route(call: Call, rest: list[str]) -> tuple[int, Any]:
    m = call.method
    first = rest[0]
    if first == "calendars":
        if len(rest) == 1 and m == "GET":
            need(call, "Calendars")
            return 200, collection(call, calendars(call), context="calendars")
        if len(rest) < 2:
            raise not_allowed()
        folder = calendar_folder(call, rest[1])
        rest = ["calendar", *rest[2:]]
    else:
        folder = calendar_folder(call, None)
    if rest[0] == "calendar":
        if len(rest) == 1:
            need(call, "Calendars")
            return 200, calendar_json(call, folder)
        rest = rest[1:]
    what, tail = rest[0], rest[1:]
    if what == "getSchedule" and not tail and m == "POST":
        return 200, get_schedule(call)
    if what == "calendarView":
        if tail == ["delta"] and m == "GET":
            return 200, event_delta(call, folder)
        if not tail and m == "GET":
            return 200, calendar_view(call, folder)
    if what == "events":
        if not tail:
            if m == "GET":
                return 200, list_events(call, folder)
            if m == "POST":
                return create_event(call, folder)
            raise not_allowed()
        gid = tail[0]
        if len(tail) == 1:
            if m == "GET":
                return 200, get_event(call, gid)
            if m == "PATCH":
                return 200, patch_item(call, gid, "Calendars")
            if m == "DELETE":
                delete_item(call, gid, "Calendars")
                return 204, None
            raise not_allowed()
        if len(tail) == 2 and tail[1] == "instances" and m == "GET":
            return 200, instances(call, gid)
        if len(tail) == 2 and tail[1] in RESPONSES and m == "POST":
            return respond(call, gid, tail[1])
    raise GraphError(400, "BadRequest", f"Resource not found for the segment '{what}'.")


def contact_route(call: Call, rest: list[str]) -> tuple[int, Any]:
    m = call.method
    if rest[0] == "contactFolders":
        need(call, "Contacts")
        if len(rest) == 1 and m == "GET":
            rows = [
                contact_folder_json(call, f)
                for f in call.lab.store.folders_of(call.mailbox)
                if (f.folder_class or "").startswith("IPF.Contact")
                and not f.hidden  # Exchange's own contact folders (Recipient Cache, ...)
                and targets.rights(call.ctx, f).folder_visible
            ]
            return 200, collection(call, rows, context="contactFolders")
        folder = resolve_folder(call, rest[1])
        if not (folder.folder_class or "").startswith("IPF.Contact"):
            raise GraphError(
                404, "ErrorItemNotFound", "The specified object was not found in the store."
            )
        if len(rest) == 2 and m == "GET":
            return 200, contact_folder_json(call, folder)
        if len(rest) < 3 or rest[2] != "contacts":
            raise GraphError(400, "BadRequest", "Only contactFolders/{id}/contacts is supported.")
        rest = ["contacts", *rest[3:]]
    else:
        folder = resolve_folder(call, "contacts")
    tail = rest[1:]
    if not tail:
        if m == "GET":
            return 200, list_contacts(call, folder)
        if m == "POST":
            return create_contact(call, folder)
        raise not_allowed()
    gid = tail[0]
    if len(tail) == 1:
        if m == "GET":
            need(call, "Contacts")
            target = resolve_item(call, gid)
            check(targets.check_read, call, target)
            return 200, contact_json(call, target)
        if m == "PATCH":
            return 200, patch_item(call, gid, "Contacts")
        if m == "DELETE":
            delete_item(call, gid, "Contacts")
            return 204, None
    raise not_allowed()


def todo_route(call: Call, rest: list[str]) -> tuple[int, Any]:
    """Microsoft To Do over the mailbox's task folders: the signed-in user's own lists only,
    as Graph's To Do API offers no delegated access to another user's lists."""
    m = call.method
    need(call, "Tasks", write=m != "GET")
    if not call.principal.app_only and call.mailbox != call.principal.user:
        raise access_denied()
    store = call.lab.store
    if not rest:
        if m != "GET":
            raise not_allowed()
        rows = [
            todo_list_json(f)
            for f in store.folders_of(call.mailbox)
            if (f.folder_class or "").startswith("IPF.Task")
        ]
        return 200, collection(call, rows, context="todoTaskList")
    folder = resolve_folder(call, rest[0])
    if not (folder.folder_class or "").startswith("IPF.Task"):
        raise GraphError(
            404, "ErrorItemNotFound", "The specified object was not found in the store."
        )
    if len(rest) == 1 and m == "GET":
        return 200, todo_list_json(folder)
    if len(rest) < 2 or rest[1] != "tasks":
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest[-1]}'.")
    tail = rest[2:]
    if tail == ["delta"]:
        if m != "GET":
            raise not_allowed()
        return 200, task_delta(call, folder)
    if not tail:
        if m == "GET":
            r = readable(call, folder)
            rows = [
                task_json(call, targets.Target(i, folder))
                for i in targets.visible_items(call.ctx, folder, r)
                if is_task(i)
            ]
            return 200, collection(call, rows, context="todoTask")
        if m == "POST":
            try:
                props = task_in(body_json(call))
            except GraphInputError as exc:
                raise GraphError(400, exc.code, exc.message) from None
            props.setdefault("task:Status", "NotStarted")
            check(targets.check_create, call, folder)
            item = store_items.create_item(
                store, folder, "IPM.Task", props, created_by=call.ctx.user, now=call.lab.now()
            )
            return 201, task_json(call, targets.Target(item, folder))
        raise not_allowed()
    target = resolve_item(call, tail[0])
    if target.folder.id != folder.id:
        raise GraphError(
            404, "ErrorItemNotFound", "The specified object was not found in the store."
        )
    if len(tail) == 1:
        if m == "GET":
            check(targets.check_read, call, target)
            return 200, task_json(call, target)
        if m == "PATCH":
            check(targets.check_edit, call, target)
            try:
                changes = task_in(body_json(call))
            except GraphInputError as exc:
                raise GraphError(400, exc.code, exc.message) from None
            now = call.lab.now()
            target.item.props = store_items.apply_changes(target.item.props, changes)
            store_items.save_item(store, target.item, now)
            return 200, task_json(call, target)
        if m == "DELETE":
            check(targets.check_delete, call, target)
            store_items.delete_item(store, target.item, call.lab.now())
            return 204, None
    raise not_allowed()
