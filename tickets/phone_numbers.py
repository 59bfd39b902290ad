"""Telling the parties of a call apart: withheld caller ids, internal extensions, external numbers.

Pure string work plus `tickets.identities.phone_identity` for E.164; nothing here touches a database.
"""

from __future__ import annotations

import re

from tickets.identities import InvalidAddress, phone_identity

__all__ = [
    "InvalidAddress",
    "WITHHELD",
    "extension_of",
    "extension_from_channel",
    "is_withheld",
    "looks_external",
    "parse_clid",
    "to_e164",
]

WITHHELD = frozenset({"", "anonymous", "restricted", "unknown", "0", "private", "unavailable"})
"""Caller ids PBXs and carriers write when the caller hid their number (compared lower-cased)."""

_PUNCTUATION = re.compile(r"[\s\-().]")
_EXTENSION = re.compile(r"\d{2,5}")
_EXTERNAL = re.compile(r"\+?\d{6,}")
# SIP/201-0000000a, PJSIP/201-00000012, IAX2/201-1234, Local/201@from-internal-0000;1
_CHANNEL_EXTENSION = re.compile(r"^[A-Za-z0-9_]+/(\d{2,5})(?:[-@]|$)")
_CLID = re.compile(r'^\s*(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[^<]*?))\s*(?:<(?P<number>[^>]*)>)?\s*$')


def _compact(raw: str) -> str:
    return _PUNCTUATION.sub("", raw.strip())


def is_withheld(raw: str) -> bool:
    """True for an empty or hidden caller id ("anonymous", "restricted", "unknown", "0", …)."""
    return raw.strip().lower() in WITHHELD


def extension_of(raw: str) -> str | None:
    """The internal extension (2–5 digits, no "+") that `raw` is, or None."""
    compact = _compact(raw)
    return compact if _EXTENSION.fullmatch(compact) else None


def looks_external(raw: str) -> bool:
    """Syntactically a public number: 6+ digits, optionally with "+" and spacing; not validated."""
    return bool(_EXTERNAL.fullmatch(_compact(raw)))


def extension_from_channel(channel: str) -> str | None:
    """The extension in an Asterisk channel name ("PJSIP/201-0000000a", "Local/201@from-queue-…;1") or a device
    ("PJSIP/201") → "201", or None."""
    match = _CHANNEL_EXTENSION.match(channel.strip())
    return match.group(1) if match else None


def to_e164(raw: str, default_region: str | None) -> str:
    """E.164 form of an external number; raises `InvalidAddress` with a plain reason."""
    return phone_identity(raw.strip(), default_region).address


def parse_clid(clid: str) -> tuple[str | None, str | None]:
    """(display name, number) from an Asterisk callerid such as ``"Ivan Petrov" <+74951234567>``.

    Either part may be None. A name that is only the number again, or a withheld marker, is None.
    """
    match = _CLID.match(clid)
    if not match:
        return None, None
    quoted = match.group("quoted")
    name = (quoted.replace('\\"', '"') if quoted is not None else match.group("bare") or "").strip()
    number = (match.group("number") or "").strip() or None
    if name and number is None and _compact(name).lstrip("+").isdigit():
        name, number = "", name  # a bare number without angle brackets
    if not name or is_withheld(name) or (number and _compact(name) == _compact(number)):
        name = None
    return name or None, number
