"""The dashboard's aggregates, counted in the database on both backends: time to first answer and to
resolution in their buckets, and tickets per day and channel (a UTC day)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from switchboard.bootstrap import Runtime
from tickets.clock import ManualClock
from tickets.inbound import Identity, Inbound

START = datetime(2026, 1, 5, 23, 0, tzinfo=UTC)  # an hour before a UTC midnight


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def message(channel: str, sender: str) -> Inbound:
    kind = "telegram" if channel == "telegram" else "email"
    return Inbound(channel=channel, identities=(Identity(kind, sender),), subject=f"From {sender}",
                   body_text="It does not print")


async def test_the_report_buckets_answer_and_resolution_times_and_counts_tickets_per_day_and_channel(
    runtime: Runtime, clock: ManualClock, add_agent: Any
) -> None:
    service = runtime.service
    agent, _ = await add_agent("Anna", capacity=100)
    quick = (await service.ingest(message("webform", "a@example.com"))).ticket
    slow = (await service.ingest(message("webform", "b@example.com"))).ticket
    await service.ingest(message("telegram", "4242"))

    clock.advance(timedelta(minutes=30))
    await service.add_message(agent, quick.id, "Try the other tray", internal=False)      # answered in 30 min
    clock.advance(timedelta(hours=2, minutes=30))                                          # next UTC day now
    await service.add_message(agent, slow.id, "Looking into it", internal=False)          # answered in 3 h
    await service.ingest(message("email", "c@example.com"))
    clock.advance(timedelta(hours=24))
    await service.update_ticket(agent, quick.id, {"status": "resolved"})                   # resolved in 27 h
    clock.advance(timedelta(hours=72))
    await service.update_ticket(agent, slow.id, {"status": "resolved"})                    # resolved in 99 h

    report = await service.report(days=14)

    # Buckets: ≤1 h, ≤4 h, ≤8 h, ≤1 day, ≤2 days, longer.
    assert report.first_response.counts == [1, 1, 0, 0, 0, 0]
    assert report.resolution.counts == [0, 0, 0, 0, 1, 1]
    assert report.by_channel == {"2026-01-05": {"webform": 2, "telegram": 1}, "2026-01-06": {"email": 1}}

    # The window is a window: four days on, a 2-day report sees none of these tickets.
    later = await service.report(days=2)
    assert later.first_response.counts == [0] * 6 and later.by_channel == {}
