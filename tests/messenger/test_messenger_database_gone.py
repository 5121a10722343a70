"""While the database is unreachable the server answers 503 with Retry-After (not 500), so
clients repeat what is safe to repeat; other failures are not disguised as that."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import InterfaceError, OperationalError

from messenger.client import MessengerClient
from messenger.server.errors import install


def app_raising(exc: BaseException) -> FastAPI:
    app = FastAPI()
    install(app)

    @app.get("/v1/probe")
    async def probe() -> None:
        raise exc

    return app


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError(104, "Connection reset by peer"),
        InterfaceError("SELECT 1", {}, Exception("connection is closed")),
        OperationalError("SELECT 1", {}, Exception("the database system is shutting down")),
    ],
    ids=["refused", "reset", "closed", "shutting-down"],
)
async def test_a_lost_database_is_503_with_retry_after(exc: BaseException) -> None:
    transport = httpx.ASGITransport(app_raising(exc), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/v1/probe")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"] == "unavailable"


async def test_the_client_repeats_a_safe_request_through_503() -> None:
    calls = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return httpx.Response(503, json={"error": "unavailable", "detail": "try again"})
        return httpx.Response(200, json={"user_id": "u"})

    client = MessengerClient("http://t", transport=httpx.MockTransport(answer), retries=3)
    client.token = "t"
    assert (await client.me())["user_id"] == "u"
    assert calls == 2
    await client.aclose()


async def test_other_failures_stay_500() -> None:
    transport = httpx.ASGITransport(app_raising(RuntimeError("bug")), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/v1/probe")
    assert response.status_code == 500
