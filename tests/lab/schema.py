"""Validate the lab's EWS responses against Microsoft's schemas (Exchange2010_SP2).

`assert_valid_ews(xml_bytes)` checks the SOAP Body's child (and the ServerVersionInfo header)
against messages.xsd/types.xsd. The schemas live beside the repository in
`../shared/reference/ews-schema` (or `/work/shared/reference/ews-schema`); without them the
calling test is skipped with a message saying so.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import pytest
from lxml import etree

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
T_NS = "http://schemas.microsoft.com/exchange/services/2006/types"
REPO = Path(__file__).resolve().parents[2]
CANDIDATES = (
    REPO.parent / "shared" / "reference" / "ews-schema",
    Path("/work/shared/reference/ews-schema"),
)


def schema_dir() -> Path | None:
    for candidate in CANDIDATES:
        if (candidate / "messages.xsd").is_file() and (candidate / "types.xsd").is_file():
            return candidate
    return None


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


# types.xsd imports the xml: namespace without a location; libxml2 needs a declaration of
# xml:lang, so the schemas are compiled from a scratch copy that points at this small one.
XML_XSD = b"""<?xml version="1.0"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
           targetNamespace="http://www.w3.org/XML/1998/namespace">
  <xs:attribute name="lang" type="xs:string"/>
  <xs:attribute name="space" type="xs:NCName"/>
  <xs:attribute name="base" type="xs:anyURI"/>
  <xs:attribute name="id" type="xs:ID"/>
</xs:schema>
"""
XS_NS = "http://www.w3.org/2001/XMLSchema"
XML_NS = "http://www.w3.org/XML/1998/namespace"


@lru_cache(maxsize=1)
def ews_schema() -> etree.XMLSchema:
    folder = schema_dir()
    if folder is None:
        pytest.skip("EWS schemas not found (expected ../shared/reference/ews-schema)")
    scratch = Path(tempfile.mkdtemp(prefix="ews-schema-"))
    try:
        (scratch / "xml.xsd").write_bytes(XML_XSD)
        types = etree.parse(str(folder / "types.xsd"), _parser())
        for imp in types.getroot().iter(f"{{{XS_NS}}}import"):
            if imp.get("namespace") == XML_NS and not imp.get("schemaLocation"):
                imp.set("schemaLocation", "xml.xsd")
        types.write(str(scratch / "types.xsd"))
        shutil.copyfile(folder / "messages.xsd", scratch / "messages.xsd")
        return etree.XMLSchema(etree.parse(str(scratch / "messages.xsd"), _parser()))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def body_child(xml_bytes: bytes) -> etree._Element:
    root = etree.fromstring(xml_bytes, _parser())
    body = root.find(f"{{{SOAP_NS}}}Body")
    assert body is not None and len(body) == 1, "a SOAP envelope with one Body child"
    return body[0]


def assert_valid_ews(xml_bytes: bytes) -> None:
    """Fail with the schema's own complaints when the response does not validate."""
    if schema_dir() is None:
        pytest.skip("EWS schemas not found (expected ../shared/reference/ews-schema)")
    schema = ews_schema()
    root = etree.fromstring(xml_bytes, _parser())
    targets = [body_child(xml_bytes)]
    info = root.find(f"{{{SOAP_NS}}}Header/{{{T_NS}}}ServerVersionInfo")
    if info is not None:
        targets.append(info)
    for target in targets:
        doc = etree.ElementTree(copy.deepcopy(target))
        if not schema.validate(doc):
            problems = "\n".join(f"line {e.line}: {e.message}" for e in list(schema.error_log)[:10])
            raise AssertionError(f"{target.tag} does not validate:\n{problems}")
