"""A planned contact came due: the agent hears of it in their console (the notice feed), and by the medium they
chose (`Agent.remind_by`: email, Telegram, SMS, or the console alone); unchosen, by Telegram when they linked it to
the bot, else by email. Queued in the reminding transaction (`tickets.actions.plans.remind`)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from notifier import outbox
from notifier.compose import EmailNotifications
from notifier.sms import CHANNEL as SMS_CHANNEL
from notifier.telegram import CHANNEL as TELEGRAM_CHANNEL
from tickets.language import answer_in
from tickets.models import Agent, PlannedContact

WORDS = {
    "en": ("Planned contact with {client}: {what}", "Due {due:%Y-%m-%d %H:%M} UTC. Open: {url}"),
    "ru": ("Запланированный контакт с {client}: {what}", "Срок {due:%Y-%m-%d %H:%M} UTC. Открыть: {url}"),
}


def plan_link(planned: PlannedContact) -> str:
    """Where the agent acts on it: its ticket, else the client's card."""
    return f"/desk/tickets/{planned.ticket_id}" if planned.ticket_id else f"/desk/customers/{planned.customer_id}"


def medium_of(agent: Agent) -> str:
    """How the agent is reminded besides the console: as they chose, else Telegram when linked, else email; a
    choice they can no longer be reached by (Telegram unlinked, phone removed) falls back to email."""
    chosen = agent.remind_by or ("telegram" if agent.reachable_by("telegram") else "email")
    return chosen if agent.reachable_by(chosen) else "email"


def reminder_words(planned: PlannedContact, client: str, language: str | None, desk_url: str) -> tuple[str, str]:
    """(subject, text) in the agent's language."""
    subject, text = WORDS[answer_in(language)]
    return subject.format(client=client, what=planned.what), text.format(due=planned.due_at,
                                                                          url=desk_url + plan_link(planned))


class Reminders:
    def __init__(self, email: EmailNotifications, sender: str, desk_url: str) -> None:
        self._email = email
        self._sender = sender
        self.desk_url = desk_url.rstrip("/")

    async def queue(self, session: AsyncSession, planned: PlannedContact, agent: Agent, client: str) -> list[int]:
        subject, text = reminder_words(planned, client, agent.language, self.desk_url)
        key = f"remind:{planned.id}"
        now = planned.reminded_at or planned.due_at
        medium = medium_of(agent)
        if medium == "console":
            return []
        if medium in ("telegram", "sms"):
            return [await outbox.queue(
                session, now, kind="reminder", channel=TELEGRAM_CHANNEL if medium == "telegram" else SMS_CHANNEL,
                recipient=(agent.telegram_chat_id if medium == "telegram" else agent.phone) or "",
                body_text=f"{subject}\n{text}", headers={}, ticket_id=planned.ticket_id, dedupe_key=key)]
        return [await self._email.queue_mail(
            session, kind="reminder", dedupe_key=key, ticket=None, message_id=None, sender=self._sender,
            recipient=agent.email, subject=subject[:500], text=text, headers={"Auto-Submitted": "auto-generated"},
            language=answer_in(agent.language), now=now)]
