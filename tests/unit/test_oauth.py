"""med's OAuth sign-in (MSAL) against the lab's authority over TLS."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from exlab import Lab
from exlab.graph.oauth import DAEMON_CLIENT_ID, DAEMON_SECRET, PUBLIC_CLIENT_ID
from exlab.graph.serve import GraphLab
from med.auth.oauth import DeviceCodePrompt, OAuthConfig, OAuthSignIn, scopes_for
from med.errors import AuthError, BadCredentials, InvalidInput, Unreachable

PASSWORD = "Demo-2026!"
CHEF = "chef@musterstadt.example"


@pytest.fixture
def graph(tmp_path: Path) -> Iterator[GraphLab]:
    lab = Lab.open()
    lab.add_mailbox(CHEF, "Dr. Anna Berg", password=PASSWORD)
    with GraphLab(lab, tmp_path / "tls") as served:
        served.face.oauth.settings.device_interval_s = 1
        yield served
    lab.close()


def _browser(graph: GraphLab, password: str = PASSWORD) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(graph.ca_file))
    return httpx.Client(verify=ctx)


def _config(graph: GraphLab, cache: Path | None, **kw: object) -> OAuthConfig:
    return OAuthConfig(
        client_id=PUBLIC_CLIENT_ID,
        authority=graph.authority,
        cache_file=cache,
        ca_file=graph.ca_file,
        **kw,  # type: ignore[arg-type]
    )


def _approve_in_background(graph: GraphLab, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    """The user's side of the device flow: enter the code on the lab's page."""

    def prompt(p: DeviceCodePrompt) -> None:
        def approve() -> None:
            with _browser(graph) as http:
                http.post(
                    p.verification_uri,
                    data={"user_code": p.user_code, "username": CHEF, "password": password},
                )

        threading.Thread(target=approve).start()

    return prompt


def test_device_code_sign_in_caches_tokens_in_a_private_file(
    graph: GraphLab, tmp_path: Path
) -> None:
    cache = tmp_path / "data" / "graph-tokens.json"
    signin = OAuthSignIn(_config(graph, cache))
    shown: list[DeviceCodePrompt] = []

    def prompt(p: DeviceCodePrompt) -> None:
        shown.append(p)
        _approve_in_background(graph)(p)

    assert signin.sign_in_device_code(prompt) == CHEF
    assert shown and shown[0].verification_uri.endswith("/lab/device")
    assert cache.stat().st_mode & 0o777 == 0o600
    assert PASSWORD not in cache.read_text()

    # A later run (new process, same cache file) gets a token silently.
    later = OAuthSignIn(_config(graph, cache))
    assert later.accounts() == [CHEF]
    token = later.token(CHEF)
    assert graph.face.issuer.verify(token, now=graph.lab.now()).user == CHEF


def test_token_without_a_sign_in_asks_to_sign_in(graph: GraphLab, tmp_path: Path) -> None:
    signin = OAuthSignIn(_config(graph, tmp_path / "empty.json"))
    with pytest.raises(AuthError, match="sign in"):
        signin.token(CHEF)


def test_sign_out_forgets_the_account(graph: GraphLab, tmp_path: Path) -> None:
    cache = tmp_path / "tokens.json"
    signin = OAuthSignIn(_config(graph, cache))
    signin.sign_in_device_code(_approve_in_background(graph))
    signin.sign_out(CHEF)
    assert OAuthSignIn(_config(graph, cache)).accounts() == []


def test_browser_sign_in_catches_the_redirect_on_loopback(graph: GraphLab) -> None:
    signin = OAuthSignIn(_config(graph, None))

    def open_url(url: str) -> None:
        """A browser: show the login page, post the form, follow the redirect to loopback."""

        def run() -> None:
            form = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
            with _browser(graph) as http:
                assert http.get(url).status_code == 200
                answer = http.post(
                    url.split("?")[0], data={**form, "username": CHEF, "password": PASSWORD}
                )
            httpx.get(answer.headers["location"])

        threading.Thread(target=run).start()

    assert signin.sign_in_browser(open_url, timeout_s=30) == CHEF
    assert signin.accounts() == [CHEF]


def test_browser_sign_in_reports_a_refused_login(graph: GraphLab) -> None:
    signin = OAuthSignIn(_config(graph, None, scopes=scopes_for(["Files.Read"])))

    def open_url(url: str) -> None:
        def run() -> None:
            form = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
            with _browser(graph) as http:
                answer = http.post(
                    url.split("?")[0], data={**form, "username": CHEF, "password": PASSWORD}
                )
            httpx.get(answer.headers["location"])

        threading.Thread(target=run).start()

    with pytest.raises(InvalidInput, match="scope"):
        signin.sign_in_browser(open_url, timeout_s=30)


def test_app_only_token_with_client_secret(graph: GraphLab) -> None:
    config = OAuthConfig(
        client_id=DAEMON_CLIENT_ID,
        authority=graph.authority,
        client_secret=DAEMON_SECRET,
        ca_file=graph.ca_file,
    )
    principal = graph.face.issuer.verify(OAuthSignIn(config).token(), now=graph.lab.now())
    assert principal.app_only


def test_wrong_client_secret_is_bad_credentials(graph: GraphLab) -> None:
    config = OAuthConfig(
        client_id=DAEMON_CLIENT_ID,
        authority=graph.authority,
        client_secret="wrong",
        ca_file=graph.ca_file,
    )
    with pytest.raises(BadCredentials):
        OAuthSignIn(config).app_token()


def test_untrusted_lab_certificate_is_unreachable_with_a_hint(graph: GraphLab) -> None:
    config = OAuthConfig(client_id=PUBLIC_CLIENT_ID, authority=graph.authority)
    with pytest.raises(Unreachable, match="TLS"):
        OAuthSignIn(config).accounts()


def test_short_scope_names_get_the_graph_prefix() -> None:
    assert scopes_for(["Mail.Read", "offline_access"]) == (
        "https://graph.microsoft.com/Mail.Read",
        "offline_access",
    )
