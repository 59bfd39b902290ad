"""The languages clients are answered in, read out of whatever a channel reports (a tag, a header)."""

from __future__ import annotations

LANGUAGES = ("en", "ru")
DEFAULT = "en"


def supported(tag: str | None) -> str | None:
    """ru or en from a tag such as ru-RU or en_GB; anything else is unknown."""
    primary = (tag or "").replace("_", "-").split("-")[0].strip().lower()
    return primary if primary in LANGUAGES else None


def answer_in(tag: str | None) -> str:
    """The language to write to a client in: theirs if we have it, else the default."""
    return supported(tag) or DEFAULT


def from_accept_language(header: str) -> str | None:
    """The first supported language of an HTTP Accept-Language header, in the client's order."""
    for part in header.split(","):
        found = supported(part.split(";")[0].strip()[:2])
        if found is not None:
            return found
    return None
