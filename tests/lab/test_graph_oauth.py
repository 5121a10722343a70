"""The lab's OAuth face, driven by real MSAL over TLS (as a user's client would)."""

from __future__ import annotations

import base64
import hashlib
import ssl
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import msal
import pytest

from exlab import Lab
from exlab.graph.oauth import DAEMON_CLIENT_ID, DAEMON_SECRET, PUBLIC_CLIENT_ID, TENANT_ID
from exlab.graph.serve import GraphLab

PASSWORD = "Demo-2026!"
ASSISTENZ = "assistenz@musterstadt.example"


@pytest.fixture
def graph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GraphLab]:
    lab = Lab.open()
    lab.add_mailbox(ASSISTENZ, "Tom Weber", password=PASSWORD)
    lab.add_mailbox("poststelle@musterstadt.example", "Poststelle", "shared")
    with GraphLab(lab, tmp_path / "tls") as served:
        served.face.oauth.settings.device_interval_s = 1
        # MSAL (requests) trusts the lab's CA for this test only.
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(served.ca_file))
        yield served
    lab.close()


def _client(graph: GraphLab) -> httpx.Client:
    return httpx.Client(
        base_url=graph.url, verify=ssl.create_default_context(cafile=str(graph.ca_file))
    )


def _public_app(graph: GraphLab) -> msal.PublicClientApplication:
    return msal.PublicClientApplication(
        PUBLIC_CLIENT_ID, authority=graph.authority, instance_discovery=False
    )


def test_openid_discovery_names_the_endpoints_msal_needs(graph: GraphLab) -> None:
    with _client(graph) as http:
        doc = http.get(f"/{TENANT_ID}/v2.0/.well-known/openid-configuration").json()
        for key in ("authorization_endpoint", "token_endpoint", "device_authorization_endpoint"):
            assert doc[key].startswith(f"{graph.url}/{TENANT_ID}/oauth2/v2.0/")
        assert doc["issuer"] == f"{graph.url}/{TENANT_ID}/v2.0"
        keys = http.get(urlsplit(doc["jwks_uri"]).path).json()["keys"]
    assert keys[0]["kty"] == "RSA" and keys[0]["alg"] == "RS256"


def test_unknown_tenant_is_refused_like_entra(graph: GraphLab) -> None:
    with _client(graph) as http:
        answer = http.get("/contoso.example/v2.0/.well-known/openid-configuration")
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_tenant"


def test_userrealm_reports_the_lab_domain_as_managed(graph: GraphLab) -> None:
    with _client(graph) as http:
        realm = http.get(f"/common/userrealm/{ASSISTENZ}", params={"api-version": "1.0"}).json()
    assert realm["account_type"] == "Managed"
    assert realm["domain_name"] == "musterstadt.example"


def test_device_code_flow_end_to_end_with_msal(graph: GraphLab) -> None:
    app = _public_app(graph)
    flow = app.initiate_device_flow(scopes=["https://graph.microsoft.com/Mail.ReadWrite"])
    assert flow["verification_uri"] == f"{graph.url}/lab/device"

    waiting = app.acquire_token_by_device_flow(flow, exit_condition=lambda f: True)
    assert waiting["error"] == "authorization_pending"

    with _client(graph) as http:
        page = http.post(
            "/lab/device",
            data={"user_code": flow["user_code"], "username": ASSISTENZ, "password": PASSWORD},
        )
    assert page.status_code == 200

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MSAL warns that we poll sooner than `interval`
        result = app.acquire_token_by_device_flow(flow, exit_condition=lambda f: True)
    assert result["id_token_claims"]["preferred_username"] == ASSISTENZ
    assert [a["username"] for a in app.get_accounts()] == [ASSISTENZ]

    claims = jwt.decode(
        result["access_token"],
        options={"verify_signature": False},
    )
    assert claims["upn"] == ASSISTENZ and claims["scp"] == "Mail.ReadWrite"
    assert graph.face.issuer.verify(result["access_token"], now=graph.lab.now()).user == ASSISTENZ

    # The refresh token works silently, as MSAL uses it on the next run.
    again = app.acquire_token_silent(
        ["https://graph.microsoft.com/Mail.ReadWrite"],
        account=app.get_accounts()[0],
        force_refresh=True,
    )
    assert again is not None and "access_token" in again


def test_device_code_with_a_wrong_password_stays_pending(graph: GraphLab) -> None:
    app = _public_app(graph)
    flow = app.initiate_device_flow(scopes=["Mail.Read"])
    with _client(graph) as http:
        page = http.post(
            "/lab/device",
            data={"user_code": flow["user_code"], "username": ASSISTENZ, "password": "wrong"},
        )
    assert page.status_code == 400
    result = app.acquire_token_by_device_flow(flow, exit_condition=lambda f: True)
    assert result["error"] == "authorization_pending"


def test_declined_device_code_ends_the_flow(graph: GraphLab) -> None:
    app = _public_app(graph)
    flow = app.initiate_device_flow(scopes=["Mail.Read"])
    with _client(graph) as http:
        http.post(
            "/lab/device",
            data={
                "user_code": flow["user_code"],
                "username": ASSISTENZ,
                "password": PASSWORD,
                "action": "deny",
            },
        )
    result = app.acquire_token_by_device_flow(flow, exit_condition=lambda f: True)
    assert result["error"] == "authorization_declined"


def test_client_credentials_give_an_app_only_token_with_roles(graph: GraphLab) -> None:
    app = msal.ConfidentialClientApplication(
        DAEMON_CLIENT_ID,
        client_credential=DAEMON_SECRET,
        authority=graph.authority,
        instance_discovery=False,
    )
    result = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
    principal = graph.face.issuer.verify(result["access_token"], now=graph.lab.now())
    assert principal.app_only and "Mail.ReadWrite" in principal.roles


