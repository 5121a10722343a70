"""A folder, its items (cursor pages with filters and search), creating items, permissions."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request
from starlette.responses import Response

from bridge.api import ids
from bridge.api.context import (
    CallerDep,
    ContextDep,
    IdempotencyKey,
    SessionDep,
    api_json,
    etag_of,
    folder_by_id,
    needs,
    once,
)
from bridge.api.convert import item_from_json
from bridge.api.problems import PROBLEM_RESPONSES, ApiProblem
from bridge.api.schemas import Created, FolderOut, ItemPage, PermissionList
from bridge.api.settings import MAX_PAGE_SIZE
from med import Importance, ItemQuery, Role

router = APIRouter(prefix="/v1/folders", tags=["folders"], responses=PROBLEM_RESPONSES)

FolderId = Annotated[
    str,
    Path(
        description="A folder id as this API hands them out.",
        pattern=r"^[A-Za-z0-9_-]{1,2000}$",
    ),
]
CREATE_EXAMPLE = {
    "type": "task",
    "subject": "Akte Müller an Rechtsamt",
    "due": "2026-12-10T12:00:00+01:00",
    "importance": "high",
}


@router.get("/{folder_id}", response_model=FolderOut, dependencies=[needs("read", "FolderVisible")])
async def get_folder(session: SessionDep, folder_id: FolderId) -> Response:
    folder = await session.folder(ids.inward(folder_id), refresh=True)
    return api_json(folder)


def _cursor(offset: int, fingerprint: str) -> str:
    raw = json.dumps({"o": offset, "f": fingerprint}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _offset(cursor: str | None, fingerprint: str) -> int:
    if cursor is None:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        offset = int(data["o"])
        same = data["f"] == fingerprint
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise ApiProblem(
            400, "bad-cursor", "Bad cursor", "The cursor is not one of this API."
        ) from None
    if not same or offset < 0:
        raise ApiProblem(
            400, "bad-cursor", "Bad cursor", "The cursor belongs to a list with other filters."
        )
    return offset


@router.get(
    "/{folder_id}/items", response_model=ItemPage, dependencies=[needs("read", "ReadItems")]
)
async def list_items(
    session: SessionDep,
    ctx: ContextDep,
    request: Request,
    folder_id: FolderId,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    sort: Annotated[
        Literal[
            "received",
            "sent",
            "subject",
            "from",
            "importance",
            "start",
            "due",
            "modified",
            "created",
            "size",
            "name",
        ]
        | None,
        Query(),
    ] = None,
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
    unread: Annotated[bool, Query(description="Only unread messages.")] = False,
    flagged: Annotated[bool, Query()] = False,
    importance: Annotated[Importance | None, Query()] = None,
    category: Annotated[str | None, Query(max_length=255)] = None,
    sender: Annotated[str | None, Query(max_length=320)] = None,
    has_attachments: Annotated[bool | None, Query()] = None,
    start: Annotated[datetime | None, Query(description="With a time zone.")] = None,
    end: Annotated[datetime | None, Query(description="With a time zone.")] = None,
    search: Annotated[
        str | None, Query(max_length=255, description="Subject, body, sender.")
    ] = None,
) -> Response:
    """One page of a folder's items, without bodies; `next_cursor` fetches the next."""
    if limit > ctx.settings.max_page_size:
        raise ApiProblem(
            422,
            "invalid-input",
            "Invalid input",
            f"limit may be at most {ctx.settings.max_page_size}.",
        )
    for moment in (start, end):
        if moment is not None and moment.tzinfo is None:
            raise ApiProblem(422, "invalid-input", "Invalid input", "Give times with a zone.")
    filters = [
        folder_id,
        limit,
        sort,
        order,
        unread,
        flagged,
        importance,
        category,
        sender,
        has_attachments,
        start,
        end,
        search,
    ]
    fingerprint = hashlib.sha256(repr(filters).encode()).hexdigest()[:16]
    offset = _offset(cursor, fingerprint)
    query = ItemQuery(
        offset=offset,
        limit=limit,
        sort=sort,
        descending=order == "desc",
        unread_only=unread,
        flagged_only=flagged,
        importance=importance,
        category=category,
        sender=sender,
        has_attachments=has_attachments,
        start=start,
        end=end,
        search=search or None,
    )
    folder = await folder_by_id(session, folder_id)
    page = await session.items(folder, query)
    next_offset = page.next_offset
    body: dict[str, Any] = {"items": page.items, "total": page.total, "next_cursor": None}
    headers = {}
    if next_offset is not None:
        body["next_cursor"] = _cursor(next_offset, fingerprint)
        url = request.url.include_query_params(cursor=body["next_cursor"])
        headers["Link"] = f'<{url}>; rel="next"'
    return api_json(body, headers=headers)


@router.post(
    "/{folder_id}/items",
    status_code=201,
    response_model=Created,
    dependencies=[needs("write", "CreateItems")],
)
async def create_item(
    session: SessionDep,
    ctx: ContextDep,
    caller: CallerDep,
    folder_id: FolderId,
    body: Annotated[dict[str, Any], Body(examples=[CREATE_EXAMPLE])],
    idempotency_key: IdempotencyKey = None,
    send_invitations: Annotated[bool, Query()] = True,
) -> Response:
    """Create an item of any kind (`type`: message, event, contact, task, note); attach
    files with `upload` ([{name, content_base64, content_type}]). A meeting's invitations go
    out unless `send_invitations=false`."""

    async def work() -> Response:
        folder = await folder_by_id(session, folder_id)
        item = item_from_json(body, _default_kind(folder.kind.value))
        created = await session.create(folder, item, send_invitations=send_invitations)
        etag = etag_of(created.change_key)
        return api_json(
            {"status": "created", "item": created}, 201, {"ETag": etag} if etag else None
        )

    return await once(ctx, caller, idempotency_key, [folder_id, body, send_invitations], work)


def _default_kind(folder_kind: str) -> str:
    return {"calendar": "event", "contacts": "contact", "tasks": "task", "notes": "note"}.get(
        folder_kind, "message"
    )


@router.get(
    "/{folder_id}/permissions",
    response_model=PermissionList,
    dependencies=[needs("read", "FolderOwner")],
)
async def permissions(session: SessionDep, folder_id: FolderId) -> Response:
    """The folder's permission list (folder owners only; EWS only)."""
    folder = await folder_by_id(session, folder_id)
    return api_json({"permissions": await session.permissions(folder)})


@router.put(
    "/{folder_id}/permissions/{principal}",
    response_model=PermissionList,
    dependencies=[needs("manage", "FolderOwner")],
)
async def set_permission(
    session: SessionDep,
    folder_id: FolderId,
    principal: Annotated[
        str, Path(min_length=1, max_length=320, examples=["sachbearbeitung@musterstadt.example"])
    ],
    role: Annotated[Role, Body(embed=True)],
) -> Response:
    """Give a user (or `default`, `anonymous`) a role on the folder; `None` removes them."""
    folder = await folder_by_id(session, folder_id)
    return api_json({"permissions": await session.set_permission(folder, principal, role)})
