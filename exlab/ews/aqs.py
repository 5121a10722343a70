"""AQS, the Advanced Query Syntax of FindItem's `QueryString`, over an item's properties.

What Outlook's search box sends: words and "quoted phrases", each optionally limited to a
property (`subject:`, `body:`, `from:`, `to:`, `cc:`, `participants:`, `category:`,
`attachment:`), combined with AND (implied between terms), OR, NOT (or a leading `-`) and
parentheses. A term without a property looks in the subject, the body, the sender and the
recipients, as Exchange's full-text search does. Matching ignores case.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Props = Mapping[str, Any]


class AqsError(ValueError):
    """A query string that cannot be read (unbalanced quotes or parentheses)."""


def _people(value: Any) -> list[str]:
    entries = value if isinstance(value, list) else [value] if value else []
    out: list[str] = []
    for entry in entries:
        if isinstance(entry, Mapping):
            out.extend(str(entry.get(k) or "") for k in ("name", "email"))
    return out


def _body(p: Props) -> list[str]:
    body = p.get("item:Body")
    return [str(body.get("text") or "")] if isinstance(body, Mapping) else []


def _subject(p: Props) -> list[str]:
    return [str(p.get("item:Subject") or "")]


def _recipients(p: Props, *keys: str) -> list[str]:
    return [text for key in keys for text in _people(p.get(key))]


FIELDS: dict[str, Callable[[Props], list[str]]] = {
    "subject": _subject,
    "body": _body,
    "from": lambda p: _people(p.get("message:From")) + _people(p.get("message:Sender")),
    "to": lambda p: _recipients(p, "message:ToRecipients"),
    "cc": lambda p: _recipients(p, "message:CcRecipients"),
    "participants": lambda p: _recipients(
        p, "message:From", "message:ToRecipients", "message:CcRecipients"
    ),
    "category": lambda p: [str(c) for c in p.get("item:Categories") or []],
    "attachment": lambda p: [str(a.get("name") or "") for a in p.get("item:Attachments") or []],
}
FREE_TEXT = ("subject", "body", "from", "to", "cc")


@dataclass(frozen=True)
class Term:
    field: str | None
    text: str


@dataclass(frozen=True)
class Not:
    node: Node


@dataclass(frozen=True)
class All:
    nodes: tuple[Node, ...]


@dataclass(frozen=True)
class Any_:
    nodes: tuple[Node, ...]


Node = Term | Not | All | Any_

_TOKEN = re.compile(r'\s*(?:(\()|(\))|([A-Za-z]+:)?"([^"]*)"|([^\s()"]+))')


def _tokens(query: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    query = query.strip()
    while pos < len(query):
        found = _TOKEN.match(query, pos)
        if found is None or found.end() == pos:
            raise AqsError(f"cannot read the query near {query[pos : pos + 20]!r}")
        pos = found.end()
        opening, closing, prefix, quoted, word = found.groups()
        if opening:
            out.append(("(", "("))
        elif closing:
            out.append((")", ")"))
        elif quoted is not None:
            out.append(("term", (prefix or "") + quoted))
        elif word:
            out.append(("term", word))
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def any_of(self) -> Node:
        nodes = [self.all_of()]
        while self.peek() == ("term", "OR"):
            self.take()
            nodes.append(self.all_of())
        return nodes[0] if len(nodes) == 1 else Any_(tuple(nodes))

    def all_of(self) -> Node:
        nodes = [self.unary()]
        while (token := self.peek()) is not None and token not in (("term", "OR"), (")", ")")):
            if token == ("term", "AND"):
                self.take()
            nodes.append(self.unary())
        return nodes[0] if len(nodes) == 1 else All(tuple(nodes))

    def unary(self) -> Node:
        token = self.peek()
        if token is None:
            raise AqsError("the query ends where a term was expected")
        if token == ("term", "NOT"):
            self.take()
            return Not(self.unary())
        if token == ("(", "("):
            self.take()
            node = self.any_of()
            if self.peek() != (")", ")"):
                raise AqsError("a parenthesis is not closed")
            self.take()
            return node
        if token[0] == ")":
            raise AqsError("a closing parenthesis has no opening one")
        text = self.take()[1]
        if text.startswith("-") and len(text) > 1:
            return Not(_term(text[1:]))
        return _term(text)


def _term(text: str) -> Term:
    field, sep, rest = text.partition(":")
    if sep and field.lower() in FIELDS and rest:
        return Term(field.lower(), rest.casefold())
    return Term(None, text.casefold())


def parse(query: str) -> Node:
    """The query as a tree; AqsError when it cannot be read."""
    parser = _Parser(_tokens(query))
    if not parser.tokens:
        raise AqsError("the query is empty")
    node = parser.any_of()
    if parser.peek() is not None:
        raise AqsError("a closing parenthesis has no opening one")
    return node


def matches(node: Node, props: Props) -> bool:
    """Whether an item's properties satisfy the query."""
    if isinstance(node, Term):
        fields = (node.field,) if node.field else FREE_TEXT
        return any(node.text in text.casefold() for f in fields for text in FIELDS[f](props))
    if isinstance(node, Not):
        return not matches(node.node, props)
    if isinstance(node, All):
        return all(matches(n, props) for n in node.nodes)
    return any(matches(n, props) for n in node.nodes)
