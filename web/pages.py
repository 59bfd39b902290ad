"""HTML pages for people: Jinja2 with autoescape on (everything a client wrote is text, never markup), in the
reader's language, with the security headers every page carries. The console and the customer portal each keep
their own templates and words and render through one `Pages`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from tickets.language import answer_in, from_accept_language
from web.assets import TEMPLATES, asset

HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                               "frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def reader_language(request: web.Request, prefer: str | None = None) -> str:
    """`prefer` (a person's own setting) when given, else the browser's."""
    if prefer:
        return answer_in(prefer)
    return answer_in(from_accept_language(request.headers.get("Accept-Language", "")))


def reason(exc: Exception) -> str:
    """What a page tells the person about a refused change: each field's problem (InvalidInput, FormErrors), or
    the refusal's own words."""
    fields = getattr(exc, "fields", None)
    return "; ".join(fields.values()) if isinstance(fields, dict) and fields else str(exc)


class Pages:
    """One folder of templates and the words they show, per language."""

    def __init__(self, templates: Path, words: dict[str, dict[str, str]]) -> None:
        self._env = Environment(loader=FileSystemLoader([templates, TEMPLATES]),
                                autoescape=select_autoescape(default=True), undefined=StrictUndefined)
        self._env.globals["asset"] = asset
        self._words = words

    def render(self, template: str, lang: str, *, status: int = 200, headers: dict[str, str] | None = None,
               **context: Any) -> web.Response:
        words = self._words[lang]

        def value(kind: str, raw: object) -> str:
            """A stored value (a status, a channel, a step's name) in the reader's words; kind "raw": as written."""
            if kind == "raw":
                return str(raw)
            return words.get(f"{kind}_{raw}") or str(raw).replace("_", " ")

        html = self._env.get_template(template).render(t=words, v=value, lang=lang, **context)
        return web.Response(text=html, status=status, content_type="text/html",
                            headers={**HEADERS, **(headers or {})})
