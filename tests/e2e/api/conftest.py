"""The REST API over real HTTP against the lab: EWS and Graph faces over one demo store, a
real KDC for Negotiate, the lab's OAuth authority for bearer tokens, API keys for scripts.

One lab and one API server per test module; tests that change items make their own.
"""

from __future__ import annotations

import shutil
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.api import ApiSettings, create_app
from bridge.api.auth import new_key
from bridge.api.context import ApiContext
from bridge.api.settings import (
    CallerEntry,
    ExchangeSettings,
    NegotiateSettings,
    OAuthSettings,
)
from bridge.serving import ServerThread
from exlab.auth.kdc import LabKdc
from exlab.demo import DEMO_PASSWORD, DOMAIN
from exlab.graph.oauth import PUBLIC_CLIENT_ID, TENANT_ID
from exlab.graph.serve import GraphLab
from exlab.graph.tokens import GRAPH_AUDIENCE
from tests.lab import conftest as lab_fixtures
from tests.lab.conftest import LabServer
from tests.lab.kdcrealm import optional_kdc

demo_template = lab_fixtures.demo_template

CHEF = f"chef@{DOMAIN}"
ASSISTENZ = f"assistenz@{DOMAIN}"
SACHBEARBEITUNG = f"sachbearbeitung@{DOMAIN}"
POSTSTELLE = f"poststelle@{DOMAIN}"
TEAMKALENDER = f"teamkalender@{DOMAIN}"


class ApiServer:
    """The API app under uvicorn (lifespan on) in a thread, on a free loopback port."""

    def __init__(self, settings: ApiSettings) -> None:
        self.context = ApiContext.build(settings)
        self.app = create_app(settings, context=self.context)
        self._serving = ServerThread(
            self.app, name="api", lifespan="on", timeout_graceful_shutdown=2
        ).start()

    @property
    def port(self) -> int:
        return self._serving.port

    @property
    def url(self) -> str:
        return self._serving.base_url

    def stop(self) -> None:
        self._serving.stop()


@dataclass
class World:
    """Everything a test needs: the lab, its Graph face, the API and credentials."""

    lab: LabServer
    graph: GraphLab
    api: ApiServer
    keys: dict[str, str]
    kdc: LabKdc | None

    def client(self, who: str = "assistenz", **kwargs: Any) -> httpx.Client:
        """An HTTP client of the API signed in with `who`'s API key."""
        return httpx.Client(
            base_url=self.api.url, headers={"X-API-Key": self.keys[who]}, timeout=30, **kwargs
        )

    def bearer_token(
        self,
        user: str,
        scope: str = "User.Read User.ReadBasic.All Mail.ReadWrite.Shared Mail.Send.Shared "
        "Calendars.ReadWrite.Shared",
    ) -> str:
        """A token for `user` from the lab's authority (password grant, lab only)."""
        ctx = ssl.create_default_context(cafile=str(self.graph.ca_file))
        answer = httpx.post(
            f"{self.graph.authority}/oauth2/v2.0/token",
            data={
                "grant_type": "password",
                "client_id": PUBLIC_CLIENT_ID,
                "username": user,
                "password": DEMO_PASSWORD,
                "scope": scope,
            },
            verify=ctx,
            timeout=30,
        )
        answer.raise_for_status()
        token: str = answer.json()["access_token"]
        return token


def lab_oauth(graph: GraphLab, audience: str, **more: Any) -> OAuthSettings:
    """Bearer tokens of the lab's authority with this audience."""
    return OAuthSettings(
        issuer=f"{graph.url}/{TENANT_ID}/v2.0",
        jwks_url=f"{graph.url}/{TENANT_ID}/discovery/v2.0/keys",
        audience=audience,
        ca_file=graph.ca_file,
        **more,
    )


def api_settings(
    lab: LabServer, graph: GraphLab, kdc: LabKdc | None, secrets_dir: Path, **overrides: Any
) -> tuple[ApiSettings, dict[str, str]]:
    password_file = secrets_dir / "demo-password"
    password_file.write_text(DEMO_PASSWORD)
    password_file.chmod(0o600)
    keys: dict[str, str] = {}
    entries = []
    for who, caller, scopes in (
        ("assistenz", ASSISTENZ, ["read", "write", "send", "manage", "events"]),
        ("sachbearbeitung", SACHBEARBEITUNG, ["read", "write", "send", "manage", "events"]),
        ("chef", CHEF, ["read", "write", "send", "manage", "events"]),
        ("reader", ASSISTENZ, ["read"]),
    ):
        keys[who], entry = new_key(caller, scopes)
        entries.append(entry)

    def entry_for(user: str, *mailboxes: str) -> CallerEntry:
        return CallerEntry(
            exchange_user=user, auth="basic", password_file=password_file, mailboxes=mailboxes
        )

    settings = ApiSettings(
        exchange=ExchangeSettings(
            ews_url=lab.url,
            ews_version="Exchange2016",
            graph_url=graph.url,
            ca_file=graph.ca_file,
            max_wait_s=0.5,
        ),
        negotiate=NegotiateSettings(keytab=kdc.keytab, realm=kdc.realm) if kdc else None,
        oauth=overrides.pop("oauth", None) or lab_oauth(graph, GRAPH_AUDIENCE),
        keys=tuple(entries),
        callers={
            ASSISTENZ: entry_for(
                ASSISTENZ, CHEF, f"functional:{POSTSTELLE}", f"shared:{TEAMKALENDER}"
            ),
            SACHBEARBEITUNG: entry_for(SACHBEARBEITUNG, CHEF),
            CHEF: entry_for(CHEF),
        },
        change_poll_s=0.2,
        webhook_attempts=3,
        webhook_hosts=("127.0.0.1",),
        webhook_backoff_s=0.05,
        rate_per_minute=100_000,
        **overrides,
    )
    return settings, keys


@pytest.fixture(scope="module")
def world(demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("api")
    store = directory / "lab.sqlite"
    shutil.copyfile(demo_template, store)
    lab = LabServer(store)
    kdc = optional_kdc(tmp_path_factory)
    graph = GraphLab(lab.lab, directory / "tls").__enter__()
    settings, keys = api_settings(lab, graph, kdc, directory, data_dir=directory / "api-data")
    api = ApiServer(settings)
    try:
        yield World(lab, graph, api, keys, kdc)
    finally:
        api.stop()
        graph.__exit__(None, None, None)
        lab.stop()
        from exchangelib.protocol import close_connections

        close_connections()
