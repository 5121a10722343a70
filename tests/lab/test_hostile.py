"""Hostile and broken input: answered with a SOAP fault or an HTTP error, and the lab stays up."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from exlab.demo import DEMO_PASSWORD
from exlab.server import MAX_BODY
from tests.lab.conftest import LabServer

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"
AUTH = ("chef@musterstadt.example", DEMO_PASSWORD)


def get_folder(name: str = "root") -> str:
    return (
        f'<s:Envelope xmlns:s="{SOAP}" xmlns:t="{T}" xmlns:m="{M}"><s:Body>'
        "<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape>"
        f'<m:FolderIds><t:DistinguishedFolderId Id="{name}"/></m:FolderIds></m:GetFolder>'
        "</s:Body></s:Envelope>"
    )


XXE = (
    '<?xml version="1.0"?><!DOCTYPE s:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    + get_folder().replace('Id="root"', 'Id="&xxe;"')
)
LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
        for i in range(1, 10)
    )
    + "]><lolz>&lol9;</lolz>"
)


def post(
    lab: LabServer, body: bytes | str, path: str = "/EWS/Exchange.asmx", **kw: object
) -> httpx.Response:
    return httpx.post(
        lab.base_url + path,
        content=body,
        auth=AUTH,
        headers={"Content-Type": "text/xml; charset=utf-8"},
        timeout=30,
        **kw,  # type: ignore[arg-type]
    )


def assert_lab_still_serves(lab: LabServer) -> None:
    answer = post(lab, get_folder())
    assert answer.status_code == 200 and b"NoError" in answer.content


def assert_fault(answer: httpx.Response, code: str) -> None:
    assert answer.status_code == 500
    assert b"<s:Fault>" in answer.content or b":Fault>" in answer.content
    assert f"a:{code}".encode() in answer.content


def test_external_entity_is_refused_and_nothing_is_read(lab: LabServer) -> None:
    answer = post(lab, XXE)
    assert_fault(answer, "ErrorSchemaValidation")
    assert b"root:" not in answer.content
    assert_lab_still_serves(lab)


def test_entity_expansion_is_refused(lab: LabServer) -> None:
    answer = post(lab, LAUGHS)
    assert_fault(answer, "ErrorSchemaValidation")
    assert len(answer.content) < 10_000
    assert_lab_still_serves(lab)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<s:Envelope",
        b"\xff\xfe\x00garbage",
        b"<html><body>hello</body></html>",
        b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>',
        f'<s:Envelope xmlns:s="{SOAP}"><s:Body/></s:Envelope>'.encode(),
        get_folder().replace("</m:GetFolder>", "</m:GetFolder><m:GetFolder/>").encode(),
        ("<a>" * 50_000 + "</a>" * 50_000).encode(),
    ],
    ids=["empty", "truncated", "binary", "not-soap", "soap12", "empty-body", "two-ops", "deep"],
)
def test_malformed_requests_get_a_schema_fault(lab: LabServer, body: bytes) -> None:
    assert_fault(post(lab, body), "ErrorSchemaValidation")
    assert_lab_still_serves(lab)


def test_unknown_distinguished_folder_is_a_schema_fault(lab: LabServer) -> None:
    assert_fault(post(lab, get_folder("nosuchfolder")), "ErrorSchemaValidation")


def test_oversized_body_is_refused_with_413(lab: LabServer) -> None:
    big = b"<a>" + b"x" * (MAX_BODY + 10) + b"</a>"
    assert post(lab, big).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap applies while reading
        piece = b"y" * (1024 * 1024)
        for _ in range(MAX_BODY // len(piece) + 2):
            yield piece

    assert post(lab, chunks()).status_code == 413
    assert_lab_still_serves(lab)


def test_requests_without_login_get_401_and_no_answer(lab: LabServer) -> None:
    answer = httpx.post(lab.url, content=get_folder(), timeout=30)
    assert answer.status_code == 401
    assert b"NoError" not in answer.content


def test_paths_are_case_insensitive_and_others_are_404(lab: LabServer) -> None:
    for path in ("/ews/exchange.asmx", "/EWS/EXCHANGE.ASMX", "/Ews/Exchange.asmx"):
        answer = post(lab, get_folder(), path=path)
        assert answer.status_code == 200, path
    assert post(lab, get_folder(), path="/owa/").status_code == 404
