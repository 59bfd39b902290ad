"""Queue listing latency with a year of history (target: p95 ≤ 50 ms at 1,000,000 tickets): what agents and managers
load all day, `GET /api/v1/tickets` in its usual shapes and the console's queue page `/desk`, against one real
`switchboard web` process.

Usage: uv run python bench/queue_listing.py [--tickets 1000000] [--customers 100000] [--active 6000] [--runs 3]
       [--requests 300] [--concurrency 8] [--view-seconds 20] [--target-ms 50] [--only VIEW,…] [--explain]

Each run gets a fresh database (migrated; groups Support, Sales and Billing; 20 agents, all in Support, five also in
Sales and four also in Billing; a manager), added with the CLI as the README says, each agent's API token kept from
`agent add`, console passwords set with `agent passwd --stdin`. Then `--tickets` tickets are written with COPY, ids in
time order over the last 365 days: about `--active` of them new (unassigned, the group queues), open or pending
(assigned over the agents of their group), spread over the last two weeks; the rest resolved (last month) or closed.
Five channels, four priorities, web-form topics, `--customers` clients with an email (some also a phone) whom
tickets reuse (a few clients write often); every ticket has its client's message and, once answered, the agent's
reply; every ticket has the built-in `request` regulation's two steps (met, pending, paused or fired, as a running
worker leaves them). Then VACUUM ANALYZE, one `switchboard web` process, and for each view a few warm-up requests,
then `--requests` requests one after another ("seq") and again from `--concurrency` clients at once ("cN"), each
phase stopping early after `--view-seconds` (at least 2×concurrency requests). Agent views rotate over the 20
agents' tokens (the console over three signed-in agents' session cookies); cursors for pages 2 and 3 are each
agent's `next_cursor`. Latency is the client's, over HTTP on 127.0.0.1: p50/p95/p99 per view and phase, the median
over the runs. `GET /api/v1/tickets` without filters lists every ticket the agent may see (their groups' and their
own, any status), newest first; an agent's own queue is `assignee=me` (the console's default view, "mine"). The API
has one order (newest first); the console sorts by deadline (its default), waiting time or priority, which the
console views cover.

`--explain` (last run): for each view whose sequential p95 is over `--target-ms`, one request is replayed against the
same application built in this process with every SQL statement captured, and each SELECT is run again under
EXPLAIN (ANALYZE, BUFFERS) with its parameters, once with a custom plan and once with the generic plan that
prepared statements switch to after five executions; the statements and the slowest one's plan are printed.
Needs PostgreSQL (BENCH_PG_URL) and Redis (BENCH_REDIS_URL); traffic stays on 127.0.0.1; each database is dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.deployment import REDIS_URL, REPO, Deployment, asyncpg_dsn, deployment, report  # noqa: E402
from tests.conftest import free_port, wait_healthy  # noqa: E402

AGENTS = 20
SALES = range(11, 16)
"""Agents who also work in Sales (all work in Support)."""
BILLING = range(16, 20)
PASSWORD = "queue-bench-password"
DESK_AGENTS = (0, 12, 17)
"""Agents signed in to the console (one of each group combination); the manager signs in too."""
CHANNELS = (("email", 45), ("webform", 20), ("phone", 13), ("webchat", 12), ("telegram", 10))
PRIORITIES = (("normal", 75), ("high", 12), ("low", 10), ("critical", 3))
GROUPS = (("Support", 70), ("Sales", 20), ("Billing", 10))
TOPICS = ("question", "request", "defect", "billing", "feedback")
SEARCH_WORD = "refund"
"""In about one subject in 30 and in some message bodies: a search with many hits."""
SEARCH_MISS = "zebrafish"
"""In no ticket: a search that finds nothing (a typo, a client we never heard from)."""

SUBJECTS = [
    "Printer not printing", "Cannot log in", "Password reset does not arrive", "Refund for order {n}",
    "Invoice {n} is wrong", "Delivery late, order {n}", "App crashes on start", "Question about my plan",
    "Change my billing address", "Refund not received", "Wrong item delivered", "How do I export my data?",
    "Account locked", "Charged twice", "Cancel my subscription", "Feature request: dark mode",
    "Website is slow", "Error 500 on checkout", "Need a copy of the contract", "Upgrade to the business plan",
    "Missed call", "Callback requested", "Принтер не печатает", "Не приходит счёт", "Вопрос по тарифу",
    "Не могу войти", "Возврат денег за заказ {n}", "Problem with the mobile app", "Discount code does not work",
    "Where is my parcel?", "Two-factor code not accepted", "Please call me back", "Damaged on arrival",
]
SENTENCES = [
    "I have tried restarting it twice already.", "This started happening yesterday after the update.",
    "Could you please look into it as soon as possible?", "My order number is in the subject.",
    "I was told on the phone that someone would get back to me.", "The same thing happened last month.",
    "I would like a refund if this cannot be fixed.", "Attached is a screenshot of the error message.",
    "Our whole team is affected.", "Please let me know what information you need from me.",
    "I paid by card and the money has left my account.", "Nothing happens when I press the button.",
    "It says my password is wrong but I just reset it.", "The courier never came.",
    "Здравствуйте! Проблема повторяется каждый день.", "Спасибо заранее за помощь.",
    "I am on the premium plan, if that matters.", "It works on my laptop but not on my phone.",
]
REPLIES = [
    "Thank you for writing to us. We have looked into this and",
    "Sorry for the trouble. I have checked your account and",
    "Good news: our team has fixed the issue, and", "Thanks for your patience. The refund was issued today and",
    "I have passed this on to our engineers;", "Здравствуйте! Мы проверили ваш заказ и",
]
FIRST = ["Anna", "Boris", "Carla", "David", "Elena", "Farid", "Greta", "Hugo", "Irina", "Jonas", "Kira", "Liam",
         "Maria", "Nikolai", "Olga", "Pavel", "Quinn", "Rosa", "Sergei", "Tanya", "Umar", "Vera", "Wim", "Yulia"]
LAST = ["Smith", "Ivanova", "Garcia", "Petrov", "Müller", "Kowalski", "Rossi", "Novak", "Sokolova", "Brown",
        "Jensen", "Dubois", "Kuznetsov", "Silva", "Nowak", "Popescu", "Horvat", "Lindqvist", "Fischer", "Orlova"]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def weighted(rng: random.Random, options: tuple[tuple[str, int], ...], count: int) -> list[str]:
    return rng.choices([o for o, _ in options], [w for _, w in options], k=count)


# --- the deployment ---------------------------------------------------------------------------------------------

async def cli(dep: Deployment, *args: str, stdin: str | None = None) -> str:
    """Run `switchboard ARGS` against the deployment; its standard output (the token is the last line of `add`)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "switchboard.cli", *args, cwd=REPO, env=dep.env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate(stdin.encode() if stdin is not None else None)
    if process.returncode != 0:
        raise RuntimeError(f"switchboard {' '.join(args)} failed: {err.decode()[-2000:]}")
    return out.decode()


