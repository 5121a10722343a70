"""The OData subset of the lab's Graph face: the filters, sorts and selects clients send."""

from __future__ import annotations

import pytest

from exlab.graph.odata import ODataError, compile_filter, order_key, select, sort_items

MAIL = {
    "id": "1",
    "subject": "Haushalt 2027",
    "isRead": False,
    "importance": "high",
    "receivedDateTime": "2026-11-20T08:00:00Z",
    "from": {"emailAddress": {"address": "chef@musterstadt.example", "name": "Dr. Anna Berg"}},
    "flag": {"flagStatus": "flagged"},
    "categories": ["Rot", "Haushalt"],
    "hasAttachments": True,
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("isRead eq false", True),
        ("isRead eq true", False),
        ("importance eq 'High'", True),
        ("from/emailAddress/address eq 'chef@musterstadt.example'", True),
        ("flag/flagStatus eq 'flagged' and hasAttachments eq true", True),
        ("flag/flagStatus eq 'complete' or isRead eq false", True),
        ("not (isRead eq false)", False),
        ("receivedDateTime ge 2026-11-20T00:00:00Z", True),
        ("receivedDateTime lt 2026-11-20T00:00:00Z", False),
        ("startswith(subject,'haus')", True),
        ("contains(subject,'2027')", True),
        ("categories/any(c:c eq 'Rot')", True),
        ("categories/any(c:c eq 'Blau')", False),
        ("subject eq 'it''s'", False),
    ],
)
def test_filter_evaluates_like_graph(text: str, expected: bool) -> None:
    assert compile_filter(text)(MAIL) is expected


@pytest.mark.parametrize("text", ["isRead eq", "subject eq 'open", "(isRead eq true", "a b c"])
def test_malformed_filter_is_refused(text: str) -> None:
    with pytest.raises(ODataError):
        compile_filter(text)


def test_orderby_sorts_on_several_keys_descending_where_asked() -> None:
    items = [
        {"id": "a", "importance": "normal", "receivedDateTime": "2026-11-01T00:00:00Z"},
        {"id": "b", "importance": "high", "receivedDateTime": "2026-11-02T00:00:00Z"},
        {"id": "c", "importance": "normal", "receivedDateTime": "2026-11-03T00:00:00Z"},
    ]
    ordered = sort_items(items, order_key("importance asc,receivedDateTime desc"))
    assert [i["id"] for i in ordered] == ["b", "c", "a"]


def test_bad_orderby_is_refused() -> None:
    with pytest.raises(ODataError):
        order_key("subject sideways")


def test_select_keeps_id_and_annotations() -> None:
    item = {"@odata.etag": "x", **MAIL}
    assert set(select(item, "subject")) == {"@odata.etag", "id", "subject"}
