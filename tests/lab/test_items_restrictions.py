"""Restriction and sort evaluation on item props, without the server."""

from __future__ import annotations

from xml.etree.ElementTree import Element

import pytest
from defusedxml.ElementTree import fromstring

from exlab.ews.restrictions import (
    RestrictionError,
    matches,
    parse_restriction,
    parse_sort_order,
    sort_props,
)

T = "http://schemas.microsoft.com/exchange/services/2006/types"


def key_of(el: Element) -> str:
    if el.get("FieldURI"):
        return str(el.get("FieldURI"))
    return f"ext:tag:{el.get('PropertyTag')}:{el.get('PropertyType')}"


def restriction(body: str) -> Element:
    el: Element = fromstring(f'<t:Restriction xmlns:t="{T}">{body}</t:Restriction>')
    return el


def cmp(op: str, uri: str, value: str) -> str:
    return (
        f'<t:{op}><t:FieldURI FieldURI="{uri}"/>'
        f'<t:FieldURIOrConstant><t:Constant Value="{value}"/></t:FieldURIOrConstant></t:{op}>'
    )


FLAG = '<t:ExtendedFieldURI PropertyTag="0x1090" PropertyType="Integer"/>'
MAIL = {
    "item:Subject": "Haushaltsplan 2027 Entwurf",
    "item:Importance": "High",
    "item:Categories": ["Rot", "Finanzen"],
    "item:DateTimeReceived": "2026-11-20T08:30:00Z",
    "message:IsRead": False,
    "message:From": {"name": "Kämmerei", "email": "kaemmerei@musterstadt.example"},
    "ext:tag:0x1090:Integer": 2,
}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (cmp("IsEqualTo", "item:Importance", "high"), True),
        (cmp("IsNotEqualTo", "item:Importance", "High"), False),
        (cmp("IsEqualTo", "message:IsRead", "false"), True),
        (cmp("IsEqualTo", "item:Categories", "finanzen"), True),
        (cmp("IsEqualTo", "message:From", "kaemmerei@musterstadt.example"), True),
        (cmp("IsGreaterThan", "item:DateTimeReceived", "2026-11-20T09:00:00+01:00"), True),
        (cmp("IsLessThanOrEqualTo", "item:DateTimeReceived", "2026-11-20T08:29:59Z"), False),
        (cmp("IsGreaterThanOrEqualTo", "item:DateTimeReceived", "2026-11-20T08:30:00Z"), True),
        (cmp("IsLessThan", "item:Subject", "I"), True),
        (
            f'<t:IsEqualTo>{FLAG}<t:FieldURIOrConstant><t:Constant Value="2"/>'
            "</t:FieldURIOrConstant></t:IsEqualTo>",
            True,
        ),
        (f"<t:Exists>{FLAG}</t:Exists>", True),
        ('<t:Exists><t:FieldURI FieldURI="item:ReminderDueBy"/></t:Exists>', False),
        (cmp("IsEqualTo", "item:ReminderDueBy", "x"), False),
        (cmp("IsNotEqualTo", "item:ReminderDueBy", "x"), False),
        (
            '<t:Contains ContainmentMode="Substring" ContainmentComparison="IgnoreCase">'
            '<t:FieldURI FieldURI="item:Subject"/><t:Constant Value="HAUSHALT"/></t:Contains>',
            True,
        ),
        (
            '<t:Contains ContainmentMode="Prefixed" ContainmentComparison="Exact">'
            '<t:FieldURI FieldURI="item:Subject"/><t:Constant Value="haushalt"/></t:Contains>',
            False,
        ),
        (
            '<t:Contains ContainmentMode="FullString" ContainmentComparison="IgnoreCase">'
            '<t:FieldURI FieldURI="item:Categories"/><t:Constant Value="rot"/></t:Contains>',
            True,
        ),
        (
            "<t:And>"
            + cmp("IsEqualTo", "item:Importance", "High")
            + "<t:Or>"
            + cmp("IsEqualTo", "message:IsRead", "true")
            + "<t:Not>"
            + cmp("IsEqualTo", "item:Categories", "Blau")
            + "</t:Not></t:Or></t:And>",
            True,
        ),
        ("<t:Not>" + cmp("IsEqualTo", "item:Importance", "High") + "</t:Not>", False),
    ],
)
def test_restriction_on_named_and_extended_props(body: str, expected: bool) -> None:
    node = parse_restriction(restriction(body), key_of)
    assert matches(node, MAIL) is expected


