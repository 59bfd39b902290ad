"""Memory of each process after a 10-minute soak (must not grow): `switchboard web`, `smtp` and `worker` as separate
processes under a steady mixed load well under capacity, their resident memory sampled all along.

Usage: uv run python bench/soak.py [--minutes 10] [--rate 10] [--sample 15] [--warmup 60] [--agents 5]
       [--max-in-flight 64] [--drain 120] [--max-slope MIB_PER_MIN]

One run: a fresh PostgreSQL database (migrated) with `--agents` agents in the default group, added with the CLI
(each one's API token kept), and a short regulations file — every ticket not answered within 30 s alerts a
contact by email and SMS, so the SLA timers and the SMS path run too. The worker delivers to a fake mail relay
(`tests.fakes.SmtpSink`) and a fake SMS gateway (`tests.fake_sms.FakeSmsGateway`, json profile, which posts a
delivery receipt back to the web process a second later), both in this process on 127.0.0.1. The arq keys
earlier runs left in BENCH_REDIS_URL are deleted (job ids repeat with each fresh database; see `forget_old_jobs`).
Then the three roles start as their own processes (`Deployment.start`) and for `--minutes` items are started at a
fixed `--rate` per second (open loop; at most `--max-in-flight` at once), in a fixed rotation of ten:
  4 web-form posts (`POST /api/v1/webform`, a new or a returning client, each with its Idempotency-Key),
  3 mails to the smtp port (aiosmtplib, one connection each, as a sending MTA does),
  2 agent replies (`POST /api/v1/tickets/{n}/messages`) to a ticket seen earlier — a web-form ticket's number
    or an email ticket from a listing —, every second one then resolved (`PATCH … {"status": "resolved"}`),
  1 queue listing by an agent (`GET /api/v1/tickets`, mine or the group's open ones, 50 a page).
Every request has a 30 s timeout; the load stops after minutes × 60 × rate items. Then it waits (at most
`--drain` s) until the outbox has nothing queued or sending and no regulation step is pending, and counts.

Measured: every `--sample` s each role's VmRSS, threads and open files from /proc/PID (and the web process's own
`process_resident_memory_bytes` from `/metrics`, as a cross-check). Per process: RSS at the first sample after
`--warmup` s, at the end of the load, the growth between, the least-squares slope in MiB/min over the samples
from the warm-up to the end of the load, and RSS after the drain. Also items per kind with errors and latency
(p50/p99), and deliveries. The run fails (exit 1) when an item was lost — web-form posts answered 201 vs
web-form messages in the database, mails answered 250 vs inbound email messages, replies answered 201 vs agent
replies stored, notifications sent vs what the relay and the gateway received, notifications still queued or
failed after the drain — when any request failed, when a role died, or (with `--max-slope`) when a process grew
faster than that after the warm-up. Needs PostgreSQL (BENCH_PG_URL) and Redis (BENCH_REDIS_URL); traffic goes only
to 127.0.0.1; the database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import aiohttp
import aiosmtplib
import asyncpg
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.deployment import REDIS_URL, REPO, Deployment, asyncpg_dsn, deployment, report  # noqa: E402
from tests.conftest import free_port, wait_healthy  # noqa: E402
from tests.fake_sms import FakeSmsGateway  # noqa: E402
from tests.fakes import SmtpSink  # noqa: E402

ROLES = ("web", "smtp", "worker")
ROTATION = ("webform", "smtp", "webform", "reply", "smtp", "webform", "listing", "reply", "smtp", "webform")
"""One round of ten items: 4 web-form posts, 3 mails, 2 replies, 1 listing."""
KINDS = ("webform", "smtp", "reply", "resolve", "listing")
RETURNING = 200
"""Clients who write again: about a third of the posts and mails come from one of these."""
STEP_SECONDS = 30
SMS_TOKEN, RECEIPT_TOKEN = "test-token", "receipt-token"
REGULATIONS = f"""\
contacts:
  production_manager: {{email: soak-pm@example.com, phone: "+447700900123"}}
regulations:
  - name: soak
    steps:
      - {{name: nudge, after: {STEP_SECONDS}s, unless: processed,
         notify: [{{to: production_manager, by: [email, sms]}}]}}
