"""Who a web-chat visitor is: a random token kept in their browser; we store only a hash of it.

The token is the visitor's key to their conversation, so it never reaches the database or the agents:
the visitor id (its hash) is the customer identity and the prefix of their messages' external ids.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from tickets.identities import InvalidAddress, email_identity

CHANNEL = "webchat"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_NAME = 200


def new_token() -> str:
    return secrets.token_urlsafe(32)


def valid_token(token: object) -> str | None:
    return token if isinstance(token, str) and _TOKEN.match(token) else None


def visitor_id(token: str) -> str:
    return hashlib.sha256(f"webchat:{token}".encode()).hexdigest()[:32]


def sender_prefix(visitor: str) -> str:
    """Every message a visitor sends has an external id starting with this: their history is found by it."""
    return f"{visitor}:"


def external_id(visitor: str, client_id: str) -> str:
    """The id the browser gave the message: resending it after a lost answer stores it once."""
    return f"{sender_prefix(visitor)}{client_id}"


def valid_client_id(value: object) -> str | None:
    return value if isinstance(value, str) and _CLIENT_ID.match(value) else None


@dataclass(frozen=True)
class Profile:
    """What the visitor chose to tell about themselves; both optional."""

    name: str | None = None
    email: str | None = None


def parse_profile(name: object, email: object) -> tuple[Profile, dict[str, str]]:
    """The profile and per-field errors (an invalid email is refused, never silently dropped)."""
    errors: dict[str, str] = {}
    clean_name: str | None = None
    clean_email: str | None = None
    if name not in (None, ""):
        if not isinstance(name, str) or len(name.strip()) > MAX_NAME:
            errors["name"] = f"a name of at most {MAX_NAME} characters"
        else:
            clean_name = " ".join(name.split()) or None
    if email not in (None, ""):
        try:
            if not isinstance(email, str):
                raise InvalidAddress("not text")
            clean_email = email_identity(email).address
        except InvalidAddress as exc:
            errors["email"] = f"not a valid email address ({exc})"
    return Profile(clean_name, clean_email), errors
