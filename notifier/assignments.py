"""Telling an agent by email (and in Telegram, when they linked it) that a ticket was handed to them: by the router, or by a manager's transfer.

Taking a ticket yourself tells nobody; a reassignment by a regulation step is told by that step's own alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from notifier import outbox
from notifier.alerts import client_of
from notifier.telegram import CHANNEL as TELEGRAM_CHANNEL
from notifier.compose import EmailNotifications
from tickets.language import answer_in
from tickets.models import Agent, Event, Ticket

HANDOVERS = ("assigned", "transferred")


class AssignmentNotices:
    def __init__(self, email: EmailNotifications, sender: str, desk_url: str) -> None:
        self._email = email
        self._sender = sender
        self._desk_url = desk_url.rstrip("/")

    async def events_recorded(self, session: AsyncSession, events: Sequence[Event], now: datetime) -> list[int]:
        handovers = [e for e in events if e.kind in HANDOVERS and e.data.get("agent_id")]
        if not handovers:
            return []
        await session.flush()  # the events' ids name the notices
        ids: list[int] = []
        for event in handovers:
            agent = await session.get(Agent, event.data["agent_id"])
            ticket = await session.get(Ticket, event.ticket_id)
            if agent is None or ticket is None or event.actor_id == agent.id:
                continue
            previous_id = event.data.get("previous_agent_id")
            previous = await session.get(Agent, previous_id) if previous_id else None
            language = answer_in(agent.language)
            rendered = self._email.templates.get_template(f"assigned.{language}.txt").render(
                number=ticket.id, subject=ticket.subject, previous=previous.name if previous else None,
                client=await client_of(session, ticket), channel=ticket.channel, priority=str(ticket.priority),
                reason=event.reason if event.actor == "router" else None,
                link=f"{self._desk_url}/desk/tickets/{ticket.id}",
            )
            subject, _, text = rendered.partition("\n")
            kind = "reassigned" if previous else "assigned"
            ids.append(await self._email.queue_mail(
                session, kind=kind, dedupe_key=f"assigned:{event.id}", ticket=ticket, message_id=None,
                sender=self._sender, recipient=agent.email, subject=subject[:500], text=text,
                headers={"Auto-Submitted": "auto-generated"}, language=language, now=now,
            ))
            if agent.telegram_chat_id:
                ids.append(await outbox.queue(
                    session, now, kind=kind, channel=TELEGRAM_CHANNEL, recipient=agent.telegram_chat_id,
                    body_text=rendered, headers={}, ticket_id=ticket.id, dedupe_key=f"assigned:{event.id}:telegram"))
        return ids