"""
TEXT = ("Hello, the printer on the third floor has stopped printing again; it shows a paper jam that is not there. "
        "We have switched it off and on twice. Could someone have a look today? ") * 4
MIB = 1024 * 1024


@dataclass
class Sample:
    at: float
    """Seconds since the load began."""
    phase: str
    """"load" or "drain"."""
    rss: dict[str, int]
    """bytes per role (VmRSS)."""
    threads: dict[str, int]
    fds: dict[str, int]
    web_metrics_rss: int | None


@dataclass
class Load:
    sent: Counter[str] = field(default_factory=Counter)
    ok: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    error_examples: list[str] = field(default_factory=list)
    latency: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    webform_numbers: set[int] = field(default_factory=set)
    replyable: deque[int] = field(default_factory=lambda: deque(maxlen=500))
    resolved: set[int] = field(default_factory=set)
    max_lag: float = 0.0
    """How late (s) an item started against its slot: above a second or so the load was not the fixed rate."""

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.error_examples) < 20:
            self.error_examples.append(f"{kind}: {detail}"[:300])


# --- the deployment ----------------------------------------------------------------------------------------------

async def cli(dep: Deployment, *args: str) -> str:
    """`switchboard ARGS` against the deployment; its standard output (an added agent's token is the last line)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "switchboard.cli", *args, cwd=REPO, env=dep.env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"switchboard {' '.join(args)} failed: {err.decode()[-2000:]}")
    return out.decode()


async def forget_old_jobs() -> int:
    """Delete the arq keys (queues, jobs, results) earlier runs left in BENCH_REDIS_URL; how many there were.

    Job ids are `notify:{outbox id}:{attempt}`, and arq refuses an id while an earlier job's result is kept (an
    hour): with a fresh database numbering its outbox from 1 again, an old result would hold a new delivery back
    until the sweeper's late pass (SWITCHBOARD_NOTIFIER_STALE_AFTER_SECONDS, 10 minutes), and old queued jobs would
    run against this database. Other keys (rate limits, sessions of another bench's web process) are left alone."""
    client = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match="arq:*", count=1000)]
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start:start + 1000])
        return len(keys)
    finally:
        await client.aclose()


async def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {port}") from None
            await asyncio.sleep(0.1)


# --- measuring ---------------------------------------------------------------------------------------------------

def proc_status(pid: int) -> tuple[int, int]:
    """(VmRSS in bytes, threads) of a live process."""
    rss = threads = 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, threads


def open_files(pid: int) -> int:
    try:
        return len(list(Path(f"/proc/{pid}/fd").iterdir()))
    except OSError:
        return -1


async def metrics_rss(session: aiohttp.ClientSession, url: str) -> int | None:
    try:
        async with session.get(f"{url}/metrics", timeout=aiohttp.ClientTimeout(total=10)) as response:
            text = await response.text()
    except (TimeoutError, aiohttp.ClientError):
        return None
    for line in text.splitlines():
        if line.startswith("process_resident_memory_bytes "):
            return int(float(line.split()[1]))
    return None


