"""Kerberos callers that forward their ticket: the API acts toward the lab's EWS with the
caller's own Kerberos login (the ticket is kept in a private in-memory cache), so the API needs
no password and no caller entry, and Exchange applies the caller's own rights."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from exlab.auth.authenticator import LabAuthenticator
from med.auth.negotiate import NegotiateAuth
from tests.e2e.api.conftest import (
    ASSISTENZ,
    CHEF,
    SACHBEARBEITUNG,
    ApiServer,
    World,
    api_settings,
    demo_template,
)
from tests.lab.conftest import LabServer
from tests.lab.kdcrealm import keytab_options, use_tickets

pytestmark = pytest.mark.kerberos
_ = demo_template  # a fixture


@pytest.fixture(scope="module")
def no_entries_api(
    world: World, demo_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """An API that knows no caller accounts, before a lab that takes Kerberos logins: only a
    forwarded ticket can reach Exchange."""
    kdc = world.kdc
    if kdc is None:
        pytest.skip("krb5kdc is not installed")
    directory = tmp_path_factory.mktemp("deleg")
    store = directory / "lab.sqlite"
    shutil.copyfile(demo_template, store)
    lab = LabServer(store, authenticator=lambda lab: LabAuthenticator(lab, **keytab_options(kdc)))
    settings, _ = api_settings(lab, world.graph, kdc, directory, data_dir=directory)
    api = ApiServer(settings.model_copy(update={"callers": {}}))
    try:
        yield api
    finally:
        api.stop()
        lab.stop()


def _signed_in(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, user: str, *, forward: bool
) -> requests.Session:
    assert world.kdc is not None
    tickets = use_tickets(world.kdc, tmp_path, monkeypatch)
    assert tickets.kinit(user, forwardable=forward).returncode == 0
    http = requests.Session()
    http.auth = NegotiateAuth(require_mutual=True, delegate=forward)
    return http


def test_a_forwarded_ticket_reaches_the_boss_inbox_without_any_configured_account(
    world: World, no_entries_api: ApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _signed_in(world, tmp_path, monkeypatch, ASSISTENZ, forward=True) as http:
        answer = http.get(f"{no_entries_api.url}/v1/mailboxes/{CHEF}/folders/inbox", timeout=30)
        assert answer.status_code == 200, answer.text
        inbox = answer.json()["id"]
        listed = http.get(f"{no_entries_api.url}/v1/folders/{inbox}/items?limit=2", timeout=30)
        assert listed.status_code == 200 and len(listed.json()["items"]) == 2
        assert all(i["mailbox"] == CHEF for i in listed.json()["items"])


def test_without_forwarding_the_same_caller_has_no_exchange_identity(
    world: World, no_entries_api: ApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _signed_in(world, tmp_path, monkeypatch, ASSISTENZ, forward=False) as http:
        answer = http.get(f"{no_entries_api.url}/v1/mailboxes/{CHEF}/folders/inbox", timeout=30)
    assert answer.status_code == 403
    assert answer.json()["type"].endswith("no-exchange-identity")


def test_a_forwarded_ticket_carries_the_colleague_own_rights_only(
    world: World, no_entries_api: ApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _signed_in(world, tmp_path, monkeypatch, SACHBEARBEITUNG, forward=True) as http:
        refused = http.get(f"{no_entries_api.url}/v1/mailboxes/{CHEF}/folders/inbox", timeout=30)
        assert refused.status_code == 403
        assert refused.json()["missing_right"] == "FolderVisible"
        own = http.get(
            f"{no_entries_api.url}/v1/mailboxes/{SACHBEARBEITUNG}/folders/inbox", timeout=30
        )
        assert own.status_code == 200, own.text
