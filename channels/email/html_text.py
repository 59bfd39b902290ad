"""HTML mail bodies as readable plain text: paragraphs, lists and links kept, scripts and styles dropped."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_SKIP_TAGS = frozenset({"script", "style", "head", "title", "template", "noscript", "xml"})
_BLOCK_TAGS = frozenset(
    "address article aside blockquote center dd div dl dt fieldset figure footer form h1 h2 h3 h4 h5 h6 "
    "header hr li main nav ol p pre section table tr ul".split()
)
_PARAGRAPH_TAGS = frozenset("blockquote h1 h2 h3 h4 h5 h6 ol p table ul".split())


class _HtmlText(HTMLParser):
    """Renders HTML as plain text: blocks become lines, blockquotes become `> ` quotes (so the
    preview can strip them like plain-text quotes), scripts and styles vanish."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.skip = 0
        self.quote = 0
        self.pre = 0

    def flush(self, force: bool = False) -> None:
        joined = "".join(self.current)
        self.current = []
        text = joined.rstrip() if self.pre else " ".join(joined.split())
        if text or force:
            self.lines.append("> " * self.quote + text)

    def blank(self) -> None:
        self.flush()
        if self.lines and self.lines[-1] != "":
            self.lines.append("")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self.skip = 0
        if tag in _SKIP_TAGS:
            self.skip += 1
            return
        if tag == "br":
            self.flush(force=True)
        elif tag in _PARAGRAPH_TAGS:
            self.blank()
        elif tag in _BLOCK_TAGS:
            self.flush()
        if tag == "blockquote":
            self.quote += 1
        elif tag == "pre":
            self.pre += 1
        elif tag == "li":
            self.current.append("- ")
        elif tag in ("td", "th"):
            self.current.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
            return
        if tag in _PARAGRAPH_TAGS:
            self.blank()
        elif tag in _BLOCK_TAGS:
            self.flush()
        if tag == "blockquote":
            self.quote = max(0, self.quote - 1)
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.pre:
            first, *rest = data.split("\n")
            self.current.append(first)
            for line in rest:
                self.flush(force=True)
                self.current.append(line)
        else:
            self.current.append(data)


def html_to_text(html: str) -> str:
    """A readable plain-text rendering of an HTML body, for agents and for the reply preview."""
    renderer = _HtmlText()
    try:
        renderer.feed(html)
        renderer.close()
    except Exception:  # noqa: BLE001 - HTMLParser is lenient, but a renderer must never lose the message
        return " ".join(re.sub(r"<[^>]*>", " ", html).split())
    renderer.flush()
    return re.sub(r"\n{3,}", "\n\n", "\n".join(renderer.lines)).strip()
