"""The built-in regulations the ticket services ask for deadlines (`tickets.ports.Regulations`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sla.calendar import BusinessCalendar


class BuiltinRegulations:
    """Callback: a client whose call was missed is called back within `callback_within` of business time."""

    def __init__(self, calendar: BusinessCalendar, callback_within: timedelta) -> None:
        self.calendar = calendar
        self.callback_within = callback_within

    def callback_due(self, missed_at: datetime) -> datetime:
        return self.calendar.add(missed_at, self.callback_within)
