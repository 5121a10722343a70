"""Restriction and SortOrder evaluation on item props, as Exchange's store does it.

``parse_restriction`` turns a ``t:Restriction`` (or any search expression) into a small tree;
``matches`` evaluates it against an item's props dict (keys are EWS FieldURI names and
``ext:`` keys; the caller supplies the path-to-key mapping). Semantics follow MAPI: a
comparison on a missing property is false (also ``IsNotEqualTo``); strings compare without
regard to case; multi-valued properties (categories, recipients) match when any value does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from xml.etree.ElementTree import Element

T_NS = "{http://schemas.microsoft.com/exchange/services/2006/types}"
PATH_TAGS = frozenset({f"{T_NS}FieldURI", f"{T_NS}IndexedFieldURI", f"{T_NS}ExtendedFieldURI"})
Op = Literal["eq", "ne", "gt", "ge", "lt", "le"]
CMP_TAGS: dict[str, Op] = {
    "IsEqualTo": "eq",
    "IsNotEqualTo": "ne",
    "IsGreaterThan": "gt",
    "IsGreaterThanOrEqualTo": "ge",
    "IsLessThan": "lt",
    "IsLessThanOrEqualTo": "le",
}

KeyOf = Callable[[Element], str]


# Enumerations Exchange compares and sorts by their value, not their name.
ENUM_ORDER: dict[str, dict[str, int]] = {
    "item:Importance": {"low": 0, "normal": 1, "high": 2},
    "item:Sensitivity": {"normal": 0, "personal": 1, "private": 2, "confidential": 3},
    "task:Status": {
        "notstarted": 0,
        "inprogress": 1,
        "completed": 2,
        "waitingonothers": 3,
        "deferred": 4,
    },
}


class RestrictionError(ValueError):
    """The restriction uses an element or value the lab does not understand."""


@dataclass(frozen=True)
class And:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    part: Node


@dataclass(frozen=True)
class Compare:
    op: Op
    key: str
    constant: str | None = None
    other_key: str | None = None


@dataclass(frozen=True)
class Exists:
    key: str


@dataclass(frozen=True)
class Contains:
    key: str
    value: str
    mode: str = "Substring"
    comparison: str = "IgnoreCase"


Node = And | Or | Not | Compare | Exists | Contains


def _local(el: Element) -> str:
    return el.tag.rsplit("}", 1)[-1]


def _path(el: Element, key_of: KeyOf) -> str:
    for child in el:
        if child.tag in PATH_TAGS:
            return key_of(child)
    raise RestrictionError(f"{_local(el)} names no property")


def parse_restriction(el: Element, key_of: KeyOf) -> Node:
    """Parse ``t:Restriction`` or one search expression element."""
    name = _local(el)
    if name == "Restriction":
        children = list(el)
        if len(children) != 1:
            raise RestrictionError("a Restriction holds exactly one search expression")
        return parse_restriction(children[0], key_of)
    if name in ("And", "Or"):
        parts = tuple(parse_restriction(c, key_of) for c in el)
        if not parts:
            raise RestrictionError(f"{name} needs at least one expression")
        return And(parts) if name == "And" else Or(parts)
    if name == "Not":
        children = list(el)
        if len(children) != 1:
            raise RestrictionError("Not holds exactly one expression")
        return Not(parse_restriction(children[0], key_of))
    if name == "Exists":
        return Exists(_path(el, key_of))
    if name == "Contains":
        const = el.find(f"{T_NS}Constant")
        if const is None:
            raise RestrictionError("Contains needs a Constant")
        return Contains(
            _path(el, key_of),
            const.get("Value", ""),
            el.get("ContainmentMode", "Substring"),
            el.get("ContainmentComparison", "IgnoreCase"),
        )
    if name in CMP_TAGS:
        op = CMP_TAGS[name]
        key = _path(el, key_of)
        right = el.find(f"{T_NS}FieldURIOrConstant")
        if right is None or len(right) != 1:
            raise RestrictionError(f"{name} needs FieldURIOrConstant")
        target = right[0]
        if _local(target) == "Constant":
            return Compare(op, key, constant=target.get("Value", ""))
        if target.tag in PATH_TAGS:
            return Compare(op, key, other_key=key_of(target))
        raise RestrictionError(f"{name}: unexpected {_local(target)}")
    raise RestrictionError(f"unsupported search expression {name}")


def _parse_dt(s: str) -> datetime | None:
    if len(s) < 10 or s[4:5] != "-" or s[7:8] != "-":
        return None
    try:
        d = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    return d if d.tzinfo else None


def _scalars(value: Any) -> list[Any]:
    """The comparable values of a stored prop: lists give each element, mailboxes their address."""
    if value is None:
        return []
    if isinstance(value, list):
        out: list[Any] = []
        for v in value:
            out.extend(_scalars(v))
        return out
    if isinstance(value, dict):
        return [v for v in (value.get("email"), value.get("name")) if v]
    return [value]


def _coerce(stored: Any, constant: str) -> tuple[Any, Any] | None:
    """Both sides as one comparable type, or None when they cannot be compared."""
    if isinstance(stored, bool):
        low = constant.strip().lower()
        if low not in ("true", "false", "1", "0"):
            return None
        return stored, low in ("true", "1")
    if isinstance(stored, int | float):
        try:
            return float(stored), float(constant)
        except ValueError:
            return None
    text = str(stored)
    left, right = _parse_dt(text), _parse_dt(constant)
    if left is not None and right is not None:
        return left, right
    return text.casefold(), constant.casefold()


def _compare(op: Op, a: Any, b: Any) -> bool:
    try:
        if op == "eq":
            return bool(a == b)
        if op == "ne":
            return bool(a != b)
        if op == "gt":
            return bool(a > b)
        if op == "ge":
            return bool(a >= b)
        if op == "lt":
            return bool(a < b)
        return bool(a <= b)
    except TypeError:
        return False


def _contains(node: Contains, stored: Any) -> bool:
    needle = node.value
    fold = node.comparison != "Exact"
    for v in _scalars(stored):
        hay = str(v)
        if fold:
            hay, n = hay.casefold(), needle.casefold()
        else:
            n = needle
        mode = node.mode
        if mode == "FullString" and hay == n:
            return True
        if mode == "Prefixed" and hay.startswith(n):
            return True
        if mode in ("Substring", "ExactPhrase") and n in hay:
            return True
        if mode in ("PrefixOnWords", "PrefixedOnWords") and any(
            w.startswith(n) for w in hay.split()
        ):
            return True
    return False


def matches(node: Node, props: Mapping[str, Any]) -> bool:
    """Whether an item with these props satisfies the restriction."""
    if isinstance(node, And):
        return all(matches(p, props) for p in node.parts)
    if isinstance(node, Or):
        return any(matches(p, props) for p in node.parts)
    if isinstance(node, Not):
        return not matches(node.part, props)
    if isinstance(node, Exists):
        return props.get(node.key) not in (None, [], "")
    if isinstance(node, Contains):
        return _contains(node, props.get(node.key))
    left_values = _scalars(props.get(node.key))
    if node.constant is not None:
        constants = [node.constant]
    else:
        constants = [str(v) for v in _scalars(props.get(node.other_key or ""))]
    order = ENUM_ORDER.get(node.key)
    if order is not None:
        left_values = [order.get(str(v).lower(), -1) for v in left_values]
        constants = [str(order.get(c.lower(), -1)) for c in constants]
    if node.op == "ne":
        if not left_values or not constants:
            return False
        return all(
            (pair := _coerce(v, c)) is not None and _compare("ne", *pair)
            for v in left_values
            for c in constants
        )
    for v in left_values:
        for c in constants:
            pair = _coerce(v, c)
            if pair is not None and _compare(node.op, *pair):
                return True
    return False


@dataclass(frozen=True)
class SortKey:
    key: str
    ascending: bool = True


def parse_sort_order(el: Element | None, key_of: KeyOf) -> list[SortKey]:
    """``m:SortOrder`` with ``t:FieldOrder Order="Ascending|Descending"`` children."""
    if el is None:
        return []
    out = []
    for order in el:
        if _local(order) != "FieldOrder":
            raise RestrictionError(f"unexpected {_local(order)} in SortOrder")
        direction = order.get("Order", "Ascending")
        if direction not in ("Ascending", "Descending"):
            raise RestrictionError(f"unknown sort direction {direction!r}")
        out.append(SortKey(_path(order, key_of), direction == "Ascending"))
    return out


def _sort_value(value: Any, key: str = "") -> tuple[int, Any]:
    vals = _scalars(value)
    if not vals:
        return (0, 0)
    v = vals[0]
    order = ENUM_ORDER.get(key)
    if order is not None:
        return (1, float(order.get(str(v).lower(), -1)))
    if isinstance(v, bool | int | float):
        return (1, float(v))
    return (2, str(v).casefold())


class _Desc:
    """Wraps a sort value so that ``sorted`` orders it descending within a tuple key."""

    __slots__ = ("v",)

    def __init__(self, v: tuple[int, Any]) -> None:
        self.v = v

    def __lt__(self, other: _Desc) -> bool:
        return bool(other.v < self.v)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.v == other.v

    def __hash__(self) -> int:
        return hash(self.v)


def sort_props(
    rows: Sequence[Any], keys: Sequence[SortKey], props_of: Callable[[Any], Mapping[str, Any]]
) -> list[Any]:
    """Rows ordered by the sort keys; missing values sort lowest, as in Exchange."""
    if not keys:
        return list(rows)

    def key(row: Any) -> tuple[Any, ...]:
        p = props_of(row)
        out: list[Any] = []
        for k in keys:
            v = _sort_value(p.get(k.key), k.key)
            out.append(v if k.ascending else _Desc(v))
        return tuple(out)

    return sorted(rows, key=key)
