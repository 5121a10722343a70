"""One mapping from domain errors to HTTP answers: `{"error": code, "detail": sentence}`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException

from messenger.server.throttle import Throttled
from messenger.store import errors as store_errors

log = logging.getLogger("messenger.server")

STATUS: dict[type[store_errors.StoreError], int] = {
    store_errors.NotFound: 404,
    store_errors.Forbidden: 403,
    store_errors.Conflict: 409,
    store_errors.MembershipChanged: 409,
    store_errors.InvalidInput: 400,
    store_errors.GroupFull: 422,
    store_errors.CrossTenant: 422,
    store_errors.QuotaExceeded: 413,
    store_errors.Gone: 410,
}

HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    429: "throttled",
    503: "unavailable",
    415: "unsupported_media_type",
    422: "invalid",
}


class ApiError(Exception):
    """An HTTP answer raised from inside the server (auth failures, size limits)."""

    def __init__(
        self,
        status: int,
        detail: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code or HTTP_CODES.get(status, "error")
        self.headers = headers


def problem(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def describe(exc: Exception) -> tuple[int, str, str, dict[str, str]] | None:
    """The answer to a failure raised while handling a request: status, code, detail and
    headers; None for a failure that is a bug (the caller answers 500). One mapping for HTTP
    routes and for requests made over the stream."""
    if isinstance(exc, store_errors.StoreError):
        return STATUS.get(type(exc), 400), exc.code, exc.detail, {}
    if isinstance(exc, ApiError):
        return exc.status, exc.code, exc.detail, dict(exc.headers or {})
    if isinstance(exc, Throttled):
        return 429, "throttled", exc.detail, {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, PoolTimeout):
        # Every database connection stayed busy: the request did nothing; it may be repeated.
        log.warning("database connection pool exhausted")
        return 503, "unavailable", "the server is busy; try again", {"Retry-After": "1"}
    if isinstance(exc, ConnectionError | InterfaceError | OperationalError):
        # The database went away (restarted, failed over, network): a connection refused or
        # reset while connecting, or a pooled connection found closed. The client may repeat
        # what is safe to repeat (sends carry transaction ids); one warning line, no traceback.
        log.warning("database unreachable (%s)", type(exc).__name__)
        detail = "the database is not reachable; try again"
        return 503, "unavailable", detail, {"Retry-After": "1"}
    if isinstance(exc, IntegrityError):
        # A unique key lost a race with a concurrent request; nothing of this one was stored.
        log.info("unique key race: %s", type(exc.orig).__name__)
        return 409, "conflict", "a concurrent request stored the same thing; retry", {}
    return None


def validation_detail(errors: Sequence[Any]) -> str:
    """The first of pydantic's complaints as one line ("field: message")."""
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    msg = first.get("msg", "invalid request")
    return f"{where}: {msg}" if where else str(msg)


def install(app: FastAPI) -> None:
    async def _described(_: Request, exc: Exception) -> JSONResponse:
        answer = describe(exc)
        if answer is None:
            raise exc
        return problem(*answer)

    for kind in (
        store_errors.StoreError,
        ApiError,
        Throttled,
        PoolTimeout,
        ConnectionError,
        InterfaceError,
        OperationalError,
        IntegrityError,
    ):
        app.add_exception_handler(kind, _described)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if errors and errors[0].get("type") == "json_invalid":
            return problem(400, "bad_request", "the request body is not valid JSON")
        # Well-formed JSON whose values the edge refuses (types, ranges, NUL bytes, extra fields).
        return problem(422, "invalid", validation_detail(errors))

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return problem(exc.status_code, HTTP_CODES.get(exc.status_code, "error"), str(exc.detail))
