"""Routing under real contention: several OS processes ingest, flip agents' presence and resolve tickets at once.

While they run, the test keeps reading every agent's open count in one consistent snapshot (nobody may ever
be over capacity); afterwards the audit trail is replayed against the final state. A last phase with every
agent available and nothing flipping checks that equal agents end within one ticket of each other.
One interleaving the chaos hits only sometimes (a resolve holding its ticket while its agent goes offline)
is also forced, deterministically, with a third session holding the agents' rows. On SQLite the same
invariants are checked for the embedded default: one process, many concurrent asyncio tasks.

The same module is the driver each process runs:
    python -m tests.integration.test_routing_processes --url URL --agents 1,2,3 --manager 4 --ingests 150 [--chaos]
It builds the service as a production process would (Settings → build_engine → build_service), prints
`ready`, waits for `go` on stdin, runs its workload and prints one JSON line of what it did.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from switchboard.bootstrap import build_engine, build_service
from switchboard.settings import DatabaseSettings, Settings
from tickets.clock import SystemClock
from tickets.inbound import Identity, Inbound
from tickets.models import (
    LOAD_STATUSES,
    Agent,
    Event,
    Presence,
    Role,
    Ticket,
    TicketStatus,
)
from tickets.service import TicketService

REPO = Path(__file__).resolve().parents[2]
PROCESSES = 3
AGENTS = 8
CAPACITY = 6
CHAOS_INGESTS = 80
"""Per process: 240 tickets against 48 seats, with agents dropping out, so the queue forms and drains."""
FINAL_INGESTS = 13
"""Per process once everything is calm: 39 tickets over 8 empty agents, so loads must end at 4 or 5."""
TIME_LIMIT = 90.0
"""Each phase's bound; on a busy 2-core machine (load ~7) the chaos phase took ~37 s, the calm one ~5 s."""


# --- the workload (run by each driver process, or in-process for SQLite) --------------------------------------


@dataclass
class Tally:
    numbers: list[int] = field(default_factory=list)
    flips: int = 0
    resolves: int = 0
    errors: list[str] = field(default_factory=list)


def form(tag: str, n: int) -> Inbound:
    """A web-form message from a new client each time (no threading: every one opens a ticket)."""
    return Inbound(
        channel="webform",
        identities=(Identity("email", f"client-{tag}-{n}@example.com"),),
        body_text=f"Request {n} from {tag}: the invoice is wrong.",
        subject=f"Request {tag}-{n}",
        external_id=f"{tag}-{n}",
        customer_name=f"Client {tag} {n}",
    )


async def workload(
    service: TicketService, *, tag: str, ingests: int, concurrency: int, agent_ids: list[int], manager_id: int,
    chaos: bool, seed: int,
) -> Tally:
    """`ingests` concurrent web-form ingests; with `chaos`, presence flips and resolves run beside them."""
    rng = random.Random(seed)
    tally = Tally()
    manager = await service.find_agent(str(manager_id))
    pending = iter(range(ingests))
    done = asyncio.Event()

    async def ingester() -> None:
        for n in pending:
            try:
                tally.numbers.append((await service.ingest(form(tag, n))).ticket.id)
            except Exception as exc:  # noqa: BLE001 - counted and reported, the test decides
                tally.errors.append(f"ingest: {type(exc).__name__}: {str(exc)[:300]}")

    async def flipper() -> None:
        while not done.is_set():
            presence = rng.choice([Presence.available, Presence.available, Presence.away, Presence.offline])
            try:
                await service.set_presence(rng.choice(agent_ids), presence, reason="test flip")
                tally.flips += 1
            except Exception as exc:  # noqa: BLE001
                tally.errors.append(f"set_presence: {type(exc).__name__}: {str(exc)[:300]}")
            await asyncio.sleep(rng.uniform(0, 0.03))

    async def resolver() -> None:
        while not done.is_set():
            try:
                page = await service.list_tickets(manager, status=[TicketStatus.open], limit=60)
                if page.tickets:
                    number = rng.choice(page.tickets).id
                    await service.update_ticket(manager, number, {"status": "resolved"})
                    tally.resolves += 1
            except Exception as exc:  # noqa: BLE001
                tally.errors.append(f"resolve: {type(exc).__name__}: {str(exc)[:300]}")
            await asyncio.sleep(rng.uniform(0, 0.02))

    side = [asyncio.create_task(f()) for f in ((flipper, flipper, resolver, resolver, resolver) if chaos else ())]
    try:
        await asyncio.gather(*(ingester() for _ in range(concurrency)))
    finally:
        done.set()
        await asyncio.gather(*side)
    return tally


