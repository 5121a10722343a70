"""One item: read (with ETag), change (If-Match), delete, move, copy, attachments, exports."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Query, Request
from starlette.responses import Response

from bridge.api import ids
from bridge.api.context import SessionDep, api_json, etag_of, folder_by_id, needs
from bridge.api.convert import patch_values
from bridge.api.problems import PROBLEM_RESPONSES, ApiProblem
from bridge.api.schemas import ItemOut, MovedOut
from med import (
    Conflict,
    DelegateSession,
    Event,
    InvalidInput,
    Item,
    OutgoingAttachment,
    Voicemail,
)

router = APIRouter(prefix="/v1/items", tags=["items"], responses=PROBLEM_RESPONSES)

ItemId = Annotated[
    str,
    Path(description="An item id as this API hands them out.", pattern=r"^[A-Za-z0-9_-]{1,2000}$"),
]
_BINARY = {
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
}
_PRECONDITION = {
    304: {"description": "Not modified (If-None-Match matched)."},
    412: PROBLEM_RESPONSES[409] | {"description": "If-Match does not match the item's ETag."},
    428: PROBLEM_RESPONSES[409] | {"description": "If-Match is required."},
}


async def _item(session: DelegateSession, item_id: str) -> Item:
    return await session.get(ids.inward(item_id))


def _stale(item: Item) -> ApiProblem:
    return ApiProblem(
        412,
        "precondition-failed",
        "Changed elsewhere",
        "The item changed since that ETag; GET it again and reapply your change.",
        current_etag=etag_of(item.change_key),
    )


def _matches(if_match: str, item: Item) -> bool:
    wanted = [t.strip().removeprefix("W/") for t in if_match.split(",")]
    return "*" in wanted or etag_of(item.change_key) in wanted


@router.get(
    "/{item_id}",
    response_model=ItemOut,
    dependencies=[needs("read", "ReadItems")],
    responses={304: _PRECONDITION[304]},
)
async def get_item(
    session: SessionDep,
    item_id: ItemId,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    """The full item with body and attachment list; `ETag` is its change key."""
    item = await _item(session, item_id)
    etag = etag_of(item.change_key)
    headers = {"ETag": etag} if etag else {}
    if etag and if_none_match and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    return api_json(item, headers=headers)


@router.patch(
    "/{item_id}",
    response_model=ItemOut,
    dependencies=[needs("write", "EditItems")],
    responses={412: _PRECONDITION[412], 428: _PRECONDITION[428]},
)
async def update_item(
    session: SessionDep,
    item_id: ItemId,
    body: Annotated[
        dict[str, Any],
        Body(
            media_type="application/merge-patch+json",
            examples=[{"subject": "Neu: Haushaltsplan", "importance": "high"}],
        ),
    ],
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
    series: Annotated[bool, Query(description="Change the whole series.")] = False,
    send_updates: Annotated[bool, Query()] = True,
) -> Response:
    """Change the named fields (a merge patch). `If-Match` with the ETag from GET is
    required; a stale one gets 412."""
    if not if_match:
        raise ApiProblem(
            428,
            "precondition-required",
            "If-Match required",
            "Send If-Match with the item's ETag, so no change is lost.",
        )
    item = await _item(session, item_id)
    if not _matches(if_match, item):
        raise _stale(item)
    values = patch_values(item, body)
    changed = dataclasses.replace(item, **values)
    try:
        updated = await session.update(
            changed, list(values), series=series, send_updates=send_updates
        )
    except Conflict:
        raise _stale(await _item(session, item_id)) from None
    etag = etag_of(updated.change_key)
    return api_json(updated, headers={"ETag": etag} if etag else None)


@router.delete(
    "/{item_id}",
    status_code=204,
    dependencies=[needs("write", "DeleteItems")],
    responses={412: _PRECONDITION[412]},
)
async def delete_item(
    session: SessionDep,
    item_id: ItemId,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
    hard: Annotated[bool, Query(description="Delete for good, not to Deleted Items.")] = False,
    series: Annotated[bool, Query()] = False,
    send_cancellations: Annotated[bool, Query()] = True,
) -> Response:
    item: Item | str = ids.inward(item_id)
    if if_match or series:
        item = await _item(session, item_id)
        if if_match and not _matches(if_match, item):
            raise _stale(item)
    await session.delete(item, hard=hard, series=series, send_cancellations=send_cancellations)
    return Response(status_code=204)


@router.post(
    "/{item_id}/move", response_model=MovedOut, dependencies=[needs("write", "DeleteItems")]
)
async def move_item(
    session: SessionDep,
    item_id: ItemId,
    folder_id: Annotated[str, Body(embed=True, pattern=r"^[A-Za-z0-9_-]{1,2000}$")],
) -> Response:
    """Move to another folder (also into another mailbox); the answer is the new id."""
    target = await folder_by_id(session, folder_id)
    new_id = await session.move(ids.inward(item_id), target)
    return api_json({"id": new_id})


@router.post(
    "/{item_id}/copy",
    response_model=MovedOut,
    status_code=201,
    dependencies=[needs("write", "CreateItems")],
)
async def copy_item(
    session: SessionDep,
    item_id: ItemId,
    folder_id: Annotated[str, Body(embed=True, pattern=r"^[A-Za-z0-9_-]{1,2000}$")],
) -> Response:
    target = await folder_by_id(session, folder_id)
    new_id = await session.copy(ids.inward(item_id), target)
    return api_json({"id": new_id}, 201)


@router.get(
    "/{item_id}/attachments/{attachment_id}",
    responses={200: _BINARY},
    response_class=Response,
    dependencies=[needs("read", "ReadItems")],
)
async def download_attachment(
    session: SessionDep,
    item_id: ItemId,
    attachment_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,2000}$")],
) -> Response:
    """An attachment's bytes, with its name in Content-Disposition."""
    item = await _item(session, item_id)
    wanted = ids.inward(attachment_id)
    if all(a.id != wanted for a in item.attachments):
        raise ApiProblem(404, "not-found", "Not found", "The item has no such attachment.")
    content = await session.attachment(wanted)
    return _download(content.content, content.attachment.content_type, content.attachment.name)


