"""Linking an agent's Telegram account: a short-lived code signed with the bot's token, sent to the bot as /link.

Stateless on purpose: the CLI (no Redis) and every web process make and check the same code; only who holds the
bot's token can forge one, and it expires.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

from tickets.numbers import whole_number

LINK_TTL = timedelta(minutes=15)


def _signature(token: str, agent_id: int, expires: int) -> str:
    return hmac.new(token.encode(), f"switchboard-link:{agent_id}:{expires}".encode(), hashlib.sha256).hexdigest()[:16]


def link_code(token: str, agent_id: int, now: datetime) -> tuple[str, datetime]:
    """The code for `/link CODE` and when it stops working."""
    expires = int((now + LINK_TTL).timestamp())
    return f"{agent_id}-{expires}-{_signature(token, agent_id, expires)}", datetime.fromtimestamp(expires, now.tzinfo)


def agent_of(token: str, code: str, now: datetime) -> int | None:
    """The agent a valid, unexpired code names; None for anything else."""
    parts = code.strip().split("-")
    if len(parts) != 3:
        return None
    agent_id, expires = whole_number(parts[0]), whole_number(parts[1])
    if agent_id is None or expires is None:
        return None
    if expires < now.timestamp() or not hmac.compare_digest(parts[2], _signature(token, agent_id, expires)):
        return None
    return agent_id
