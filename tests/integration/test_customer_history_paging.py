"""Paging a client's history never skips or repeats a contact, even when several share one instant (a clock that
stands still makes every contact of a step share it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from switchboard.bootstrap import Runtime
from tests.integration.test_plans import client_card
from tickets.clock import ManualClock

Client = TestClient[Any, Any]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))


async def test_contacts_sharing_an_instant_at_a_pages_edge_all_come_once(
    client: Client, runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    alice, headers = await add_agent("Alice")
    customer, _ = await client_card(runtime)  # its web form message: 10:00
    for step, count in ((1, 3), (2, 3)):  # three contacts at 10:01, three at 10:02: a page of 4 ends amid 10:01
        clock.advance(timedelta(minutes=1))
        for n in range(count):
            await runtime.service.record_activity(alice, customer, "call", outcome=f"{step}.{n}")
    seen: list[str] = []
    params = {"limit": "4"}
    for _ in range(10):
        page = await (await client.get(f"/api/v1/customers/{customer}/history", params=params,
                                       headers=headers)).json()
        seen += [c["text"] if c["kind"] == "activity" else c["kind"] for c in page["items"]]
        if page["next_before"] is None:
            break
        params["before"] = page["next_before"]
    assert sorted(seen) == sorted([*(f"1.{n}" for n in range(3)), *(f"2.{n}" for n in range(3)), "message"])
    assert len(seen) == len(set(seen)) == 7