def test_wrong_client_secret_is_401_invalid_client(graph: GraphLab) -> None:
    with _client(graph) as http:
        answer = http.post(
            f"/{TENANT_ID}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": DAEMON_CLIENT_ID,
                "client_secret": "nope",
                "scope": "https://graph.microsoft.com/.default",
            },
        )
    assert answer.status_code == 401
    body = answer.json()
    assert body["error"] == "invalid_client" and body["error_description"].startswith("AADSTS")


def test_password_grant_checks_the_lab_password(graph: GraphLab) -> None:
    form = {
        "grant_type": "password",
        "client_id": PUBLIC_CLIENT_ID,
        "username": ASSISTENZ,
        "scope": "https://graph.microsoft.com/.default openid profile offline_access",
        "client_info": "1",
    }
    with _client(graph) as http:
        bad = http.post(f"/{TENANT_ID}/oauth2/v2.0/token", data={**form, "password": "x"})
        good = http.post(f"/{TENANT_ID}/oauth2/v2.0/token", data={**form, "password": PASSWORD})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    tokens = good.json()
    assert {"access_token", "id_token", "refresh_token", "client_info"} <= set(tokens)
    assert "https://graph.microsoft.com/Mail.ReadWrite.Shared" in tokens["scope"].split()


def test_functional_mailbox_without_login_cannot_sign_in(graph: GraphLab) -> None:
    with _client(graph) as http:
        answer = http.post(
            f"/{TENANT_ID}/oauth2/v2.0/token",
            data={
                "grant_type": "password",
                "client_id": PUBLIC_CLIENT_ID,
                "username": "poststelle@musterstadt.example",
                "password": PASSWORD,
                "scope": "Mail.Read",
            },
        )
    assert answer.json()["error"] == "invalid_grant"


def test_unknown_scope_is_invalid_scope(graph: GraphLab) -> None:
    app = _public_app(graph)
    flow = app.initiate_device_flow(scopes=["https://graph.microsoft.com/Files.ReadWrite.All"])
    assert flow.get("error") == "invalid_scope"


def _pkce() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(b"v" * 40).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return verifier, challenge.decode()


def test_authorization_code_with_pkce_via_the_login_page(graph: GraphLab) -> None:
    app = _public_app(graph)
    flow = app.initiate_auth_code_flow(["Calendars.Read"], redirect_uri="http://127.0.0.1:5999")
    with _client(graph) as http:
        page = http.get(flow["auth_uri"])
        assert page.status_code == 200 and "password" in page.text
        query = dict(parse_qs(urlsplit(flow["auth_uri"]).query))
        form = {k: v[0] for k, v in query.items()}
        answer = http.post(
            urlsplit(flow["auth_uri"]).path,
            data={**form, "username": ASSISTENZ, "password": PASSWORD},
        )
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith("http://127.0.0.1:5999")
    auth_response = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    result = app.acquire_token_by_auth_code_flow(flow, auth_response)
    assert result["id_token_claims"]["preferred_username"] == ASSISTENZ


def test_authorization_code_with_the_wrong_verifier_is_refused(graph: GraphLab) -> None:
    _, challenge = _pkce()
    redirect = "http://127.0.0.1:5998/"
    with _client(graph) as http:
        answer = http.post(
            f"/{TENANT_ID}/oauth2/v2.0/authorize",
            data={
                "client_id": PUBLIC_CLIENT_ID,
                "response_type": "code",
                "redirect_uri": redirect,
                "scope": "Mail.Read",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "username": ASSISTENZ,
                "password": PASSWORD,
            },
        )
        code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
        token = http.post(
            f"/{TENANT_ID}/oauth2/v2.0/token",
            data={
                "grant_type": "authorization_code",
                "client_id": PUBLIC_CLIENT_ID,
                "code": code,
                "redirect_uri": redirect,
                "code_verifier": "not-the-verifier",
            },
        )
    assert token.status_code == 400 and token.json()["error"] == "invalid_grant"


def test_redirect_to_a_foreign_host_is_refused(graph: GraphLab) -> None:
    with _client(graph) as http:
        page = http.get(
            f"/{TENANT_ID}/oauth2/v2.0/authorize",
            params={
                "client_id": PUBLIC_CLIENT_ID,
                "response_type": "code",
                "redirect_uri": "https://evil.example/cb",
                "scope": "Mail.Read",
            },
        )
    assert page.status_code == 400


def test_expired_access_token_fails_verification(graph: GraphLab) -> None:
    from exlab.graph.tokens import TokenInvalid

    token = graph.face.issuer.access_token(
        base_url=graph.url,
        now=graph.lab.now() - timedelta(hours=2),
        client_id=PUBLIC_CLIENT_ID,
        user=ASSISTENZ,
        scopes=frozenset({"Mail.Read"}),
    )
    with pytest.raises(TokenInvalid):
        graph.face.issuer.verify(token, now=graph.lab.now())


def test_signing_key_survives_a_restart_of_the_face(graph: GraphLab, tmp_path: Path) -> None:
    token = graph.face.issuer.access_token(
        base_url=graph.url, now=graph.lab.now(), client_id=PUBLIC_CLIENT_ID, user=ASSISTENZ
    )
    with GraphLab(graph.lab, tmp_path / "tls") as again:
        assert again.face.issuer.verify(token, now=graph.lab.now()).user == ASSISTENZ
    assert (tmp_path / "tls" / "lab-token-signing.pem").stat().st_mode & 0o077 == 0
