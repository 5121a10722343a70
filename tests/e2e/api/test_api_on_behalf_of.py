"""Bearer callers whose tokens are issued to the API itself: the API trades each for a Graph
token of the same user (OAuth 2.0 on-behalf-of, with MSAL against the lab's authority), so
Exchange applies the caller's own rights and the API holds no credential of the caller's."""

from __future__ import annotations

import secrets
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bridge.api.settings import OnBehalfOf
from exlab.demo import DEMO_PASSWORD
from exlab.graph.oauth import PUBLIC_CLIENT_ID, api_uri
from tests.e2e.api.conftest import (
    ASSISTENZ,
    CHEF,
    SACHBEARBEITUNG,
    ApiServer,
    World,
    api_settings,
    lab_oauth,
)
from tests.e2e.api.helpers import assert_problem, folder_id, items


class Obo:
    def __init__(self, world: World, api: ApiServer, client_id: str) -> None:
        self.world = world
        self.api = api
        self.client_id = client_id

    def token(self, user: str) -> str:
        """What a caller's app gets from the authority for this API (not for Graph)."""
        return self.world.bearer_token(user, f"{api_uri(self.client_id)}/access_as_user")

    def http(self, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.api.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )


@pytest.fixture(scope="module")
def obo(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Obo]:
    directory = tmp_path_factory.mktemp("obo")
    client_id = str(uuid.uuid4())
    secret = secrets.token_urlsafe(24)
    world.graph.face.oauth.add_confidential_client(client_id, "medbridge API", secret, frozenset())
    secret_file = directory / "api-client-secret"
    secret_file.write_text(secret)
    secret_file.chmod(0o600)
    oauth = lab_oauth(
        world.graph,
        api_uri(client_id),
        on_behalf_of=OnBehalfOf(
            authority=world.graph.authority, client_id=client_id, secret_file=secret_file
        ),
    )
    settings, _ = api_settings(
        world.lab, world.graph, None, directory, data_dir=directory / "data", oauth=oauth
    )
    api = ApiServer(settings)
    try:
        yield Obo(world, api, client_id)
    finally:
        api.stop()


def test_delegate_works_in_the_boss_inbox_with_a_token_issued_to_the_api(obo: Obo) -> None:
    with obo.http(obo.token(ASSISTENZ)) as http:
        listed = http.get("/v1/mailboxes")
        assert listed.status_code == 200, listed.text
        assert listed.json()["backend"] == "graph"
        inbox = folder_id(http, CHEF, "inbox")
        found = items(http, inbox, limit=2)
        assert len(found) == 2 and all(i["mailbox"] == CHEF for i in found)


def test_colleague_keeps_their_own_rights_through_the_trade(obo: Obo) -> None:
    with obo.http(obo.token(SACHBEARBEITUNG)) as http:
        answer = http.get(f"/v1/mailboxes/{CHEF}/folders/inbox")
    assert assert_problem(answer, 403)["missing_right"] == "FolderVisible"


def test_a_graph_token_is_not_accepted_by_an_api_with_its_own_audience(obo: Obo) -> None:
    with obo.http(obo.world.bearer_token(ASSISTENZ)) as http:
        answer = http.get("/v1/mailboxes")
    assert answer.status_code == 401


def test_a_token_issued_to_the_api_does_not_open_graph_directly(obo: Obo) -> None:
    graph = obo.world.graph
    answer = httpx.get(
        f"{graph.url}/v1.0/me",
        headers={"Authorization": f"Bearer {obo.token(ASSISTENZ)}"},
        verify=ssl.create_default_context(cafile=str(graph.ca_file)),
        timeout=30,
    )
    assert answer.status_code == 401


def _token_request(world: World, **form: str) -> httpx.Response:
    return httpx.post(
        f"{world.graph.authority}/oauth2/v2.0/token",
        data=form,
        verify=ssl.create_default_context(cafile=str(world.graph.ca_file)),
        timeout=30,
    )


def test_the_authority_refuses_trades_it_must_refuse(obo: Obo, tmp_path: Path) -> None:
    world = obo.world
    other_id = str(uuid.uuid4())
    other_secret = secrets.token_urlsafe(24)
    world.graph.face.oauth.add_confidential_client(
        other_id, "another API", other_secret, frozenset()
    )
    trade = {
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "requested_token_use": "on_behalf_of",
        "scope": "https://graph.microsoft.com/.default",
    }
    # Another app cannot trade a token issued to the medbridge API.
    stolen = _token_request(
        world,
        client_id=other_id,
        client_secret=other_secret,
        assertion=obo.token(ASSISTENZ),
        **trade,
    )
    assert stolen.status_code == 400 and "AADSTS50013" in stolen.json()["error_description"]
    # A public client cannot trade at all, and a forged assertion is refused.
    public = _token_request(
        world, client_id=PUBLIC_CLIENT_ID, assertion=obo.token(ASSISTENZ), **trade
    )
    assert public.status_code == 401
    forged = _token_request(
        world, client_id=other_id, client_secret=other_secret, assertion="e30.e30.x", **trade
    )
    assert forged.status_code == 400 and forged.json()["error"] == "invalid_grant"
    # Scopes for two resources at once are refused, as Entra does.
    mixed = world.graph.face.oauth
    with pytest.raises(Exception, match="more than one resource"):
        mixed.token(
            world.graph.url,
            {
                "grant_type": "password",
                "client_id": PUBLIC_CLIENT_ID,
                "username": ASSISTENZ,
                "password": DEMO_PASSWORD,
                "scope": f"{api_uri(obo.client_id)}/access_as_user Mail.Read",
            },
            None,
        )
