"""SOAP 1.1 for the lab's EWS face: parse the envelope, dispatch, answer as Exchange answers.

Operations register with `@operation("GetFolder")`; a handler takes the context and the request
element (`m:GetFolder`) and returns the response element (`m:GetFolderResponse`). Each call runs
in one store transaction, so a call that fails changes nothing. Errors come in two shapes, as on a
real server: an `EwsError` becomes a response message with `ResponseClass="Error"`; a `SoapFault`
(malformed request, throttling, bad version) becomes a SOAP Fault with HTTP 500.
"""

from __future__ import annotations

import logging
import uuid
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from exlab.core.caller import Caller
from exlab.core.errors import ExchangeError

if TYPE_CHECKING:
    from exlab.lab import Lab

Element = ET.Element

log = logging.getLogger("exlab.ews")

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
T_NS = "http://schemas.microsoft.com/exchange/services/2006/types"
M_NS = "http://schemas.microsoft.com/exchange/services/2006/messages"
E_NS = "http://schemas.microsoft.com/exchange/services/2006/errors"

ET.register_namespace("s", SOAP_NS)
ET.register_namespace("t", T_NS)
ET.register_namespace("m", M_NS)
ET.register_namespace("e", E_NS)

# What the lab claims to be: Exchange 2016 CU23.
SERVER_VERSION = "Exchange2016"
SERVER_BUILD = (15, 1, 2507, 6)
SERVER_VERSION_TAG = "V2017_07_11"
SERVER_NAME = "LAB-EX01"
"""The mailbox server's name (X-FEServer, the affinity cookie)."""
AFFINITY_COOKIE = "X-BackEndOverrideCookie"

# RequestServerVersion values the server accepts, oldest first (later Exchange 2016 names last).
VERSIONS: tuple[str, ...] = (
    "Exchange2007",
    "Exchange2007_SP1",
    "Exchange2010",
    "Exchange2010_SP1",
    "Exchange2010_SP2",
    "Exchange2013",
    "Exchange2013_SP1",
    "Exchange2015",
    "Exchange2016",
    "V2015_10_05",
    "V2016_01_06",
    "V2016_04_13",
    "V2016_07_13",
    "V2016_10_10",
    "V2017_01_07",
    "V2017_04_14",
    "V2017_07_11",
)


def s(tag: str) -> str:
    return f"{{{SOAP_NS}}}{tag}"


def t(tag: str) -> str:
    """A qualified name in the EWS types namespace."""
    return f"{{{T_NS}}}{tag}"


def m(tag: str) -> str:
    """A qualified name in the EWS messages namespace."""
    return f"{{{M_NS}}}{tag}"


def sub(parent: Element, tag: str, text: str | None = None, **attrs: str) -> Element:
    """Append a child element (tag already qualified) with optional text and attributes."""
    child = ET.SubElement(parent, tag, attrs)
    if text is not None:
        child.text = text
    return child


def bool_text(value: bool) -> str:
    return "true" if value else "false"


EwsError = ExchangeError
"""EWS answers an `ExchangeError` in a response message (`ResponseClass="Error"`)."""


class SoapFault(Exception):
    """A request refused as a whole: answered as a SOAP Fault with HTTP 500."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        back_off_ms: int | None = None,
        violation: str | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.back_off_ms = back_off_ms
        self.violation = violation


def version_index(version: str) -> int:
    """Position of an API version; every `V20xx` name counts as Exchange2016."""
    if version.startswith("V20"):
        return VERSIONS.index("Exchange2016")
    return VERSIONS.index(version)


@dataclass
class EwsContext(Caller):
    """What a handler knows about the call: who asks, in which API version, in which time zone."""

    version: str = SERVER_VERSION
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time_zone: str | None = None
    header: Element | None = None
    http_headers: Mapping[str, str] = field(default_factory=dict)
    """The HTTP request's headers (lower-case names), for what EWS carries outside SOAP."""
    cookies: dict[str, str] = field(default_factory=dict)
    """Cookies the answer sets (`Set-Cookie`)."""

    def at_least(self, version: str) -> bool:
        """Whether the caller asked for `version` or newer (response shapes follow it)."""
        return version_index(self.version) >= version_index(version)

    def keep_affinity(self) -> None:
        """A subscription asked for server affinity (X-AnchorMailbox with
        X-PreferServerAffinity: true): answer with the X-BackEndOverrideCookie that routes the
        client's later requests for it to this mailbox server, as Exchange does."""
        anchor = self.http_headers.get("x-anchormailbox", "").strip().lower()
        prefer = self.http_headers.get("x-preferserveraffinity", "").strip().lower() == "true"
        if anchor and prefer:
            self.cookies[AFFINITY_COOKIE] = f"{SERVER_NAME}~{zlib.crc32(anchor.encode())}"


Handler = Callable[[EwsContext, Element], Element]


@dataclass(frozen=True)
class Operation:
    name: str
    handler: Handler
    transaction: bool
    min_version: str


_OPERATIONS: dict[str, Operation] = {}


