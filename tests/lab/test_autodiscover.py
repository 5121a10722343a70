"""Autodiscover as Exchange serves it: POX (raw, as Outlook posts it) and SOAP GetUserSettings
(exchangelib's own autodiscover), so a client given an address and the host finds EWS."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from exchangelib import BASIC, DELEGATE, Account, Configuration, Credentials, FailFast
from exchangelib.autodiscover import clear_cache
from exchangelib.autodiscover.cache import autodiscover_cache
from exchangelib.autodiscover.protocol import AutodiscoverProtocol
from exchangelib.errors import ErrorNonExistentMailbox

from exlab.demo import ASSISTENZ, CHEF, DEMO_PASSWORD, DOMAIN
from tests.lab.conftest import LabServer

POX_REQUEST = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/'
    'requestschema/2006"><Request><EMailAddress>{address}</EMailAddress>'
    "<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/"
    "responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>"
)
OUTLOOK = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"
ERRORS = "{http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006}"


@pytest.fixture(scope="module")
def served(demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    path = tmp_path_factory.mktemp("autodiscover") / "lab.sqlite"
    path.write_bytes(demo_template.read_bytes())
    server = LabServer(path)
    yield server
    server.stop()


def _pox(served: LabServer, address: str, *, auth: bool = True) -> httpx.Response:
    return httpx.post(
        f"{served.base_url}/Autodiscover/Autodiscover.xml",
        content=POX_REQUEST.format(address=address).encode(),
        headers={"Content-Type": "text/xml; charset=utf-8"},
        auth=(ASSISTENZ, DEMO_PASSWORD) if auth else None,
        timeout=10,
    )


def test_pox_autodiscover_challenges_first_then_names_the_ews_url(served: LabServer) -> None:
    assert _pox(served, ASSISTENZ, auth=False).status_code == 401
    r = _pox(served, CHEF)
    assert r.status_code == 200
    root = ET.fromstring(r.content)
    assert root.findtext(f"{OUTLOOK}Response/{OUTLOOK}User/{OUTLOOK}AutoDiscoverSMTPAddress") == (
        CHEF
    )
    urls = {
        p.findtext(f"{OUTLOOK}Type"): p.findtext(f"{OUTLOOK}EwsUrl")
        for p in root.iter(f"{OUTLOOK}Protocol")
    }
    assert urls == {"EXCH": served.url, "EXPR": served.url}


def test_pox_autodiscover_answers_exchanges_errors(served: LabServer) -> None:
    unknown = ET.fromstring(_pox(served, f"niemand@{DOMAIN}").content)
    assert unknown.findtext(f".//{ERRORS}ErrorCode") == "500"
    r = httpx.post(
        f"{served.base_url}/autodiscover/autodiscover.xml",
        content=b"<Autodiscover/>",
        auth=(ASSISTENZ, DEMO_PASSWORD),
        timeout=10,
    )
    assert ET.fromstring(r.content).findtext(f".//{ERRORS}ErrorCode") == "600"


def _autodiscover_protocol(served: LabServer) -> AutodiscoverProtocol:
    return AutodiscoverProtocol(
        config=Configuration(
            service_endpoint=f"{served.base_url}/autodiscover/autodiscover.svc",
            credentials=Credentials(ASSISTENZ, DEMO_PASSWORD),
            auth_type=BASIC,
            retry_policy=FailFast(),
        )
    )


def test_exchangelibs_soap_autodiscover_gets_the_users_settings(served: LabServer) -> None:
    response = _autodiscover_protocol(served).get_user_settings(user=CHEF)
    response.raise_errors()
    assert response.ews_url == served.url
    assert response.autodiscover_smtp_address == CHEF
    assert response.version is not None and response.version.api_version == "Exchange2016"
    with pytest.raises(ErrorNonExistentMailbox):
        _autodiscover_protocol(served).get_user_settings(user=f"niemand@{DOMAIN}").raise_errors()


def test_an_account_opened_by_autodiscover_reaches_the_mailbox(served: LabServer) -> None:
    """exchangelib's discovery, with the lab's Autodiscover service known for the domain
    (as a DNS SRV record or a cached earlier lookup would give it)."""
    credentials = Credentials(ASSISTENZ, DEMO_PASSWORD)
    protocol = _autodiscover_protocol(served)
    autodiscover_cache[(DOMAIN, credentials)] = protocol
    try:
        account = Account(
            CHEF,
            credentials=credentials,
            autodiscover=True,
            access_type=DELEGATE,
            config=Configuration(credentials=credentials, auth_type=BASIC),
        )
        assert account.protocol.service_endpoint == served.url
        assert account.inbox.name == "Posteingang"
    finally:
        clear_cache()
