"""Run a lab face with uvicorn in a thread on a free loopback port (tests, bench, demo)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from exlab.graph.tls import LabTls


class ThreadedServer:
    """An ASGI app on 127.0.0.1 at a free port, over TLS when `tls` is given.

    The socket is bound before the thread starts, so `url` is valid at once and two servers in
    parallel test workers never race for a port.
    """

    def __init__(self, app: Any, *, tls: LabTls | None = None, host: str = "127.0.0.1") -> None:
        self.app = app
        self.tls = tls
        self.host = host
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self.port: int = self._sock.getsockname()[1]
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self) -> ThreadedServer:
        options: dict[str, Any] = self.tls.uvicorn_options() if self.tls else {}
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=1,
            **options,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the lab server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            # Clients keep TLS connections alive; do not wait for them to hang up.
            self._server.force_exit = True
            self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class GraphLab:
    """A lab's Graph face served over TLS with a fresh CA in `directory` (tests, bench, demo)."""

    def __init__(self, lab: Any, directory: Path) -> None:
        from exlab.graph.app import GraphFace
        from exlab.graph.oauth import TENANT_ID
        from exlab.graph.tls import ensure_tls

        self.lab = lab
        self.tls = ensure_tls(directory)
        self.face = GraphFace(lab, key_dir=directory)
        self.server = ThreadedServer(self.face.app(), tls=self.tls)
        self.url = self.server.url
        self.authority = f"{self.url}/{TENANT_ID}"
        self.ca_file = self.tls.ca_file

    def __enter__(self) -> GraphLab:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.face.subscriptions.close()
        self.server.stop()