async def drive(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="sb-routing-driver-") as data_dir:
        settings = Settings(data_dir=Path(data_dir), database=DatabaseSettings(url=args.url, pool_size=12))
        engine = build_engine(settings)
        service = build_service(settings, engine, SystemClock())
        try:
            await service.find_agent(str(args.manager))  # connected and warm before the start line
            print("ready", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            tally = await workload(
                service, tag=args.tag, ingests=args.ingests, concurrency=args.concurrency,
                agent_ids=[int(a) for a in args.agents.split(",")], manager_id=args.manager, chaos=args.chaos,
                seed=args.seed,
            )
            print(json.dumps(tally.__dict__), flush=True)
        finally:
            await engine.dispose()


# --- the checks ------------------------------------------------------------------------------------------------


async def open_counts(engine: Any) -> dict[int, tuple[int, int]]:
    """Every agent's (open count, capacity) in one consistent snapshot."""
    held = (
        select(func.count()).where(Ticket.assignee_id == Agent.id, Ticket.status.in_(LOAD_STATUSES))
        .correlate(Agent).scalar_subquery()
    )
    options = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
    async with engine.connect() as connection:
        connection = await connection.execution_options(**options)
        async with connection.begin():
            rows = await connection.execute(select(Agent.id, held, Agent.capacity).where(Agent.role == Role.agent))
            return {agent_id: (count, capacity) for agent_id, count, capacity in rows}


class Sampler:
    """Reads everyone's load over and over while the workload runs; remembers anyone ever seen over capacity."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.samples = 0
        self.over: list[tuple[int, int, int]] = []
        self.highest = 0
        self.stop = asyncio.Event()

    async def run(self) -> None:
        while not self.stop.is_set():
            for agent_id, (count, capacity) in (await open_counts(self.engine)).items():
                self.highest = max(self.highest, count)
                if count > capacity:
                    self.over.append((agent_id, count, capacity))
            self.samples += 1
            await asyncio.sleep(0.01)


async def check_audit(engine: Any, agent_ids: list[int]) -> dict[str, int]:
    """Replay each ticket's router events and compare them with where the ticket is now."""
    async with engine.connect() as connection:
        tickets = {t.id: t for t in (await connection.execute(select(Ticket.id, Ticket.status, Ticket.assignee_id)))}
        events = list(await connection.execute(
            select(Event.ticket_id, Event.kind, Event.actor, Event.data)
            .where(Event.kind.in_(("assigned", "returned", "unassigned", "taken", "transferred", "queued")))
            .order_by(Event.ticket_id, Event.id)
        ))
    holder: dict[int, int | None] = {}
    kinds: Counter[str] = Counter()
    for ticket_id, kind, actor, data in events:
        kinds[kind] += 1
        if kind == "assigned":
            assert actor == "router", (ticket_id, actor)
            assert holder.get(ticket_id) is None, f"ticket {ticket_id} assigned again while {holder[ticket_id]} held it"
            assert data["open"] <= data["capacity"], (ticket_id, data)
            assert data["agent_id"] in agent_ids, (ticket_id, data)
            holder[ticket_id] = data["agent_id"]
        elif kind in ("returned", "unassigned"):
            assert holder.get(ticket_id) == data["agent_id"], (ticket_id, kind, data, holder.get(ticket_id))
            holder[ticket_id] = None
        elif kind in ("taken", "transferred"):
            raise AssertionError(f"nobody takes or transfers tickets in this test, yet ticket {ticket_id} was {kind}")
    for ticket_id, status, assignee in tickets.values():
        assert assignee == holder.get(ticket_id), (ticket_id, status, assignee, holder.get(ticket_id))
        if status in (TicketStatus.new, *LOAD_STATUSES):
            assert (status == TicketStatus.new) == (assignee is None), (ticket_id, status, assignee)
    return dict(kinds)


async def check_queue_settled(engine: Any) -> int:
    """A ticket may still wait only if no available agent has room; returns how many wait."""
    counts = await open_counts(engine)
    async with engine.connect() as connection:
        waiting = await connection.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.status == TicketStatus.new,
                                                           Ticket.assignee_id.is_(None))
        )
        available = set(await connection.scalars(
            select(Agent.id).where(Agent.presence == Presence.available, Agent.role == Role.agent)
        ))
    with_room = [a for a in available if counts[a][0] < counts[a][1]]
    assert not (waiting and with_room), f"{waiting} tickets wait while {with_room} have room: {counts}"
    return int(waiting or 0)


