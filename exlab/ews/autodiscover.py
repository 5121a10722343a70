"""Autodiscover as Exchange serves it, so a client given an address and the lab's host finds
the EWS URL: POX at `/autodiscover/autodiscover.xml` (Outlook's 2006a response schema) and
SOAP at `/autodiscover/autodiscover.svc` (GetUserSettings, Exchange 2010 and later).

Both answer for any mailbox of the organisation (a delegate asks for the boss's address), an
unknown address with Exchange's own error (POX 500 "can't be found", SOAP InvalidUser).
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from exlab.ews.soap import SERVER_BUILD, VERSIONS

if TYPE_CHECKING:
    from exlab.lab import Lab

POX_PATH = "/autodiscover/autodiscover.xml"
SOAP_PATH = "/autodiscover/autodiscover.svc"

POX_REQUEST_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
POX_RESPONSE_NS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
OUTLOOK_2006A = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
ADDRESSING_NS = "http://www.w3.org/2005/08/addressing"
AUTODISCOVER_NS = "http://schemas.microsoft.com/exchange/2010/Autodiscover"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
ACTION = "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/"

EWS_SCHEMAS = ", ".join(v for v in VERSIONS if v.startswith("Exchange"))
"""EwsSupportedSchemas: the API versions the EWS face accepts."""


def _parse(body: bytes) -> ET.Element | None:
    try:
        root: ET.Element = SafeET.fromstring(
            body, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except (DefusedXmlException, ET.ParseError):
        return None
    return root


def _mailbox(lab: Lab, address: str) -> tuple[str, str] | None:
    """(address, display name) of a mailbox of the organisation, public folders excluded."""
    mailbox = lab.store.mailbox(address.strip().lower())
    if mailbox is None or mailbox.kind == "public":
        return None
    return mailbox.address, mailbox.display_name


def _legacy_dn(address: str) -> str:
    alias = address.partition("@")[0]
    return f"/o=Musterstadt/ou=Exchange Administrative Group/cn=Recipients/cn={alias}"


# -- POX ------------------------------------------------------------------------------------------


def pox_answer(lab: Lab, body: bytes, base_url: str) -> bytes:
    """The POX answer to a request body (errors are answered in the body, with HTTP 200)."""
    root = _parse(body)
    request = root.find(f"{{{POX_REQUEST_NS}}}Request") if root is not None else None
    address = (
        request.findtext(f"{{{POX_REQUEST_NS}}}EMailAddress") or "" if request is not None else ""
    )
    schema = (
        request.findtext(f"{{{POX_REQUEST_NS}}}AcceptableResponseSchema") or ""
        if request is not None
        else ""
    )
    if request is None or not address or schema.strip() != OUTLOOK_2006A:
        return _pox_error("600", "Invalid Request")
    found = _mailbox(lab, address)
    if found is None:
        return _pox_error("500", "The email address can't be found.")
    smtp, name = found
    ews_url = f"{base_url}/EWS/Exchange.asmx"
    out = ET.Element(f"{{{POX_RESPONSE_NS}}}Autodiscover")
    response = ET.SubElement(out, f"{{{OUTLOOK_2006A}}}Response")

    def add(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
        el = ET.SubElement(parent, f"{{{OUTLOOK_2006A}}}{tag}")
        if text is not None:
            el.text = text
        return el

    user = add(response, "User")
    add(user, "DisplayName", name)
    add(user, "LegacyDN", _legacy_dn(smtp))
    add(user, "AutoDiscoverSMTPAddress", smtp)
    add(user, "DeploymentId", str(uuid.uuid5(uuid.NAMESPACE_DNS, smtp.partition("@")[2])))
    account = add(response, "Account")
    add(account, "AccountType", "email")
    add(account, "Action", "settings")
    add(account, "MicrosoftOnline", "False")
    host = base_url.split("://", 1)[-1]
    for kind in ("EXCH", "EXPR"):
        protocol = add(account, "Protocol")
        add(protocol, "Type", kind)
        add(protocol, "Server", host)
        if kind == "EXCH":
            add(protocol, "ServerVersion", _server_version_hex())
        else:
            add(protocol, "SSL", "On" if base_url.startswith("https") else "Off")
            add(protocol, "AuthPackage", "Negotiate")
        add(protocol, "ASUrl", f"{base_url}/Microsoft-Server-ActiveSync")
        add(protocol, "EwsUrl", ews_url)
        add(protocol, "EmwsUrl", ews_url)
        add(protocol, "OOFUrl", ews_url)
        add(protocol, "OABUrl", f"{base_url}/OAB/")
    return _xml(out)


def _server_version_hex() -> str:
    """ServerVersion as Outlook reads it: major, minor and build packed into 32 bits."""
    major, minor, build, _ = SERVER_BUILD
    return f"{(0x7 << 28) | (major << 22) | (minor << 16) | (1 << 15) | build:08X}"


def _pox_error(code: str, message: str) -> bytes:
    out = ET.Element(f"{{{POX_RESPONSE_NS}}}Autodiscover")
    response = ET.SubElement(out, f"{{{POX_RESPONSE_NS}}}Response")
    error = ET.SubElement(
        response,
        f"{{{POX_RESPONSE_NS}}}Error",
        {"Time": datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3], "Id": "2477272013"},
    )
    ET.SubElement(error, f"{{{POX_RESPONSE_NS}}}ErrorCode").text = code
    ET.SubElement(error, f"{{{POX_RESPONSE_NS}}}Message").text = message
    ET.SubElement(error, f"{{{POX_RESPONSE_NS}}}DebugData")
    return _xml(out)


def _xml(root: ET.Element) -> bytes:
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


# -- SOAP GetUserSettings -------------------------------------------------------------------------


def _settings(lab: Lab, smtp: str, name: str, base_url: str) -> dict[str, str]:
    ews_url = f"{base_url}/EWS/Exchange.asmx"
    major, minor, build, revision = SERVER_BUILD
    return {
        "UserDisplayName": name,
        "UserDN": _legacy_dn(smtp),
        "UserDeploymentId": str(uuid.uuid5(uuid.NAMESPACE_DNS, smtp.partition("@")[2])),
        "AutoDiscoverSMTPAddress": smtp,
        "InternalEwsUrl": ews_url,
        "ExternalEwsUrl": ews_url,
        "InternalMailboxServer": base_url.split("://", 1)[-1],
        "CasVersion": f"{major}.{minor:02d}.{build:04d}.{revision:03d}",
        "EwsSupportedSchemas": EWS_SCHEMAS,
        "ExternalEwsVersion": f"{major}.{minor:02d}.{build:04d}.{revision:03d}",
        "MapiHttpEnabled": "False",
        "UserMSOnline": "False",
    }


def soap_answer(lab: Lab, body: bytes, base_url: str) -> tuple[int, bytes]:
    """(HTTP status, envelope) for a GetUserSettings request."""
    root = _parse(body)
    a = f"{{{AUTODISCOVER_NS}}}"
    request = None
    if root is not None and root.tag == f"{{{SOAP_NS}}}Envelope":
        message = root.find(f"{{{SOAP_NS}}}Body/{a}GetUserSettingsRequestMessage")
        request = message.find(f"{a}Request") if message is not None else None
    if request is None:
        return 500, _soap_fault("The request is not a GetUserSettings request.")
    users = [(el.text or "").strip() for el in request.findall(f"{a}Users/{a}User/{a}Mailbox")]
    wanted = [(el.text or "").strip() for el in request.findall(f"{a}RequestedSettings/{a}Setting")]
    envelope = ET.Element(f"{{{SOAP_NS}}}Envelope")
    header = ET.SubElement(envelope, f"{{{SOAP_NS}}}Header")
    action = ET.SubElement(header, f"{{{ADDRESSING_NS}}}Action")
    action.text = f"{ACTION}GetUserSettingsResponse"
    info = ET.SubElement(header, f"{a}ServerVersionInfo")
    major, minor, build, revision = SERVER_BUILD
    for tag, value in (
        ("MajorVersion", major),
        ("MinorVersion", minor),
        ("MajorBuildNumber", build),
        ("MinorBuildNumber", revision),
        ("Version", "Exchange2015"),
    ):
        ET.SubElement(info, f"{a}{tag}").text = str(value)
    body_el = ET.SubElement(envelope, f"{{{SOAP_NS}}}Body")
    answer = ET.SubElement(body_el, f"{a}GetUserSettingsResponseMessage")
    response = ET.SubElement(answer, f"{a}Response")
    ET.SubElement(response, f"{a}ErrorCode").text = "NoError"
    ET.SubElement(response, f"{a}ErrorMessage")
    responses = ET.SubElement(response, f"{a}UserResponses")
    for address in users:
        user = ET.SubElement(responses, f"{a}UserResponse")
        found = _mailbox(lab, address)
        if found is None:
            ET.SubElement(user, f"{a}ErrorCode").text = "InvalidUser"
            ET.SubElement(
                user, f"{a}ErrorMessage"
            ).text = f"The user {address} wasn't found in Active Directory."
            continue
        ET.SubElement(user, f"{a}ErrorCode").text = "NoError"
        ET.SubElement(user, f"{a}ErrorMessage").text = "No error."
        ET.SubElement(user, f"{a}RedirectTarget", {f"{{{XSI_NS}}}nil": "true"})
        known = _settings(lab, *found, base_url)
        errors = ET.SubElement(user, f"{a}UserSettingErrors")
        settings = ET.SubElement(user, f"{a}UserSettings")
        for name in wanted:
            if name in known:
                setting = ET.SubElement(
                    settings, f"{a}UserSetting", {f"{{{XSI_NS}}}type": "StringSetting"}
                )
                ET.SubElement(setting, f"{a}Name").text = name
                ET.SubElement(setting, f"{a}Value").text = known[name]
            else:
                error = ET.SubElement(errors, f"{a}UserSettingError")
                ET.SubElement(error, f"{a}ErrorCode").text = "SettingIsNotAvailable"
                ET.SubElement(
                    error, f"{a}ErrorMessage"
                ).text = f"User setting '{name}' is not available."
                ET.SubElement(error, f"{a}SettingName").text = name
    return 200, _xml(envelope)


def _soap_fault(message: str) -> bytes:
    envelope = ET.Element(f"{{{SOAP_NS}}}Envelope")
    fault = ET.SubElement(ET.SubElement(envelope, f"{{{SOAP_NS}}}Body"), f"{{{SOAP_NS}}}Fault")
    ET.SubElement(fault, "faultcode").text = "s:Client"
    ET.SubElement(fault, "faultstring").text = message
    return _xml(envelope)
