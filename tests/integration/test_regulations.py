"""Regulations through the ticket service on a real store, with a moved clock: ladders fire in order, once, with
the right alerts; answering, pending, reopening and priority changes move the deadlines as the regulation says.

Steps are fired by `Escalations.sweep` (what the worker's sweeper runs) and `fire` (what each timer job runs), so
the clock can be moved instead of waited for. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from switchboard.bootstrap import Runtime
from switchboard.settings import Settings
from tests.conftest import with_regulations
from tickets.clock import ManualClock
from tickets.inbound import Identity, Inbound
from tickets.models import Agent, ClockEvent, Deadline, Event, Outbox, Priority, Role, Ticket

MONDAY_9 = datetime.fromisoformat("2026-03-02T09:00:00+00:00")
HOUR = timedelta(hours=1)
REGULATIONS = """\
contacts:
  production_manager: {email: pm@example.com, phone: "+447700900001"}
regulations:
  - name: gold
    match: {tier: gold}
    targets:
      first_response: {within: 1h}
  - name: critical_defect
    match: {category: defect, priority: critical}
    calendar: default
    steps:
      - name: day_one
        at: end of business day 1
        unless: processed
        notify: [{to: production_manager, by: [email, sms]}]
    targets:
      resolution:
        within: 2 days
        on_breach: [{to: [production_manager, group_head], by: [email, sms]}]
  - name: request
    calendar: default
    steps:
      - name: reassign
        after: 1 day
        unless: processed
        reassign: true
        notify: [{to: [assignee, previous_assignee], by: email}]
      - name: head
        after: 1 day
        since: previous
        unless: resolved
        breach: true
        notify: [{to: group_head, by: [email, sms]}]
    targets:
      first_response: {within: 4h, warn_at: 50%}
