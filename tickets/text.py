"""The one rule for text the store cannot keep: NUL (U+0000) is removed, and an unpaired surrogate (U+D800–U+DFFF,
what a broken UTF-16 producer or a `surrogateescape` decode leaves) becomes U+FFFD.

PostgreSQL refuses both in text and JSON columns, and SQLite's UTF-8 cannot encode a lone surrogate. Every inbound
message passes `clean_inbound` in the receipt (the change is listed among its `problems`, so an agent knows the text
was touched); every form, JSON body and query string passes `clean` in `web`'s readers, so a login, a search or a
call note cannot carry one into a query either."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from tickets.inbound import Inbound

T = TypeVar("T")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"
MAX_NAME = 200
"""What `customers.name` holds."""


def _fix(match: re.Match[str]) -> str:
    return "" if match.group() == "\x00" else REPLACEMENT


def clean_text(text: str) -> tuple[str, int]:
    """The text as the store can keep it, and how many characters were removed or replaced."""
    if _UNSTORABLE.search(text) is None:  # the common case: one scan, no copy
        return text, 0
    return _UNSTORABLE.subn(_fix, text)


def clean(value: T) -> tuple[T, int]:
    """`value` with every string in it cleaned (through lists, tuples, dicts and dataclasses), and the count."""
    if isinstance(value, str):
        return clean_text(value)  # type: ignore[return-value]  # a str is returned for a str
    if isinstance(value, (list, tuple)):
        items = [clean(item) for item in value]
        total = sum(n for _, n in items)
        return (type(value)(item for item, _ in items) if total else value), total
    if isinstance(value, Mapping):
        pairs = [(clean(key), clean(item)) for key, item in value.items()]
        total = sum(k[1] + v[1] for k, v in pairs)
        return ({k[0]: v[0] for k, v in pairs} if total else value), total  # type: ignore[return-value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes: dict[str, Any] = {}
        total = 0
        for field in dataclasses.fields(value):
            cleaned, count = clean(getattr(value, field.name))
            if count:
                changes[field.name] = cleaned
                total += count
        return (dataclasses.replace(value, **changes) if changes else value), total
    return value, 0


def cleaned_note(count: int) -> str:
    """The problem a message lists when `count` characters of it were cleaned."""
    return (f"{count} character{'s' if count > 1 else ''} the store cannot keep (NUL, unpaired surrogates) "
            "removed or replaced with U+FFFD")


def clean_inbound(inbound: Inbound, already: int = 0) -> Inbound:
    """The message as the store can keep it; what was changed is added to its problems (with `already`: what a
    reader cleaned before it could even validate the message). A sender's name longer than a card holds (a
    display name of a few hundred characters) is cut to fit."""
    if inbound.customer_name and len(inbound.customer_name) > MAX_NAME:
        inbound = dataclasses.replace(inbound, customer_name=inbound.customer_name[:MAX_NAME])
    cleaned, count = clean(inbound)
    if not count + already:
        return inbound
    return dataclasses.replace(cleaned, problems=(*cleaned.problems, cleaned_note(count + already)))
