"""The OData query subset Graph's mail and calendar endpoints accept: $filter, $orderby, $select.

`$filter` is parsed into a small tree and evaluated on the Graph JSON of an item, so paths are
Graph property paths (`from/emailAddress/address`, `flag/flagStatus`). Supported: `eq ne gt ge
lt le`, `and or not`, parentheses, `startswith(p,'x')`, `contains(p,'x')`,
`p/any(a:a eq 'x')` on collections (categories), literals 'text' (with '' escaping), numbers,
true/false/null and bare ISO datetimes. Anything else is a 400 `BadRequest` as Graph answers it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

Json = Mapping[str, Any]
J = TypeVar("J", bound=Mapping[str, Any])


class ODataError(ValueError):
    """A query option Graph would refuse (answered as 400 BadRequest)."""


_TOKEN = re.compile(
    r"""\s*(?:
    (?P<str>'(?:[^']|'')*')
  | (?P<dt>\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d)?)
  | (?P<num>-?\d+(?:\.\d+)?)
  | (?P<punct>[(),:])
  | (?P<word>[A-Za-z_@][A-Za-z0-9_./@]*)
)""",
    re.VERBOSE,
)
COMPARE = {"eq", "ne", "gt", "ge", "lt", "le"}


@dataclass(frozen=True)
class Path:
    parts: tuple[str, ...]


@dataclass(frozen=True)
class Lit:
    value: Any


@dataclass(frozen=True)
class Cmp:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class BoolOp:
    op: str
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    item: Any


@dataclass(frozen=True)
class Func:
    name: str
    path: Path
    arg: Any


@dataclass(frozen=True)
class Any_:
    path: Path
    var: str
    cond: Any


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ODataError(f"Invalid filter clause: syntax error at position {pos} in '{text}'.")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.text = text

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise ODataError(f"Invalid filter clause: unexpected end of '{self.text}'.")
        self.i += 1
        return tok

    def expect(self, value: str) -> None:
        tok = self.take()
        if tok[1] != value:
            raise ODataError(f"Invalid filter clause: expected '{value}' in '{self.text}'.")

    def parse(self) -> Any:
        node = self.or_()
        if self.peek() is not None:
            raise ODataError(f"Invalid filter clause: unexpected '{self.peek()[1]}'.")  # type: ignore[index]
        return node

    def or_(self) -> Any:
        items = [self.and_()]
        while (tok := self.peek()) and tok == ("word", "or"):
            self.take()
            items.append(self.and_())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def and_(self) -> Any:
        items = [self.unary()]
        while (tok := self.peek()) and tok == ("word", "and"):
            self.take()
            items.append(self.unary())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def unary(self) -> Any:
        tok = self.peek()
        if tok == ("word", "not"):
            self.take()
            return Not(self.unary())
        if tok == ("punct", "("):
            self.take()
            node = self.or_()
            self.expect(")")
            return node
        left = self.operand()
        nxt = self.peek()
        if nxt and nxt[0] == "word" and nxt[1] in COMPARE:
            self.take()
            return Cmp(nxt[1], left, self.operand())
        if isinstance(left, Func | Any_):
            return left
        if isinstance(left, Path):  # a bare boolean property: `isRead`
            return Cmp("eq", left, Lit(True))
        raise ODataError(f"Invalid filter clause: a comparison is missing in '{self.text}'.")

    def operand(self) -> Any:
        kind, value = self.take()
        if kind == "str":
            return Lit(value[1:-1].replace("''", "'"))
        if kind == "num":
            return Lit(float(value) if "." in value else int(value))
        if kind == "dt":
            return Lit(parse_datetime(value))
        if kind != "word":
            raise ODataError(f"Invalid filter clause: unexpected '{value}'.")
        if value in ("true", "false"):
            return Lit(value == "true")
        if value == "null":
            return Lit(None)
        if value in ("startswith", "contains", "endswith") and self.peek() == ("punct", "("):
            self.take()
            path = self.operand()
            self.expect(",")
            arg = self.operand()
            self.expect(")")
            if not isinstance(path, Path):
                raise ODataError(f"{value} needs a property as its first argument.")
            return Func(value, path, arg)
        if value.endswith("/any") and self.peek() == ("punct", "("):
            self.take()
            var = self.take()[1]
            self.expect(":")
            cond = self.or_()
            self.expect(")")
            return Any_(Path(tuple(value[: -len("/any")].split("/"))), var, cond)
        return Path(tuple(value.split("/")))


def parse_filter(text: str) -> Any:
    return _Parser(text).parse()


def parse_datetime(text: str) -> datetime:
    """ISO 8601 as Graph writes and reads it (7 fraction digits, Z or offset or naive = UTC)."""
    value = text.strip().replace("Z", "+00:00")
    if "." in value:
        head, _, rest = value.partition(".")
        digits = re.match(r"\d+", rest)
        frac = digits.group(0) if digits else ""
        value = head + "." + frac[:6].ljust(6, "0") + rest[len(frac) :]
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ODataError(f"'{text}' is not a valid date and time.") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _resolve(obj: Any, parts: Sequence[str]) -> Any:
    for part in parts:
        if not isinstance(obj, Mapping):
            return None
        match = next((k for k in obj if k.lower() == part.lower()), None)
        obj = obj.get(match) if match is not None else None
    return obj


def _value(node: Any, item: Json, env: Mapping[str, Any]) -> Any:
    if isinstance(node, Lit):
        return node.value
    if isinstance(node, Path):
        head, *rest = node.parts
        if head in env:
            return _resolve(env[head], rest)
        return _resolve(item, node.parts)
    raise ODataError("Invalid filter clause: unsupported operand.")


def _norm(a: Any, b: Any) -> tuple[Any, Any]:
    if isinstance(b, datetime) and isinstance(a, str):
        try:
            return parse_datetime(a), b
        except ODataError:
            return a, b
    if isinstance(a, datetime) and isinstance(b, str):
        return a, parse_datetime(b)
    if isinstance(a, str) and isinstance(b, str):
        return a.lower(), b.lower()
    return a, b


def _compare(op: str, a: Any, b: Any) -> bool:
    a, b = _norm(a, b)
    if op == "eq":
        return bool(a == b)
    if op == "ne":
        return bool(a != b)
    if a is None or b is None:
        return False
    try:
        if op == "gt":
            return bool(a > b)
        if op == "ge":
            return bool(a >= b)
        if op == "lt":
            return bool(a < b)
        return bool(a <= b)
    except TypeError:
        return False


def matches(node: Any, item: Json, env: Mapping[str, Any] | None = None) -> bool:
    env = env or {}
    if isinstance(node, BoolOp):
        results = (matches(n, item, env) for n in node.items)
        return all(results) if node.op == "and" else any(results)
    if isinstance(node, Not):
        return not matches(node.item, item, env)
    if isinstance(node, Cmp):
        return _compare(node.op, _value(node.left, item, env), _value(node.right, item, env))
    if isinstance(node, Func):
        hay = _value(node.path, item, env)
        needle = _value(node.arg, item, env)
        if not isinstance(hay, str) or not isinstance(needle, str):
            return False
        hay, needle = hay.lower(), needle.lower()
        if node.name == "startswith":
            return hay.startswith(needle)
        if node.name == "endswith":
            return hay.endswith(needle)
        return needle in hay
    if isinstance(node, Any_):
        values = _value(node.path, item, env)
        if not isinstance(values, list):
            return False
        return any(matches(node.cond, item, {**env, node.var: v}) for v in values)
    raise ODataError("Invalid filter clause.")


def compile_filter(text: str | None) -> Callable[[Json], bool]:
    if not text:
        return lambda item: True
    tree = parse_filter(text)
    return lambda item: matches(tree, item)


def order_key(text: str | None) -> list[tuple[tuple[str, ...], bool]]:
    """`$orderby=receivedDateTime desc,subject` as [(path parts, descending)]."""
    if not text:
        return []
    out = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise ODataError(f"Invalid $orderby clause '{text}'.")
        out.append((tuple(words[0].split("/")), len(words) == 2 and words[1] == "desc"))
    return out


def sort_items(items: Sequence[J], keys: list[tuple[tuple[str, ...], bool]]) -> list[J]:
    """Stable multi-key sort; missing values sort first ascending (last descending), as Graph."""
    out = list(items)
    for parts, desc in reversed(keys):

        def key(item: J, parts: tuple[str, ...] = parts) -> tuple[int, Any]:
            value = _resolve(item, parts)
            if value is None:
                return (0, "")
            if isinstance(value, str):
                return (1, value.lower())
            if isinstance(value, bool | int | float):
                return (1, value)
            return (1, str(value))

        out = sorted(out, key=key, reverse=desc)
    return out


def select(item: Json, fields: str | None, always: Sequence[str] = ("id",)) -> dict[str, Any]:
    """Project `$select=subject,from` (id and OData annotations stay)."""
    if not fields:
        return dict(item)
    wanted = {f.strip().lower() for f in fields.split(",") if f.strip()}
    wanted |= {a.lower() for a in always}
    return {k: v for k, v in item.items() if k.lower() in wanted or k.startswith("@odata")}


def search_matches(query: str, item: Json) -> bool:
    """`$search="words"` on messages: every word in subject, body, sender or recipients
    (the AQS subset the EWS face's QueryString matches too)."""
    words = [w.strip('"').split(":", 1)[-1].casefold() for w in query.strip('"').split()]
    parts = [
        str(item.get("subject") or ""),
        str((item.get("body") or {}).get("content") or ""),
        str(_resolve(item, ("from", "emailAddress", "address")) or ""),
        str(_resolve(item, ("from", "emailAddress", "name")) or ""),
    ]
    for r in item.get("toRecipients") or ():
        parts.append(str(_resolve(r, ("emailAddress", "address")) or ""))
        parts.append(str(_resolve(r, ("emailAddress", "name")) or ""))
    hay = " ".join(parts).casefold()
    return all(w in hay for w in words if w)