def operation(
    name: str, *, transaction: bool = True, min_version: str = "Exchange2007"
) -> Callable[[Handler], Handler]:
    """Register an EWS operation handler. `transaction=False` for long waits (streaming)."""

    def register(handler: Handler) -> Handler:
        _OPERATIONS[name] = Operation(name, handler, transaction, min_version)
        return handler

    return register


def operations() -> frozenset[str]:
    return frozenset(_OPERATIONS)


# -- building responses ---------------------------------------------------------------------------


def response_message(
    op_tag: str,
    children: Iterable[Element] = (),
    *,
    response_class: str = "Success",
    code: str = "NoError",
) -> Element:
    """One `m:<Op>ResponseMessage` with ResponseClass/ResponseCode and the given children."""
    message = ET.Element(m(f"{op_tag}ResponseMessage"), {"ResponseClass": response_class})
    if response_class != "Success":
        sub(message, m("MessageText"), code)
    sub(message, m("ResponseCode"), code)
    if response_class != "Success":
        sub(message, m("DescriptiveLinkKey"), "0")
    for child in children:
        message.append(child)
    return message


def error_message(op_tag: str, err: EwsError, *, tag: str | None = None) -> Element:
    """An error response message; `tag` overrides the element name (e.g. `m:ResponseMessage`)."""
    message = ET.Element(tag or m(f"{op_tag}ResponseMessage"), {"ResponseClass": "Error"})
    fill_error(message, err)
    return message


def fill_error(message: Element, err: EwsError) -> None:
    """MessageText, ResponseCode, DescriptiveLinkKey and MessageXml (back-off), in schema order."""
    sub(message, m("MessageText"), err.message)
    sub(message, m("ResponseCode"), err.code)
    sub(message, m("DescriptiveLinkKey"), "0")
    if err.back_off_ms is not None:
        xml = sub(message, m("MessageXml"))
        sub(xml, t("Value"), str(err.back_off_ms), Name="BackOffMilliseconds")


def response(op_tag: str, messages: Iterable[Element]) -> Element:
    """`m:<Op>Response` wrapping response messages in `m:ResponseMessages`."""
    root = ET.Element(m(f"{op_tag}Response"))
    container = sub(root, m("ResponseMessages"))
    for message in messages:
        container.append(message)
    return root


def server_version_info() -> Element:
    major, minor, build, revision = SERVER_BUILD
    return ET.Element(
        t("ServerVersionInfo"),
        {
            "MajorVersion": str(major),
            "MinorVersion": str(minor),
            "MajorBuildNumber": str(build),
            "MinorBuildNumber": str(revision),
            "Version": SERVER_VERSION_TAG,
        },
    )


def envelope(body_child: Element, *, version_header: bool = True) -> bytes:
    root = ET.Element(s("Envelope"))
    if version_header:
        header = sub(root, s("Header"))
        header.append(server_version_info())
    body = sub(root, s("Body"))
    body.append(body_child)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def fault_envelope(fault: SoapFault) -> bytes:
    """A SOAP Fault as Exchange writes it (code in faultcode and again in detail)."""
    root = ET.Element(s("Envelope"))
    body = sub(root, s("Body"))
    element = sub(body, s("Fault"))
    # faultcode is a QName; `a` is bound to the types namespace as Exchange does.
    code = sub(element, "faultcode", f"a:{fault.code}")
    code.set("xmlns:a", T_NS)
    sub(element, "faultstring", fault.message)
    detail = sub(element, "detail")
    sub(detail, f"{{{E_NS}}}ResponseCode", fault.code)
    sub(detail, f"{{{E_NS}}}Message", fault.message)
    if fault.back_off_ms is not None or fault.violation is not None:
        xml = sub(detail, t("MessageXml"))
        if fault.back_off_ms is not None:
            sub(xml, t("Value"), str(fault.back_off_ms), Name="BackOffMilliseconds")
        if fault.violation is not None:
            sub(xml, t("Violation"), fault.violation)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


ADDRESSING_NONE_NS = "http://schemas.microsoft.com/ws/2005/05/addressing/none"


def action_not_supported(operation_tag: str) -> bytes:
    """The fault EWS's WCF dispatcher gives an operation it has no contract for.

    Not ErrorInvalidRequest: clients take that for a version mismatch and retry every version.
    """
    name = operation_tag.split("}", 1)[-1]
    action = f"{M_NS}/{name}"
    message = (
        f"The message with Action '{action}' cannot be processed at the receiver, due to a "
        "ContractFilter mismatch at the EndpointDispatcher. This may be because of either a "
        "contract mismatch (mismatched Actions between sender and receiver) or a "
        "binding/security mismatch between the sender and the receiver.  Check that sender "
        "and receiver have the same contract and the same binding (including security "
        "requirements, e.g. Message, Transport, None)."
    )
    root = ET.Element(s("Envelope"))
    fault = sub(sub(root, s("Body")), s("Fault"))
    code = sub(fault, "faultcode", "a:ActionNotSupported")
    code.set("xmlns:a", ADDRESSING_NONE_NS)
    sub(fault, "faultstring", message).set("{http://www.w3.org/XML/1998/namespace}lang", "en-US")
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