def _download(data: bytes, content_type: str, name: str) -> Response:
    safe = "".join(c if c.isalnum() or c in "._- " else "_" for c in name)[:200] or "attachment"
    return Response(
        data,
        media_type=content_type or "application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{safe}"'},
    )


@router.post(
    "/{item_id}/attachments",
    response_model=ItemOut,
    status_code=201,
    dependencies=[needs("write", "EditItems")],
    openapi_extra={"requestBody": {"required": True, **_BINARY}},
)
async def upload_attachment(
    session: SessionDep,
    request: Request,
    item_id: ItemId,
    name: Annotated[str, Query(min_length=1, max_length=255, examples=["Bescheid.pdf"])],
) -> Response:
    """Attach the request body as a file named `name` (its Content-Type is kept)."""
    data = await request.body()
    if not data:
        raise InvalidInput("The attachment is empty.")
    item = await _item(session, item_id)
    upload = OutgoingAttachment(
        name, data, request.headers.get("content-type") or "application/octet-stream"
    )
    # med adds `new_attachments` with any update; the subject, rewritten as it is, carries it.
    await session.update(
        dataclasses.replace(item, new_attachments=(upload,)),
        ["subject"],
        send_updates=False,
    )
    updated = await _item(session, item_id)
    return api_json(updated, 201)


@router.get(
    "/{item_id}/mime",
    response_class=Response,
    dependencies=[needs("read", "ReadItems")],
    responses={200: {"content": {"message/rfc822": {"schema": {"type": "string"}}}}},
)
async def export_mime(session: SessionDep, item_id: ItemId) -> Response:
    """The item as MIME (.eml); EWS only."""
    data = await session.export_mime(ids.inward(item_id))
    return Response(data, media_type="message/rfc822")


@router.get(
    "/{item_id}/ical",
    response_class=Response,
    dependencies=[needs("read", "ReadItems")],
    responses={200: {"content": {"text/calendar": {"schema": {"type": "string"}}}}},
)
async def export_ical(session: SessionDep, item_id: ItemId) -> Response:
    """An event (or series) as iCalendar."""
    from med.ical import events_to_ical

    item = await _item(session, item_id)
    if not isinstance(item, Event):
        raise InvalidInput("Only calendar items export as iCalendar.")
    return Response(events_to_ical([item]), media_type="text/calendar")


@router.get(
    "/{item_id}/voicemail-audio",
    responses={200: _BINARY},
    response_class=Response,
    dependencies=[needs("read", "ReadItems")],
)
async def voicemail_audio(session: SessionDep, item_id: ItemId) -> Response:
    """The recording of a voicemail (EWS only)."""
    item = await _item(session, item_id)
    if not isinstance(item, Voicemail):
        raise InvalidInput("This item is no voicemail.")
    audio = await session.voicemail_audio(item)
    return _download(audio.content, audio.attachment.content_type, audio.attachment.name)
