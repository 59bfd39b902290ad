"""One visitor's socket: the frames the widget sends, each answered after the store committed.

Protocol (JSON text frames). The browser sends `hello` first, then any of `message`, `seen`, `profile`,
`history`. The server answers `welcome`, `ack`, `history`, `profile`, `error`, and pushes `message`,
`status` and `resync` events. A message the server did not ack is kept by the browser and sent again
with the same id; the id makes the retry harmless.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from aiohttp import WSCloseCode, web

from channels.chat.webchat.hub import ChatHub
from channels.chat.webchat.visitor import (
    CHANNEL,
    Profile,
    external_id,
    new_token,
    parse_profile,
    sender_prefix,
    valid_client_id,
    valid_token,
    visitor_id,
)
from channels.poison import ParkedItem, store_or_park
from notifier.webchat import message_event
from tickets.errors import InvalidInput, StoreUnavailable
from tickets.inbound import Identity, Inbound
from tickets.language import supported
from tickets.models import Ticket, TicketStatus
from tickets.numbers import MAX_ID
from tickets.service import TicketService
from tickets.text import cleaned_note
from web.ratelimit import RateLimiter

log = logging.getLogger(__name__)


class ChatLimits(Protocol):
    """What a conversation reads of the web chat's settings (`switchboard.settings.WebchatSettings`): the channel
    takes them as given, it does not know where settings come from."""

    thread_hours: float
    max_message_chars: int
    history_limit: int

RETRY_AFTER = 5
"""Seconds the browser waits before resending when the store is down."""
MAX_SEEN = 200
MAX_PAGE = 500
FRAMES_PER_MINUTE = 240
"""Beyond this a socket is flooding (the per-visitor message limit is separate and kinder)."""
ACTIVE = (TicketStatus.new, TicketStatus.open, TicketStatus.pending)


class Refused(Exception):
    """A frame we answer with an error and otherwise ignore."""

    def __init__(self, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.extra = extra


@dataclass
class _State:
    visitor: str
    profile: Profile = field(default_factory=Profile)
    language: str | None = None
    page: str | None = None
    ticket: tuple[int, TicketStatus, datetime] | None = None
    """The ticket the next message continues, if it is still open or recent."""


class Conversation:
    """Turns one socket's frames into service calls; never touches the ORM."""

    def __init__(
        self, ws: web.WebSocketResponse, service: TicketService, hub: ChatHub, limiter: RateLimiter,
        settings: ChatLimits, now: Any,
    ) -> None:
        self._ws = ws
        self._service = service
        self._hub = hub
        self._limiter = limiter
        self._settings = settings
        self._now = now
        self._state: _State | None = None
        self._frames: list[float] = []
        self._cleaned = 0

    @property
    def visitor(self) -> str | None:
        return self._state.visitor if self._state else None

    async def handle(self, frame: Any, cleaned: int = 0) -> None:
        """Answer one frame; refusals go back as an `error` frame naming the message they concern. `cleaned`: the
        characters the store cannot keep that the frame's reader removed (the message lists them as a problem)."""
        self._cleaned = cleaned
        about = {"id": frame["id"]} if isinstance(frame, dict) and "id" in frame else {}
        try:
            self._count_frame()
            if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
                raise Refused("invalid", "a frame is a JSON object with a type")
            kind = frame["type"]
            if kind == "hello":
                await self._hello(frame)
                return
            if self._state is None:
                raise Refused("hello_first", "say hello first")
            handler = {"message": self._message, "seen": self._seen, "profile": self._profile,
                       "history": self._history}.get(kind)
            if handler is None:
                raise Refused("invalid", f"unknown frame type {kind[:40]!r}")
            state = self._state

            async def park(error: str, attempts: int) -> int:
                return await self._service.park(CHANNEL, state.visitor, error, payload=json.dumps(frame),
                                                attempts=attempts)

            outcome = await store_or_park(lambda: handler(state, frame), park, passes=(Refused,),
                                          what=f"web chat {kind} frame")
            if isinstance(outcome, ParkedItem):
                await self._send({"type": "error", "code": "kept", **about,
                                  "detail": "we could not store this message; it is kept for our staff to read"})
        except Refused as refusal:
            await self._send({"type": "error", "code": refusal.code, "detail": str(refusal), **refusal.extra, **about})
        except StoreUnavailable:
            await self._send({"type": "error", "code": "unavailable", "retry_after": RETRY_AFTER,
                              "detail": "we cannot store messages right now; yours is kept and sent again", **about})
            if self._state is None:  # no welcome without the history: the browser reconnects with backoff
                await self._ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"store unavailable")

    # --- frames -----------------------------------------------------------------------------

    async def _hello(self, frame: dict[str, Any]) -> None:
        if self._state is not None:
            raise Refused("invalid", "hello was said already")
        token = valid_token(frame.get("token")) or new_token()
        profile, errors = parse_profile(frame.get("name"), frame.get("email"))
        state = _State(visitor_id(token), Profile() if errors else profile, _language(frame.get("language")),
                       _page(frame.get("page")))
        history = await self._load_history(state)
        self._state = state
        self._hub.join(state.visitor, self._ws)
        await self._send({
            "type": "welcome",
            "token": token,
            **history,
            "profile": {"name": state.profile.name, "email": state.profile.email},
            "limits": {"max_chars": self._settings.max_message_chars},
            **({"errors": errors} if errors else {}),
        })

    async def _message(self, state: _State, frame: dict[str, Any]) -> None:
        client_id = valid_client_id(frame.get("id"))
        if client_id is None:
            raise Refused("invalid", "a message needs an id of 1-64 letters, digits, - or _")
        text = frame.get("text")
        if not isinstance(text, str) or not text.strip():
            raise Refused("invalid", "the message is empty")
        text = text.replace("\x00", "").strip()
        if len(text) > self._settings.max_message_chars:
            raise Refused("too_long", f"longer than {self._settings.max_message_chars} characters",
                          max_chars=self._settings.max_message_chars)
        wait = await self._limiter.retry_after(state.visitor)
        if wait is not None:
            raise Refused("rate_limited", "too many messages; this one is kept and sent again shortly",
                          retry_after=wait)
        try:
            result = await self._service.ingest(self._inbound(state, client_id, text))
        except InvalidInput as exc:
            raise Refused("invalid", "; ".join(f"{k}: {v}" for k, v in exc.fields.items())) from exc
        self._remember(state, result.ticket)
        event = message_event(result.message, None)
        await self._send({"type": "ack", "id": client_id, "message": event, "ticket": _ticket_view(result.ticket),
                          "duplicate": result.duplicate})
        await self._hub.publish(state.visitor, {"type": "message", "message": event})

    async def _seen(self, state: _State, frame: dict[str, Any]) -> None:
        ids = frame.get("ids")
        if not isinstance(ids, list) or not all(
                isinstance(i, int) and not isinstance(i, bool) and 1 <= i <= MAX_ID for i in ids):
            raise Refused("invalid", "seen needs a list of message ids")
        await self._service.mark_seen(CHANNEL, sender_prefix(state.visitor), ids[:MAX_SEEN])

    async def _profile(self, state: _State, frame: dict[str, Any]) -> None:
        profile, errors = parse_profile(frame.get("name"), frame.get("email"))
        if errors:
            raise Refused("invalid", "; ".join(errors.values()), errors=errors)
        state.profile = profile
        await self._send({"type": "profile", "name": profile.name, "email": profile.email})

    async def _history(self, state: _State, frame: dict[str, Any]) -> None:
        await self._send({"type": "history", **await self._load_history(state)})

    # --- helpers ----------------------------------------------------------------------------

    async def _load_history(self, state: _State) -> dict[str, Any]:
        """The visitor's messages and last ticket, which their next message continues."""
        history = await self._service.chat_history(CHANNEL, sender_prefix(state.visitor), self._settings.history_limit)
        self._remember(state, history.latest)
        return {"messages": [message_event(m, author, history.portal_keys.get(m.ticket_id))
                             for m, author in history.messages],
                "ticket": _ticket_view(history.latest)}

    def _inbound(self, state: _State, client_id: str, text: str) -> Inbound:
        identities = [Identity(CHANNEL, state.visitor)]
        if state.profile.email:
            identities.append(Identity("email", state.profile.email))
        meta = {"visitor": state.visitor, "name": state.profile.name, "email": state.profile.email,
                "email_verified": False, "page": state.page}
        return Inbound(
            channel=CHANNEL,
            identities=tuple(identities),
            body_text=text,
            external_id=external_id(state.visitor, client_id),
            customer_name=state.profile.name,
            language=state.language,
            ticket_number=self._continued(state),
            meta={k: v for k, v in meta.items() if v is not None},
            problems=(cleaned_note(self._cleaned),) if self._cleaned else (),
        )

    def _continued(self, state: _State) -> int | None:
        """The visitor's last ticket while it is open or was active lately; else the message opens a new one."""
        if state.ticket is None:
            return None
        number, status, updated_at = state.ticket
        window = timedelta(hours=self._settings.thread_hours)
        if status in ACTIVE or updated_at >= self._now() - window:
            return number
        return None

    def _remember(self, state: _State, ticket: Ticket | None) -> None:
        if ticket is not None:
            state.ticket = (ticket.id, TicketStatus(ticket.status), ticket.updated_at)

    def _count_frame(self) -> None:
        now = time.monotonic()
        self._frames = [t for t in self._frames if now - t < 60] + [now]
        if len(self._frames) > FRAMES_PER_MINUTE:
            raise Refused("flooding", "too many frames; slow down")

    async def _send(self, event: dict[str, Any]) -> None:
        if not self._ws.closed:
            await self._ws.send_json(event)


def _ticket_view(ticket: Ticket | None) -> dict[str, Any] | None:
    return None if ticket is None else {"number": ticket.id, "status": str(ticket.status)}


def _language(value: object) -> str | None:
    return supported(value) if isinstance(value, str) else None


def _page(value: object) -> str | None:
    return value[:MAX_PAGE] if isinstance(value, str) and value.startswith(("http://", "https://")) else None

