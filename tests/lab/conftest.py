"""The `lab` fixture: the demo organisation served over HTTP on loopback, for real EWS clients.

    def test_something(lab: LabServer) -> None:
        account = lab.account("assistenz", "chef")   # exchangelib Account, delegate access
        lab.lab.knobs.outage = True                  # flip a fault switch
        lab.restart()                                # same port, same store file

The demo org is seeded once per test session into a template store and copied per test, so every
test starts from the same organisation and may change it freely.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.serving import ServerThread
from exlab import Lab
from exlab.demo import DEMO_PASSWORD, DOMAIN, open_demo
from exlab.server import STREAMS_CLOSE_S, create_app


def _address(user: str) -> str:
    return user if "@" in user else f"{user}@{DOMAIN}"


class LabServer:
    """A lab on a file store behind uvicorn in a thread; restartable on the same port."""

    def __init__(
        self, store_path: Path, host: str = "127.0.0.1", *, authenticator: Any = None
    ) -> None:
        """`authenticator`: a factory `lab -> LabAuthenticator-like` (default: the lab's own)."""
        self.store_path = store_path
        self.host = host
        self.authenticator = authenticator
        self.lab = Lab.open(store_path)
        self._server: ServerThread | None = None
        self.port = 0
        self.start()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The EWS endpoint."""
        return f"{self.base_url}/EWS/Exchange.asmx"

    def start(self) -> None:
        """Serve the lab, on the port it had before if it ran already."""
        app = create_app(
            self.lab, authenticator=self.authenticator(self.lab) if self.authenticator else None
        )
        self._server = ServerThread(
            app,
            host=self.host,
            port=self.port,
            name="lab-uvicorn",
            timeout_keep_alive=30,
            timeout_graceful_shutdown=STREAMS_CLOSE_S,
        ).start()
        self.port = self._server.port

    def stop(self) -> None:
        """Stop serving and close the store (the file stays)."""
        if self._server is not None:
            self._server.stop()
        self._server = None
        self.lab.close()

    def restart(self) -> None:
        """Stop, reopen the store from its file, serve again on the same port."""
        self.stop()
        self.lab = Lab.open(self.store_path)
        self.start()

    def soap(
        self,
        user: str,
        body: str,
        *,
        version: str = "Exchange2010_SP2",
        headers: dict[str, str] | None = None,
        header_xml: str = "",
    ) -> httpx.Response:
        """One raw SOAP request over HTTP with Basic auth (for what no client exposes); the
        default version is the one the schemas in the reference folder describe."""
        envelope = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"'
            ' xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"'
            ' xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">'
            f'<s:Header><t:RequestServerVersion Version="{version}"/>{header_xml}</s:Header>'
            f"<s:Body>{body}</s:Body></s:Envelope>"
        )
        return httpx.post(
            self.url,
            content=envelope.encode(),
            auth=(_address(user), DEMO_PASSWORD),
            headers={"Content-Type": "text/xml; charset=utf-8", **(headers or {})},
            timeout=30,
        )

    def account(
        self,
        user: str,
        mailbox: str | None = None,
        password: str = DEMO_PASSWORD,
        *,
        autodetect: bool = False,
        retry_policy: Any = None,
    ) -> Any:
        """An exchangelib Account for `user` on `mailbox` (default: their own), delegate access."""
        from exchangelib import (
            BASIC,
            DELEGATE,
            Account,
            Build,
            Configuration,
            Credentials,
            Version,
        )

        config = Configuration(
            service_endpoint=self.url,
            credentials=Credentials(_address(user), password),
            auth_type=BASIC,
            version=None if autodetect else Version(build=Build(15, 1)),
        )
        account = Account(
            primary_smtp_address=_address(mailbox or user),
            access_type=DELEGATE,
            config=config,
            autodiscover=False,
        )
        if retry_policy is not None:
            # exchangelib shares one protocol per endpoint and login; the latest policy wins.
            account.protocol.config.retry_policy = retry_policy
        return account


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store file with the demo organisation, seeded once per session (per xdist worker)."""
    path = tmp_path_factory.mktemp("lab-template") / "demo.sqlite"
    open_demo(path).close()
    return path


@pytest.fixture
def lab(demo_template: Path, tmp_path: Path) -> Iterator[LabServer]:
    path = tmp_path / "lab.sqlite"
    shutil.copyfile(demo_template, path)
    server = LabServer(path)
    yield server
    server.stop()
    from exchangelib.protocol import close_connections

    close_connections()
