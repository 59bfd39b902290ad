"""What a tag may be: short, lower-case, letters of any script, digits and - _ . (spaces become -)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from tickets.errors import InvalidInput

MAX_TAGS = 20
MAX_LENGTH = 40
_ALLOWED = re.compile(r"[\w.-]+")


def normalize_tags(raw: Iterable[str]) -> list[str]:
    """The tags as stored (sorted, each once); InvalidInput names the first one that cannot be a tag."""
    tags: set[str] = set()
    for text in raw:
        tag = "-".join(text.lower().split())
        if not tag:
            continue
        if len(tag) > MAX_LENGTH or not _ALLOWED.fullmatch(tag):
            raise InvalidInput({"tags": f"{text!r}: at most {MAX_LENGTH} letters, digits and - _ ."})
        tags.add(tag)
    if len(tags) > MAX_TAGS:
        raise InvalidInput({"tags": f"at most {MAX_TAGS} tags on a ticket"})
    return sorted(tags)
