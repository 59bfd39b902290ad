"""Reading the numbers people and programs type (ticket numbers, ids, seconds in a CDR) without trusting them:
ASCII digits only (`"²".isdigit()` is true, yet `int("²")` fails) and never past what the store's 64-bit keys
hold (a longer one would make the database refuse the whole query)."""

from __future__ import annotations

MAX_ID = 2**63 - 1


def whole_number(text: str, maximum: int = MAX_ID) -> int | None:
    """0..maximum written in ASCII digits, else None."""
    text = text.strip()
    if not text or not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    value = int(text)
    return value if value <= maximum else None


def as_id(text: str) -> int | None:
    """A positive id or ticket number, else None."""
    value = whole_number(text)
    return value if value else None
