"""Answers from something between medbridge and Exchange, which the lab cannot produce, served
canned by `responses`: a reverse proxy's HTML error page, Exchange Online's EWS-blocked answer,
a TLS-inspecting proxy's 407. Each becomes a typed MedError with a sentence saying what is in
the way."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
import requests
import responses

from med import AuthMethod, DelegateSession, EwsDisabled, MedError, ServerError, Unreachable
from med.backends.ews import EwsBackend
from med.backends.graph import GraphBackend

EWS = "https://mail.musterstadt.example/EWS/Exchange.asmx"
GRAPH = "https://graph.musterstadt.example"
USER = "assistenz@musterstadt.example"
NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>"
)
SIGN_IN_PAGE = "<!DOCTYPE html><html><head><title>Sign in</title></head><body><form></form></html>"
PROXY_407_PAGE = "<html><body><h1>407 Proxy Authentication Required</h1></body></html>"
TUNNEL_407 = requests.exceptions.ProxyError(
    "Unable to connect to proxy",
    OSError("Tunnel connection failed: 407 Proxy Authentication Required"),
)


@pytest.fixture
def served() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def _ews(version: str | None) -> DelegateSession:
    return DelegateSession(
        EwsBackend(
            endpoint=EWS,
            user=USER,
            auth=AuthMethod.BASIC,
            password="pw",
            version=version,
            max_wait_s=1,
        )
    )


def _graph() -> DelegateSession:
    return DelegateSession(GraphBackend(base_url=GRAPH, user=USER, token=lambda: "token"))


async def _first_call_fails(session: DelegateSession) -> MedError:
    try:
        with pytest.raises(MedError) as caught:
            await session.default_folder(USER, "inbox")
    finally:
        await session.close()
    return caught.value


ANY_EWS = re.compile(re.escape(EWS))
ANY_GRAPH = re.compile(re.escape(GRAPH) + "/.*")


@pytest.mark.parametrize("version", ["Exchange2016", None])  # None: exchangelib probes first
async def test_ews_behind_a_reverse_proxy_whose_server_is_down(
    served: responses.RequestsMock, version: str | None
) -> None:
    served.add(responses.POST, ANY_EWS, body=NGINX_502, status=502, content_type="text/html")
    error = await _first_call_fails(_ews(version))
    assert type(error) is Unreachable and error.code == "HTTP502"
    assert "proxy in front of the server answered HTTP 502 with a web page" in str(error)


@pytest.mark.parametrize("version", ["Exchange2016", None])
async def test_ews_url_that_lands_on_a_sign_in_portal(
    served: responses.RequestsMock, version: str | None
) -> None:
    served.add(responses.POST, ANY_EWS, body=SIGN_IN_PAGE, status=200, content_type="text/html")
    error = await _first_call_fails(_ews(version))
    assert type(error) is ServerError and error.code == "WebPage"
    assert "/EWS/Exchange.asmx" in str(error)


async def test_exchange_online_blocking_ews_is_ews_disabled(
    served: responses.RequestsMock,
) -> None:
    served.add(responses.POST, ANY_EWS, body=b"", status=403)
    error = await _first_call_fails(_ews("Exchange2016"))
    assert isinstance(error, EwsDisabled)
    assert "use a Graph profile" in str(error)


@pytest.mark.parametrize(
    "answer",
    [
        {"body": TUNNEL_407},  # https: the proxy refuses the CONNECT tunnel
        {"body": PROXY_407_PAGE, "status": 407, "headers": {"Proxy-Authenticate": "Negotiate"}},
    ],
    ids=["connect", "response"],
)
@pytest.mark.parametrize("session", [lambda: _ews("Exchange2016"), _graph], ids=["ews", "graph"])
async def test_a_proxy_asking_for_its_own_sign_in(
    served: responses.RequestsMock,
    answer: dict[str, object],
    session: Callable[[], DelegateSession],
) -> None:
    served.add(responses.POST, ANY_EWS, **answer)  # type: ignore[arg-type]
    served.add(responses.GET, ANY_GRAPH, **answer)  # type: ignore[arg-type]
    error = await _first_call_fails(session())
    assert type(error) is Unreachable and error.code == "ProxyAuthenticationRequired"
    assert "HTTPS_PROXY" in str(error)


async def test_graph_behind_a_reverse_proxy_whose_server_is_down(
    served: responses.RequestsMock,
) -> None:
    served.add(responses.GET, ANY_GRAPH, body=NGINX_502, status=502, content_type="text/html")
    error = await _first_call_fails(_graph())
    assert type(error) is Unreachable and error.code == "HTTP502"