"""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MONDAY_9)


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return with_regulations(settings, tmp_path, REGULATIONS)


@pytest.fixture
async def team(runtime: Runtime, add_agent: Any) -> dict[str, Agent]:
    await runtime.service.add_group("Support", head_email="head@example.com")
    head, _ = await add_agent("Hanna Head", email="head@example.com", phone="+447700900002", role=Role.manager,
                              presence="offline")
    anna, _ = await add_agent("Anna", capacity=5)
    boris, _ = await add_agent("Boris", capacity=5)
    return {"head": head, "anna": anna, "boris": boris}


def form(email: str = "client@example.com", **kwargs: Any) -> Inbound:
    return Inbound(channel="webform", identities=(Identity("email", email),), body_text="It broke", subject="Broken",
                   **kwargs)


async def rows(runtime: Runtime, number: int) -> dict[str, Deadline]:
    async with runtime.sessions() as session:
        found = await session.scalars(select(Deadline).where(Deadline.ticket_id == number).order_by(Deadline.id))
        return {d.step: d for d in found}


async def alerts(runtime: Runtime, number: int) -> list[tuple[str, str]]:
    async with runtime.sessions() as session:
        found = await session.scalars(
            select(Outbox).where(Outbox.ticket_id == number, Outbox.kind == "sla_alert").order_by(Outbox.id))
        return [(o.channel, o.recipient) for o in found]


async def fetch(runtime: Runtime, model: Any, number: int) -> Any:
    async with runtime.sessions() as session:
        return await session.get(model, number)


async def fired_events(runtime: Runtime, number: int) -> list[Event]:
    async with runtime.sessions() as session:
        return list(await session.scalars(select(Event).where(
            Event.ticket_id == number, Event.kind.in_(("sla_step_fired", "sla_breached"))).order_by(Event.id)))


async def test_an_untouched_request_climbs_the_ladder_in_order_and_each_step_acts_once(
    runtime: Runtime, team: dict[str, Agent], clock: ManualClock
) -> None:
    ticket = (await runtime.service.ingest(form())).ticket
    first = ticket.assignee_id
    other = team["boris"].id if first == team["anna"].id else team["anna"].id
    assert (await fetch(runtime, Ticket, ticket.id)).regulation == "request"
    planned = await rows(runtime, ticket.id)
    assert {k: (str(v.status), v.due_at) for k, v in planned.items()} == {
        "reassign": ("pending", MONDAY_9 + timedelta(hours=9)),  # one working day: 09:00–18:00
        "head": ("pending", MONDAY_9 + timedelta(days=1, hours=9)),
        "first_response.warning": ("pending", MONDAY_9 + 2 * HOUR),
        "first_response": ("pending", MONDAY_9 + 4 * HOUR),
    }

    clock.advance(2 * HOUR)
    assert await runtime.escalations.sweep() == 1  # the warning, to the assignee
    assert await alerts(runtime, ticket.id) == [("email", (await fetch(runtime, Agent, first)).email)]

    clock.advance(7 * HOUR)  # 18:00: a working day without an answer
    assert await runtime.escalations.sweep() == 2  # the first-response breach, and the reassignment
    now = await fetch(runtime, Ticket, ticket.id)
    assert now.assignee_id == other
    reassign = (await rows(runtime, ticket.id))["reassign"]
    assert (str(reassign.status), reassign.fired_at) == ("fired", clock.now())
    names = {a.id: a.email for a in team.values()}
    sent = await alerts(runtime, ticket.id)
    assert ("email", names[first]) in sent[1:] and ("email", names[other]) in sent[1:]
    # Firing the same step again — a second worker, a retried job — does nothing.
    assert await runtime.escalations.fire(reassign.id, reassign.plan) == "stale"
    assert await runtime.escalations.sweep() == 0
    assert (await fetch(runtime, Ticket, ticket.id)).assignee_id == other

    clock.advance(24 * HOUR)  # Tuesday 18:00: still not resolved
    assert await runtime.escalations.sweep() == 1
    assert (await alerts(runtime, ticket.id))[-2:] == [("email", "head@example.com"), ("sms", "+447700900002")]
    head = (await rows(runtime, ticket.id))["head"]
    assert (str(head.status), head.breach) == ("fired", True)
    events = await fired_events(runtime, ticket.id)
    assert [e.data["step"] for e in events] == ["first_response.warning", "first_response", "reassign", "head"]
    assert "reassigned from" in events[2].reason and events[2].data["notified"]

    # Fired and still not kept: the ticket is overdue until it is resolved.
    async def overdue() -> list[int]:
        return [t.id for t in (await runtime.service.list_tickets(team["head"], overdue=True)).tickets]

    assert await overdue() == [ticket.id]
    await runtime.service.update_ticket(team["head"], ticket.id, {"status": "resolved"})
    assert await overdue() == []


async def test_answering_before_the_first_step_stops_the_ladder(
    runtime: Runtime, team: dict[str, Agent], clock: ManualClock
) -> None:
    ticket = (await runtime.service.ingest(form())).ticket
    clock.advance(HOUR)
    agent = await fetch(runtime, Agent, ticket.assignee_id)
    await runtime.service.add_message(agent, ticket.id, "On it", internal=False)
    got = await rows(runtime, ticket.id)
    assert {k: str(v.status) for k, v in got.items()} == {
        "reassign": "met", "head": "cancelled", "first_response.warning": "met", "first_response": "met"}
    assert got["reassign"].met_at == clock.now()
    clock.advance(timedelta(days=5))
    assert await runtime.escalations.sweep() == 0
    assert await alerts(runtime, ticket.id) == []


async def test_taking_a_ticket_over_processes_it(runtime: Runtime, team: dict[str, Agent], clock: ManualClock,
                                                 add_agent: Any) -> None:
    await runtime.service.update_agent(team["anna"].id, _presence("away"))
    await runtime.service.update_agent(team["boris"].id, _presence("away"))
    ticket = (await runtime.service.ingest(form())).ticket
    assert ticket.assignee_id is None
    clock.advance(HOUR)
    await runtime.service.update_ticket(team["anna"], ticket.id, {"assignee": team["anna"].id})
    assert (await fetch(runtime, Ticket, ticket.id)).processed_at == clock.now()
    assert str((await rows(runtime, ticket.id))["reassign"].status) == "met"


async def test_waiting_on_the_client_stops_the_clock_and_answering_resumes_it(
    runtime: Runtime, team: dict[str, Agent], clock: ManualClock
) -> None:
    ticket = (await runtime.service.ingest(form())).ticket
    agent = await fetch(runtime, Agent, ticket.assignee_id)
    clock.advance(HOUR)
    await runtime.service.update_ticket(agent, ticket.id, {"status": "pending"})
    assert {str(d.status) for d in (await rows(runtime, ticket.id)).values()} == {"paused"}
    clock.advance(timedelta(days=3))
    assert await runtime.escalations.sweep() == 0  # nothing fires while the clock stands

    # The client answers on Thursday 10:00: the ticket reopens and 8 working hours remain of the first day.
    await runtime.service.ingest(form(ticket_number=ticket.id))
    assert str((await fetch(runtime, Ticket, ticket.id)).status) == "open"
    got = await rows(runtime, ticket.id)
    assert str(got["reassign"].status) == "pending"
    assert got["reassign"].due_at == clock.now() + 8 * HOUR
    async with runtime.sessions() as session:
        timeline = [(e.kind, e.reason) for e in await session.scalars(
            select(ClockEvent).where(ClockEvent.ticket_id == ticket.id).order_by(ClockEvent.id))]
    assert [kind for kind, _ in timeline] == ["started", "paused", "resumed"]
    assert "pending" in timeline[1][1] or "status" in timeline[1][1]


async def test_resolving_meets_the_resolution_and_reopening_resumes_it(
    runtime: Runtime, team: dict[str, Agent], clock: ManualClock
) -> None:
    ticket = (await runtime.service.ingest(form(category="defect", priority=Priority.critical))).ticket
    assert (await fetch(runtime, Ticket, ticket.id)).regulation == "critical_defect"
    got = await rows(runtime, ticket.id)
    # Two business days are two working days: Tuesday at closing time.
    assert (got["day_one"].due_at == MONDAY_9 + 9 * HOUR
            and got["resolution"].due_at == MONDAY_9 + timedelta(days=1, hours=9))
    agent = await fetch(runtime, Agent, ticket.assignee_id)
    clock.advance(HOUR)
    await runtime.service.update_ticket(agent, ticket.id, {"status": "resolved"})
    got = await rows(runtime, ticket.id)
    assert (str(got["resolution"].status), str(got["day_one"].status)) == ("met", "cancelled")
    clock.advance(2 * HOUR)  # reopened by the client two hours later: those two hours do not count
    await runtime.service.ingest(form(ticket_number=ticket.id))
    got = await rows(runtime, ticket.id)
    assert str(got["resolution"].status) == "pending"
    assert got["resolution"].due_at == MONDAY_9 + timedelta(days=2, hours=2)  # Tuesday 18:00 + 2 h → Wednesday 11:00


async def test_an_unprocessed_critical_defect_alerts_the_production_manager_at_the_close_of_day_one(
    runtime: Runtime, team: dict[str, Agent], clock: ManualClock
) -> None:
    ticket = (await runtime.service.ingest(form(category="defect", priority=Priority.critical))).ticket
    clock.advance(9 * HOUR)
    assert await runtime.escalations.sweep() == 1
    assert await alerts(runtime, ticket.id) == [("email", "pm@example.com"), ("sms", "+447700900001")]
    clock.advance(timedelta(days=2))
    assert await runtime.escalations.sweep() == 1  # the resolution breach: the manager and the head
    assert (await alerts(runtime, ticket.id))[2:] == [
        ("email", "pm@example.com"), ("sms", "+447700900001"), ("email", "head@example.com"), ("sms", "+447700900002")]


async def test_raising_the_priority_moves_a_ticket_to_the_stricter_regulation(
    runtime: Runtime, team: dict[str, Agent], clock: ManualClock
) -> None:
    ticket = (await runtime.service.ingest(form(category="defect"))).ticket
    assert (await fetch(runtime, Ticket, ticket.id)).regulation == "request"
    clock.advance(HOUR)
    manager = team["head"]
    await runtime.service.update_ticket(manager, ticket.id, {"priority": "critical"})
    now = await fetch(runtime, Ticket, ticket.id)
    assert now.regulation == "critical_defect"
    got = await rows(runtime, ticket.id)
    assert str(got["reassign"].status) == "cancelled" and str(got["day_one"].status) == "pending"
    assert got["resolution"].due_at == MONDAY_9 + timedelta(days=1, hours=9)  # from creation, not from the change
    async with runtime.sessions() as session:
        kinds = [e.kind for e in await session.scalars(
            select(ClockEvent).where(ClockEvent.ticket_id == ticket.id).order_by(ClockEvent.id))]
    assert kinds == ["started", "replanned"]


async def test_two_firings_at_once_act_once(runtime: Runtime, team: dict[str, Agent], clock: ManualClock) -> None:
    ticket = (await runtime.service.ingest(form())).ticket
    clock.advance(9 * HOUR)
    row = (await rows(runtime, ticket.id))["reassign"]
    outcomes = await asyncio.gather(*(runtime.escalations.fire(row.id, row.plan) for _ in range(4)))
    assert sorted(outcomes).count("fired") == 1, outcomes
    async with runtime.sessions() as session:
        reassigned = list(await session.scalars(select(Event).where(
            Event.ticket_id == ticket.id, Event.kind == "assigned").order_by(Event.id)))
    assert len(reassigned) == 2  # the first routing, and one reassignment


def _presence(value: str) -> Any:
    from tickets.actions.staff import AgentChanges
    from tickets.models import Presence

    return AgentChanges(presence=Presence(value))


async def test_a_changed_regulations_file_replans_open_tickets_at_the_next_sweep(
    runtime: Runtime, team: dict[str, Agent], clock: ManualClock, settings: Settings, tmp_path: Path
) -> None:
    from switchboard.bootstrap import build

    ticket = (await runtime.service.ingest(form())).ticket
    clock.advance(HOUR)
    changed = tmp_path / "changed.yaml"
    changed.write_text(REGULATIONS.replace("after: 1 day\n        unless: processed",
                                           "after: 2 days\n        unless: processed"))
    restarted = await build(Settings(**{**settings.model_dump(), "regulations": changed}), clock=clock)
    try:
        assert restarted.escalations is not None
        assert await restarted.escalations.sweep() == 0  # re-planned, and nothing is due yet
        got = await rows(restarted, ticket.id)
        assert got["reassign"].due_at == MONDAY_9 + timedelta(days=1, hours=9)  # two working days from creation
        assert got["reassign"].plan == 2  # a new plan: the timer set for the old one finds nothing to do
        async with restarted.sessions() as session:
            timeline = [(e.kind, e.reason, e.version) for e in await session.scalars(
                select(ClockEvent).where(ClockEvent.ticket_id == ticket.id).order_by(ClockEvent.id))]
        assert [k for k, _, _ in timeline] == ["started", "replanned"]
        assert "the regulations changed" in timeline[1][1] and timeline[0][2] != timeline[1][2]
        assert await restarted.escalations.replan_outdated() == 0  # deterministic: a second pass changes nothing
    finally:
        await restarted.close()


async def test_the_forecast_lists_what_will_breach_within_the_window(
    runtime: Runtime, team: dict[str, Agent], clock: ManualClock, client: Any, add_agent: Any
) -> None:
    soon = (await runtime.service.ingest(form("a@example.com"))).ticket
    clock.advance(3 * HOUR)
    later = (await runtime.service.ingest(form("b@example.com"))).ticket
    manager, headers = await add_agent("Mona", role=Role.manager, presence="offline")
    _, agent_headers = await add_agent("Olga")
    response = await client.get("/api/v1/regulations/forecast", params={"hours": "2"}, headers=headers)
    assert response.status == 200, await response.text()
    body = await response.json()
    # Within 2 hours of 12:00: the first ticket's 4-hour first response (13:00); the second's is due at 16:00.
    assert [(i["number"], i["step"], i["breach"]) for i in body["items"]] == [(soon.id, "first_response", True)]
    every = await (await client.get("/api/v1/regulations/forecast", params={"hours": "5", "all": "true"},
                                    headers=headers)).json()
    assert {(i["number"], i["step"]) for i in every["items"]} >= {(later.id, "first_response.warning"),
                                                                  (later.id, "first_response")}
    assert (await client.get("/api/v1/regulations/forecast", headers=agent_headers)).status == 403
    assert (await client.get("/api/v1/regulations/forecast", params={"hours": "-1"}, headers=headers)).status == 422


async def test_a_customer_given_a_tier_moves_their_open_tickets_to_its_regulation(
    runtime: Runtime, team: dict[str, Agent], clock: ManualClock, client: Any, add_agent: Any
) -> None:
    ticket = (await runtime.service.ingest(form())).ticket
    _, headers = await add_agent("Mona", role=Role.manager, presence="offline")
    _, agent_headers = await add_agent("Olga")
    url = f"/api/v1/customers/{ticket.customer_id}"
    assert (await client.patch(url, json={"tier": "gold"}, headers=agent_headers)).status == 403
    assert (await client.patch(url, json={"tier": "no spaces"}, headers=headers)).status == 422
    response = await client.patch(url, json={"tier": "gold"}, headers=headers)
    assert response.status == 200, await response.text()
    assert (await response.json())["tier"] == "gold"
    detail = await (await client.get(f"/api/v1/tickets/{ticket.id}", headers=headers)).json()
    assert detail["regulation"] == "gold" and detail["customer"]["tier"] == "gold"
    steps = {d["step"]: d for d in detail["deadlines"]}
    assert steps["first_response"]["status"] == "pending" and steps["reassign"]["status"] == "cancelled"
    assert steps["first_response"]["due_at"].startswith("2026-03-02T10:00:00")  # clock time: an hour from creation
    assert [(e["kind"], e["regulation"]) for e in detail["clock"]] == [("started", "request"), ("replanned", "gold")]
    assert "tier" in detail["clock"][1]["reason"]


async def test_a_step_taken_out_of_the_file_is_cancelled_at_the_next_sweep(
    runtime: Runtime, team: dict[str, Agent], clock: ManualClock, settings: Settings, tmp_path: Path
) -> None:
    from switchboard.bootstrap import build

    ticket = (await runtime.service.ingest(form())).ticket
    without_head = (REGULATIONS.split("      - name: head\n")[0]
                    + REGULATIONS.split("notify: [{to: group_head, by: [email, sms]}]\n")[1])
    (tmp_path / "changed").mkdir()
    changed = with_regulations(settings, tmp_path / "changed", without_head)
    assert changed.regulation_book().named("request").step("head") is None
    restarted = await build(changed, clock=clock)
    try:
        assert restarted.escalations is not None
        await restarted.escalations.sweep()
        got = await rows(restarted, ticket.id)
        assert (str(got["head"].status), str(got["reassign"].status)) == ("cancelled", "pending")
        assert await restarted.escalations.replan_outdated() == 0  # nothing left planned by the old version
    finally:
        await restarted.close()
