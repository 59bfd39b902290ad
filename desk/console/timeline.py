"""One ticket's history as an agent reads it: messages with who wrote them, the changes people made in words (who,
what, old → new), and the system's bookkeeping folded away between them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tickets.models import Event, EventKind, Message

HIDDEN = {EventKind.replied, EventKind.note_added}
"""Events the message beside them already shows."""
PLAIN = {EventKind.created, EventKind.message_received, EventKind.queued, EventKind.sla_step_fired,
         EventKind.not_reassigned, EventKind.call_response, EventKind.skills_changed, EventKind.sla_step_dropped}
"""Bookkeeping: folded into a line that opens on demand."""
VALUED: dict[str, str] = {EventKind.status_changed: "status", EventKind.priority_changed: "priority",
                          EventKind.category_changed: "category", EventKind.tags_changed: "raw"}
"""Changes shown as old → new, and the words their values are read with ("raw": as written)."""


@dataclass(frozen=True)
class Said:
    """A message and the person who wrote it."""

    message: Message
    author: str


@dataclass(frozen=True)
class Done:
    """An event in words: `actor` did `kind` (to `target`; from `old` to `new`, each a `value_kind` value)."""

    event: Event
    actor: str
    target: str = ""
    old: str = ""
    new: str = ""
    value_kind: str = ""


@dataclass
class Folded:
    """A run of bookkeeping events between the things people did."""

    events: list[Done] = field(default_factory=list)

    @property
    def created_at(self) -> datetime:
        return self.events[0].event.created_at


def read(messages: list[Message], events: list[Event], agents: dict[int, str], client: str,
         words: dict[str, str]) -> list[Said | Done | Folded]:
    """Messages and events by time (a message before the events it caused), bookkeeping folded."""
    items: list[tuple[datetime, bool, int, Said | Done]] = []
    for message in messages:
        items.append((message.created_at, False, message.id, Said(message, _author(message, agents, client, words))))
    for event in events:
        if event.kind in HIDDEN:
            continue
        items.append((event.created_at, True, event.id, _done(event, agents, words)))
    items.sort(key=lambda item: item[:3])
    out: list[Said | Done | Folded] = []
    for *_, item in items:
        if isinstance(item, Done) and item.event.kind in PLAIN:
            if out and isinstance(out[-1], Folded):
                out[-1].events.append(item)
            else:
                out.append(Folded([item]))
        else:
            out.append(item)
    return out


def _author(message: Message, agents: dict[int, str], client: str, words: dict[str, str]) -> str:
    if message.author_id is not None:
        return agents.get(message.author_id, f"#{message.author_id}")
    if message.direction == "in":
        return client or words.get("actor_customer", "Client")
    return words.get("actor_system", "System")


def _done(event: Event, agents: dict[int, str], words: dict[str, str]) -> Done:
    data: dict[str, Any] = event.data or {}
    actor = _actor(event, agents, words)
    target = ""
    if data.get("agent_id") is not None:
        target = agents.get(int(data["agent_id"]), f"#{data['agent_id']}")
    for key in ("ticket", "into", "source"):
        if data.get(key) is not None:
            target = f"#{data[key]}"
    value_kind = VALUED.get(event.kind, "")
    old, new = (str(data.get("old") or "—"), str(data.get("new") or "—")) if value_kind else ("", "")
    return Done(event, actor, target, old, new, value_kind)


def _actor(event: Event, agents: dict[int, str], words: dict[str, str]) -> str:
    if event.actor_id is not None:
        return agents.get(event.actor_id, event.actor)
    return words.get(f"actor_{event.actor}", event.actor)
