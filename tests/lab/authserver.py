"""A small FastAPI app behind LabAuthenticator, served by uvicorn on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from fastapi import FastAPI, Request
from starlette.responses import PlainTextResponse, Response

from bridge.serving import ServerThread
from exlab.auth import LabAuthenticator

DEMO_PASSWORD = "Demo-2026!"


class Org:
    """A password store with argon2 hashes, as the lab keeps them."""

    def __init__(self, passwords: Mapping[str, str]) -> None:
        self._hasher = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
        self._hashes = {a: self._hasher.hash(p) for a, p in passwords.items()}
        self.checks = 0

    def check_password(self, address: str, password: str) -> bool:
        self.checks += 1
        stored = self._hashes.get(address)
        if stored is None:
            return False
        try:
            return self._hasher.verify(stored, password)
        except VerificationError:
            return False


def demo_org() -> Org:
    return Org(
        {
            "chef@musterstadt.example": DEMO_PASSWORD,
            "assistenz@musterstadt.example": DEMO_PASSWORD,
            "sachbearbeitung@musterstadt.example": DEMO_PASSWORD,
        }
    )


def make_app(auth: LabAuthenticator) -> FastAPI:
    app = FastAPI()

    @app.api_route("/EWS/Exchange.asmx", methods=["GET", "POST"])
    async def whoami(request: Request) -> Response:
        result = await auth.authenticate(request)
        if isinstance(result, Response):
            return result
        response = PlainTextResponse(result)
        auth.finish(request, response)
        return response

    return app


@dataclass
class Served:
    url: str
    host: str
    port: int


@contextmanager
def serve(
    app: FastAPI, host: str = "127.0.0.1", *, ssl: Mapping[str, str] | None = None
) -> Iterator[Served]:
    """Serve `app` on a free loopback port; `ssl` holds uvicorn's ssl_certfile/ssl_keyfile."""
    with ServerThread(app, name="auth-server", **dict(ssl or {})) as server:
        yield Served(
            url=server.url("/EWS/Exchange.asmx").replace("127.0.0.1", host, 1),
            host=host,
            port=server.port,
        )
