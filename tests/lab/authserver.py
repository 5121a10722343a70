"""A small FastAPI app behind LabAuthenticator, served by uvicorn on a free loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from fastapi import FastAPI, Request
from starlette.responses import PlainTextResponse, Response

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
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", **dict(ssl or {}))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        scheme = "https" if ssl else "http"
        yield Served(url=f"{scheme}://{host}:{port}/EWS/Exchange.asmx", host=host, port=port)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