@dataclass
class Staff:
    agent_ids: list[int]
    tokens: list[str]
    manager_id: int
    manager_token: str
    groups: dict[str, int]
    members: dict[str, list[int]]
    """Agent ids per group name."""


async def add_staff(dep: Deployment) -> Staff:
    for name in ("Support", "Sales", "Billing"):
        await cli(dep, "group", "add", name, "--head", f"head.{name.lower()}@example.com")
    limit = asyncio.Semaphore(4)

    async def add(n: int) -> str:
        groups = ["Support", *(["Sales"] if n in SALES else []), *(["Billing"] if n in BILLING else [])]
        async with limit:
            out = await cli(dep, "agent", "add", f"Agent {n}", "--email", f"agent{n}@example.com", "--capacity", "500",
                            *itertools.chain.from_iterable(("--group", g) for g in groups))
        return out.strip().splitlines()[-1]

    tokens = list(await asyncio.gather(*(add(n) for n in range(AGENTS))))
    manager_token = (await cli(dep, "agent", "add", "Mia Manager", "--email", "manager@example.com",
                               "--role", "manager", "--group", "Support", "--group", "Sales", "--group", "Billing")
                     ).strip().splitlines()[-1]
    for email in [f"agent{n}@example.com" for n in DESK_AGENTS] + ["manager@example.com"]:
        await cli(dep, "agent", "passwd", email, "--stdin", stdin=PASSWORD + "\n")
    connection = await asyncpg.connect(asyncpg_dsn(dep.database_url))
    try:
        ids = {r["email"]: r["id"] for r in await connection.fetch("SELECT id, email FROM agents")}
        groups = {r["name"]: r["id"] for r in await connection.fetch("SELECT id, name FROM groups")}
        members: dict[str, list[int]] = {name: [] for name in groups}
        for r in await connection.fetch("SELECT g.name, ag.agent_id FROM agent_groups ag JOIN groups g "
                                        "ON g.id = ag.group_id JOIN agents a ON a.id = ag.agent_id "
                                        "WHERE a.role = 'agent' ORDER BY ag.agent_id"):
            members[r["name"]].append(r["agent_id"])
    finally:
        await connection.close()
    return Staff([ids[f"agent{n}@example.com"] for n in range(AGENTS)], tokens, ids["manager@example.com"],
                 manager_token, groups, members)


