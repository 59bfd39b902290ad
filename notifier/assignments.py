"""Telling an agent by email (and in Telegram, when they linked it) that a ticket was handed to them: by the router,
or by a manager's transfer.

Taking a ticket yourself tells nobody; a reassignment by a regulation step is told by that step's own alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from notifier import outbox
from notifier.alerts import clients_of
from notifier.compose import CHANNEL as EMAIL
from notifier.compose import mail_headers
from notifier.telegram import CHANNEL as TELEGRAM_CHANNEL
from tickets.language import answer_in
from tickets.models import Agent, Event, Ticket

HANDOVERS = ("assigned", "transferred")


class AssignmentNotices:
    def __init__(self, sender: str) -> None:
        self._sender = sender

    async def events_recorded(self, session: AsyncSession, events: Sequence[Event], now: datetime) -> list[int]:
        """One templated row per handover (and its Telegram copy), written together: a dispatch batch hands over
        hundreds of tickets, and their notices cost one statement for the clients' addresses and one insert."""
        handovers = [e for e in events if e.kind in HANDOVERS and e.data.get("agent_id")]
        if not handovers:
            return []
        await session.flush()  # the events' ids name the notices
        wanted: list[tuple[Event, Agent, Ticket]] = []
        for event in handovers:
            agent = await session.get(Agent, event.data["agent_id"])
            ticket = await session.get(Ticket, event.ticket_id)
            if agent is not None and ticket is not None and event.actor_id != agent.id:
                wanted.append((event, agent, ticket))
        if not wanted:
            return []
        clients = await clients_of(session, [ticket for _, _, ticket in wanted])
        rows: list[dict[str, object]] = []
        for event, agent, ticket in wanted:
            previous_id = event.data.get("previous_agent_id")
            previous = await session.get(Agent, previous_id) if previous_id else None
            kind = "reassigned" if previous else "assigned"
            params = {"subject": ticket.subject, "previous": previous.name if previous else None,
                      "client": clients[ticket.id], "channel": ticket.channel, "priority": str(ticket.priority),
                      "reason": event.reason if event.actor == "router" else None,
                      "language": answer_in(agent.language)}
            rows.append(outbox.notice_values(now, kind=kind, channel=EMAIL, recipient=agent.email,
                                             template="assigned", params=params, ticket_id=ticket.id,
                                             dedupe_key=f"assigned:{event.id}",
                                             headers=mail_headers(self._sender, agent.email,
                                                                  {"Auto-Submitted": "auto-generated"})))
            if agent.telegram_chat_id:
                rows.append(outbox.notice_values(now, kind=kind, channel=TELEGRAM_CHANNEL,
                                                 recipient=agent.telegram_chat_id, template="assigned", params=params,
                                                 ticket_id=ticket.id, dedupe_key=f"assigned:{event.id}:telegram"))
        return await outbox.insert_all(session, rows)