def test_field_to_field_comparison() -> None:
    body = (
        '<t:IsLessThan><t:FieldURI FieldURI="calendar:Start"/>'
        '<t:FieldURIOrConstant><t:FieldURI FieldURI="calendar:End"/></t:FieldURIOrConstant>'
        "</t:IsLessThan>"
    )
    node = parse_restriction(restriction(body), key_of)
    props = {"calendar:Start": "2026-01-01T09:00:00Z", "calendar:End": "2026-01-01T10:00:00Z"}
    assert matches(node, props)


@pytest.mark.parametrize(
    "body",
    [
        "<t:Near/>",
        "<t:And/>",
        '<t:IsEqualTo><t:FieldURI FieldURI="item:Subject"/></t:IsEqualTo>',
        '<t:Contains><t:FieldURI FieldURI="item:Subject"/></t:Contains>',
    ],
)
def test_malformed_restrictions_are_refused(body: str) -> None:
    with pytest.raises(RestrictionError):
        parse_restriction(restriction(body), key_of)


def test_sort_descending_by_date_then_ascending_subject_missing_values_lowest() -> None:
    rows = [
        {"item:Subject": "b", "item:DateTimeReceived": "2026-01-02T00:00:00Z"},
        {"item:Subject": "A", "item:DateTimeReceived": "2026-01-02T00:00:00Z"},
        {"item:Subject": "c"},
        {"item:Subject": "d", "item:DateTimeReceived": "2026-01-03T00:00:00Z"},
    ]
    el: Element = fromstring(
        f'<m:SortOrder xmlns:m="x" xmlns:t="{T}">'
        '<t:FieldOrder Order="Descending"><t:FieldURI FieldURI="item:DateTimeReceived"/>'
        '</t:FieldOrder><t:FieldOrder Order="Ascending"><t:FieldURI FieldURI="item:Subject"/>'
        "</t:FieldOrder></m:SortOrder>"
    )
    keys = parse_sort_order(el, key_of)
    got = [r["item:Subject"] for r in sort_props(rows, keys, lambda r: r)]
    assert got == ["d", "A", "b", "c"]
    asc = parse_sort_order(
        fromstring(
            f'<m:SortOrder xmlns:m="x" xmlns:t="{T}"><t:FieldOrder Order="Ascending">{FLAG}'
            "</t:FieldOrder></m:SortOrder>"
        ),
        key_of,
    )
    flagged = [
        {"n": 1, "ext:tag:0x1090:Integer": 2},
        {"n": 2},
        {"n": 3, "ext:tag:0x1090:Integer": 1},
    ]
    assert [r["n"] for r in sort_props(flagged, asc, lambda r: r)] == [2, 3, 1]


def test_importance_compares_and_sorts_by_value_not_name() -> None:
    node = parse_restriction(restriction(cmp("IsGreaterThan", "item:Importance", "Normal")), key_of)
    assert matches(node, {"item:Importance": "High"})
    assert not matches(node, {"item:Importance": "Low"})
    el: Element = fromstring(
        f'<m:SortOrder xmlns:m="x" xmlns:t="{T}"><t:FieldOrder Order="Descending">'
        '<t:FieldURI FieldURI="item:Importance"/></t:FieldOrder></m:SortOrder>'
    )
    rows = [{"item:Importance": v} for v in ("Low", "High", "Normal")]
    got = sort_props(rows, parse_sort_order(el, key_of), lambda r: r)
    assert [r["item:Importance"] for r in got] == ["High", "Normal", "Low"]
