"""An ASGI app served by uvicorn on loopback in a daemon thread, for the demo, tests and benchmarks.

The socket is bound before uvicorn starts, so the port is known (and taken) at once: no race
for a "free" port. `start` waits, with a deadline, until uvicorn accepts connections; `stop`
lets it finish and can be followed by another `start` on the same port (a restart).
"""

from __future__ import annotations

import errno
import socket
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import uvicorn


class ServerThread:
    """uvicorn serving `app` on `host` (port 0: a free one) in its own thread and event loop.

    `options` go to `uvicorn.Config` (e.g. `ssl_certfile`/`ssl_keyfile`, `timeout_keep_alive`).

    Example::

        with ServerThread(create_app(lab)) as server:
            requests.get(server.url("/EWS/Exchange.asmx"))
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "uvicorn",
        **options: Any,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.name = name
        self.options = {"log_level": "warning", "lifespan": "off", "access_log": False, **options}
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.options.get("ssl_certfile") else "http"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def url(self, path: str = "") -> str:
        return self.base_url + path

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout_s: float = 15.0, *, port_wait_s: float | None = None) -> ServerThread:
        """Serve; returns once connections are accepted. A fixed port that is in use is tried
        again for `port_wait_s` (default `timeout_s`); 0 fails at once (a user's port).

        Raises:
            RuntimeError: uvicorn ended or did not start within `timeout_s`.
            OSError: the port could not be bound.
        """
        import uvicorn

        sock = self._bind(timeout_s if port_wait_s is None else port_wait_s)
        self.port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(self.app, **self.options))
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=self.name, daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                raise RuntimeError(f"{self.name} did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        return self

    def _bind(self, timeout_s: float) -> socket.socket:
        """A listening socket on our port. Served again on the same port (a restart), the port
        can be briefly held by the old server's last connections or by a client socket the
        kernel gave it to meanwhile, so a fixed port is retried until `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.host, self.port))
            except OSError as exc:
                sock.close()
                if exc.errno != errno.EADDRINUSE or not self.port:
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
                continue
            sock.listen(64)
            return sock

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop serving (open connections are closed); the port may be served again."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
        self._server = self._thread = None

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
