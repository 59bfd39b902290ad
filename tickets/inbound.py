"""The one message type every channel hands to the core: what arrived, from whom, and how to thread it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from tickets.models import Priority


@dataclass(frozen=True)
class Identity:
    """An address a customer can be reached at: kind is email, phone, telegram or webchat."""

    kind: str
    address: str


@dataclass(frozen=True)
class AttachmentRef:
    """A file a channel already stored in the attachment store; the message keeps only this."""

    name: str
    content_type: str
    size: int
    path: str
    sha256: str
    content_id: str | None = None
    """For an inline image: the id the HTML body refers to as cid:…"""
    inline: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "content_type": self.content_type,
            "size": self.size,
            "path": self.path,
            "sha256": self.sha256,
            "content_id": self.content_id,
            "inline": self.inline,
        }


@dataclass(frozen=True)
class CallDetails:
    """A phone call as the PBX or an agent logged it; the client's number is the Inbound's identity."""

    direction: Literal["in", "out"]
    disposition: Literal["answered", "missed", "busy", "failed", "voicemail"]
    started_at: datetime
    caller: str | None
    """E.164 for an outside number, the extension for an agent's phone, None when withheld."""
    called: str | None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    duration: int = 0
    talk_time: int = 0
    agent_id: int | None = None
    agent_email: str | None = None
    extension: str | None = None
    """The agent's extension that took or made the call; finds the agent when no id or email is given."""
    notes: str | None = None
    recording_url: str | None = None
    source: Literal["api", "cdr", "cti", "ami"] = "api"
    ticket_number: int | None = None
    """The ticket an agent put the call on while it rang (the pop): an answered call joins it while it is open."""

    @property
    def missed(self) -> bool:
        """A client's call nobody took: it becomes callback work."""
        return self.direction == "in" and self.disposition != "answered"


@dataclass(frozen=True)
class Inbound:
    """One message from a client on any channel, already parsed and normalised by its adapter."""

    channel: str
    identities: tuple[Identity, ...]
    body_text: str
    subject: str = ""
    external_id: str | None = None
    """The channel's own id (Message-ID, update id, call id, Idempotency-Key): redelivery dedupes on it."""
    customer_name: str | None = None
    language: str | None = None
    body_html: str | None = None
    attachments: tuple[AttachmentRef, ...] = ()
    category: str | None = None
    priority: Priority | None = None
    group: str | None = None
    """Group (department) name the channel address maps to; None → the default group."""
    ticket_number: int | None = None
    """A ticket the message says it belongs to; honoured only when the sender is its customer."""
    continue_open_within: timedelta | None = None
    """Join the customer's open ticket on this channel if it was active within this window."""
    thread_ids: tuple[str, ...] = ()
    """External ids of earlier messages on this channel that this one answers, most telling first (email:
    In-Reply-To, then References newest first); it joins their ticket if the sender is on that ticket."""
    participants: tuple[str, ...] = ()
    """Other addresses the message went to (email To/Cc): they become people on the ticket."""
    auto_reply: str | None = None
    """Why this is an automatic answer (out-of-office, bulk): it may join a ticket but never opens or reopens one."""
    bounce_of: str | None = None
    """External id of our outbound message this delivery failure report is about."""
    bounce_reason: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    """Channel details stored with the message (headers for email) for threading and display."""
    problems: tuple[str, ...] = ()
    """What the adapter could not decode; the message is stored anyway, with `raw`."""
    raw: AttachmentRef | None = None
    call: CallDetails | None = None
    """Set on the phone channel: the message is a call, logged by `TicketService.log_calls`."""
