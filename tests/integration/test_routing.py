"""Routing through the ticket service on a real store: weights, skills, queues, presence, hand-back, manual moves,
rules.

Every test runs on SQLite and PostgreSQL (the `database_url` fixture) with a manual clock; a test that needs other
routing settings parametrises `routing`, which the `settings` fixture below puts into its runtime.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from channels.phone.entry import CallEntry, entry_inbound
from routing.router import LeastLoadedRouter
from routing.weights import Load
from switchboard.bootstrap import Runtime
from switchboard.settings import RoutingSettings, Settings
from switchboard.worker import sweep_idle_agents
from tickets.actions.staff import AgentChanges
from tickets.clock import ManualClock
from tickets.errors import Conflict, Forbidden, InvalidInput
from tickets.inbound import Identity, Inbound
from tickets.models import Agent, Event, Presence, Priority, Role, Ticket, TicketStatus

SECOND = timedelta(seconds=1)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def routing() -> RoutingSettings:
    """The routing settings of this test's runtime; tests parametrise it for variants."""
    return RoutingSettings()


@pytest.fixture
def settings(settings: Settings, routing: RoutingSettings) -> Settings:
    return settings.model_copy(update={"routing": routing})


# --- helpers -------------------------------------------------------------------------------------


def mail(sender: str, **kwargs: Any) -> Inbound:
    address = sender if "@" in sender else f"{sender}@example.com"
    return Inbound(channel="email", identities=(Identity("email", address),), body_text="Hello", **kwargs)


def chat(user: str, **kwargs: Any) -> Inbound:
    return Inbound(channel="telegram", identities=(Identity("telegram", user),), body_text="hi", **kwargs)


async def ticket_now(runtime: Runtime, number: int) -> Ticket:
    """The ticket as the database holds it now (not as an earlier transaction left its object)."""
    async with runtime.sessions() as session:
        return await session.get_one(Ticket, number)


async def agent_now(runtime: Runtime, agent_id: int) -> Agent:
    async with runtime.sessions() as session:
        return await session.get_one(Agent, agent_id)


async def events(runtime: Runtime, number: int, *kinds: str) -> list[Event]:
    async with runtime.sessions() as session:
        query = select(Event).where(Event.ticket_id == number).order_by(Event.id)
        if kinds:
            query = query.where(Event.kind.in_(kinds))
        return list(await session.scalars(query))


async def kinds_of(runtime: Runtime, number: int) -> list[str]:
    return [e.kind for e in await events(runtime, number)]


async def last(runtime: Runtime, number: int, kind: str) -> Event:
    found = await events(runtime, number, kind)
    assert found, f"no {kind} event on #{number}"
    return found[-1]


async def assigned_in_order(runtime: Runtime) -> list[int]:
    """Ticket numbers in the order the router assigned them."""
    async with runtime.sessions() as session:
        rows = await session.scalars(
            select(Event.ticket_id).where(Event.kind == "assigned", Event.actor == "router").order_by(Event.id)
        )
        return list(rows)


async def loads(runtime: Runtime) -> dict[int, Load]:
    return {view.agent.id: Load(view.load.open, view.load.weighted) for view in await runtime.service.list_agents()}


async def ingest(runtime: Runtime, inbound: Inbound, clock: ManualClock) -> Ticket:
    """Ingest one message a second after the previous one, so ages and idle times differ."""
    clock.advance(SECOND)
    result = await runtime.service.ingest(inbound)
    assert result.created
    return result.ticket


async def manager(add_agent: Any) -> Agent:
    """A manager who is offline, so the router never gives them work."""
    agent, _ = await add_agent("Max Manager", role=Role.manager, presence=Presence.offline)
    return agent


def token_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


# --- weighted least-loaded choice ------------------------------------------------------------------