async def clear_desk(service: TicketService, engine: Any, manager: Agent) -> None:
    """Everyone available, then resolve everything open or waiting, so the calm phase starts from zero."""
    for agent_id in (await open_counts(engine)):
        await service.set_presence(agent_id, Presence.available)
    gate = asyncio.Semaphore(8)

    async def resolve(number: int) -> None:
        async with gate:
            await service.update_ticket(manager, number, {"status": "resolved"})

    for _ in range(100):
        async with engine.connect() as connection:
            left = list(await connection.scalars(
                select(Ticket.id).where(Ticket.status.in_((TicketStatus.new, *LOAD_STATUSES)))
            ))
        if not left:
            return
        await asyncio.gather(*(resolve(n) for n in left))
    raise AssertionError("the desk did not clear")


async def staff(service: TicketService) -> tuple[list[int], Agent]:
    await service.add_group("Managers")
    manager, _ = await service.add_agent("Manager", "manager@example.com", role=Role.manager, groups=["Managers"])
    agents = [
        (await service.add_agent(f"Agent {n}", f"agent{n}@example.com", capacity=CAPACITY))[0].id for n in range(AGENTS)
    ]
    return agents, manager


def final_loads(counts: dict[int, tuple[int, int]], expected_total: int) -> None:
    loads = {agent_id: count for agent_id, (count, _) in counts.items()}
    assert sum(loads.values()) == expected_total, loads
    assert max(loads.values()) - min(loads.values()) <= 1, loads


# --- PostgreSQL: several OS processes ----------------------------------------------------------------------------


async def run_drivers(url: str, agents: list[int], manager: int, *, ingests: int, chaos: bool, phase: str,
                      sampler: Sampler) -> list[Tally]:
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.integration.test_routing_processes", "--url", url,
            "--agents", ",".join(map(str, agents)), "--manager", str(manager), "--ingests", str(ingests),
            "--concurrency", "8", "--tag", f"{phase}{p}", "--seed", str(p), *(["--chaos"] if chaos else []),
            cwd=REPO, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        for p in range(PROCESSES)
    ]
    try:
        async with asyncio.timeout(TIME_LIMIT):
            for process in processes:
                assert process.stdout is not None
                line = await process.stdout.readline()
                if line.strip() != b"ready":
                    raise AssertionError(f"driver did not start: {line!r} {await process.stderr.read()!r}")
            sampling = asyncio.create_task(sampler.run())
            for process in processes:
                process.stdin.write(b"go\n")
                await process.stdin.drain()
            outputs = await asyncio.gather(*(process.communicate() for process in processes))
            sampler.stop.set()
            await sampling
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
    tallies = []
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err.decode()[-3000:]
        tallies.append(Tally(**json.loads(out.decode().strip().splitlines()[-1])))
    return tallies


def deadlocks(tallies: list[Tally]) -> list[str]:
    return [e for t in tallies for e in t.errors if "deadlock" in e.lower()]


