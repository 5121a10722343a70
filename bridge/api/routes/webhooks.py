"""Webhooks: signed POSTs of a folder's changes to an integrator's URL."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from bridge.api.context import CallerDep, ContextDep, SessionDep, folder_by_id, needs
from bridge.api.problems import PROBLEM_RESPONSES, ApiProblem
from bridge.api.schemas import DeadLetterList, WebhookCreated, WebhookList, WebhookOut
from med import DelegateSession

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=PROBLEM_RESPONSES)

HookId = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")]


class WebhookRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    folder_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,2000}$")
    url: AnyHttpUrl = Field(examples=["https://fachverfahren.musterstadt.example/hooks/mail"])
    position: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.-]{1,4000}$",
        description="Start after this checkpoint (a change stream's event id); default: now.",
    )


def _owner(caller: CallerDep) -> str:
    return f"{caller.scheme}:{caller.name.lower()}"


def _missing() -> ApiProblem:
    return ApiProblem(404, "not-found", "Not found", "No such webhook of yours.")


@router.post(
    "", status_code=201, response_model=WebhookCreated, dependencies=[needs("events", "ReadItems")]
)
async def create_webhook(
    session: SessionDep, ctx: ContextDep, caller: CallerDep, request: WebhookRequest
) -> Response:
    """Follow a folder: each batch of its changes is POSTed to `url`, signed with the
    `secret` this answer shows once (see the `Webhook-Signature` header)."""
    allowed = ctx.settings.webhook_hosts
    host = (request.url.host or "").lower()
    if allowed is not None and host not in {h.lower() for h in allowed}:
        raise ApiProblem(
            422,
            "invalid-input",
            "Invalid input",
            f"Webhooks may post to {', '.join(allowed) or 'no host'} only.",
        )
    await folder_by_id(session, request.folder_id)
    if request.position is not None:
        ctx.positions.state_of(request.folder_id, request.position)  # 422 now, not later

    async def session_for() -> DelegateSession:
        return await ctx.identities.session(caller)

    hook = await ctx.webhooks.add(
        _owner(caller), request.folder_id, str(request.url), session_for, request.position
    )
    return JSONResponse({**hook.describe(), "secret": hook.secret}, 201)


@router.get("", response_model=WebhookList, dependencies=[needs("events")])
async def list_webhooks(ctx: ContextDep, caller: CallerDep) -> Response:
    return JSONResponse({"webhooks": [h.describe() for h in ctx.webhooks.of(_owner(caller))]})


@router.get("/{hook_id}", response_model=WebhookOut, dependencies=[needs("events")])
async def get_webhook(ctx: ContextDep, caller: CallerDep, hook_id: HookId) -> Response:
    hook = ctx.webhooks.get(_owner(caller), hook_id)
    if hook is None:
        raise _missing()
    return JSONResponse(hook.describe())


@router.get(
    "/{hook_id}/dead-letters", response_model=DeadLetterList, dependencies=[needs("events")]
)
async def dead_letters(ctx: ContextDep, caller: CallerDep, hook_id: HookId) -> Response:
    """Deliveries that failed every attempt, with their payloads."""
    hook = ctx.webhooks.get(_owner(caller), hook_id)
    if hook is None:
        raise _missing()
    return JSONResponse({"dead_letters": [vars(d) for d in hook.dead_letters]})


@router.delete("/{hook_id}", status_code=204, dependencies=[needs("events")])
async def delete_webhook(ctx: ContextDep, caller: CallerDep, hook_id: HookId) -> Response:
    if not await ctx.webhooks.remove(_owner(caller), hook_id):
        raise _missing()
    return Response(status_code=204)
