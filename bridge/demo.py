"""The demo: the Exchange lab with the demo organisation in this process, and a profile for it.

`medbridge demo` serves the lab on a free loopback port in a background thread, so quitting the
TUI stops everything the demo started; nothing is left listening.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import uvicorn

    from exlab import Lab
    from med.model import Profile

DEMO_DOMAIN = "musterstadt.example"
DEMO_USER = f"assistenz@{DEMO_DOMAIN}"
#: The mailboxes an assistant of the demo organisation works in besides her own, with their kind.
DEMO_MAILBOXES = (
    f"chef@{DEMO_DOMAIN}",
    f"functional:poststelle@{DEMO_DOMAIN}",
    f"functional:leitstelle@{DEMO_DOMAIN}",
    f"shared:teamkalender@{DEMO_DOMAIN}",
)

#: Where the demo opens: the boss's inbox, whichever mailbox the server answers for first.
DEMO_START_FOLDER = f"chef@{DEMO_DOMAIN}/inbox"


class LabThread:
    """The lab behind uvicorn on 127.0.0.1 in a daemon thread; a context manager that stops it."""

    def __init__(self, store: Path | None, *, host: str = "127.0.0.1", demo: bool = True) -> None:
        from exlab import Lab

        if store is not None:
            store.parent.mkdir(parents=True, exist_ok=True)
        self.lab: Lab = Lab.open(store, demo=demo)
        self.host = host
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def ews_url(self) -> str:
        return f"http://{self.host}:{self.port}/EWS/Exchange.asmx"

    def start(self, timeout_s: float = 15.0) -> LabThread:
        import uvicorn

        from exlab.server import STREAMS_CLOSE_S, create_app

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        sock.listen(64)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.lab),
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=STREAMS_CLOSE_S,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="lab", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the Exchange lab did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None
        self.lab.close()

    def __enter__(self) -> LabThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def demo_profile(ews_url: str, user: str = DEMO_USER) -> Profile:
    """The profile of a demo user against a running lab (Basic over loopback: it is a lab)."""
    from med.model import AuthMethod, Profile

    others = tuple(m for m in DEMO_MAILBOXES if m.rpartition(":")[2] != user)
    return Profile(
        name="demo",
        server=ews_url,
        user=user,
        auth=AuthMethod.BASIC,
        mailboxes=others,
    )
