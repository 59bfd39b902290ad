"""Console logins: argon2id passwords and server-side sessions, so a stolen cookie can be revoked and expires.

Hashing costs tens of milliseconds of CPU on purpose: it runs in a thread, never on the event loop. An unknown
email is hashed against a dummy too, so the answer's timing does not tell which addresses are agents.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select

from tickets.deps import Deps
from tickets.errors import InvalidInput, NotFound
from tickets.models import Agent, WebSession

MIN_PASSWORD = 10
SESSION_IDLE = timedelta(hours=12)
"""A session not used for this long ends."""
SESSION_MAX = timedelta(days=7)
"""No session outlives this, used or not."""
_hasher = PasswordHasher()
_DUMMY = _hasher.hash("switchboard-no-such-agent")


@dataclass(frozen=True)
class Login:
    agent: Agent
    token: str
    """For the cookie; only its SHA-256 is stored."""
    csrf: str


def session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


async def set_password(deps: Deps, agent_id: int, password: str) -> None:
    """Set (or replace) the agent's console password; their open sessions end."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput({"password": f"at least {MIN_PASSWORD} characters"})
    hashed = await asyncio.to_thread(_hasher.hash, password)
    async with deps.store.session() as session:
        agent = await session.get(Agent, agent_id, with_for_update=True)
        if agent is None:
            raise NotFound(f"no agent {agent_id}")
        agent.password_hash = hashed
        await session.execute(delete(WebSession).where(WebSession.agent_id == agent_id))


async def log_in(deps: Deps, email: str, password: str) -> Login | None:
    """A new session for the agent with this email and password; None for any mismatch."""
    async with deps.store.session() as session:
        agent = await session.scalar(select(Agent).where(func.lower(Agent.email) == email.strip().lower()))
    stored = agent.password_hash if agent is not None else None
    if not await asyncio.to_thread(_verify, stored, password) or agent is None:
        return None
    token, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(32), deps.clock.now()
    async with deps.store.session() as session:
        session.add(WebSession(id=session_id(token), agent_id=agent.id, csrf=csrf, created_at=now,
                               last_seen_at=now, expires_at=now + SESSION_MAX))
        if _hasher.check_needs_rehash(stored or _DUMMY):
            (await session.get_one(Agent, agent.id)).password_hash = await asyncio.to_thread(_hasher.hash, password)
    return Login(agent, token, csrf)


async def session_of(deps: Deps, token: str) -> tuple[Agent, str] | None:
    """The agent and CSRF token of a live session; using it keeps it alive (to the minute)."""
    now = deps.clock.now()
    async with deps.store.session() as session:
        row = await session.get(WebSession, session_id(token))
        if row is None or row.expires_at <= now or now - row.last_seen_at > SESSION_IDLE:
            if row is not None:
                await session.delete(row)
            return None
        if now - row.last_seen_at > timedelta(minutes=1):
            row.last_seen_at = now
        agent = await session.get(Agent, row.agent_id)
        return (agent, row.csrf) if agent is not None else None


async def log_out(deps: Deps, token: str) -> None:
    async with deps.store.session() as session:
        await session.execute(delete(WebSession).where(WebSession.id == session_id(token)))