# -- parsing and dispatch -------------------------------------------------------------------------


@dataclass(frozen=True)
class SoapRequest:
    header: Element | None
    operation: Element
    version: str
    time_zone: str | None


def parse_request(body: bytes) -> SoapRequest:
    """Parse and check a SOAP request; anything malformed raises `SoapFault`."""
    try:
        root = SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise SoapFault(
            "ErrorSchemaValidation",
            "The request failed schema validation: DTD is prohibited in this XML document.",
            violation=type(exc).__name__,
        ) from None
    except ET.ParseError as exc:
        raise SoapFault(
            "ErrorSchemaValidation",
            "The request failed schema validation: the XML is not well-formed.",
            violation=str(exc),
        ) from None
    if root.tag != s("Envelope"):
        raise SoapFault(
            "ErrorSchemaValidation",
            "The request failed schema validation: the root element is not a SOAP 1.1 Envelope.",
            violation=root.tag,
        )
    header = root.find(s("Header"))
    body_el = root.find(s("Body"))
    if body_el is None:
        raise SoapFault(
            "ErrorSchemaValidation", "The request failed schema validation: no SOAP Body."
        )
    ops = list(body_el)
    if len(ops) != 1:
        raise SoapFault(
            "ErrorSchemaValidation",
            "The request failed schema validation: the SOAP Body must hold one operation.",
        )
    version = SERVER_VERSION
    time_zone = None
    if header is not None:
        requested = header.find(t("RequestServerVersion"))
        if requested is not None:
            version = requested.get("Version", "")
            if version not in VERSIONS:
                raise SoapFault(
                    "ErrorInvalidServerVersion",
                    "The specified server version is invalid.",
                )
        tz = header.find(f"{t('TimeZoneContext')}/{t('TimeZoneDefinition')}")
        if tz is not None:
            time_zone = tz.get("Id")
        if header.find(t("ExchangeImpersonation")) is not None:
            raise SoapFault(
                "ErrorImpersonateUserDenied",
                "The account does not have permission to impersonate the requested user.",
            )
    return SoapRequest(header, ops[0], version, time_zone)


@dataclass(frozen=True)
class SoapResult:
    status: int
    body: bytes
    cookies: Mapping[str, str] = field(default_factory=dict)


def fault_result(fault: SoapFault) -> SoapResult:
    return SoapResult(500, fault_envelope(fault))


def handle(
    lab: Lab,
    user: str,
    body: bytes,
    *,
    request_id: str | None = None,
    http_headers: Mapping[str, str] | None = None,
) -> SoapResult:
    """Answer one SOAP request from `user` (already authenticated)."""
    try:
        request = parse_request(body)
    except SoapFault as fault:
        return fault_result(fault)
    op_el = request.operation
    name = op_el.tag.split("}", 1)[-1]
    registered = _OPERATIONS.get(name) if op_el.tag == m(name) else None
    if registered is None:
        return SoapResult(500, action_not_supported(op_el.tag))
    ctx = EwsContext(
        lab=lab,
        user=user.lower(),
        version=request.version,
        time_zone=request.time_zone,
        header=request.header,
        request_id=request_id or str(uuid.uuid4()),
        http_headers={k.lower(): v for k, v in (http_headers or {}).items()},
    )
    if not ctx.at_least(registered.min_version):
        return fault_result(
            SoapFault(
                "ErrorInvalidServerVersion",
                f"{name} is not available in version {ctx.version}.",
            )
        )
    try:
        answer = _run(registered, ctx, op_el)
    except SoapFault as fault:
        return fault_result(fault)
    except EwsError as err:
        answer = response(name, [error_message(name, err)])
    except Exception:
        log.exception("EWS %s failed (request %s)", name, ctx.request_id)
        answer = response(
            name,
            [
                error_message(
                    name,
                    EwsError("ErrorInternalServerError", "An internal server error occurred."),
                )
            ],
        )
    return SoapResult(200, envelope(answer), ctx.cookies)


def _run(registered: Operation, ctx: EwsContext, op_el: Element) -> Element:
    if not registered.transaction:
        return registered.handler(ctx, op_el)
    with ctx.lab.store.transaction():
        return registered.handler(ctx, op_el)


def throttled(back_off_ms: int) -> SoapResult:
    """ErrorServerBusy as Exchange sends it when a user's budget is spent."""
    return fault_result(
        SoapFault(
            "ErrorServerBusy",
            "The server cannot service this request right now. Try again later.",
            back_off_ms=back_off_ms,
        )
    )


def text_of(el: Element | None, default: str = "") -> str:
    """The stripped text of an element, or `default` when absent."""
    if el is None or el.text is None:
        return default
    return el.text.strip()


def children_named(parent: Element, tag: str) -> list[Element]:
    return [child for child in parent if child.tag == tag]


def attrs(**values: Any) -> dict[str, str]:
    """Attribute dict with None dropped and values as strings."""
    return {k: str(v) for k, v in values.items() if v is not None}
