"""The lab's Graph REST face: `/v1.0/me/...` and `/v1.0/users/{id}/...` over the lab's store.

The same items and the same access rules as the EWS face: item semantics (sending, meeting
invitations and responses, occurrences, rights checks) are the core's (`exlab.core`), called
with the Graph caller as the acting user, so that both faces of the lab behave alike. This
module translates between Graph's resources and those rules.

Every request: outage (503 + Retry-After), injected latency, bearer token (401 with Graph's
error body), delegated scope or app role (403), throttling budget (429 + Retry-After), then
the work in one store transaction (a failing request changes nothing).
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from exlab.core.errors import ExchangeError
from exlab.graph.core import (
    Call,
    GraphError,
    Json,
    error_response,
    from_ews,
    not_allowed,
)
from exlab.graph.routes import route
from exlab.graph.tokens import Principal, TokenInvalid

if TYPE_CHECKING:
    from exlab.graph.app import GraphFace

MAX_BODY = 10 * 1024 * 1024


MAX_BATCH = 20


def _bearer(face: GraphFace, header: str) -> Principal:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise GraphError(
            401,
            "InvalidAuthenticationToken",
            "Access token is empty.",
            {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'},
        )
    try:
        return face.issuer.verify(token.strip(), now=face.lab.now())
    except TokenInvalid as exc:
        raise GraphError(
            401,
            exc.code,
            exc.message,
            {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'},
        ) from None


def _throttle(face: GraphFace, principal: Principal) -> None:
    back_off_ms = face.lab.knobs.charge(principal.user or f"app:{principal.client_id}")
    if back_off_ms is not None:
        seconds = max(1, math.ceil(back_off_ms / 1000))
        raise GraphError(
            429,
            "ApplicationThrottled",
            "Application is over its MailboxConcurrency limit.",
            {"Retry-After": str(seconds)},
        )


def run_call(call: Call) -> tuple[int, Any]:
    """One call in one store transaction: an error rolls back everything it did."""
    try:
        with call.lab.store.transaction():
            return route(call)
    except ExchangeError as err:
        raise from_ews(err) from None


def _subscriptions(face: GraphFace, call: Call, rest: list[str]) -> tuple[int, Any]:
    try:
        return face.subscriptions.handle(call, rest)
    except ExchangeError as err:
        raise from_ews(err) from None


def _parse_body(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload.") from None


def _split_url(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    path = unquote(parts.path)
    for prefix in ("/v1.0/", "v1.0/"):
        if path.startswith(prefix):
            path = path[len(prefix) :]
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    return path.strip("/"), query


def _answer(status: int, payload: Any, request_id: str) -> Response:
    if isinstance(payload, Response):
        payload.headers["request-id"] = request_id
        return payload
    if payload is None:
        return Response(status_code=status, headers={"request-id": request_id})
    return JSONResponse(payload, status_code=status, headers={"request-id": request_id})


def _batch(face: GraphFace, principal: Principal, body: Any, base: str) -> Json:
    if not isinstance(body, Mapping) or not isinstance(body.get("requests"), list):
        raise GraphError(400, "BadRequest", "Invalid batch payload format.")
    parts = body["requests"]
    if len(parts) > MAX_BATCH:
        raise GraphError(400, "BadRequest", f"Number of batch requests exceeds {MAX_BATCH}.")
    responses = []
    for part in parts:
        if not isinstance(part, Mapping) or "id" not in part or "url" not in part:
            raise GraphError(400, "BadRequest", "Each batch request needs id, method and url.")
        path, query = _split_url(str(part["url"]))
        headers = {str(k).lower(): str(v) for k, v in (part.get("headers") or {}).items()}
        call = Call(
            face,
            principal,
            str(part.get("method", "GET")).upper(),
            path,
            query,
            part.get("body"),
            headers,
            base,
        )
        try:
            _throttle(face, principal)
            status, payload = run_call(call)
            out_headers: dict[str, str] = {}
            if isinstance(payload, Response):
                out_headers["Content-Type"] = payload.media_type or "application/octet-stream"
                payload = base64.b64encode(bytes(payload.body)).decode("ascii")
            elif payload is not None:
                out_headers["Content-Type"] = "application/json"
        except GraphError as err:
            status = err.status
            payload = {"error": {"code": err.code, "message": err.message}}
            out_headers = {"Content-Type": "application/json", **err.headers}
        entry: Json = {"id": str(part["id"]), "status": status, "headers": out_headers}
        if payload is not None:
            entry["body"] = payload
        responses.append(entry)
    return {"responses": responses}


def graph_router(face: GraphFace) -> APIRouter:
    """`/v1.0/...` (and `$batch`) of the Graph face."""
    router = APIRouter()

    async def endpoint(request: Request, path: str) -> Response:
        request_id = str(uuid.uuid4())
        client_request_id = request.headers.get("client-request-id")
        lab = face.lab
        try:
            if lab.knobs.outage:
                raise GraphError(
                    503,
                    "ServiceUnavailable",
                    "The service is temporarily unavailable.",
                    {"Retry-After": str(face.outage_retry_after_s)},
                )
            if lab.knobs.latency_s > 0:
                await asyncio.sleep(lab.knobs.latency_s)
            principal = _bearer(face, request.headers.get("authorization", ""))
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
                raise GraphError(413, "RequestEntityTooLarge", "The request body is too large.")
            raw = await request.body()
            if len(raw) > MAX_BODY:
                raise GraphError(413, "RequestEntityTooLarge", "The request body is too large.")
            body = _parse_body(raw)
            base = face.base(request)
            if path.strip("/") == "$batch":
                if request.method != "POST":
                    raise not_allowed()
                result = await run_in_threadpool(_batch, face, principal, body, base)
                return _answer(200, result, request_id)
            _throttle(face, principal)
            query = {k: v for k, v in request.query_params.items()}
            headers = {k.lower(): v for k, v in request.headers.items()}
            call = Call(
                face, principal, request.method, path.strip("/"), query, body, headers, base
            )
            segs = [s for s in call.path.split("/") if s]
            if segs[:1] == ["subscriptions"]:
                # Not one store transaction: creating one calls the subscriber's listener.
                status, payload = await run_in_threadpool(_subscriptions, face, call, segs[1:])
                return _answer(status, payload, request_id)
            status, payload = await run_in_threadpool(run_call, call)
            return _answer(status, payload, request_id)
        except GraphError as err:
            return error_response(err, request_id, client_request_id)

    router.add_api_route(
        "/v1.0/{path:path}",
        endpoint,
        methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
        include_in_schema=False,
    )
    return router
