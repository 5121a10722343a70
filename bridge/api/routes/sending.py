"""Send, reply and forward (on behalf of another mailbox), and answer meetings on behalf."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from bridge.api import ids
from bridge.api.context import (
    CallerDep,
    ContextDep,
    IdempotencyKey,
    SessionDep,
    api_json,
    needs,
    once,
)
from bridge.api.convert import item_from_json
from bridge.api.problems import PROBLEM_RESPONSES
from bridge.api.schemas import Created
from med import Address, Message, ResponseType, SendOptions

router = APIRouter(prefix="/v1", tags=["sending"], responses=PROBLEM_RESPONSES)

ItemId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,2000}$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SendAs(_Body):
    from_mailbox: str | None = Field(
        None,
        max_length=320,
        description="Send on behalf of this mailbox (From = it, Sender = the caller).",
        examples=["chef@musterstadt.example"],
    )
    save_copy: bool = True

    def options(self) -> SendOptions:
        return SendOptions(from_mailbox=self.from_mailbox, save_copy=self.save_copy)


class SendRequest(SendAs):
    message: dict[str, object] = Field(
        description="A message: to, cc, bcc, subject, body, body_is_html, importance, "
        "sensitivity, categories, upload ([{name, content_base64, content_type}]).",
        examples=[
            {
                "to": [{"email": "buergerbuero@musterstadt.example"}],
                "subject": "Termin Kreistag",
                "body": "Bitte Raum 2.14 reservieren.",
            }
        ],
    )


class ReplyRequest(SendAs):
    body: str = Field(max_length=1_000_000)
    reply_all: bool = False


class ForwardRequest(SendAs):
    to: list[Address] = Field(min_length=1, max_length=500)
    body: str = Field("", max_length=1_000_000)


class RespondRequest(_Body):
    response: Literal["accept", "tentative", "decline"]
    message: str | None = Field(None, max_length=100_000)
    send: bool = True


SENT = {"status": "sent"}


@router.post(
    "/send", status_code=202, response_model=Created, dependencies=[needs("send", "SendOnBehalf")]
)
async def send(
    session: SessionDep,
    ctx: ContextDep,
    caller: CallerDep,
    request: SendRequest,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Send a new message, on behalf of `from_mailbox` when given. With an Idempotency-Key a
    repeated request sends nothing again."""

    async def work() -> Response:
        message = item_from_json({**request.message, "type": "message"})
        assert isinstance(message, Message)
        await session.send(message, request.options())
        return api_json(SENT, 202)

    return await once(ctx, caller, idempotency_key, ["send", request.model_dump()], work)


@router.post(
    "/items/{item_id}/reply",
    status_code=202,
    response_model=Created,
    dependencies=[needs("send", "SendOnBehalf")],
)
async def reply(
    session: SessionDep,
    ctx: ContextDep,
    caller: CallerDep,
    item_id: ItemId,
    request: ReplyRequest,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def work() -> Response:
        await session.reply(
            ids.inward(item_id),
            request.body,
            reply_all=request.reply_all,
            options=request.options(),
        )
        return api_json(SENT, 202)

    return await once(ctx, caller, idempotency_key, ["reply", item_id, request.model_dump()], work)


@router.post(
    "/items/{item_id}/forward",
    status_code=202,
    response_model=Created,
    dependencies=[needs("send", "SendOnBehalf")],
)
async def forward(
    session: SessionDep,
    ctx: ContextDep,
    caller: CallerDep,
    item_id: ItemId,
    request: ForwardRequest,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def work() -> Response:
        await session.forward(
            ids.inward(item_id), request.to, request.body, options=request.options()
        )
        return api_json(SENT, 202)

    return await once(
        ctx, caller, idempotency_key, ["forward", item_id, request.model_dump()], work
    )


@router.post(
    "/items/{item_id}/respond",
    status_code=202,
    response_model=Created,
    dependencies=[needs("send", "EditItems")],
)
async def respond(
    session: SessionDep,
    ctx: ContextDep,
    caller: CallerDep,
    item_id: ItemId,
    request: Annotated[RespondRequest, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Accept, tentatively accept or decline a meeting on behalf of its mailbox's owner."""

    async def work() -> Response:
        item = await session.get(ids.inward(item_id))
        await session.respond(
            item, ResponseType(request.response), request.message, send=request.send
        )
        return api_json({"status": request.response}, 202)

    return await once(
        ctx, caller, idempotency_key, ["respond", item_id, request.model_dump()], work
    )
