"""A folder's changes as server-sent events, resumable with `Last-Event-ID`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path
from starlette.responses import StreamingResponse

from bridge.api.changes import follow
from bridge.api.context import CallerDep, ContextDep, SessionDep, folder_by_id, needs
from bridge.api.problems import PROBLEM_RESPONSES
from med import DelegateSession, MedError

router = APIRouter(prefix="/v1/folders", tags=["changes"], responses=PROBLEM_RESPONSES)

_STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "An event stream: `change` events (one item each), then a `checkpoint` "
        "whose id is the position to resume from; an `error` event ends it when Exchange "
        "fails (reconnect with Last-Event-ID).",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


@router.get(
    "/{folder_id}/changes",
    response_class=StreamingResponse,
    responses=_STREAM_DOC,
    dependencies=[needs("events", "ReadItems")],
)
async def changes(
    session: SessionDep,
    ctx: ContextDep,
    caller: CallerDep,
    folder_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,2000}$")],
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            max_length=4000,
            pattern=r"^[A-Za-z0-9_.-]+$",
            description="Resume after this checkpoint: nothing in between is lost.",
        ),
    ] = None,
) -> StreamingResponse:
    """Created, changed and deleted items of a folder as they happen."""
    await folder_by_id(session, folder_id)  # 404/403 now, not inside the stream

    async def session_for() -> DelegateSession:
        return await ctx.identities.session(caller)

    feed = follow(session_for, ctx.positions, folder_id, last_event_id, ctx.settings.change_poll_s)
    first = await anext(feed)  # a bad Last-Event-ID is a 422 before the stream starts

    async def stream() -> AsyncIterator[bytes]:
        yield b"retry: 2000\n\n"
        batch = first
        while True:
            for change in batch.changes:
                yield f"event: change\ndata: {json.dumps(change)}\n\n".encode()
            yield f"event: checkpoint\nid: {batch.position}\ndata: {{}}\n\n".encode()
            try:
                batch = await anext(feed)
            except MedError as exc:  # Exchange failed mid-stream: say why, end; resume later
                error = {"title": exc.title, "detail": str(exc), "code": exc.code}
                yield f"event: error\ndata: {json.dumps(error)}\n\n".encode()
                return

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
