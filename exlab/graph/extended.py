"""Extended properties on Graph: `singleValueExtendedProperties` and
`multiValueExtendedProperties` of messages and events, written on create and update and read
back with `$expand=...($filter=id eq '...')`.

A property id names its type and either a MAPI tag (`Integer 0x1090`) or a property set with a
name or number (`String {00020329-0000-0000-c000-000000000046} Name Color`); they are kept under
the same keys EWS's ExtendedFieldURI uses, so one client can write what another reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from exlab.core.mapi import PROPERTY_TYPES, named_key, tag_key, value_from_text, value_text
from exlab.graph.input_error import GraphInputError

SINGLE = "singleValueExtendedProperties"
MULTI = "multiValueExtendedProperties"
_ID = re.compile(
    r"^(?P<type>[A-Za-z]+)\s+(?:(?P<tag>0x[0-9A-Fa-f]{1,4})"
    r"|\{(?P<guid>[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})\}"
    r"\s+(?P<how>Name|Id)\s+(?P<name>\S.*))$"
)
_FILTER_ID = re.compile(r"id\s+eq\s+'((?:[^']|'')*)'", re.IGNORECASE)


def key_of(prop_id: str, *, multi: bool) -> tuple[str, str]:
    """(props key, property type) of a Graph extended property id; GraphInputError if bad."""
    found = _ID.match(prop_id.strip())
    prop_type = found.group("type") if found else ""
    is_array = prop_type.endswith("Array")
    if found is None or prop_type.removesuffix("Array") not in PROPERTY_TYPES or is_array != multi:
        raise GraphInputError(
            f"The extended property id '{prop_id}' is not valid for a "
            f"{'multi' if multi else 'single'}-value extended property.",
            "ErrorInvalidExtendedPropertyValue" if found else "ErrorInvalidProperty",
        )
    if found.group("tag"):
        return tag_key(int(found.group("tag"), 16), prop_type), prop_type
    how, name = found.group("how"), found.group("name").strip()
    prop: int | str = name
    if how == "Id":
        try:
            prop = int(name, 16) if name.lower().startswith("0x") else int(name)
        except ValueError:
            raise GraphInputError(
                f"The extended property id '{prop_id}' has no valid number.", "ErrorInvalidProperty"
            ) from None
    return named_key(found.group("guid"), prop, prop_type), prop_type


def extended_in(kind: str, entries: Any) -> dict[str, Any]:
    """Props from a request's list of extended properties (`kind` is SINGLE or MULTI)."""
    if not isinstance(entries, list):
        raise GraphInputError(f"'{kind}' must be an array.")
    multi = kind == MULTI
    props: dict[str, Any] = {}
    for entry in entries:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("id"), str):
            raise GraphInputError(f"Each of '{kind}' needs an 'id' and a 'value'.")
        key, prop_type = key_of(entry["id"], multi=multi)
        value = entry.get("value")
        try:
            if multi:
                if not isinstance(value, list):
                    raise ValueError("not a list")
                props[key] = [value_from_text(prop_type, str(v)) for v in value]
            else:
                props[key] = value_from_text(prop_type, "" if value is None else str(value))
        except ValueError:
            raise GraphInputError(
                f"The value of extended property '{entry['id']}' does not fit its type.",
                "ErrorInvalidExtendedPropertyValue",
            ) from None
    return props


def expanded(part: str, props: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]] | None:
    """The answer to one `$expand` part naming extended properties, or None for other parts."""
    name = part.split("(", 1)[0].strip()
    if name not in (SINGLE, MULTI):
        return None
    multi = name == MULTI
    values: list[dict[str, Any]] = []
    for raw in _FILTER_ID.findall(part):
        prop_id = raw.replace("''", "'")
        key, _ = key_of(prop_id, multi=multi)
        if key not in props:
            continue
        value = props[key]
        if multi:
            items = value if isinstance(value, list) else [value]
            values.append({"id": prop_id, "value": [value_text(v) for v in items]})
        else:
            values.append({"id": prop_id, "value": value_text(value)})
    return name, values