def slope_mib_per_min(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope of (seconds, bytes) points, in MiB per minute."""
    if len(samples) < 2:
        return float("nan")
    xs = [t / 60 for t, _ in samples]
    ys = [b / MIB for _, b in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else float("nan")


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def unfinished(dep: Deployment) -> list[str]:
    """What the outbox did not deliver, grouped: kind, channel, status, attempts, due in, last error."""
    connection = await asyncpg.connect(asyncpg_dsn(dep.database_url))
    try:
        rows = await connection.fetch(
            "SELECT kind, channel, status::text AS status, attempts, count(*) AS n, "
            "min(extract(epoch FROM next_attempt_at - now())) AS due_in, min(last_error) AS error "
            "FROM outbox WHERE status IN ('queued', 'sending', 'failed') GROUP BY 1, 2, 3, 4 ORDER BY n DESC LIMIT 12")
    finally:
        await connection.close()
    return [f"{r['n']} {r['kind']}/{r['channel']} {r['status']} after {r['attempts']} attempts, next attempt in "
            f"{r['due_in']:.0f} s, last error: {r['error']}" for r in rows]


# --- the load ----------------------------------------------------------------------------------------------------

def mail(n: int, rng: random.Random) -> tuple[str, bytes]:
    client = rng.randrange(RETURNING) if n % 3 == 0 else RETURNING + n
    sender = f"client{client}@example.org"
    message = EmailMessage()
    message["From"] = f"Client {client} <{sender}>"
    message["To"] = "support@example.com"
    message["Subject"] = f"Принтер не печатает ({n})"
    message["Message-ID"] = f"<soak-{uuid.uuid4().hex}@example.org>"
    message.set_content(f"Здравствуйте! Письмо {n}.\n\n{TEXT}")
    return sender, message.as_bytes()


class Driver:
    def __init__(self, session: aiohttp.ClientSession, web_url: str, smtp_port: int, tokens: list[str],
                 load: Load, seed: int = 1) -> None:
        self.session, self.web_url, self.smtp_port, self.tokens, self.load = session, web_url, smtp_port, tokens, load
        self.rng = random.Random(seed)
        self.replies = 0
        self.listings = 0

    def token(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.rng.choice(self.tokens)}"}

    async def run(self, kind: str, n: int) -> None:
        if kind == "reply" and not self.load.replyable:
            kind = "listing"  # nothing to answer yet
        then = await self._timed(kind, getattr(self, kind), n)
        if then is not None:  # the reply is answered: resolve that ticket, timed on its own
            await self._timed("resolve", self.resolve, then)

    async def _timed(self, kind: str, call, argument: int) -> int | None:  # type: ignore[no-untyped-def]
        began = time.perf_counter()
        self.load.sent[kind] += 1
        try:
            async with asyncio.timeout(30):
                then = await call(argument)
        except Exception as exc:  # noqa: BLE001 - every failure is counted and the load goes on
            self.load.error(kind, f"{type(exc).__name__}: {exc!r}")
            return None
        self.load.ok[kind] += 1
        self.load.latency[kind].append(time.perf_counter() - began)
        return then

    async def webform(self, n: int) -> None:
        client = self.rng.randrange(RETURNING) if n % 3 == 0 else RETURNING + n
        payload = {"name": f"Client {client}", "email": f"client{client}@example.com",
                   "subject": f"Printer on fire ({n})", "message": f"Message {n}. {TEXT}",
                   "category": ("question", "request", "defect", "billing", "feedback")[n % 5]}
        async with self.session.post(f"{self.web_url}/api/v1/webform", json=payload,
                                     headers={"Idempotency-Key": f"soak-{n}"}) as response:
            text = await response.text()
            if response.status != 201:
                raise RuntimeError(f"HTTP {response.status}: {text}")
        body = json.loads(text)
        self.load.webform_numbers.add(body["number"])
        self.load.replyable.append(body["number"])

    async def smtp(self, n: int) -> None:
        sender, raw = mail(n, self.rng)
        await aiosmtplib.send(raw, sender=sender, recipients=["support@example.com"], hostname="127.0.0.1",
                              port=self.smtp_port, timeout=30)  # raises unless every step answered 2xx

    async def reply(self, n: int) -> int | None:
        """Answer a ticket seen earlier; every second time, returns its number to resolve."""
        number = self.rng.choice(self.load.replyable)
        self.replies += 1
        async with self.session.post(f"{self.web_url}/api/v1/tickets/{number}/messages", headers=self.token(),
                                     json={"body": f"Thank you for writing; we are on it ({n})."}) as response:
            if response.status != 201:
                raise RuntimeError(f"reply to #{number}: HTTP {response.status}: {await response.text()}")
        if self.replies % 2 or number in self.load.resolved:
            return None
        self.load.resolved.add(number)
        try:
            self.load.replyable.remove(number)
        except ValueError:
            pass
        return number

    async def resolve(self, number: int) -> None:
        async with self.session.patch(f"{self.web_url}/api/v1/tickets/{number}", headers=self.token(),
                                      json={"status": "resolved"}) as response:
            if response.status != 200:
                raise RuntimeError(f"resolve #{number}: HTTP {response.status}: {await response.text()}")

    async def listing(self, n: int) -> None:
        self.listings += 1
        query = "assignee=me&limit=50" if self.listings % 2 else "status=new,open&limit=50"
        async with self.session.get(f"{self.web_url}/api/v1/tickets?{query}", headers=self.token()) as response:
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}: {await response.text()}")
            page = await response.json()
        for item in page["items"]:  # email tickets become reply targets here
            number = item["number"]
            if item["channel"] == "email" and item["status"] != "resolved" and number not in self.load.resolved \
                    and number not in self.load.replyable:
                self.load.replyable.append(number)


async def drive(driver: Driver, total: int, rate: float, max_in_flight: int, stop: asyncio.Event) -> None:
    """Start item k at k / rate seconds (open loop); wait for a slot only when max_in_flight are still running."""
    slots = asyncio.Semaphore(max_in_flight)
    tasks: set[asyncio.Task[None]] = set()
    began = time.monotonic()

    async def one(kind: str, n: int) -> None:
        try:
            await driver.run(kind, n)
        finally:
            slots.release()

    for n, kind in zip(range(total), itertools.cycle(ROTATION)):
        if stop.is_set():
            break
        delay = began + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await slots.acquire()
        driver.load.max_lag = max(driver.load.max_lag, time.monotonic() - (began + n / rate))
        task = asyncio.create_task(one(kind, n))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)


# --- one run -----------------------------------------------------------------------------------------------------

async def soak(args: argparse.Namespace) -> tuple[dict[str, float], list[str]]:
    duration = args.minutes * 60
    warmup = min(args.warmup, duration / 2)
    total = int(round(duration * args.rate))
    web_port, smtp_port = free_port(), free_port()
    web_url = f"http://127.0.0.1:{web_port}"
    problems: list[str] = []
    mail_ids: Counter[str] = Counter()
    sink_count = 0

    with tempfile.TemporaryDirectory(prefix="sb_soak_") as scratch:
        regulations = Path(scratch) / "regulations.yaml"
        regulations.write_text(REGULATIONS)
        async with SmtpSink() as sink, FakeSmsGateway("json", token=SMS_TOKEN, receipt_token=RECEIPT_TOKEN,
                                                      auto_receipt=1.0) as gateway:
            env = {
                "SWITCHBOARD_HTTP_PORT": str(web_port), "SWITCHBOARD_HTTP_PUBLIC_URL": web_url,
                "SWITCHBOARD_SMTP_PORT": str(smtp_port), "SWITCHBOARD_HTTP_FORM_RATE_LIMIT": "0",
                "SWITCHBOARD_SMTP_SENDER_RATE_LIMIT": "0", "SWITCHBOARD_SMTP_RELAY_URL": sink.url,
                "SWITCHBOARD_SMTP_FROM_ADDRESS": "support@example.com",
                "SWITCHBOARD_SMS_GATEWAY_URL": gateway.url, "SWITCHBOARD_SMS_TOKEN": SMS_TOKEN,
                "SWITCHBOARD_SMS_STATUS_TOKEN": RECEIPT_TOKEN, "SWITCHBOARD_REGULATIONS": str(regulations),
                "SWITCHBOARD_NOTIFIER_FIRST_RETRY_SECONDS": "2", "SWITCHBOARD_NOTIFIER_MAX_RETRY_SECONDS": "30",
            }
            async with deployment(agents=0, capacity=1, **env) as setup:
                tokens = []
                for a in range(args.agents):
                    out = await cli(setup, "agent", "add", f"Agent {a}", "--email", f"agent{a}@example.com",
                                    "--capacity", str(max(total, 10)))
                    tokens.append(out.strip().splitlines()[-1])
                old_jobs = await forget_old_jobs()
                pids: dict[str, int] = {}
                for role in ROLES:
                    setup.start(role)
                    pids[role] = setup.processes[-1].pid
                popen = dict(zip(ROLES, setup.processes[-len(ROLES):], strict=True))
                samples: list[Sample] = []
                load = Load()
                stop = asyncio.Event()
                connector = aiohttp.TCPConnector(limit=0)
                async with aiohttp.ClientSession(connector=connector,
                                                 timeout=aiohttp.ClientTimeout(total=30)) as session:
                    await wait_healthy(session, web_url, timeout=60)
                    await wait_port(smtp_port, timeout=60)
                    await asyncio.sleep(2)  # the worker's start-up sweeps

                    def drain_sink() -> None:  # the sink keeps every message; keep only their Message-IDs
                        nonlocal sink_count
                        received, sink.received = sink.received, []
                        sink_count += len(received)
                        for item in received:
                            mail_ids[str(item.message.get("Message-ID", ""))] += 1

                    async def take(phase: str) -> bool:
                        """Sample every role now; False (and the run stops) when one has died."""
                        rss, threads, fds = {}, {}, {}
                        for role, pid in pids.items():
                            if popen[role].poll() is not None:
                                problems.append(f"{role} exited with {popen[role].returncode} "
                                                f"at {time.monotonic() - began:.0f} s")
                                stop.set()
                                return False
                            rss[role], threads[role] = proc_status(pid)
                            fds[role] = open_files(pid)
                        at = time.monotonic() - began
                        samples.append(Sample(at, phase, rss, threads, fds, await metrics_rss(session, web_url)))
                        drain_sink()
                        return True

                    async def sampler(phase: str, delay: float = 0.0) -> None:
                        await asyncio.sleep(delay)
                        while await take(phase):
                            await asyncio.sleep(args.sample)

                    driver = Driver(session, web_url, smtp_port, tokens, load)
                    began = time.monotonic()
                    sampling = asyncio.create_task(sampler("load"))
                    await drive(driver, total, args.rate, args.max_in_flight, stop)
                    load_seconds = time.monotonic() - began
                    sampling.cancel()
                    await asyncio.gather(sampling, return_exceptions=True)
                    if await take("load"):  # the end of the load
                        sampling = asyncio.create_task(sampler("drain", args.sample))

                    drained_at = time.monotonic()
                    while not stop.is_set():
                        busy = await setup.count("SELECT count(*) FROM outbox WHERE status IN ('queued', 'sending')")
                        pending = await setup.count("SELECT count(*) FROM deadlines WHERE status = 'pending'")
                        if busy == 0 and pending == 0:
                            break
                        if time.monotonic() - drained_at > args.drain:
                            problems.append(f"after {args.drain:g} s of drain: {busy} notifications queued or "
                                            f"sending, {pending} regulation steps pending")
                            break
                        await asyncio.sleep(1)
                    drain_seconds = time.monotonic() - drained_at
                    await asyncio.sleep(3)  # the last SMS receipts
                    sampling.cancel()
                    await asyncio.gather(sampling, return_exceptions=True)
                    if not stop.is_set():
                        await take("drain")
                    drain_sink()

                # --- counting: nothing lost --------------------------------------------------------------------
                webform_db = await setup.count("SELECT count(*) FROM messages WHERE channel = 'webform' "
                                               "AND direction = 'in'")
                webform_tickets = await setup.count("SELECT count(*) FROM tickets WHERE channel = 'webform'")
                email_db = await setup.count("SELECT count(*) FROM messages WHERE channel = 'email' "
                                             "AND direction = 'in'")
                replies_db = await setup.count("SELECT count(*) FROM messages WHERE direction = 'out' "
                                               "AND author_id IS NOT NULL")
                resolved_db = await setup.count("SELECT count(*) FROM tickets WHERE status = 'resolved'")
                unassigned = await setup.count("SELECT count(*) FROM tickets WHERE assignee_id IS NULL")
                tickets_db = await setup.count("SELECT count(*) FROM tickets")
                outbox_mail_sent = await setup.count("SELECT count(*) FROM outbox WHERE channel = 'email' "
                                                     "AND status IN ('sent', 'delivered')")
                outbox_sms_sent = await setup.count("SELECT count(*) FROM outbox WHERE channel = 'sms' "
                                                    "AND status IN ('sent', 'delivered')")
                sms_delivered = await setup.count("SELECT count(*) FROM outbox WHERE channel = 'sms' "
                                                  "AND status = 'delivered'")
                outbox_failed = await setup.count("SELECT count(*) FROM outbox WHERE status = 'failed'")
                outbox_left = await setup.count("SELECT count(*) FROM outbox WHERE status IN ('queued', 'sending')")
                steps_fired = await setup.count("SELECT count(*) FROM deadlines WHERE status = 'fired'")
                outbox_other = await setup.count("SELECT count(*) FROM outbox WHERE channel NOT IN ('email', 'sms')")
                leftovers = await unfinished(setup) if outbox_left or outbox_failed else []

    # --- verdicts --------------------------------------------------------------------------------------------------
    if load.ok["webform"] != webform_db or len(load.webform_numbers) != webform_tickets:
        problems.append(f"web form: {load.ok['webform']} posts answered 201 ({len(load.webform_numbers)} tickets), "
                        f"{webform_db} messages and {webform_tickets} tickets stored")
    if load.ok["smtp"] != email_db:
        problems.append(f"email: {load.ok['smtp']} mails answered 250, {email_db} stored")
    if load.ok["reply"] != replies_db:
        problems.append(f"replies: {load.ok['reply']} answered 201, {replies_db} stored")
    if sink_count < outbox_mail_sent or len(mail_ids) < outbox_mail_sent:
        problems.append(f"mail: {outbox_mail_sent} sent by the outbox, the relay received {sink_count} "
                        f"({len(mail_ids)} Message-IDs)")
    if len(gateway.delivered) < outbox_sms_sent:
        problems.append(f"SMS: {outbox_sms_sent} sent by the outbox, the gateway received {len(gateway.delivered)}")
    if outbox_failed or outbox_left:
        problems.append(f"outbox: {outbox_failed} failed, {outbox_left} still queued or sending:\n    "
                        + "\n    ".join(leftovers))
    if unassigned:
        problems.append(f"{unassigned} tickets were never assigned")
    errors = sum(load.errors.values())
    if errors:
        problems.append(f"{errors} requests failed: {dict(load.errors)}; e.g. " + " | ".join(load.error_examples[:5]))

    # --- memory -----------------------------------------------------------------------------------------------------
    lines = ["samples (s since the load began; RSS MiB / threads / open files per role; web's /metrics RSS):"]
    for s in samples:
        cells = "  ".join(f"{r} {s.rss[r] / MIB:7.1f} /{s.threads[r]:3d} /{s.fds[r]:4d}" for r in ROLES)
        web_m = f"{s.web_metrics_rss / MIB:7.1f}" if s.web_metrics_rss is not None else "      -"
        lines.append(f"  {s.at:7.1f} {s.phase:5}  {cells}   metrics {web_m}")
    in_load = [s for s in samples if s.phase == "load"]
    after_warmup = [s for s in in_load if s.at >= warmup]
    result: dict[str, float] = {}
    lines.append(f"memory per process (warm-up {warmup:.0f} s; slope over {len(after_warmup)} samples from the "
                 f"warm-up to the end of the load):")
    lines.append(f"  {'role':7} {'warm MiB':>9} {'end MiB':>9} {'growth':>8} {'slope MiB/min':>14} "
                 f"{'drained MiB':>12} {'threads':>8} {'fds':>9}")
    for role in ROLES:
        if len(after_warmup) < 2:
            lines.append(f"  {role:7} too few samples after the warm-up")
            continue
        warm, end = after_warmup[0], after_warmup[-1]
        slope = slope_mib_per_min([(s.at, s.rss[role]) for s in after_warmup])
        growth = (end.rss[role] - warm.rss[role]) / MIB
        drained = samples[-1].rss[role] / MIB
        lines.append(f"  {role:7} {warm.rss[role] / MIB:9.1f} {end.rss[role] / MIB:9.1f} {growth:+8.1f} {slope:+14.3f} "
                     f"{drained:12.1f} {warm.threads[role]:>3}→{end.threads[role]:<4} "
                     f"{warm.fds[role]:>4}→{end.fds[role]:<4}")
        result.update({f"{role}_rss_warm_mib": warm.rss[role] / MIB, f"{role}_rss_end_mib": end.rss[role] / MIB,
                       f"{role}_growth_mib": growth, f"{role}_slope_mib_per_min": slope,
                       f"{role}_rss_drained_mib": drained, f"{role}_fds_end": end.fds[role]})
        if args.max_slope is not None and slope > args.max_slope:
            problems.append(f"{role} grew {slope:+.3f} MiB/min after the warm-up (limit {args.max_slope})")
    web_m = [(s.at, s.web_metrics_rss) for s in after_warmup if s.web_metrics_rss is not None]
    if len(web_m) >= 2:
        lines.append(f"  web by /metrics: {web_m[0][1] / MIB:.1f} → {web_m[-1][1] / MIB:.1f} MiB, slope "
                     f"{slope_mib_per_min(web_m):+.3f} MiB/min")

    if old_jobs:
        lines.append(f"(deleted {old_jobs} arq keys earlier runs had left in {REDIS_URL})")
    lines.append(f"load: {sum(load.sent.values())} requests in {load_seconds:.0f} s "
                 f"({sum(load.sent.values()) / load_seconds:.2f}/s; items due {total}), max lag {load.max_lag:.2f} s; "
                 f"drain {drain_seconds:.0f} s")
    for kind in KINDS:
        lat = load.latency[kind]
        lines.append(f"  {kind:8} sent {load.sent[kind]:6d}  ok {load.ok[kind]:6d}  errors {load.errors[kind]:4d}  "
                     f"p50 {percentile(lat, 0.5) * 1000:7.1f} ms  p99 {percentile(lat, 0.99) * 1000:7.1f} ms")
    duplicates = sum(c - 1 for c in mail_ids.values() if c > 1)
    lines.append(f"store: {tickets_db} tickets ({webform_tickets} web form), {webform_db} web-form and {email_db} "
                 f"email messages in, {replies_db} replies, {resolved_db} resolved, {steps_fired} regulation steps "
                 f"fired")
    lines.append(f"deliveries: {outbox_mail_sent} mails sent → relay got {sink_count} ({duplicates} repeated "
                 f"Message-IDs); {outbox_sms_sent} SMS sent → gateway got {len(gateway.delivered)} "
                 f"({gateway.duplicates_suppressed} repeats suppressed), {sms_delivered} receipts stored; "
                 f"{outbox_failed} failed, {outbox_left} left, {outbox_other} on other channels")
    result.update({"requests": float(sum(load.sent.values())), "errors": float(errors),
                   "tickets": float(tickets_db), "mails_delivered": float(sink_count),
                   "sms_delivered": float(len(gateway.delivered)), "max_lag_s": load.max_lag})
    print("\n".join(lines))
    return result, problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10, help="length of the load")
    parser.add_argument("--rate", type=float, default=10, help="items started per second")
    parser.add_argument("--sample", type=float, default=15, help="seconds between memory samples")
    parser.add_argument("--warmup", type=float, default=60, help="seconds before the baseline sample "
                                                                 "(at most half the load)")
    parser.add_argument("--agents", type=int, default=5)
    parser.add_argument("--max-in-flight", type=int, default=64)
    parser.add_argument("--drain", type=float, default=120,
                        help="longest wait (s) for the outbox and the timers after the load")
    parser.add_argument("--max-slope", type=float, default=None, metavar="MIB_PER_MIN",
                        help="fail when a process grows faster than this after the warm-up (default: report only)")
    args = parser.parse_args()
    if args.minutes <= 0 or args.rate <= 0 or args.sample <= 0:
        parser.error("--minutes, --rate and --sample must be positive")
    result, problems = asyncio.run(soak(args))
    report([result], f"{args.minutes:g}-minute soak at {args.rate:g} items/s (web, smtp, worker as processes)",
           keys=[k for k in result if "slope" in k or "growth" in k or k in ("requests", "errors")], digits=3)
    if problems:
        print("FAILED:")
        for problem in problems:
            print(f"  {problem}")
        raise SystemExit(1)
    print("ok: nothing lost, no request failed")


if __name__ == "__main__":
    main()