async def test_a_chat_weighs_two_and_a_critical_ticket_two(
    runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    ann, _ = await add_agent("Ann")
    ben, _ = await add_agent("Ben")

    t1 = await ingest(runtime, chat("1"), clock)  # both idle, never assigned: Ann (lower id) gets a chat, load 2
    t2 = await ingest(runtime, mail("m2"), clock)  # Ben 0 < Ann 2
    t3 = await ingest(runtime, mail("m3"), clock)  # Ben 1 < Ann 2
    t4 = await ingest(runtime, mail("m4", priority=Priority.critical), clock)  # 2 = 2: Ann waited longer
    t5 = await ingest(runtime, mail("m5"), clock)  # Ben 2 < Ann 4
    t6 = await ingest(runtime, chat("6", priority=Priority.high), clock)  # Ben 3 < Ann 4: a high chat weighs 3

    assert [t.assignee_id for t in (t1, t2, t3, t4, t5, t6)] == [ann.id, ben.id, ben.id, ann.id, ben.id, ben.id]
    assert await loads(runtime) == {ann.id: Load(2, 4.0), ben.id: Load(4, 6.0)}

    second = await last(runtime, t2.id, "assigned")
    assert second.actor == "router"
    assert second.reason == "least-loaded: 0 open; next best load 2 (1 open)"
    assert second.data == {"agent_id": ben.id, "open": 1, "load": 1.0, "capacity": 10}
    tie = await last(runtime, t4.id, "assigned")
    assert tie.reason == "least-loaded: load 2 (1 open); next best 2 open"
    assert tie.data == {"agent_id": ann.id, "open": 2, "load": 4.0, "capacity": 10}
    high_chat = await last(runtime, t6.id, "assigned")
    assert high_chat.reason == "least-loaded: 3 open; next best load 4 (2 open)"
    assert high_chat.data == {"agent_id": ben.id, "open": 4, "load": 6.0, "capacity": 10}


async def test_loads_count_every_open_and_pending_ticket_but_not_resolved_ones(
    runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    ann, _ = await add_agent("Ann")
    boss = await manager(add_agent)
    chat_ticket = await ingest(runtime, chat("1"), clock)
    critical = await ingest(runtime, mail("c", priority=Priority.critical), clock)
    plain = await ingest(runtime, mail("p"), clock)
    assert await loads(runtime) == {ann.id: Load(3, 5.0), boss.id: Load(0, 0.0)}

    await runtime.service.update_ticket(ann, chat_ticket.id, {"status": "pending"})
    assert (await loads(runtime))[ann.id] == Load(3, 5.0)
    await runtime.service.update_ticket(ann, critical.id, {"status": "resolved"})
    assert (await loads(runtime))[ann.id] == Load(2, 3.0)
    await runtime.service.update_ticket(ann, plain.id, {"status": "closed"})
    assert (await loads(runtime))[ann.id] == Load(1, 2.0)
    # A priority change re-weighs a ticket already held.
    await runtime.service.update_ticket(boss, chat_ticket.id, {"priority": "critical"})
    assert (await loads(runtime))[ann.id] == Load(1, 4.0)


@pytest.mark.parametrize(
    "routing", [RoutingSettings(channel_weights="email=3", priority_weights="low=0.5")], ids=["email-weighs-3"]
)
async def test_weights_follow_the_routing_settings(runtime: Runtime, add_agent: Any, clock: ManualClock) -> None:
    ann, _ = await add_agent("Ann")
    ben, _ = await add_agent("Ben")

    t1 = await ingest(runtime, mail("m1"), clock)  # Ann: an email now weighs 3
    t2 = await ingest(runtime, chat("2"), clock)  # Ben: a chat, no longer named, weighs 1
    t3 = await ingest(runtime, chat("3"), clock)  # Ben 1 < Ann 3
    t4 = await ingest(runtime, chat("4", priority=Priority.low), clock)  # Ben 2 < Ann 3; low halves: 0.5
    t5 = await ingest(runtime, mail("m5", priority=Priority.critical), clock)  # Ben 2.5 < 3: critical still 2 → 6

    assert [t.assignee_id for t in (t1, t2, t3, t4, t5)] == [ann.id, ben.id, ben.id, ben.id, ben.id]
    assert await loads(runtime) == {ann.id: Load(1, 3.0), ben.id: Load(4, 8.5)}
    low_chat = await last(runtime, t4.id, "assigned")
    assert low_chat.reason == "least-loaded: 2 open; next best load 3 (1 open)"
    assert low_chat.data == {"agent_id": ben.id, "open": 3, "load": 2.5, "capacity": 10}
    assert (await last(runtime, t5.id, "assigned")).data["load"] == 8.5


async def test_ties_go_to_the_agent_idle_longest_since_their_last_assignment(
    runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    ann, _ = await add_agent("Ann")
    ben, _ = await add_agent("Ben")
    boss = await manager(add_agent)
    first = await ingest(runtime, mail("a"), clock)
    second = await ingest(runtime, mail("b"), clock)
    assert (first.assignee_id, second.assignee_id) == (ann.id, ben.id)
    cara, _ = await add_agent("Cara")
    for ticket in (first, second):
        await runtime.service.update_ticket(boss, ticket.id, {"status": "resolved"})
    assert {a: load.open for a, load in (await loads(runtime)).items()} == {
        ann.id: 0, ben.id: 0, cara.id: 0, boss.id: 0
    }

    # Equal loads: never assigned first, then whoever was assigned longest ago.
    order = [(await ingest(runtime, mail(f"n{i}"), clock)).assignee_id for i in range(3)]
    assert order == [cara.id, ann.id, ben.id]
    assert (await agent_now(runtime, ben.id)).last_assigned_at == clock.now()


# --- skills and queues --------------------------------------------------------------------------------


async def test_skills_filter_the_agents_who_may_get_a_ticket(
    runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    await runtime.service.add_skill("ru")
    await runtime.service.add_rule(language="ru", skills=["ru"])
    ann, _ = await add_agent("Ann")
    rita, _ = await add_agent("Rita", skills=["ru"], capacity=3)

    ru1 = await ingest(runtime, mail("r1", language="ru"), clock)
    ru2 = await ingest(runtime, mail("r2", language="ru"), clock)  # Ann is less loaded, but lacks ru
    plain = await ingest(runtime, mail("p1"), clock)
    assert ru1.skills == "ru" and plain.skills == ""
    assert [t.assignee_id for t in (ru1, ru2, plain)] == [rita.id, rita.id, ann.id]
    assert (await last(runtime, ru2.id, "assigned")).reason == "least-loaded: 1 open; the only agent who could take it"

    await runtime.service.set_presence(rita.id, Presence.away)
    waiting = await ingest(runtime, mail("r3", language="ru"), clock)
    assert (waiting.status, waiting.assignee_id) == (TicketStatus.new, None)
    queued = await last(runtime, waiting.id, "queued")
    assert queued.reason == "no available agent has the skills ru"
    assert queued.data == {"group_id": waiting.group_id}

    # Rita coming back takes it from the queue at once.
    await runtime.service.set_presence(rita.id, Presence.available)
    taken = await ticket_now(runtime, waiting.id)
    assert (taken.status, taken.assignee_id) == (TicketStatus.open, rita.id)
    assigned = await last(runtime, waiting.id, "assigned")
    assert assigned.reason == "from the queue, least-loaded: 2 open; the only agent who could take it"
    assert assigned.data == {"agent_id": rita.id, "open": 3, "load": 3.0, "capacity": 3}

    full = await ingest(runtime, mail("r4", language="ru"), clock)
    assert full.assignee_id is None
    assert (await last(runtime, full.id, "queued")).reason == "every available agent with the skills ru is at capacity"


async def test_the_queue_passes_over_tickets_nobody_with_room_can_take(
    runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    await runtime.service.add_skill("ru")
    await runtime.service.add_rule(language="ru", skills=["ru"])
    await manager(add_agent)
    russian = await ingest(runtime, mail("r", language="ru", priority=Priority.critical), clock)
    normal = await ingest(runtime, mail("n"), clock)
    low = await ingest(runtime, mail("l", priority=Priority.low), clock)
    assert (await last(runtime, russian.id, "queued")).reason == "no agent available"

    ann, _ = await add_agent("Ann", capacity=5)
    # The oldest, most urgent ticket needs Russian: it waits, and does not hold up the others.
    assert await assigned_in_order(runtime) == [normal.id, low.id]
    assert (await ticket_now(runtime, russian.id)).status == TicketStatus.new
    assert {g.group.name: g.waiting for g in await runtime.service.list_groups()} == {"Support": 1}
    # The worker's safety net finds nothing to do either.
    assert await runtime.service.drain_queues() == 0

    rita, _ = await add_agent("Rita", skills=["ru"])
    assert (await ticket_now(runtime, russian.id)).assignee_id == rita.id
    assert (await ticket_now(runtime, normal.id)).assignee_id == ann.id
    assert {g.group.name: g.waiting for g in await runtime.service.list_groups()} == {"Support": 0}


async def test_the_queue_reads_past_a_long_head_of_tickets_nobody_can_take_in_pages(
    runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    """Drains read each priority's queue from its head in growing pages; the takeable tickets behind many that
    need a missing skill are found, in order, also when those at a page's edge arrived in the same second."""
    await runtime.service.add_skill("ru")
    await runtime.service.add_rule(language="ru", skills=["ru"])
    await manager(add_agent)
    clock.advance(SECOND)  # all twelve arrive in one second: the page cursor goes by (time, number)
    russian = [(await runtime.service.ingest(mail(f"r{n}", language="ru"))).ticket.id for n in range(9)]
    plain = [(await runtime.service.ingest(mail(f"p{n}"))).ticket.id for n in range(3)]
    urgent = await ingest(runtime, mail("u", language="ru", priority=Priority.high), clock)

    ann, _ = await add_agent("Ann", capacity=2)
    assert await assigned_in_order(runtime) == plain[:2]
    await runtime.service.update_ticket(ann, plain[0], {"status": "resolved"})  # one seat: a page of one, then more
    assert await assigned_in_order(runtime) == plain
    rita, _ = await add_agent("Rita", skills=["ru"], capacity=3)
    assert await assigned_in_order(runtime) == [*plain, urgent.id, *russian[:2]]
    assert {(await ticket_now(runtime, n)).status for n in russian[2:]} == {TicketStatus.new}
    assert {g.group.name: g.waiting for g in await runtime.service.list_groups()} == {"Support": 7}


async def test_the_workers_drain_assigns_what_a_path_without_routing_left_waiting(
    runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    ann, _ = await add_agent("Ann", presence=Presence.away)
    first = await ingest(runtime, mail("a"), clock)
    second = await ingest(runtime, mail("b", priority=Priority.high), clock)
    async with runtime.sessions() as session, session.begin():  # as a path that forgot to drain would leave it
        (await session.get_one(Agent, ann.id)).presence = Presence.available
    assert (await ticket_now(runtime, first.id)).assignee_id is None

    assert await runtime.service.drain_queues() == 2
    assert await assigned_in_order(runtime) == [second.id, first.id]
    assert await runtime.service.drain_queues() == 0


async def test_a_new_skill_lets_an_agent_take_what_waited_for_it(
    runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    await runtime.service.add_skill("billing")
    await runtime.service.add_rule(category="billing", skills=["billing"])
    ann, _ = await add_agent("Ann")
    invoice = await ingest(runtime, mail("i", category="billing"), clock)
    assert invoice.assignee_id is None

    view = await runtime.service.update_agent(ann.id, AgentChanges(skills=["billing"]))
    assert view.skills == ["billing"] and view.load.open == 1
    assert (await ticket_now(runtime, invoice.id)).assignee_id == ann.id


async def test_waiting_tickets_go_highest_priority_first_then_oldest(
    runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    boss = await manager(add_agent)
    made = {}
    for name, priority in [("n1", Priority.normal), ("h1", Priority.high), ("c1", Priority.critical),
                           ("n2", Priority.normal), ("c2", Priority.critical), ("l1", Priority.low),
                           ("h2", Priority.high)]:
        made[name] = await ingest(runtime, mail(name, priority=priority), clock)
    assert all(t.status == TicketStatus.new for t in made.values())

    ann, _ = await add_agent("Ann", capacity=4)  # an agent arriving takes four
    expected = [made[n].id for n in ("c1", "c2", "h1", "h2")]
    assert await assigned_in_order(runtime) == expected
    first = await last(runtime, made["c1"].id, "assigned")
    assert first.reason == "from the queue, least-loaded: 0 open; the only agent who could take it"
    assert first.data == {"agent_id": ann.id, "open": 1, "load": 2.0, "capacity": 4}

    await runtime.service.update_agent(ann.id, AgentChanges(capacity=6))  # more room takes the next two
    expected += [made["n1"].id, made["n2"].id]
    assert await assigned_in_order(runtime) == expected

    await runtime.service.update_ticket(boss, made["c1"].id, {"status": "resolved"})  # dropping below capacity
    expected.append(made["l1"].id)
    assert await assigned_in_order(runtime) == expected
    assert (await ticket_now(runtime, made["l1"].id)).assignee_id == ann.id


async def test_an_agent_of_several_groups_takes_the_most_urgent_of_all_their_queues(
    runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    await runtime.service.add_group("Sales")
    await manager(add_agent)
    support_low = await ingest(runtime, mail("a", priority=Priority.low), clock)
    support_normal = await ingest(runtime, mail("b"), clock)
    sales_critical = await ingest(runtime, mail("c", group="Sales", priority=Priority.critical), clock)
    sales_normal = await ingest(runtime, mail("d", group="Sales"), clock)

    both, _ = await add_agent("Bo", groups=["Support", "Sales"], capacity=2)
    assert await assigned_in_order(runtime) == [sales_critical.id, support_normal.id]
    await runtime.service.update_agent(both.id, AgentChanges(capacity=3))
    assert await assigned_in_order(runtime) == [sales_critical.id, support_normal.id, sales_normal.id]
    assert (await ticket_now(runtime, support_low.id)).status == TicketStatus.new


# --- presence ---------------------------------------------------------------------------------------


async def test_going_offline_hands_back_only_untouched_router_assignments(
    runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    alice, _ = await add_agent("Alice")
    bob, _ = await add_agent("Bob", presence=Presence.away)
    boss = await manager(add_agent)

    untouched = await ingest(runtime, mail("u"), clock)
    reprioritised = await ingest(runtime, mail("m"), clock)
    await runtime.service.update_ticket(boss, reprioritised.id, {"priority": "high"})  # not Alice's touch
    replied = await ingest(runtime, mail("r"), clock)
    await runtime.service.add_message(alice, replied.id, "We are on it.", internal=False)
    noted = await ingest(runtime, mail("n"), clock)
    await runtime.service.add_message(alice, noted.id, "Looks like a known bug", internal=True)
    reopened = await ingest(runtime, mail("s"), clock)
    await runtime.service.update_ticket(alice, reopened.id, {"status": "pending"})
    await runtime.service.update_ticket(alice, reopened.id, {"status": "open"})
    pending = await ingest(runtime, mail("p"), clock)
    await runtime.service.update_ticket(alice, pending.id, {"status": "pending"})
    assert {t.assignee_id for t in (untouched, reprioritised, replied, noted, reopened, pending)} == {alice.id}

    await runtime.service.set_presence(alice.id, Presence.away)  # away keeps everything
    taken = await ingest(runtime, mail("k"), clock)
    transferred = await ingest(runtime, mail("t"), clock)
    assert taken.assignee_id is None and transferred.assignee_id is None
    await runtime.service.update_ticket(alice, taken.id, {"assignee": alice.id})
    await runtime.service.update_ticket(boss, transferred.id, {"assignee": alice.id})
    await runtime.service.set_presence(alice.id, Presence.available)
    await runtime.service.set_presence(bob.id, Presence.available)
    assert (await loads(runtime))[alice.id].open == 8
    assert (await ticket_now(runtime, untouched.id)).assignee_id == alice.id

    view = await runtime.service.set_presence(alice.id, Presence.offline)
    assert (view.agent.presence, view.load.open) == (Presence.offline, 6)
    for ticket in (untouched, reprioritised):
        now = await ticket_now(runtime, ticket.id)
        assert (now.assignee_id, now.status) == (bob.id, TicketStatus.open)
        assert (await kinds_of(runtime, ticket.id))[-2:] == ["returned", "assigned"]
        returned = await last(runtime, ticket.id, "returned")
        assert (returned.actor, returned.reason, returned.data) == (
            "router", "Alice went offline", {"agent_id": alice.id}
        )
        assert (await last(runtime, ticket.id, "assigned")).reason.startswith("from the queue, least-loaded: ")
    for ticket, status in [(replied, TicketStatus.open), (noted, TicketStatus.open), (reopened, TicketStatus.open),
                           (pending, TicketStatus.pending), (taken, TicketStatus.open),
                           (transferred, TicketStatus.open)]:
        now = await ticket_now(runtime, ticket.id)
        assert (now.assignee_id, now.status) == (alice.id, status), ticket.id
        assert "returned" not in await kinds_of(runtime, ticket.id)
    assert (await loads(runtime))[bob.id].open == 2


async def test_an_agent_going_offline_with_nobody_to_take_over_leaves_the_work_waiting(
    runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    alice, _ = await add_agent("Alice")
    ticket = await ingest(runtime, mail("u"), clock)
    await runtime.service.set_presence(alice.id, Presence.offline, reason="end of shift")

    now = await ticket_now(runtime, ticket.id)
    assert (now.status, now.assignee_id) == (TicketStatus.new, None)
    assert (await last(runtime, ticket.id, "returned")).reason == "Alice went offline (end of shift)"
    assert {g.group.name: g.waiting for g in await runtime.service.list_groups()} == {"Support": 1}

    # Back online, the router gives it to her again: it is the router's, not her own, so it may.
    await runtime.service.set_presence(alice.id, Presence.available)
    assert (await ticket_now(runtime, ticket.id)).assignee_id == alice.id
    assert await kinds_of(runtime, ticket.id) == ["created", "assigned", "returned", "assigned"]


@pytest.mark.parametrize("routing", [RoutingSettings(return_on_offline=False)], ids=["keep-on-offline"])
async def test_without_return_on_offline_tickets_stay_with_their_agent(
    runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    alice, _ = await add_agent("Alice")
    bob, _ = await add_agent("Bob", presence=Presence.away)
    ticket = await ingest(runtime, mail("u"), clock)
    assert ticket.assignee_id == alice.id

    view = await runtime.service.set_presence(alice.id, Presence.offline)
    await runtime.service.set_presence(bob.id, Presence.available)
    assert (view.agent.presence, view.load.open) == (Presence.offline, 1)
    now = await ticket_now(runtime, ticket.id)
    assert (now.assignee_id, now.status) == (alice.id, TicketStatus.open)
    assert await kinds_of(runtime, ticket.id) == ["created", "assigned"]
    # An offline agent is still not given new work.
    assert (await ingest(runtime, mail("v"), clock)).assignee_id == bob.id


async def test_requests_keep_an_agent_seen_written_at_most_once_a_minute(
    runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    alice, headers = await add_agent("Alice")
    assert (await agent_now(runtime, alice.id)).last_seen_at is None
    start = clock.now()
    assert (await runtime.service.authenticate(token_of(headers))).id == alice.id
    assert (await agent_now(runtime, alice.id)).last_seen_at == start
    clock.advance(timedelta(seconds=59))
    await runtime.service.authenticate(token_of(headers))
    assert (await agent_now(runtime, alice.id)).last_seen_at == start
    clock.advance(SECOND)
    await runtime.service.authenticate(token_of(headers))
    assert (await agent_now(runtime, alice.id)).last_seen_at == start + timedelta(minutes=1)
    assert await runtime.service.authenticate("not-a-token") is None


async def test_idle_agents_go_offline_and_hand_back_their_work(
    runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    alice, alice_headers = await add_agent("Alice")
    bob, bob_headers = await add_agent("Bob")
    cara, _ = await add_agent("Cara")  # never made a request: left alone
    dan, dan_headers = await add_agent("Dan", presence=Presence.away)
    for headers in (alice_headers, bob_headers, dan_headers):
        await runtime.service.authenticate(token_of(headers))
    ticket = await ingest(runtime, mail("u"), clock)
    assert ticket.assignee_id == alice.id

    clock.advance(timedelta(minutes=30))
    await runtime.service.authenticate(token_of(bob_headers))
    clock.advance(timedelta(minutes=30))
    assert await runtime.service.sweep_idle_agents(timedelta(minutes=60)) == [alice.id, dan.id]

    presence = {v.agent.id: v.agent.presence for v in await runtime.service.list_agents()}
    assert presence == {alice.id: Presence.offline, bob.id: Presence.available, cara.id: Presence.available,
                        dan.id: Presence.offline}
    assert (await agent_now(runtime, alice.id)).presence_since == clock.now()
    returned = await last(runtime, ticket.id, "returned")
    assert returned.reason == "Alice went offline (idle for 60 minutes)"
    assert (await ticket_now(runtime, ticket.id)).assignee_id == bob.id  # never assigned, lower id than Cara
    assert await runtime.service.sweep_idle_agents(timedelta(minutes=60)) == []

    # The worker's cron job does the same with the configured idle time (60 minutes by default).
    clock.advance(timedelta(minutes=31))
    assert await sweep_idle_agents({"runtime": runtime}) == 1
    assert (await agent_now(runtime, bob.id)).presence == Presence.offline
    assert (await agent_now(runtime, cara.id)).presence == Presence.available
    assert (await ticket_now(runtime, ticket.id)).assignee_id == cara.id
    assert (await last(runtime, ticket.id, "returned")).reason == "Bob went offline (idle for 60 minutes)"


async def test_agents_idle_together_go_offline_together(runtime: Runtime, add_agent: Any, clock: ManualClock) -> None:
    """One idle agent's work is not handed to another idle agent of the same sweep, to come back a moment later."""
    alice, alice_headers = await add_agent("Alice")
    bob, bob_headers = await add_agent("Bob")
    cara, _ = await add_agent("Cara")
    for headers in (alice_headers, bob_headers):
        await runtime.service.authenticate(token_of(headers))
    ticket = await ingest(runtime, mail("u"), clock)
    assert ticket.assignee_id == alice.id

    clock.advance(timedelta(hours=2))
    assert await runtime.service.sweep_idle_agents(timedelta(minutes=60)) == [alice.id, bob.id]
    assert (await ticket_now(runtime, ticket.id)).assignee_id == cara.id
    assert await kinds_of(runtime, ticket.id) == ["created", "assigned", "returned", "assigned"]
    assert (await last(runtime, ticket.id, "assigned")).data["agent_id"] == cara.id


@pytest.mark.parametrize("routing", [RoutingSettings(idle_offline_minutes=0)], ids=["never-idle"])
async def test_idle_offline_zero_turns_the_sweep_off(runtime: Runtime, add_agent: Any, clock: ManualClock) -> None:
    alice, headers = await add_agent("Alice")
    await runtime.service.authenticate(token_of(headers))
    clock.advance(timedelta(days=2))
    assert await sweep_idle_agents({"runtime": runtime}) == 0
    assert (await agent_now(runtime, alice.id)).presence == Presence.available


@pytest.mark.parametrize("routing", [RoutingSettings(idle_offline_minutes=15)], ids=["idle-15"])
async def test_the_cron_sweep_uses_the_configured_idle_time(
    runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    alice, headers = await add_agent("Alice")
    await runtime.service.authenticate(token_of(headers))
    clock.advance(timedelta(minutes=14))
    assert await sweep_idle_agents({"runtime": runtime}) == 0
    clock.advance(timedelta(minutes=2))
    assert await sweep_idle_agents({"runtime": runtime}) == 1
    assert (await agent_now(runtime, alice.id)).presence == Presence.offline


# --- taking, returning, transferring ------------------------------------------------------------------


async def test_an_agent_takes_a_waiting_ticket_unless_full_or_unskilled(
    runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    await runtime.service.add_skill("ru")
    await runtime.service.add_rule(language="ru", skills=["ru"])
    ann, _ = await add_agent("Ann", capacity=1)
    bob, _ = await add_agent("Bob", presence=Presence.away)
    boss = await manager(add_agent)
    held = await ingest(runtime, mail("h"), clock)
    waiting = await ingest(runtime, mail("w"), clock)
    assert held.assignee_id == ann.id and waiting.assignee_id is None
    assert (await last(runtime, waiting.id, "queued")).reason == "every available agent is at capacity"

    before = await kinds_of(runtime, waiting.id)
    with pytest.raises(Conflict, match=r"you are at capacity \(1 of 1 open tickets\)"):
        await runtime.service.update_ticket(ann, waiting.id, {"assignee": ann.id})
    assert (await ticket_now(runtime, waiting.id)).assignee_id is None
    assert await kinds_of(runtime, waiting.id) == before

    # Away agents may still take work by hand.
    view = await runtime.service.update_ticket(bob, waiting.id, {"assignee": bob.id})
    assert (view.ticket.assignee_id, view.ticket.status) == (bob.id, TicketStatus.open)
    taken = view.events[-1]
    assert (taken.kind, taken.actor, taken.actor_id) == ("taken", f"agent:{bob.id}", bob.id)
    assert taken.data == {"agent_id": bob.id, "previous_agent_id": None}
    assert (await agent_now(runtime, bob.id)).last_assigned_at == clock.now()

    russian = await ingest(runtime, mail("r", language="ru"), clock)
    assert (await last(runtime, russian.id, "queued")).reason == "no available agent has the skills ru"
    with pytest.raises(Conflict, match=rf"ticket #{russian.id} needs the skills ru, which you lack"):
        await runtime.service.update_ticket(bob, russian.id, {"assignee": bob.id})
    assert (await ticket_now(runtime, russian.id)).assignee_id is None

    # A manager may overrule both: skills and capacity.
    await runtime.service.update_ticket(boss, russian.id, {"assignee": ann.id})
    now = await ticket_now(runtime, russian.id)
    assert (now.assignee_id, now.status) == (ann.id, TicketStatus.open)
    assert (await last(runtime, russian.id, "transferred")).data == {"agent_id": ann.id, "previous_agent_id": None}
    assert (await loads(runtime))[ann.id].open == 2

    # Only managers hand tickets to someone else.
    with pytest.raises(Forbidden):
        await runtime.service.update_ticket(bob, waiting.id, {"assignee": ann.id})
    assert (await ticket_now(runtime, waiting.id)).assignee_id == bob.id


async def test_a_returned_ticket_goes_to_someone_else_and_the_freed_room_to_the_queue(
    runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    ann, _ = await add_agent("Ann", capacity=3)
    bob, _ = await add_agent("Bob", capacity=3)
    t1, t2, t3, t4 = [await ingest(runtime, mail(f"t{i}"), clock) for i in range(1, 5)]
    assert [t.assignee_id for t in (t1, t2, t3, t4)] == [ann.id, bob.id, ann.id, bob.id]

    # Ann returns t1: she is now the least loaded, but it goes to Bob.
    view = await runtime.service.update_ticket(ann, t1.id, {"assignee": None})
    assert (view.ticket.assignee_id, view.ticket.status) == (bob.id, TicketStatus.open)
    assert [e.kind for e in view.events][-2:] == ["unassigned", "assigned"]
    unassigned, assigned = view.events[-2:]
    assert (unassigned.actor, unassigned.data) == (f"agent:{ann.id}", {"agent_id": ann.id})
    assert assigned.reason == "least-loaded: 2 open; the only agent who could take it"
    assert assigned.data == {"agent_id": bob.id, "open": 3, "load": 3.0, "capacity": 3}

    t5, t6 = [await ingest(runtime, mail(f"t{i}"), clock) for i in (5, 6)]
    t7 = await ingest(runtime, mail("t7"), clock)
    assert (t5.assignee_id, t6.assignee_id, t7.assignee_id) == (ann.id, ann.id, None)

    # Ann returns t3 with Bob full: t3 waits (not handed straight back); her freed room takes t7.
    view = await runtime.service.update_ticket(ann, t3.id, {"assignee": None})
    assert (view.ticket.assignee_id, view.ticket.status) == (None, TicketStatus.new)
    assert (await last(runtime, t3.id, "queued")).reason == "every available agent is at capacity"
    assert (await ticket_now(runtime, t7.id)).assignee_id == ann.id
    # Another agent may not give Ann's ticket back for her.
    with pytest.raises(Forbidden):
        await runtime.service.update_ticket(bob, t5.id, {"assignee": None})


async def test_a_manager_transfers_to_an_agent_and_the_previous_one_takes_the_queue(
    runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    ann, _ = await add_agent("Ann", capacity=1)
    bob, _ = await add_agent("Bob", presence=Presence.away)
    boss = await manager(add_agent)
    first = await ingest(runtime, mail("a"), clock)
    waiting = await ingest(runtime, mail("b"), clock)
    assert (first.assignee_id, waiting.assignee_id) == (ann.id, None)

    view = await runtime.service.update_ticket(boss, first.id, {"assignee": bob.id})
    transferred = view.events[-1]
    assert (transferred.kind, transferred.actor) == ("transferred", f"agent:{boss.id}")
    assert transferred.data == {"agent_id": bob.id, "previous_agent_id": ann.id}
    assert view.ticket.assignee_id == bob.id
    assert (await ticket_now(runtime, waiting.id)).assignee_id == ann.id
    assert await loads(runtime) == {ann.id: Load(1, 1.0), bob.id: Load(1, 1.0), boss.id: Load(0, 0.0)}


async def test_a_manager_moves_a_ticket_to_another_groups_queue(
    runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    await runtime.service.add_group("Sales")
    ann, _ = await add_agent("Ann", capacity=1)
    sam, _ = await add_agent("Sam", groups=["Sales"])
    boss = await manager(add_agent)
    moved = await ingest(runtime, mail("a"), clock)
    waiting = await ingest(runtime, mail("b"), clock)
    assert (moved.assignee_id, waiting.assignee_id) == (ann.id, None)
    support_id = moved.group_id

    view = await runtime.service.update_ticket(boss, moved.id, {"group": "Sales"})
    assert view.group.name == "Sales"
    assert (view.ticket.assignee_id, view.ticket.status) == (sam.id, TicketStatus.open)
    assert [e.kind for e in view.events][-3:] == ["group_changed", "unassigned", "assigned"]
    changed = view.events[-3]
    assert (changed.reason, changed.data) == ("moved to Sales", {"old": support_id, "new": view.group.id})
    assert view.events[-1].data["agent_id"] == sam.id
    # Ann's freed room takes the Support queue.
    assert (await ticket_now(runtime, waiting.id)).assignee_id == ann.id

    # With nobody available in Sales the ticket waits in the Sales queue until someone is.
    await runtime.service.set_presence(sam.id, Presence.away)
    view = await runtime.service.update_ticket(boss, waiting.id, {"group": "Sales"})
    assert (view.ticket.assignee_id, view.ticket.status, view.group.name) == (None, TicketStatus.new, "Sales")
    queued = view.events[-1]
    assert (queued.kind, queued.reason, queued.data) == ("queued", "no agent available", {"group_id": view.group.id})
    assert {g.group.name: g.waiting for g in await runtime.service.list_groups()} == {"Sales": 1, "Support": 0}
    await runtime.service.set_presence(sam.id, Presence.available)
    assert (await ticket_now(runtime, waiting.id)).assignee_id == sam.id

    other = await ingest(runtime, mail("c"), clock)
    with pytest.raises(Forbidden):
        await runtime.service.update_ticket(ann, other.id, {"group": "Sales"})
    with pytest.raises(InvalidInput) as refused:
        await runtime.service.update_ticket(boss, other.id, {"group": "Nowhere"})
    assert "group" in refused.value.fields
    # Naming the group it is in changes nothing.
    before = await kinds_of(runtime, other.id)
    await runtime.service.update_ticket(boss, other.id, {"group": "Support"})
    assert await kinds_of(runtime, other.id) == before


# --- routing rules ------------------------------------------------------------------------------------


async def test_routing_rules_first_group_wins_skills_add_up_first_priority_wins(
    runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    for group in ("Chat", "Billing", "Sales", "Sales RU"):
        await runtime.service.add_group(group)
    for skill in ("ru", "billing", "vip"):
        await runtime.service.add_skill(skill)
    to_chat = await runtime.service.add_rule(channel="telegram", group="Chat")
    to_billing = await runtime.service.add_rule(category="billing", group="Billing", skills=["billing"])
    russian = await runtime.service.add_rule(language="ru", skills=["ru"], priority=Priority.high)
    billing_critical = await runtime.service.add_rule(category="billing", priority=Priority.critical)
    sales_ru = await runtime.service.add_rule(from_group="Sales", language="ru", group="Sales RU")
    vip = await runtime.service.add_rule(channel="telegram", category="billing", skills=["vip"], position=5)
    assert [r.rule.id for r in await runtime.service.list_rules()] == [
        vip.rule.id, to_chat.rule.id, to_billing.rule.id, russian.rule.id, billing_critical.rule.id, sales_ru.rule.id]

    groups = {g.group.name: g.group.id for g in await runtime.service.list_groups()}
    pat, _ = await add_agent("Pat", groups=["Chat"])
    polly, _ = await add_agent("Polly", groups=["Chat"], skills=["billing", "ru", "vip"])

    every = await ingest(runtime, chat("1", category="Billing", language="ru", priority=Priority.low), clock)
    assert (every.group_id, every.skills, every.priority) == (groups["Chat"], "billing,ru,vip", Priority.high)
    assert every.assignee_id == polly.id  # Pat is in Chat too, but lacks the skills
    created = await last(runtime, every.id, "created")
    ids = [vip, to_chat, to_billing, russian, billing_critical]
    assert created.reason == "new telegram message; routing rules " + ", ".join(f"#{r.rule.id}" for r in ids)

    invoice = await ingest(runtime, mail("b", category="billing"), clock)
    assert (invoice.group_id, invoice.skills, invoice.priority) == (groups["Billing"], "billing", Priority.critical)
    assert invoice.assignee_id is None  # nobody works Billing yet

    sales = await ingest(runtime, mail("s", group="Sales", language="ru"), clock)
    assert (sales.group_id, sales.skills, sales.priority) == (groups["Sales RU"], "ru", Priority.high)
    english_sales = await ingest(runtime, mail("e", group="Sales", language="en"), clock)
    assert (english_sales.group_id, english_sales.skills, english_sales.priority) == (
        groups["Sales"], "", Priority.normal)
    plain = await ingest(runtime, chat("2"), clock)
    assert (plain.group_id, plain.skills, plain.assignee_id) == (groups["Chat"], "", pat.id)
    assert (await last(runtime, plain.id, "created")).reason == (
        f"new telegram message; routing rules #{to_chat.rule.id}"
    )
    nothing = await ingest(runtime, mail("n"), clock)
    assert (await last(runtime, nothing.id, "created")).reason == "new email message"

    # Rules place new tickets only: a follow-up stays where its ticket is.
    follow_up = await runtime.service.ingest(mail("n", ticket_number=nothing.id, language="ru"))
    assert not follow_up.created and (await ticket_now(runtime, nothing.id)).skills == ""


async def test_routing_rules_need_a_condition_and_an_effect(runtime: Runtime) -> None:
    with pytest.raises(InvalidInput) as refused:
        await runtime.service.add_rule(group="Support")
    assert "rule" in refused.value.fields
    with pytest.raises(InvalidInput) as refused:
        await runtime.service.add_rule(channel="email")
    assert "rule" in refused.value.fields
    with pytest.raises(InvalidInput) as refused:
        await runtime.service.add_rule(channel="email", skills=["klingon"])
    assert "skills" in refused.value.fields
    with pytest.raises(InvalidInput) as refused:
        await runtime.service.add_rule(channel="email", group="Nowhere")
    assert set(refused.value.fields) == {"group"}
    with pytest.raises(InvalidInput) as refused:
        await runtime.service.add_rule(from_group="Nowhere", priority=Priority.high)
    assert set(refused.value.fields) == {"from_group"}
    assert await runtime.service.list_rules() == []


async def test_a_missed_call_is_placed_by_the_routing_rules(
    runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    await runtime.service.add_group("Callbacks")
    await runtime.service.add_skill("phone")
    rule = await runtime.service.add_rule(channel="phone", category="callback", group="Callbacks",
                                          skills=["phone"], priority=Priority.high)
    await add_agent("Ann")
    await add_agent("Carl", groups=["Callbacks"])
    cleo, _ = await add_agent("Cleo", groups=["Callbacks"], skills=["phone"])

    started = clock.now() - timedelta(minutes=5)
    entry = CallEntry(call_id="pbx-1", caller="020 7946 0958", called="+442079460000", direction="in",
                      disposition="missed", started_at=started, ended_at=started + timedelta(seconds=30))
    [result] = await runtime.service.log_calls([entry_inbound(entry, region="GB", now=clock.now(),
                                                              token_agent_id=None)])

    assert result.created and result.ticket is not None
    ticket = await ticket_now(runtime, result.ticket.id)
    groups = {g.group.name: g.group.id for g in await runtime.service.list_groups()}
    assert (ticket.channel, ticket.category) == ("phone", "callback")
    assert (ticket.group_id, ticket.skills, ticket.priority) == (groups["Callbacks"], "phone", Priority.high)
    assert ticket.assignee_id == cleo.id
    created = await last(runtime, ticket.id, "created")
    assert created.reason == f"missed call: call the client back; routing rules #{rule.rule.id}"
    assigned = await last(runtime, ticket.id, "assigned")
    assert assigned.reason == "least-loaded: 0 open; the only agent who could take it"
    assert assigned.data == {"agent_id": cleo.id, "open": 1, "load": 1.5, "capacity": 10}

    # The rule is about phone callbacks: an email from the same client is not touched by it.
    emailed = await ingest(runtime, mail("jane"), clock)
    assert (emailed.group_id, emailed.skills) == (groups["Support"], "")


# --- the regulation engine's reassignment ----------------------------------------------------------


async def test_assign_with_exclude_picks_the_least_loaded_other_agent(
    runtime: Runtime, add_agent: Any, clock: ManualClock
) -> None:
    ann, _ = await add_agent("Ann", presence=Presence.away)
    bob, _ = await add_agent("Bob", presence=Presence.away)
    cara, _ = await add_agent("Cara", presence=Presence.away)
    boss = await manager(add_agent)
    for n, agent in enumerate([bob, bob, bob, cara, cara]):
        waiting = await ingest(runtime, mail(f"w{n}"), clock)
        await runtime.service.update_ticket(boss, waiting.id, {"assignee": agent.id})
    await runtime.service.set_presence(ann.id, Presence.available)
    late = await ingest(runtime, mail("late"), clock)
    assert late.assignee_id == ann.id
    for agent in (bob, cara):
        await runtime.service.set_presence(agent.id, Presence.available)
    assert {a: load.open for a, load in (await loads(runtime)).items()} == {
        ann.id: 1, bob.id: 3, cara.id: 2, boss.id: 0
    }

    router = LeastLoadedRouter(runtime.settings.routing.weights())
    clock.advance(timedelta(days=1))
    async with runtime.sessions() as session, session.begin():
        ticket = await session.get_one(Ticket, late.id, with_for_update=True)
        chosen = await router.assign(session, ticket, clock.now(), exclude=[ann.id])
    assert chosen is not None and chosen.id == cara.id

    now = await ticket_now(runtime, late.id)
    assert (now.assignee_id, now.status) == (cara.id, TicketStatus.open)
    assigned = await last(runtime, late.id, "assigned")
    assert assigned.actor == "router"
    assert assigned.reason == "least-loaded: 2 open; next best 3 open"  # Ann, less loaded, was excluded
    assert assigned.data == {"agent_id": cara.id, "open": 3, "load": 3.0, "capacity": 10}
    assert (await agent_now(runtime, cara.id)).last_assigned_at == clock.now()
    assert {a: load.open for a, load in (await loads(runtime)).items()} == {
        ann.id: 0, bob.id: 3, cara.id: 3, boss.id: 0
    }

    # With every other agent excluded or away, the ticket stays where it is.
    await runtime.service.set_presence(ann.id, Presence.away)
    async with runtime.sessions() as session, session.begin():
        ticket = await session.get_one(Ticket, late.id, with_for_update=True)
        assert await router.assign(session, ticket, clock.now(), exclude=[cara.id, bob.id]) is None
    now = await ticket_now(runtime, late.id)
    assert (now.assignee_id, now.status) == (cara.id, TicketStatus.open)
    kept = (await events(runtime, late.id))[-1]
    assert (kept.kind, kept.actor, kept.data) == ("not_reassigned", "router", {"agent_id": cara.id})
    assert kept.reason == "nobody else could take it: no agent available"
    assert "queued" not in await kinds_of(runtime, late.id)  # it never waited in a queue
