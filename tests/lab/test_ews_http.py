"""The EWS URL over HTTP as IIS and Exchange's dispatcher answer it, before any operation runs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from exlab.demo import DEMO_PASSWORD
from tests.lab.conftest import LabServer
from tests.lab.items_soap import envelope

SOAP = "{http://schemas.xmlsoap.org/soap/envelope/}"
ASSISTENZ = ("assistenz@musterstadt.example", DEMO_PASSWORD)


@pytest.fixture(scope="module")
def served(demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """One read-only lab for the module: nothing here changes the organisation."""
    path = tmp_path_factory.mktemp("ews-http") / "lab.sqlite"
    path.write_bytes(demo_template.read_bytes())
    server = LabServer(path)
    yield server
    server.stop()


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"])
def test_any_method_without_credentials_gets_the_challenge_first(
    served: LabServer, method: str
) -> None:
    r = httpx.request(method, served.url, timeout=10)
    assert r.status_code == 401
    assert "NTLM" in r.headers.get_list("WWW-Authenticate")


def test_signed_in_get_of_the_ews_url_shows_the_service_page(served: LabServer) -> None:
    r = httpx.get(served.url.lower(), auth=ASSISTENZ, timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "You have created a service." in r.text


def test_signed_in_put_is_refused_naming_the_allowed_methods(served: LabServer) -> None:
    r = httpx.put(served.url, auth=ASSISTENZ, content=b"x", timeout=10)
    assert r.status_code == 405
    assert "POST" in r.headers["Allow"]


def test_an_unknown_operation_is_a_contract_filter_fault_not_an_invalid_request(
    served: LabServer,
) -> None:
    body = envelope("<m:GetHoliday><m:Country>DE</m:Country></m:GetHoliday>")
    r = httpx.post(
        served.url,
        auth=ASSISTENZ,
        content=body,
        headers={"Content-Type": "text/xml; charset=utf-8"},
        timeout=10,
    )
    assert r.status_code == 500
    fault = ET.fromstring(r.content).find(f"{SOAP}Body/{SOAP}Fault")
    assert fault is not None
    assert fault.findtext("faultcode") == "a:ActionNotSupported"
    assert "ContractFilter mismatch" in fault.findtext("faultstring", "")
    assert "ErrorInvalidRequest" not in r.text


def test_exchangelib_does_not_retry_other_versions_on_an_unknown_operation(
    served: LabServer,
) -> None:
    """A client that meets an operation the server lacks gets one clear error, at once."""
    from exchangelib.errors import SOAPError
    from exchangelib.services.common import EWSAccountService

    class GetHoliday(EWSAccountService):  # type: ignore[misc]
        SERVICE_NAME = "GetHoliday"

        def call(self) -> object:
            return self._get_elements(payload=self.get_payload())

        def get_payload(self) -> object:
            from exchangelib.util import create_element

            return create_element(f"m:{self.SERVICE_NAME}")

    account = served.account("assistenz")
    with pytest.raises(SOAPError, match="ActionNotSupported"):
        list(GetHoliday(account=account).call())
