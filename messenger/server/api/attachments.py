"""Encrypted attachments: streamed to the blob store, charged to the quota in one transaction."""

from __future__ import annotations

import logging
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


@router.post("/conversations/{cid}/attachments", status_code=201)
async def upload(
    cid: str, request: Request, caller: Authed, state: State, db: DB
) -> dict[str, Any]:
    conv, _ = await repo.conversation_for_member(db, caller.user, cid)
    # Release the read transaction while the body streams in.
    await db.commit()
    limit = state.settings.max_upload_bytes
    try:
        tmp, size = await state.blobs.receive(request.stream(), limit)
    except OverflowError:
        raise ApiError(413, f"an attachment is at most {limit} bytes", "too_large") from None
    attachment_id = new_id()
    try:
        await repo.add_attachment(db, caller.user, conv, attachment_id, size, state.now())
        state.blobs.commit(tmp, attachment_id)
        try:
            await db.commit()
        except BaseException:
            state.blobs.delete(attachment_id)
            raise
    finally:
        tmp.unlink(missing_ok=True)
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
