"""RFC 9457 problem details: the one place where med's errors become HTTP answers.

Every error a caller sees is `application/problem+json` with `type`, `title`, `status`,
`detail` and `instance`, plus what med knew (`mailbox`, `folder`, `item`, `missing_right`,
`feature`, `backend`, `retry_after`). Anything unexpected is logged with its traceback and
answered 500 without internals.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import Match

from med import (
    AccessDenied,
    AuthError,
    Conflict,
    InvalidInput,
    MedError,
    NotFound,
    ServerError,
    Throttled,
    Unreachable,
    Unsupported,
)

__all__ = ["PROBLEM_RESPONSES", "ApiProblem", "install_problem_handlers", "problem_response"]

log = logging.getLogger("bridge.api")

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://medbridge.example/problems/"

#: med error class → (HTTP status, problem type slug). Most specific class first.
_MED_STATUS: tuple[tuple[type[MedError], int, str], ...] = (
    (Unreachable, 503, "exchange-unreachable"),
    (AuthError, 502, "exchange-sign-in-failed"),
    (AccessDenied, 403, "access-denied"),
    (NotFound, 404, "not-found"),
    (Throttled, 429, "throttled"),
    (Unsupported, 501, "unsupported"),
    (Conflict, 409, "conflict"),
    (InvalidInput, 422, "invalid-input"),
    (ServerError, 502, "exchange-error"),
    (MedError, 502, "exchange-error"),
)
#: Without a server hint, how long a caller should wait after a 503.
UNREACHABLE_RETRY_S = 30


class ApiProblem(Exception):
    """An answer of the API itself (not from med): status, slug, title and a sentence."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = extensions


def problem_response(
    request: Request | None,
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.url.path
    body.update({k: v for k, v in extensions.items() if v is not None})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def med_problem(request: Request, exc: MedError) -> Response:
    status, slug = next(
        ((s, t) for cls, s, t in _MED_STATUS if isinstance(exc, cls)), (502, "exchange-error")
    )
    headers: dict[str, str] = {}
    extensions: dict[str, Any] = {
        "mailbox": exc.mailbox,
        "folder": exc.folder,
        "item": exc.item,
        "code": exc.code,
    }
    if isinstance(exc, AccessDenied):
        extensions["missing_right"] = exc.right or getattr(request.state, "exchange_right", None)
    if isinstance(exc, Unsupported):
        extensions["feature"] = exc.feature
        extensions["backend"] = exc.backend
    if isinstance(exc, Throttled):
        retry = max(1, round(exc.retry_after)) if exc.retry_after else 1
        headers["Retry-After"] = str(retry)
        extensions["retry_after"] = retry
    if isinstance(exc, Unreachable):
        headers["Retry-After"] = str(UNREACHABLE_RETRY_S)
        extensions["retry_after"] = UNREACHABLE_RETRY_S
    return problem_response(
        request, status, slug, exc.title, str(exc), headers=headers, **extensions
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error as problem details; the catch-all logs and hides internals."""

    async def on_med(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, MedError)
        return med_problem(request, exc)

    async def on_api(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiProblem)
        return problem_response(
            request,
            exc.status,
            exc.slug,
            exc.title,
            exc.detail,
            headers=exc.headers,
            **exc.extensions,
        )

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(first["loc"][1:] if len(first["loc"]) > 1 else first["loc"])
        return problem_response(
            request,
            422,
            "invalid-input",
            "Invalid input",
            f"{where}: {first['msg']}" if where else str(first["msg"]),
            errors=errors,
        )

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        titles = {404: "Not found", 405: "Method not allowed"}
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return problem_response(
            request,
            exc.status_code,
            "http-" + str(exc.status_code),
            titles.get(exc.status_code, "Request refused"),
            str(exc.detail),
            headers=headers,
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem_response(
            request, 500, "internal", "Internal error", "The API failed; the log has details."
        )

    app.add_exception_handler(MedError, on_med)
    app.add_exception_handler(ApiProblem, on_api)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route offers for this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def _problem_doc(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


#: Responses every operation may give, for the OpenAPI document.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem_doc("Malformed request (bad cursor, unknown id form)."),
    401: _problem_doc("No or invalid credentials (WWW-Authenticate lists Negotiate and Bearer)."),
    403: _problem_doc(
        "Exchange refused: the caller's rights do not allow this (`missing_right`), or the "
        "API key lacks the scope."
    ),
    404: _problem_doc("No such mailbox, folder or item (or invisible to the caller)."),
    409: _problem_doc("Conflict: the item changed, or an Idempotency-Key was reused."),
    413: _problem_doc("The request body is larger than the configured limit."),
    422: _problem_doc("The request is wrong as given (the detail says what)."),
    429: _problem_doc("Too many requests (the caller's rate, or Exchange throttles); Retry-After."),
    501: _problem_doc("The backend cannot do this at all (`feature`, `backend`)."),
    502: _problem_doc("Exchange failed or refused the API's sign-in."),
    503: _problem_doc("Exchange is unreachable; Retry-After says when to try again."),
}