# --- the history ------------------------------------------------------------------------------------------------

@dataclass
class Seeded:
    tickets: int
    messages: int
    deadlines: int
    seconds: float
    customer_email: str
    """Of the client of a Support ticket in the middle of the history."""
    number: int
    """Of a Support ticket a third of the way through the history."""


def _bodies(rng: random.Random) -> tuple[list[str], list[str]]:
    inbound = []
    for _ in range(3000):
        words = rng.sample(SENTENCES, rng.randint(2, 6))
        if rng.random() < 0.04:
            words.append(f"Where is my {SEARCH_WORD}?")
        inbound.append("Hello,\n\n" + " ".join(words) + "\n\nBest regards")
    outbound = [rng.choice(REPLIES) + " " + " ".join(rng.sample(SENTENCES, rng.randint(1, 3)))
                + "\n\nKind regards,\nSupport" for _ in range(1000)]
    return inbound, outbound


async def seed(dsn: str, staff: Staff, tickets: int, customers: int, active: int, version: str) -> Seeded:
    """Customers, tickets, messages and deadlines by COPY, then VACUUM ANALYZE (triggers, hence foreign-key checks,
    are off while loading: every reference is made consistent here)."""
    rng = random.Random(20261201)
    began = time.perf_counter()
    now = datetime.now(UTC)
    start = now - timedelta(days=365)
    span = (now - start).total_seconds()
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("SET session_replication_role = replica; SET synchronous_commit = off")
        emails: list[str] = []
        customer_rows, identity_rows = [], []
        identity_id = 0
        for c in range(1, customers + 1):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            created = start - timedelta(days=rng.random() * 700)
            customer_rows.append((c, f"{first} {last}", "ru" if rng.random() < 0.2 else "en", created, created))
            email = f"{first.lower()}.{last.lower()}.{c}@example.org".replace("ü", "ue")
            emails.append(email)
            identity_id += 1
            identity_rows.append((identity_id, c, "email", email, created))
            if rng.random() < 0.3:
                identity_id += 1
                identity_rows.append((identity_id, c, "phone", f"+4420{70000000 + c}", created))
        await connection.copy_records_to_table(
            "customers", columns=["id", "name", "language", "created_at", "updated_at"], records=customer_rows)
        await connection.copy_records_to_table(
            "customer_identities", columns=["id", "customer_id", "kind", "address", "created_at"],
            records=identity_rows)
        del customer_rows, identity_rows

        inbound_bodies, outbound_bodies = _bodies(rng)
        window = min(tickets, active * 6)
        """Active tickets are among the newest `window` (about two weeks at the default scale)."""
        share = min(1.0, active / window)
        message_id = 0
        deadline_id = 0
        counts = {"messages": 0, "deadlines": 0}
        chunk = 50_000
        ticket_columns = ["id", "subject", "status", "priority", "category", "channel", "skills", "customer_id",
                          "group_id", "assignee_id", "created_at", "updated_at", "first_response_at", "processed_at",
                          "regulation", "resolved_at", "closed_at", "portal_key"]
        message_columns = ["id", "ticket_id", "direction", "channel", "customer_id", "author_id", "body_text",
                           "attachments", "delivery_status", "thread_reason", "created_at"]
        deadline_columns = ["id", "ticket_id", "regulation", "step", "met_by", "due_at", "status", "met_at",
                            "created_at", "position", "kind", "plan", "reference_at", "fired_at", "breach", "version"]
        group_names = list(staff.groups)
        group_weights = dict(GROUPS)
        day, two_days = timedelta(days=1), timedelta(days=2)
        for first_id in range(1, tickets + 1, chunk):
            ids = range(first_id, min(tickets, first_id + chunk - 1) + 1)
            channels = weighted(rng, CHANNELS, len(ids))
            priorities = weighted(rng, PRIORITIES, len(ids))
            groups = rng.choices(group_names, [group_weights[g] for g in group_names], k=len(ids))
            ticket_rows, message_rows, deadline_rows = [], [], []
            for k, ticket_id in enumerate(ids):
                channel, group = channels[k], groups[k]
                created = start + timedelta(seconds=span * (ticket_id - 0.5 + rng.random() * 0.9) / tickets)
                age = now - created
                recent = ticket_id > tickets - window
                if recent and rng.random() < share:
                    newest = ticket_id > tickets - window // 10
                    status = "new" if newest and rng.random() < 0.5 else rng.choice(("open", "open", "pending"))
                elif age < timedelta(days=30) and rng.random() < 0.7:
                    status = "resolved"
                else:
                    status = "closed" if rng.random() < 0.98 else "resolved"
                # A fifth of the tickets come from the top 1% of clients (about 200 a year each at the default).
                customer = rng.randrange(max(1, customers // 100) if rng.random() < 0.2 else customers) + 1
                assignee = None if status == "new" else rng.choice(staff.members[group])
                category = (rng.choice(TOPICS) if channel == "webform" else
                            "callback" if channel == "phone" and rng.random() < 0.6 else None)
                answered = None if status == "new" else created + timedelta(minutes=5 + rng.random() * 600)
                if answered is not None and answered > now:
                    answered = now
                resolved = closed = None
                if status in ("resolved", "closed"):
                    resolved = min(now, created + timedelta(hours=1 + rng.random() * 96))
                    closed = min(now, resolved + timedelta(days=7)) if status == "closed" else None
                updated = closed or resolved or answered or created
                subject = rng.choice(SUBJECTS).replace("{n}", str(100000 + rng.randrange(900000)))
                ticket_rows.append((ticket_id, subject, status, priorities[k], category, channel, "", customer,
                                    staff.groups[group], assignee, created, updated, answered, answered, "request",
                                    resolved, closed, secrets.token_urlsafe(24)))
                message_id += 1
                message_rows.append((message_id, ticket_id, "in", channel, customer, None, rng.choice(inbound_bodies),
                                     "[]", None, "new ticket", created))
                if answered is not None:
                    message_id += 1
                    message_rows.append((message_id, ticket_id, "out", channel, None, assignee,
                                         rng.choice(outbound_bodies), "[]", "sent", None, answered))
                # The built-in `request` regulation: reassign (met by processing) after a day, alert the head
                # (met by resolving) after two; past due and not met → fired, as a running worker leaves them.
                for position, (step, met_by, due, met) in enumerate((
                        ("reassign", "processed", created + day, answered),
                        ("head_alert", "resolved", created + two_days, resolved))):
                    fired = None
                    if met is not None and (status != "pending" or step == "reassign"):
                        state = "met"
                    elif status == "pending":
                        state = "paused"
                    elif due < now:
                        state, fired = "fired", due + timedelta(seconds=1)
                    else:
                        state = "pending"
                    deadline_id += 1
                    deadline_rows.append((deadline_id, ticket_id, "request", step, met_by, due, state,
                                          met if state == "met" else None, created, position, "step", 1, created,
                                          fired, state == "fired" and step == "head_alert", version))
            await connection.copy_records_to_table("tickets", columns=ticket_columns, records=ticket_rows)
            await connection.copy_records_to_table("messages", columns=message_columns, records=message_rows)
            await connection.copy_records_to_table("deadlines", columns=deadline_columns, records=deadline_rows)
            counts["messages"] += len(message_rows)
            counts["deadlines"] += len(deadline_rows)
        for table, last in (("customers", customers), ("customer_identities", identity_id), ("tickets", tickets),
                            ("messages", message_id), ("deadlines", deadline_id)):
            await connection.execute(f"SELECT setval('{table}_id_seq', {last})")
        await connection.execute("RESET session_replication_role")
        await connection.execute("VACUUM ANALYZE")
        # Ones every agent may see: of the Support group.
        middle = await connection.fetchval("SELECT customer_id FROM tickets WHERE id >= $1 AND group_id = $2 "
                                           "ORDER BY id LIMIT 1", tickets // 2, staff.groups["Support"])
        number = await connection.fetchval(
            "SELECT min(id) FROM tickets WHERE id >= $1 AND group_id = $2", tickets // 3, staff.groups["Support"])
    finally:
        await connection.close()
    return Seeded(tickets, counts["messages"], counts["deadlines"], time.perf_counter() - began, emails[middle - 1],
                  number)


# --- the views --------------------------------------------------------------------------------------------------

@dataclass
class View:
    name: str
    request: Callable[[int], tuple[str, dict[str, str]]]
    """The i-th request's path and query, and its headers."""
    desk: bool = False


def api(**query: str) -> str:
    return "/api/v1/tickets" + ("?" + urlencode(query) if query else "")


def views(staff: Staff, seeded: Seeded, cursors: list[tuple[int | None, int | None]],
          cookies: list[str], manager_cookie: str) -> list[View]:
    tokens = staff.tokens

    def agent(url: str | Callable[[int], str]) -> Callable[[int], tuple[str, dict[str, str]]]:
        return lambda i: (url(i) if callable(url) else url, {"Authorization": f"Bearer {tokens[i % len(tokens)]}"})

    def manager(url: str) -> Callable[[int], tuple[str, dict[str, str]]]:
        return lambda i: (url, {"Authorization": f"Bearer {staff.manager_token}"})

    def desk(url: str) -> Callable[[int], tuple[str, dict[str, str]]]:
        return lambda i: (url, {"Cookie": f"sb_session={cookies[i % len(cookies)]}"})

    def desk_manager(url: str) -> Callable[[int], tuple[str, dict[str, str]]]:
        return lambda i: (url, {"Cookie": f"sb_session={manager_cookie}"})

    active = "new,open,pending"
    colleague = staff.agent_ids[AGENTS // 2]
    return [
        View("api_default", agent(api())),
        View("api_page2", agent(lambda i: api(cursor=str(cursors[i % len(tokens)][0])))),
        View("api_page3", agent(lambda i: api(cursor=str(cursors[i % len(tokens)][1])))),
        View("api_mine_active", agent(api(assignee="me", status=active))),
        View("api_mine_all", agent(api(assignee="me"))),
        View("api_unassigned_new", agent(api(assignee="none", status="new"))),
        View("api_status_pending", agent(api(status="pending"))),
        View("api_channel_telegram", agent(api(channel="telegram", status=active))),
        View("api_priority_high", agent(api(priority="high,critical", status=active))),
        View("api_overdue", agent(api(overdue="true"))),
        View("api_q_word", agent(api(q=SEARCH_WORD))),
        View("api_q_email", agent(api(q=seeded.customer_email))),
        View("api_q_number", agent(api(q=f"#{seeded.number}"))),
        View("api_q_miss", agent(api(q=SEARCH_MISS))),
        View("api_mgr_active", manager(api(status=active))),
        View("api_mgr_group", manager(api(group="Billing", status="open,pending"))),
        View("api_mgr_assignee", manager(api(assignee=str(colleague)))),
        View("api_mgr_sales_email_closed", manager(api(group="Sales", status="closed", channel="email"))),
        View("desk_mine", desk("/desk"), True),
        View("desk_unassigned", desk("/desk?view=unassigned"), True),
        View("desk_overdue", desk("/desk?view=overdue"), True),
        View("desk_mine_email_priority", desk("/desk?view=mine&channel=email&sort=priority"), True),
        View("desk_q_word", desk(f"/desk?q={SEARCH_WORD}"), True),
        View("desk_mgr_open", desk_manager("/desk?view=open"), True),
        View("desk_mgr_open_waiting_high", desk_manager("/desk?view=open&sort=waiting&priority=high"), True),
        View("desk_mgr_dashboard", desk_manager("/desk/dashboard"), True),
    ]


async def fetch(session: aiohttp.ClientSession, base: str, view: View, i: int) -> tuple[float, int]:
    """One request: its latency and how many tickets it listed."""
    url, headers = view.request(i)
    began = time.perf_counter()
    async with session.get(base + url, headers=headers, allow_redirects=False) as response:
        body = await response.read()
        elapsed = time.perf_counter() - began
        if response.status != 200:
            raise AssertionError(f"{view.name}: GET {url} → {response.status} {body[:300]!r}")
    rows = body.count(b"<tr data-ticket=") if view.desk else body.count(b'"number":')
    return elapsed, rows


async def phase(session: aiohttp.ClientSession, base: str, view: View, requests: int, concurrency: int,
                seconds: float) -> list[float]:
    latencies: list[float] = []
    counter = itertools.count()
    stop_at = time.perf_counter() + seconds
    least = 2 * concurrency

    async def client() -> None:
        for i in counter:
            if i >= requests or (i >= least and time.perf_counter() > stop_at):
                return
            latencies.append((await fetch(session, base, view, i))[0])

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies


async def sign_in(session: aiohttp.ClientSession, base: str, email: str) -> str:
    """As a browser signs in: the form first (its token, paired with a cookie the session keeps), then the post."""
    async with session.get(f"{base}/desk/login") as form:
        token = re.search(r'name="login_token" value="([^"]+)"', await form.text())
        paired = form.cookies["sb_login"].value  # the session keeps no cookies: each view sends its own
    assert token, "no sign-in token on the form"
    async with session.post(f"{base}/desk/login", allow_redirects=False, headers={"Cookie": f"sb_login={paired}"},
                            data={"email": email, "password": PASSWORD, "next": "/desk",
                                  "login_token": token.group(1)}) as response:
        assert response.status == 303, (response.status, await response.text())
        return response.cookies["sb_session"].value


async def clear_login_limits() -> None:
    """Sign-ins are limited per address (10 in 15 minutes, successful or not): runs of this bench sign in four times."""
    from redis.asyncio import Redis

    redis = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in redis.scan_iter("ratelimit:login:*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


# --- one run ----------------------------------------------------------------------------------------------------

@dataclass
class Measured:
    result: dict[str, float]
    rows: dict[str, int]
    counts: dict[str, int]
    """Requests timed per view and phase."""
    explained: list[str]


async def one_run(args: argparse.Namespace, explain: bool) -> Measured:
    from switchboard.settings import Settings

    version = Settings().regulation_book().named("request").version
    async with deployment(agents=0, capacity=500) as dep:
        staff = await add_staff(dep)
        seeded = await seed(asyncpg_dsn(dep.database_url), staff, args.tickets, min(args.customers, args.tickets),
                            min(args.active, args.tickets // 4), version)
        print(f"seeded {seeded.tickets} tickets, {seeded.messages} messages, {seeded.deadlines} deadlines in "
              f"{seeded.seconds:.0f} s", file=sys.stderr, flush=True)
        await clear_login_limits()
        port = free_port()
        dep.start("web", SWITCHBOARD_HTTP_PORT=str(port))
        base = f"http://127.0.0.1:{port}"
        result: dict[str, float] = {"tickets": float(seeded.tickets), "messages": float(seeded.messages),
                                    "seed_s": seeded.seconds}
        rows: dict[str, int] = {}
        counts: dict[str, int] = {}
        slow: list[View] = []
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                         cookie_jar=aiohttp.DummyCookieJar()) as session:
            await wait_healthy(session, base, timeout=60)
            cursors = []
            for token in staff.tokens:
                headers = {"Authorization": f"Bearer {token}"}
                async with session.get(base + api(), headers=headers) as r:
                    first = (await r.json())["next_cursor"]
                async with session.get(base + api(cursor=str(first)), headers=headers) as r:
                    cursors.append((first, (await r.json())["next_cursor"]))
            cookies = [await sign_in(session, base, f"agent{n}@example.com") for n in DESK_AGENTS]
            manager_cookie = await sign_in(session, base, "manager@example.com")
            chosen = views(staff, seeded, cursors, cookies, manager_cookie)
            if any(None in pair for pair in cursors):  # too few tickets for three pages
                chosen = [v for v in chosen if v.name not in ("api_page2", "api_page3")]
            if args.only:
                chosen = [v for v in chosen if v.name in args.only]
            for view in chosen:
                warm_until = time.perf_counter() + 3
                for i in range(10):
                    _, rows[view.name] = await fetch(session, base, view, i)
                    if time.perf_counter() > warm_until:
                        break
                for mode, concurrency in (("seq", 1), (f"c{args.concurrency}", args.concurrency)):
                    latencies = await phase(session, base, view, args.requests, concurrency, args.view_seconds)
                    counts[f"{view.name}_{mode}"] = len(latencies)
                    for label, share in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
                        result[f"{view.name}_{mode}_{label}_ms"] = percentile(latencies, share) * 1000
                if result[f"{view.name}_seq_p95_ms"] > args.target_ms:
                    slow.append(view)
                print(f"  {view.name}: {rows[view.name]} rows, seq p95 {result[f'{view.name}_seq_p95_ms']:.1f} ms, "
                      f"c{args.concurrency} p95 {result[f'{view.name}_c{args.concurrency}_p95_ms']:.1f} ms",
                      file=sys.stderr, flush=True)
            explained = await explain_views(dep, slow, result) if explain and slow else []
        return Measured(result, rows, counts, explained)


# --- --explain: which statements a slow view spends its time in --------------------------------------------------

def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, datetime):
        value = value.isoformat()
    return "'" + str(value).replace("'", "''") + "'"


def _short(statement: str, width: int = 600) -> str:
    text = " ".join(statement.split())
    if text.startswith("SELECT ") and (cut := text.find(" FROM ")) > 80:
        text = "SELECT … " + text[cut + 1:]
    return text if len(text) <= width else text[:width] + " …"


def _execution_ms(plan: list[str]) -> float:
    found = next((line for line in plan if line.startswith("Execution Time:")), "Execution Time: nan ms")
    return float(found.split()[2])


async def _explain(connection: asyncpg.Connection, statement: str, params: list[Any],
                   name: str) -> tuple[list[str], list[str]]:
    """The plans with timings of one statement: as planned for these values, and as the generic plan (rolled back)."""
    transaction = connection.transaction()
    await transaction.start()
    prepared = False
    try:
        custom = [r[0] for r in await connection.fetch("EXPLAIN (ANALYZE, BUFFERS) " + statement, *params)]
        await connection.execute(f"PREPARE {name} AS {statement}")
        prepared = True
        await connection.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        execute = f"EXECUTE {name}" + (f"({', '.join(map(_literal, params))})" if params else "")
        generic = [r[0] for r in await connection.fetch("EXPLAIN (ANALYZE, BUFFERS) " + execute)]
    finally:
        await transaction.rollback()
        if prepared:
            await connection.execute(f"DEALLOCATE {name}")
    return custom, generic


async def explain_views(dep: Deployment, slow: list[View], result: dict[str, float]) -> list[str]:
    """Replay one request of each slow view against this process's own copy of the application, capturing its SQL;
    EXPLAIN (ANALYZE, BUFFERS) each SELECT with a custom and with the generic plan (in a rolled-back transaction)."""
    from aiohttp import web
    from sqlalchemy import event

    from switchboard.bootstrap import build
    from switchboard.settings import Settings
    from switchboard.webapp import create_app

    lines: list[str] = []
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir), database={"url": dep.database_url}, redis={"url": REDIS_URL})
        rt = await build(settings)
        captured: list[tuple[str, Any, float]] = []
        names = itertools.count()

        def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
            conn.info.setdefault("bench_started", []).append(time.perf_counter())

        def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
            captured.append((statement, parameters, time.perf_counter() - conn.info["bench_started"].pop()))

        event.listen(rt.engine.sync_engine, "before_cursor_execute", before)
        event.listen(rt.engine.sync_engine, "after_cursor_execute", after)
        runner = web.AppRunner(create_app(rt), access_log=None, handle_signals=False)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        connection = await asyncpg.connect(asyncpg_dsn(dep.database_url))
        try:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
                for view in slow:
                    await fetch(session, f"http://127.0.0.1:{port}", view, 0)  # warm this process's caches
                    captured.clear()
                    took, _ = await fetch(session, f"http://127.0.0.1:{port}", view, 0)
                    lines.append(f"{view.name}: seq p95 {result[f'{view.name}_seq_p95_ms']:.1f} ms over HTTP; "
                                 f"replayed: {took * 1000:.1f} ms, {len(captured)} statements:")
                    slowest: tuple[float, list[str]] = (-1.0, [])
                    for statement, parameters, wall in list(captured):
                        if not statement.lstrip().upper().startswith("SELECT"):
                            lines.append(f"  {wall * 1000:8.1f} ms in the app    {_short(statement, 200)}")
                            continue
                        try:
                            custom, generic = await _explain(connection, statement, list(parameters or ()),
                                                             f"bench_q{next(names)}")
                        except (asyncpg.PostgresError, ValueError) as exc:
                            lines.append(f"  {wall * 1000:8.1f} ms in the app, could not EXPLAIN it ({exc}): "
                                         f"{_short(statement)}")
                            continue
                        c_ms, g_ms = _execution_ms(custom), _execution_ms(generic)
                        lines.append(f"  {wall * 1000:8.1f} ms in the app, EXPLAIN ANALYZE custom plan {c_ms:.1f} ms, "
                                     f"generic plan {g_ms:.1f} ms: {_short(statement)}")
                        worst = max((c_ms, custom), (g_ms, generic), key=lambda p: p[0])
                        if worst[0] > slowest[0]:
                            slowest = worst
                    if slowest[1]:
                        lines.append(f"  plan of its slowest statement ({slowest[0]:.1f} ms):")
                        lines.extend("    " + (line if len(line) <= 300 else line[:300] + " …")
                                     for line in slowest[1][:40])
        finally:
            await connection.close()
            await runner.cleanup()
            await rt.close()
    return lines


# --- main -------------------------------------------------------------------------------------------------------

async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--active", type=int, default=6_000, help="new, open and pending tickets (at most a quarter)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=300, help="per view and phase")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--view-seconds", type=float, default=20, help="stop a phase of a view after this long")
    parser.add_argument("--target-ms", type=float, default=50)
    parser.add_argument("--only", type=lambda s: set(s.split(",")), default=None, help="comma-separated view names")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN the SQL of views over the target (last run)")
    args = parser.parse_args()
    runs = [await one_run(args, explain=args.explain and n == args.runs - 1) for n in range(args.runs)]
    results = [m.result for m in runs]
    report(results, f"queue listing latency, {args.tickets} tickets, {args.requests} requests per view sequentially "
                    f"and from {args.concurrency} clients, one web process", digits=1)
    modes = ("seq", f"c{args.concurrency}")
    names = list(runs[-1].rows)
    width = max(map(len, names))
    print(f"\nper view, median of {len(results)} runs (ms; n = requests timed in the last run; target p95 ≤ "
          f"{args.target_ms:g} ms):")
    print(f"  {'view':<{width}}  rows  "
          + "  ".join(f"{m + ' p50':>9} {m + ' p95':>9} {m + ' p99':>9} {'n':>4}" for m in modes)
          + f"  p95 ≤ {args.target_ms:g}: seq/c{args.concurrency}")
    for name in names:
        cells = []
        for mode in modes:
            cells.append(" ".join(f"{statistics.median(r[f'{name}_{mode}_{p}_ms'] for r in results):9.1f}"
                                  for p in ("p50", "p95", "p99")) + f" {runs[-1].counts[f'{name}_{mode}']:4d}")
        verdict = "/".join("ok" if statistics.median(r[f"{name}_{mode}_p95_ms"] for r in results) <= args.target_ms
                           else "OVER" for mode in modes)
        print(f"  {name:<{width}} {runs[-1].rows[name]:5d}  " + "  ".join(cells) + f"  {verdict}")
    if runs[-1].explained:
        print("\nwhere the slow views spend their time (last run):")
        for line in runs[-1].explained:
            print(line)


if __name__ == "__main__":
    asyncio.run(main())
