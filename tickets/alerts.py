"""What a regulation's firing tells staff: who is alerted and what happened. `sla` decides both; the notifier
(`notifier.alerts.StaffAlerts`, behind the `tickets.ports.Alerts` port) words and sends them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

AlertKind = Literal["escalation", "breach", "warning"]
CONDITIONS = {  # also the audit trail's wording of a fired step (English)
    "en": {"processed": "processed (answered or taken)", "resolved": "resolved", "replied": "answered"},
    "ru": {"processed": "обработана (ответ или взята в работу)", "resolved": "решена", "replied": "получила ответ"},
}


@dataclass(frozen=True)
class Person:
    """Someone an alert goes to, with the addresses they may be reached at."""

    name: str
    email: str | None = None
    phone: str | None = None
    language: str | None = None
    telegram: str | None = None
    """The chat of an agent who linked their Telegram account."""

    def address(self, medium: str) -> str | None:
        return {"email": self.email, "sms": self.phone, "telegram": self.telegram}.get(medium)


@dataclass(frozen=True)
class AlertFacts:
    """What fired: the same for every recipient of one firing."""

    kind: AlertKind
    regulation: str
    step: str
    condition: str
    """What the ticket was not by the due time: processed, resolved or replied."""
    due_at: datetime
    actions: Sequence[str] = ()
    """What the firing did (reassigned from … to …, priority raised …)."""

    @property
    def urgent(self) -> bool:
        return self.kind != "warning"
