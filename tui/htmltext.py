"""HTML mail as readable terminal text: paragraphs, lists, links, quotes; no scripts, no styles.

Uses the standard library's tolerant HTML tokenizer (mail HTML is rarely well-formed); it resolves
no entities beyond HTML's own and fetches nothing.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCK = {
    "p", "div", "section", "article", "header", "footer", "table", "tr", "ul", "ol",
    "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "hr", "address",
}  # fmt: skip
_SKIP = {"script", "style", "head", "title", "noscript", "template"}


class _TextBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[tuple[int, list[str]]] = [(0, [])]
        self.skip_depth = 0
        self.pre_depth = 0
        self.quote_depth = 0
        self.lists: list[list[int]] = []  # per open list: [counter] or [-1] for bullets
        self.link: str | None = None
        self.link_text: list[str] = []

    # Blocks end lines; the final pass squeezes blank lines. Each line keeps its quote depth.
    def _newline(self, blank: bool = False) -> None:
        if blank:
            self.lines.append((self.quote_depth, []))
        self.lines.append((self.quote_depth, []))

    def _emit(self, text: str) -> None:
        depth, parts = self.lines[-1]
        if not "".join(parts).strip():
            self.lines[-1] = (max(depth, self.quote_depth), parts)
        parts.append(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip_depth += 1
            return
        if tag == "br":
            self._newline()
        elif tag == "li":
            self._newline()
            indent = "  " * max(len(self.lists) - 1, 0)
            if self.lists and self.lists[-1][0] >= 0:
                self.lists[-1][0] += 1
                self._emit(f"{indent}{self.lists[-1][0]}. ")
            else:
                self._emit(f"{indent}• ")
        elif tag in ("ul", "ol"):
            self.lists.append([0 if tag == "ol" else -1])
            self._newline()
        elif tag == "blockquote":
            self.quote_depth += 1
            self._newline(blank=True)
        elif tag == "pre":
            self.pre_depth += 1
            self._newline(blank=True)
        elif tag == "hr":
            self._newline()
            self._emit("─" * 40)
            self._newline()
        elif tag in ("td", "th"):
            self._emit("  ")
        elif tag == "a":
            self.link = dict(attrs).get("href")
            self.link_text = []
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self._emit(f"[{alt}]")
        elif tag in _BLOCK:
            self._newline(blank=tag not in ("div", "tr"))

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip_depth = max(self.skip_depth - 1, 0)
            return
        if tag in ("ul", "ol") and self.lists:
            self.lists.pop()
            self._newline()
        elif tag == "blockquote":
            self.quote_depth = max(self.quote_depth - 1, 0)
            self._newline(blank=True)
        elif tag == "pre":
            self.pre_depth = max(self.pre_depth - 1, 0)
            self._newline(blank=True)
        elif tag == "a":
            text = "".join(self.link_text).strip()
            if self.link and self.link.startswith(("http:", "https:", "mailto:")):
                target = self.link.removeprefix("mailto:")
                if target != text:
                    self._emit(f" <{target}>")
            self.link = None
        elif tag in _BLOCK:
            self._newline(blank=tag not in ("div", "tr"))

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        if not self.pre_depth:
            data = re.sub(r"\s+", " ", data)
        if self.link is not None:
            self.link_text.append(data)
        if self.pre_depth and "\n" in data:
            first, *rest = data.split("\n")
            self._emit(first)
            for part in rest:
                self._newline()
                self._emit(part)
            return
        self._emit(data)


def html_to_text(html: str) -> str:
    """Readable plain text from an HTML mail body."""
    builder = _TextBuilder()
    builder.feed(html)
    builder.close()
    lines: list[str] = []
    for depth, parts in builder.lines:
        line = "".join(parts).strip(" ").rstrip()
        if depth and line:
            line = "> " * min(depth, 5) + line
        lines.append(line)
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()