@pytest.mark.postgresql_only
async def test_processes_ingesting_flipping_and_resolving_never_overfill_an_agent(
    database_url: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, database=DatabaseSettings(url=database_url, pool_size=12))
    engine = build_engine(settings)
    service = build_service(settings, engine, SystemClock())
    try:
        agents, manager = await staff(service)
        began = time.monotonic()

        sampler = Sampler(engine)
        tallies = await run_drivers(database_url, agents, manager.id, ingests=CHAOS_INGESTS, chaos=True,
                                    phase="chaos", sampler=sampler)
        errors = [e for t in tallies for e in t.errors]
        assert sampler.over == [], sampler.over
        assert sampler.samples >= 20, sampler.samples
        assert sampler.highest == CAPACITY  # the agents really filled up
        assert sum(len(t.numbers) for t in tallies) + sum(e.startswith("ingest") for e in errors) == \
            PROCESSES * CHAOS_INGESTS
        kinds = await check_audit(engine, agents)
        print(f"chaos: {time.monotonic() - began:.1f} s, {sampler.samples} samples, events {kinds}, "
              f"flips {sum(t.flips for t in tallies)}, resolves {sum(t.resolves for t in tallies)}, "
              f"errors {errors[:5]}")
        assert kinds.get("queued", 0) > 0 and kinds.get("returned", 0) > 0, kinds  # the queue formed, hand-backs ran
        assert sum(t.flips for t in tallies) > 20 and sum(t.resolves for t in tallies) > 20, tallies
        await check_queue_settled(engine)
        assert errors == [], errors

        await clear_desk(service, engine, manager)
        calm = Sampler(engine)
        tallies = await run_drivers(database_url, agents, manager.id, ingests=FINAL_INGESTS, chaos=False,
                                    phase="calm", sampler=calm)
        assert [e for t in tallies for e in t.errors] == []
        assert calm.over == []
        await check_audit(engine, agents)
        assert await check_queue_settled(engine) == 0
        final_loads(await open_counts(engine), PROCESSES * FINAL_INGESTS)
        print(f"done: {time.monotonic() - began:.1f} s")
    finally:
        await engine.dispose()


async def waiting_on_locks(monitor: asyncpg.Connection, count: int) -> None:
    """Until `count` sessions of this database wait for a lock (a fresh statement each time: no stats snapshot)."""
    async with asyncio.timeout(10):
        while await monitor.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ) < count:
            await asyncio.sleep(0.02)


@pytest.mark.postgresql_only
async def test_a_resolve_racing_its_agent_going_offline_does_not_deadlock(database_url: str, tmp_path: Path) -> None:
    """The interleaving the chaos run hits only now and then, forced: the offline flip is first in line for the
    agents' rows, the resolve already holds the ticket and queues behind it. Before the hand-back skipped
    locked tickets, PostgreSQL aborted one of them with "deadlock detected" (a 500 to whoever asked)."""
    settings = Settings(data_dir=tmp_path, database=DatabaseSettings(url=database_url))
    engine = build_engine(settings)
    service = build_service(settings, engine, SystemClock())
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    blocker, monitor = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        await service.add_group("Managers")
        manager, _ = await service.add_agent("Manager", "manager@example.com", role=Role.manager, groups=["Managers"])
        ann, _ = await service.add_agent("Ann", "ann@example.com", capacity=5)
        number = (await service.ingest(form("race", 1))).ticket.id

        holding = blocker.transaction()
        await holding.start()
        await blocker.execute("SELECT id FROM agents ORDER BY id FOR UPDATE")
        offline = asyncio.create_task(service.set_presence(ann.id, Presence.offline))
        await waiting_on_locks(monitor, 1)
        resolve = asyncio.create_task(service.update_ticket(manager, number, {"status": "resolved"}))
        await waiting_on_locks(monitor, 2)  # the resolve holds the ticket and waits for the agents
        await holding.commit()
        async with asyncio.timeout(20):
            results = await asyncio.gather(offline, resolve, return_exceptions=True)
        assert not [r for r in results if isinstance(r, BaseException)], results
        async with engine.connect() as connection:
            status, assignee = (await connection.execute(
                select(Ticket.status, Ticket.assignee_id).where(Ticket.id == number))).one()
            presence = await connection.scalar(select(Agent.presence).where(Agent.id == ann.id))
        assert (status, assignee, presence) == (TicketStatus.resolved, ann.id, Presence.offline)
        await check_audit(engine, [ann.id])
    finally:
        await blocker.close()
        await monitor.close()
        await engine.dispose()


