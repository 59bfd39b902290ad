"""Alerts to staff (escalations, breaches, warnings): one outbox row per recipient, medium and firing.

Written in the recipient's language from `templates/alert*.txt`; an SMS is cut to the configured number of
segments (the link survives, the subject is cut first), and a non-urgent one (a warning) waits out the
quiet hours.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from notifier import outbox
from notifier.compose import EmailNotifications
from notifier.quiet import quiet_until
from notifier.sms import CHANNEL as SMS_CHANNEL
from notifier.sms import fit
from notifier.telegram import CHANNEL as TELEGRAM_CHANNEL
from tickets.alerts import CONDITIONS, AlertFacts, Person
from tickets.language import answer_in
from tickets.models import Agent, Customer, CustomerIdentity, Ticket

_TITLES = {
    "en": {"escalation": "Escalation", "breach": "Breached", "warning": "Warning"},
    "ru": {"escalation": "Эскалация", "breach": "Нарушен срок", "warning": "Предупреждение"},
}
_UNITS = {"en": ("d", "h", "min", "s"), "ru": ("дн", "ч", "мин", "с")}


def waited(delta: timedelta, language: str) -> str:
    """`1 d 3 h`, `25 min`, `40 s`: the two largest units."""
    seconds = max(0, int(delta.total_seconds()))
    parts = [(seconds // 86400, 0), (seconds % 86400 // 3600, 1), (seconds % 3600 // 60, 2), (seconds % 60, 3)]
    units = _UNITS[language]
    shown = [f"{value} {units[unit]}" for value, unit in parts if value][:2]
    return " ".join(shown) or f"0 {units[3]}"


class StaffAlerts:
    def __init__(self, email: EmailNotifications, sender: str, desk_url: str, *, max_segments: int = 2,
                 quiet_hours: tuple[time, time] | None = None, timezone: str = "UTC") -> None:
        self._email = email
        self._sender = sender
        self.desk_url = desk_url.rstrip("/")
        self._max_segments = max_segments
        self._quiet_hours = quiet_hours
        self._timezone = timezone

    async def queue(self, session: AsyncSession, ticket: Ticket, person: Person, medium: str, facts: AlertFacts, *,
                    dedupe_key: str, now: datetime) -> int:
        """One row to `person` by `medium` (email, sms or telegram), rendered in their language."""
        language = answer_in(person.language)
        context = await self._context(session, ticket, facts, language, now)
        templates = self._email.templates
        if medium in ("email", "telegram"):
            subject, _, text = templates.get_template(f"alert.{language}.txt").render(**context).partition("\n")
        if medium == "telegram":
            return await outbox.queue(session, now, kind="sla_alert", channel=TELEGRAM_CHANNEL,
                                      recipient=person.telegram or "", body_text=f"{subject}\n{text}", headers={},
                                      ticket_id=ticket.id, dedupe_key=dedupe_key)
        if medium == "email":
            return await self._email.queue_mail(
                session, kind="sla_alert", dedupe_key=dedupe_key, ticket=ticket, message_id=None,
                sender=self._sender, recipient=person.email or "", subject=subject[:500], text=text,
                headers={"Auto-Submitted": "auto-generated"}, language=language, now=now,
            )
        text = fit(templates.get_template(f"alert_sms.{language}.txt").render(**context), self._max_segments)
        due_at = None
        if not facts.urgent and self._quiet_hours is not None:
            due_at = quiet_until(now, self._quiet_hours, self._timezone)
        return await outbox.queue(session, now, due_at=due_at, kind="sla_alert", channel=SMS_CHANNEL,
                                  recipient=person.phone or "", body_text=text, headers={}, ticket_id=ticket.id,
                                  dedupe_key=dedupe_key)

    async def _context(self, session: AsyncSession, ticket: Ticket, facts: AlertFacts, language: str,
                       now: datetime) -> dict[str, object]:
        assignee = await session.get(Agent, ticket.assignee_id) if ticket.assignee_id else None
        return {
            "number": ticket.id, "subject": ticket.subject, "title": _TITLES[language][facts.kind],
            "regulation": facts.regulation, "step": facts.step, "condition": CONDITIONS[language][facts.condition],
            "due": f"{facts.due_at:%Y-%m-%d %H:%M} UTC", "actions": list(facts.actions),
            "client": await client_of(session, ticket), "channel": ticket.channel, "priority": str(ticket.priority),
            "assignee": assignee.name if assignee else None, "waiting": waited(now - ticket.created_at, language),
            "link": f"{self.desk_url}/desk/tickets/{ticket.id}",
        }


async def clients_of(session: AsyncSession, tickets: Sequence[Ticket]) -> dict[int, str]:
    """`client_of` for many tickets: their cards (usually in the session already) and first addresses in one read."""
    customer_ids = {t.customer_id for t in tickets}
    first: dict[int, str] = {}
    for customer_id, address in await session.execute(
            select(CustomerIdentity.customer_id, CustomerIdentity.address)
            .where(CustomerIdentity.customer_id.in_(customer_ids)).order_by(CustomerIdentity.id)):
        first.setdefault(customer_id, address)
    named: dict[int, str] = {}
    for ticket in tickets:
        customer = await session.get(Customer, ticket.customer_id)
        named[ticket.id] = _client(
            customer.name if customer else None, first.get(ticket.customer_id), ticket.customer_id
        )
    return named


def _client(name: str | None, address: str | None, customer_id: int) -> str:
    if name and address:
        return f"{name} <{address}>"
    return name or address or f"customer {customer_id}"


async def client_of(session: AsyncSession, ticket: Ticket) -> str:
    return (await clients_of(session, [ticket]))[ticket.id]
