"""Alerts to staff (escalations, warnings): outbox rows by email or SMS, one per recipient, medium and firing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from notifier import outbox
from notifier.compose import EmailNotifications
from tickets.models import Ticket

SMS_CHANNEL = "sms"
SMS_LIMIT = 320
"""Two concatenated SMS segments: an alert says what and which ticket; the email has the rest."""


class StaffAlerts:
    def __init__(self, email: EmailNotifications, sender: str, desk_url: str) -> None:
        self._email = email
        self._sender = sender
        self.desk_url = desk_url.rstrip("/")

    async def email(self, session: AsyncSession, ticket: Ticket, *, recipient: str, subject: str, text: str,
                    dedupe_key: str, now: datetime) -> int:
        return await self._email.queue_mail(
            session, kind="sla_alert", dedupe_key=dedupe_key, ticket=ticket, message_id=None, sender=self._sender,
            recipient=recipient, subject=subject, text=text, headers={"Auto-Submitted": "auto-generated"},
            language=None, now=now,
        )

    async def sms(self, session: AsyncSession, ticket: Ticket, *, phone: str, text: str, dedupe_key: str,
                  now: datetime) -> int:
        """Queued for the SMS gateway's deliverer (SWITCHBOARD_SMS_GATEWAY_URL); without one it waits in the outbox."""
        short = text if len(text) <= SMS_LIMIT else text[: SMS_LIMIT - 1] + "…"
        return await outbox.queue(session, now, kind="sla_alert", channel=SMS_CHANNEL, recipient=phone,
                                  body_text=short, headers={}, ticket_id=ticket.id, dedupe_key=dedupe_key)
