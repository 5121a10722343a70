"""One mapping from domain errors to HTTP answers: `{"error": code, "detail": sentence}`."""

from __future__ import annotations

import logging

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


def install(app: FastAPI) -> None:
    @app.exception_handler(store_errors.StoreError)
    async def _store(_: Request, exc: store_errors.StoreError) -> JSONResponse:
        return problem(STATUS.get(type(exc), 400), exc.code, exc.detail)

    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return problem(exc.status, exc.code, exc.detail, exc.headers)

    @app.exception_handler(Throttled)
    async def _throttled(_: Request, exc: Throttled) -> JSONResponse:
        return problem(429, "throttled", exc.detail, {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(PoolTimeout)
    async def _pool(_: Request, exc: PoolTimeout) -> JSONResponse:
        # Every database connection stayed busy: the request did nothing; it may be repeated.
        log.warning("database connection pool exhausted")
        return problem(503, "unavailable", "the server is busy; try again", {"Retry-After": "1"})

    # The database went away (restarted, failed over, network): a connection refused or reset
    # while connecting, or a pooled connection found closed. The client may repeat what is
    # safe to repeat (sends carry transaction ids); one warning line, no traceback per request.
    async def _database_gone(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database unreachable (%s)", type(exc).__name__)
        return problem(
            503, "unavailable", "the database is not reachable; try again", {"Retry-After": "1"}
        )

    for gone in (ConnectionError, InterfaceError, OperationalError):
        app.add_exception_handler(gone, _database_gone)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        msg = first.get("msg", "invalid request")
        if first.get("type") == "json_invalid":
            return problem(400, "bad_request", "the request body is not valid JSON")
        # Well-formed JSON whose values the edge refuses (types, ranges, NUL bytes, extra fields).
        return problem(422, "invalid", f"{where}: {msg}" if where else msg)

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        # A unique key lost a race with a concurrent request; nothing of this one was stored.
        log.info("unique key race: %s", type(exc.orig).__name__)
        return problem(409, "conflict", "a concurrent request stored the same thing; retry")

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return problem(exc.status_code, HTTP_CODES.get(exc.status_code, "error"), str(exc.detail))
