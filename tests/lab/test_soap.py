"""The SOAP framework: envelope parsing, version header, errors and faults, ids."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from exlab import Lab
from exlab.ews import soap
from exlab.ews.ids import decode_id, encode_id, folder_id_element, resolve_folder
from exlab.ews.soap import M_NS, SOAP_NS, T_NS, EwsContext, EwsError, m, t


def envelope(body: str, header: str = '<t:RequestServerVersion Version="Exchange2016"/>') -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?>'
        f'<s:Envelope xmlns:s="{SOAP_NS}" xmlns:t="{T_NS}" xmlns:m="{M_NS}">'
        f"<s:Header>{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


@pytest.fixture
def lab() -> Iterator[Lab]:
    lab = Lab.open()
    lab.add_mailbox("chef@x.example", "Chef", password="pw")
    lab.add_mailbox("other@x.example", "Other", password="pw")
    yield lab
    lab.close()


@pytest.fixture
def echo_op() -> Iterator[list[EwsContext]]:
    seen: list[EwsContext] = []

    @soap.operation("TestEcho")
    def _echo(ctx: EwsContext, request: ET.Element) -> ET.Element:
        seen.append(ctx)
        if request.find(m("Fail")) is not None:
            ctx.lab.store.add_mailbox("ghost@x.example", "Ghost", "user")
            raise EwsError("ErrorItemNotFound", "The specified object was not found in the store.")
        return soap.response("TestEcho", [soap.response_message("TestEcho")])

    yield seen
    soap._OPERATIONS.pop("TestEcho")


def parse(result: soap.SoapResult) -> ET.Element:
    return ET.fromstring(result.body)


def test_answer_carries_server_version_info_and_honours_requested_version(
    lab: Lab, echo_op: list[EwsContext]
) -> None:
    result = soap.handle(
        lab,
        "Chef@x.example",
        envelope("<m:TestEcho/>", '<t:RequestServerVersion Version="Exchange2013_SP1"/>'),
    )
    assert result.status == 200
    info = parse(result).find(f"{{{SOAP_NS}}}Header/{t('ServerVersionInfo')}")
    assert info is not None
    assert (info.get("MajorVersion"), info.get("MinorVersion")) == ("15", "1")
    assert int(info.get("MajorBuildNumber", "0")) > 0
    assert echo_op[0].version == "Exchange2013_SP1" and echo_op[0].user == "chef@x.example"
    assert echo_op[0].at_least("Exchange2010_SP2") and not echo_op[0].at_least("Exchange2016")


def test_error_is_a_response_message_and_rolls_back_the_call(
    lab: Lab, echo_op: list[EwsContext]
) -> None:
    result = soap.handle(lab, "chef@x.example", envelope("<m:TestEcho><m:Fail/></m:TestEcho>"))
    assert result.status == 200
    message = parse(result).find(f".//{m('TestEchoResponseMessage')}")
    assert message is not None and message.get("ResponseClass") == "Error"
    assert message.findtext(m("ResponseCode")) == "ErrorItemNotFound"
    assert lab.store.mailbox("ghost@x.example") is None


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"<not xml", "ErrorSchemaValidation"),
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>',
            "ErrorSchemaValidation",
        ),
        (b"<Envelope/>", "ErrorSchemaValidation"),
        (
            envelope("<m:GetFolder/>", '<t:RequestServerVersion Version="Exchange2099"/>'),
            "ErrorInvalidServerVersion",
        ),
    ],
)
def test_malformed_requests_get_a_soap_fault(lab: Lab, body: bytes, code: str) -> None:
    result = soap.handle(lab, "chef@x.example", body)
    assert result.status == 500
    fault = parse(result).find(f"{{{SOAP_NS}}}Body/{{{SOAP_NS}}}Fault")
    assert fault is not None
    assert fault.findtext("faultcode") == f"a:{code}"
    assert fault.findtext(f"detail/{{{soap.E_NS}}}ResponseCode") == code


def test_throttled_fault_carries_back_off_milliseconds() -> None:
    fault = ET.fromstring(soap.throttled(2500).body).find(f".//{{{SOAP_NS}}}Fault")
    assert fault is not None
    value = fault.find(f"detail/{t('MessageXml')}/{t('Value')}")
    assert value is not None and value.get("Name") == "BackOffMilliseconds" and value.text == "2500"


def test_ids_round_trip_and_foreign_ids_are_malformed() -> None:
    assert decode_id(encode_id("folder", "abc123")) == ("folder", "abc123")
    for bad in ("DUMMY", "AAMkAGI2TG93AAA=", "!!!", encode_id("folder", "x")[:-4]):
        with pytest.raises(EwsError) as caught:
            decode_id(bad)
        assert caught.value.code == "ErrorInvalidIdMalformed"
    with pytest.raises(EwsError) as empty:
        decode_id("")
    assert empty.value.code == "ErrorInvalidIdEmpty"


def ctx(lab: Lab, user: str) -> EwsContext:
    return EwsContext(lab=lab, user=user)


def distinguished(name: str, mailbox: str | None = None) -> ET.Element:
    el = ET.Element(t("DistinguishedFolderId"), {"Id": name})
    if mailbox:
        box = ET.SubElement(el, t("Mailbox"))
        ET.SubElement(box, t("EmailAddress")).text = mailbox
    return el


def test_resolve_folder_by_distinguished_name_own_and_other_mailbox(lab: Lab) -> None:
    own = resolve_folder(ctx(lab, "chef@x.example"), distinguished("inbox"))
    assert own.mailbox == "chef@x.example" and own.distinguished == "inbox"
    with pytest.raises(EwsError) as denied:
        resolve_folder(ctx(lab, "other@x.example"), distinguished("inbox", "chef@x.example"))
    assert denied.value.code == "ErrorAccessDenied"
    with pytest.raises(EwsError) as missing:
        resolve_folder(ctx(lab, "other@x.example"), distinguished("inbox", "nobody@x.example"))
    assert missing.value.code == "ErrorNonExistentMailbox"
    with pytest.raises(EwsError) as no_archive:
        resolve_folder(ctx(lab, "chef@x.example"), distinguished("archiveroot"))
    assert no_archive.value.code == "ErrorFolderNotFound"


def test_resolve_folder_by_id_round_trips(lab: Lab) -> None:
    inbox = lab.store.distinguished_folder("chef@x.example", "inbox")
    assert inbox is not None
    holder = ET.Element("holder")
    el = folder_id_element(holder, inbox)
    assert resolve_folder(ctx(lab, "chef@x.example"), el) == inbox
    el.set("Id", encode_id("folder", "0" * 32))
    with pytest.raises(EwsError) as gone:
        resolve_folder(ctx(lab, "chef@x.example"), el)
    assert gone.value.code == "ErrorFolderNotFound"


def test_unknown_distinguished_name_is_a_schema_fault(lab: Lab) -> None:
    with pytest.raises(soap.SoapFault) as fault:
        resolve_folder(ctx(lab, "chef@x.example"), distinguished("bogus"))
    assert fault.value.code == "ErrorSchemaValidation"


def test_impersonation_is_refused(lab: Lab, echo_op: list[EwsContext]) -> None:
    header = (
        '<t:RequestServerVersion Version="Exchange2016"/><t:ExchangeImpersonation><t:ConnectingSID>'
        "<t:PrimarySmtpAddress>other@x.example</t:PrimarySmtpAddress></t:ConnectingSID>"
        "</t:ExchangeImpersonation>"
    )
    result = soap.handle(lab, "chef@x.example", envelope("<m:TestEcho/>", header))
    assert result.status == 500 and b"a:ErrorImpersonateUserDenied" in result.body
    assert echo_op == []
