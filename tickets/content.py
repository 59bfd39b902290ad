"""Message content rules: HTML is sanitised once, before anything is stored or shown."""

from __future__ import annotations

import nh3


def sanitize_html(html: str | None) -> str | None:
    if html is None:
        return None
    return nh3.clean(html)


def preview(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