@pytest.mark.postgresql_only
async def test_a_row_naming_an_agent_written_before_routing_neither_blocks_nor_deadlocks_it(
    database_url: str, tmp_path: Path
) -> None:
    """A transaction that writes a row naming an agent (an event by them, a ticket assigned to them) holds FOR KEY
    SHARE on that agent until it commits, and may lock the agents for routing only afterwards (an agent resolving
    their own ticket does). The router's FOR NO KEY UPDATE does not wait for that; FOR UPDATE did, and once the
    writer asked for the agents too, both waited for ever (found by the contention bench)."""
    settings = Settings(data_dir=tmp_path, database=DatabaseSettings(url=database_url))
    engine = build_engine(settings)
    service = build_service(settings, engine, SystemClock())
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    writer = await asyncpg.connect(dsn)
    try:
        ann, _ = await service.add_agent("Ann", "ann@example.com", capacity=5)
        bob, _ = await service.add_agent("Bob", "bob@example.com", capacity=5)
        held = (await service.ingest(form("held", 1))).ticket.id
        writing = writer.transaction()
        await writing.start()
        await writer.execute(
            "INSERT INTO events (ticket_id, kind, actor, actor_id, data, created_at) "
            "VALUES ($1, 'note_added', 'agent', $2, '{}', now())", held, ann.id,
        )
        async with asyncio.timeout(5):  # routing goes on while the writer's key share is held
            routed = [(await service.ingest(form("meanwhile", n))).ticket for n in range(4)]
        assert {t.assignee_id for t in routed} == {ann.id, bob.id}
        async with asyncio.timeout(5):  # and the writer gets the agents as a router would
            locked = await writer.fetch("SELECT id FROM agents ORDER BY id FOR NO KEY UPDATE")
        assert [r["id"] for r in locked] == sorted([ann.id, bob.id])
        await writing.commit()
        await check_audit(engine, [ann.id, bob.id])
    finally:
        await writer.close()
        await engine.dispose()


# --- SQLite: the single-process embedded default -----------------------------------------------------------------


async def test_one_process_on_sqlite_keeps_the_same_invariants(database_url: str, tmp_path: Path) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("the SQLite variant; PostgreSQL is covered by the multi-process test")
    settings = Settings(data_dir=tmp_path, database=DatabaseSettings(url=database_url))
    engine = build_engine(settings)
    service = build_service(settings, engine, SystemClock())
    try:
        agents, manager = await staff(service)
        sampler = Sampler(engine)
        sampling = asyncio.create_task(sampler.run())
        async with asyncio.timeout(TIME_LIMIT):
            tallies = await asyncio.gather(*(
                workload(service, tag=f"chaos{p}", ingests=CHAOS_INGESTS // 2, concurrency=8, agent_ids=agents,
                         manager_id=manager.id, chaos=True, seed=p)
                for p in range(PROCESSES)
            ))
        sampler.stop.set()
        await sampling
        assert sampler.over == [] and sampler.samples >= 5, (sampler.over, sampler.samples)
        assert sampler.highest == CAPACITY
        kinds = await check_audit(engine, agents)
        print(f"sqlite chaos: {sampler.samples} samples, events {kinds}, flips {sum(t.flips for t in tallies)}, "
              f"resolves {sum(t.resolves for t in tallies)}")
        assert kinds.get("queued", 0) > 0 and kinds.get("returned", 0) > 0, kinds
        await check_queue_settled(engine)
        assert [e for t in tallies for e in t.errors] == []

        await clear_desk(service, engine, manager)
        tallies = await asyncio.gather(*(
            workload(service, tag=f"calm{p}", ingests=FINAL_INGESTS, concurrency=8, agent_ids=agents,
                     manager_id=manager.id, chaos=False, seed=p)
            for p in range(PROCESSES)
        ))
        assert [e for t in tallies for e in t.errors] == []
        await check_audit(engine, agents)
        assert await check_queue_settled(engine) == 0
        final_loads(await open_counts(engine), PROCESSES * FINAL_INGESTS)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--agents", required=True)
    parser.add_argument("--manager", type=int, required=True)
    parser.add_argument("--ingests", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--tag", default="p")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chaos", action="store_true")
    asyncio.run(drive(parser.parse_args()))
