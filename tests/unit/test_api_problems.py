"""med's errors as problem details: each class of the tree gets its status and its context,
through the one handler the API installs."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from bridge.api.problems import install_problem_handlers
from med import (
    AccessDenied,
    BadCredentials,
    Conflict,
    EwsDisabled,
    InvalidInput,
    MedError,
    NotFound,
    ServerError,
    Throttled,
    Unreachable,
    Unsupported,
)

CASES: list[tuple[MedError, int, dict[str, object], dict[str, str]]] = [
    (
        AccessDenied("no", right="EditItems", mailbox="chef@x.example"),
        403,
        {"missing_right": "EditItems", "mailbox": "chef@x.example"},
        {},
    ),
    (NotFound("gone", item="i1"), 404, {"item": "i1"}, {}),
    (Conflict("changed"), 409, {}, {}),
    (InvalidInput("bad"), 422, {}, {}),
    (Throttled("busy", retry_after=2.4), 429, {"retry_after": 2}, {"retry-after": "2"}),
    (Throttled("busy"), 429, {"retry_after": 1}, {"retry-after": "1"}),
    (Unreachable("down"), 503, {"retry_after": 30}, {"retry-after": "30"}),
    (
        Unsupported("delegates", "graph", "Graph has no delegate API."),
        501,
        {"feature": "delegates", "backend": "graph", "detail": "Graph has no delegate API."},
        {},
    ),
    (BadCredentials("refused"), 502, {}, {}),
    (EwsDisabled("off", code="ErrorEwsDisabled"), 502, {"code": "ErrorEwsDisabled"}, {}),
    (ServerError("odd", code="ErrorX"), 502, {"code": "ErrorX"}, {}),
]


def _app(error: Exception) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise error

    return app


@pytest.mark.parametrize(("error", "status", "fields", "headers"), CASES)
async def test_med_error_becomes_its_problem(
    error: MedError, status: int, fields: dict[str, object], headers: dict[str, str]
) -> None:
    transport = httpx.ASGITransport(app=_app(error))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        answer = await http.get("/boom")
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["status"] == status and body["title"] == error.title
    assert body["instance"] == "/boom"
    assert body["detail"] == str(error)
    for name, value in fields.items():
        assert body[name] == value
    for name, value in headers.items():
        assert answer.headers[name] == value


async def test_an_unexpected_error_is_500_without_internals() -> None:
    transport = httpx.ASGITransport(
        app=_app(KeyError("secret-internal")), raise_app_exceptions=False
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        answer = await http.get("/boom")
    assert answer.status_code == 500
    assert "secret-internal" not in answer.text
    assert answer.json()["type"].endswith("/internal")
