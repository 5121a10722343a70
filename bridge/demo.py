"""The demo: the Exchange lab with the demo organisation in this process, and a profile for it.

`medbridge demo` serves the lab on a free loopback port in a background thread, so quitting the
TUI stops everything the demo started; nothing is left listening.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from bridge.serving import ServerThread

if TYPE_CHECKING:
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

    def __init__(
        self, store: Path | None, *, host: str = "127.0.0.1", demo: bool = True, port: int = 0
    ) -> None:
        from exlab import Lab
        from exlab.demo import open_demo
        from exlab.server import create_app

        if store is not None:
            store.parent.mkdir(parents=True, exist_ok=True)
        self.lab: Lab = open_demo(store) if demo else Lab.open(store)
        self._server = ServerThread(create_app(self.lab), host=host, port=port, name="lab")

    @property
    def host(self) -> str:
        return self._server.host

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def ews_url(self) -> str:
        return self._server.url("/EWS/Exchange.asmx")

    def start(self, timeout_s: float = 15.0) -> LabThread:
        try:
            self._server.start(timeout_s)
        except RuntimeError:
            self.lab.close()
            raise RuntimeError("the Exchange lab did not start") from None
        return self

    def stop(self) -> None:
        self._server.stop()
        self.lab.close()

    def __enter__(self) -> LabThread:
        return self if self._server.running else self.start()

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
