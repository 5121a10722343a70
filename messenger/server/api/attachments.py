"""Encrypted attachments: streamed to the blob store, charged to the quota in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from messenger.server.auth import Authed
from messenger.server.errors import ApiError
from messenger.server.state import DB, State
from messenger.store import repo
from messenger.store.models import new_id

router = APIRouter()
log = logging.getLogger("messenger.server.attachments")


async def receive_upload(
    request: Request,
    state: State,
    db: DB,
    record: Callable[[str, int], Awaitable[object]],
) -> tuple[str, int]:
    """Spool an upload, then `record(blob id, size)` (which charges the quota) and commit with
    the blob moved into place: either both stay or neither. Returns (blob id, size)."""
    await db.commit()  # no transaction open while the body streams in
    limit = state.settings.max_upload_bytes
    try:
        tmp, size = await state.blobs.receive(request.stream(), limit)
    except OverflowError:
        raise ApiError(413, f"an attachment is at most {limit} bytes", "too_large") from None
    blob_id = new_id()
    try:
        await record(blob_id, size)
        state.blobs.commit(tmp, blob_id)
        try:
            await db.commit()
        except BaseException:
            state.blobs.delete(blob_id)
            raise
    finally:
        tmp.unlink(missing_ok=True)
    return blob_id, size


@router.post("/conversations/{cid}/attachments", status_code=201)
async def upload(
    cid: str, request: Request, caller: Authed, state: State, db: DB
) -> dict[str, Any]:
    conv, _ = await repo.conversation_for_member(db, caller.user, cid)
    attachment_id, size = await receive_upload(
        request,
        state,
        db,
        lambda blob_id, size: repo.add_attachment(
            db, caller.user, conv, blob_id, size, state.now()
        ),
    )
    state.metrics.uploaded.inc(size)
    log.info("attachment stored conv=%s id=%s bytes=%d", conv.id, attachment_id, size)
    return {"attachment_id": attachment_id, "size": size}


@router.get("/attachments/{attachment_id}")
async def download(attachment_id: str, caller: Authed, state: State, db: DB) -> FileResponse:
    row = await repo.attachment_for_member(db, caller.user, attachment_id)
    path = state.blobs.path(row.id)
    if not path.exists():
        raise ApiError(404, "the attachment's content is gone")
    return FileResponse(path, media_type="application/octet-stream")


@router.get("/quota")
async def quota(caller: Authed, db: DB) -> dict[str, int]:
    return {"used": caller.user.storage_used, "limit": await repo.user_quota(db, caller.user)}
