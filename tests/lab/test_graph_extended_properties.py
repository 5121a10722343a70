"""Graph extended properties on messages and events: accepted on create and update, returned
with $expand, shared with EWS's ExtendedFieldURI."""

from __future__ import annotations

from typing import Any

import httpx

from exlab.graph.serve import GraphLab
from tests.lab import test_graph_api
from tests.lab.test_graph_api import ASSISTENZ, CHEF, Graph

# The Graph lab fixtures, shared with the Graph API tests.
served = test_graph_api.served
calm_lab = test_graph_api.calm_lab

DO_NOT_FORWARD = "Boolean {00020329-0000-0000-C000-000000000046} Name DoNotForward"
TAGS = "StringArray {00020329-0000-0000-C000-000000000046} Name Stichworte"
FLAG = "Integer 0x1090"


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def _expand(*ids: str, multi: bool = False) -> str:
    name = "multiValueExtendedProperties" if multi else "singleValueExtendedProperties"
    return f"{name}($filter=" + " or ".join(f"id eq '{i}'" for i in ids) + ")"


def test_an_event_keeps_the_extended_property_o365_sends_and_returns_it(served: GraphLab) -> None:
    graph = Graph(served, ASSISTENZ)
    created = _ok(
        graph.post(
            f"/users/{CHEF}/events",
            {
                "subject": "Mit Erweiterung",
                "start": {"dateTime": "2027-03-01T09:00:00", "timeZone": "W. Europe Standard Time"},
                "end": {"dateTime": "2027-03-01T10:00:00", "timeZone": "W. Europe Standard Time"},
                "singleValueExtendedProperties": [{"id": DO_NOT_FORWARD, "value": "false"}],
                "multiValueExtendedProperties": [{"id": TAGS, "value": ["Kreistag", "Presse"]}],
            },
        ),
        201,
    )
    url = f"/users/{CHEF}/events/{created['id']}"
    got = _ok(graph.get(url, params={"$expand": _expand(DO_NOT_FORWARD)}))
    assert got["singleValueExtendedProperties"] == [{"id": DO_NOT_FORWARD, "value": "false"}]
    multi = _ok(graph.get(url, params={"$expand": _expand(TAGS, multi=True)}))
    assert multi["multiValueExtendedProperties"] == [{"id": TAGS, "value": ["Kreistag", "Presse"]}]
    _ok(
        graph.patch(
            url, {"singleValueExtendedProperties": [{"id": DO_NOT_FORWARD, "value": "true"}]}
        )
    )
    again = _ok(graph.get(url, params={"$expand": _expand(DO_NOT_FORWARD)}))
    assert again["singleValueExtendedProperties"][0]["value"] == "true"


def test_a_message_takes_tagged_and_named_properties(served: GraphLab) -> None:
    graph = Graph(served, ASSISTENZ)
    draft = _ok(
        graph.post(
            "/me/messages",
            {
                "subject": "Erweitert",
                "singleValueExtendedProperties": [
                    {"id": FLAG, "value": "2"},
                    {"id": "String {00020329-0000-0000-C000-000000000046} Id 0x8001", "value": "x"},
                ],
            },
        ),
        201,
    )
    got = _ok(
        graph.get(
            f"/me/messages/{draft['id']}",
            params={
                "$expand": _expand(FLAG, "String {00020329-0000-0000-C000-000000000046} Id 0x8001")
            },
        )
    )
    assert {p["id"]: p["value"] for p in got["singleValueExtendedProperties"]} == {
        FLAG: "2",
        "String {00020329-0000-0000-C000-000000000046} Id 0x8001": "x",
    }


def test_a_malformed_extended_property_is_400_and_creates_nothing(served: GraphLab) -> None:
    graph = Graph(served, ASSISTENZ)
    before = _ok(graph.get("/me/messages", params={"$filter": "subject eq 'Kaputt'"}))["value"]
    for bad in (
        [{"id": "Integer nonsense", "value": "1"}],
        [{"id": FLAG, "value": "keine Zahl"}],
        [{"id": TAGS, "value": ["a"]}],
    ):
        r = graph.post("/me/messages", {"subject": "Kaputt", "singleValueExtendedProperties": bad})
        assert r.status_code == 400, r.text
    after = _ok(graph.get("/me/messages", params={"$filter": "subject eq 'Kaputt'"}))["value"]
    assert after == before
