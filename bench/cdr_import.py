"""CDR import: `switchboard calls import` of a generated Asterisk Master.csv into PostgreSQL, rows/s and peak RSS.

Usage: uv run python bench/cdr_import.py [--rows 1000000] [--runs 3] [--capacity 25] [--no-rerun] [--profile FILE]
Needs PostgreSQL (BENCH_PG_URL, default the local server) and Redis (BENCH_REDIS_URL). Each run gets a
fresh database with 20 agents on extensions 201–220, each with --capacity (callbacks past it queue); the import
runs as its own process (`python -m switchboard.cli calls import --region RU --no-progress FILE`), timed from
start to exit,
then the same file is imported again (every call already logged: all skipped) as a second figure, and the raw
limit (bench/raw_limit.py) is measured on the same server right after each run: rows/s is also given as a ratio to it.
The file (18 columns, no header, one row per call, chronological, seeded so every run and every machine
gets the same bytes) is written once, streaming, into a temporary directory:
~20k distinct clients (Moscow +7 495 and Russian mobiles +7 9xx, half of them written in national
format 8…, which is why --region RU; ~10% London +44 20), ~70% inbound calls answered by an extension,
~15% inbound NO ANSWER/BUSY, ~3% from a withheld number, ~10% outbound from an extension to a client,
~1% extension-to-extension calls (skipped as internal) and ~0.1% malformed rows (rejected).
Peak RSS is the import process's own maximum resident set (wait4 rusage of that child).
--profile FILE: instead of the timed runs, import once under cProfile (written to FILE) and print the top
functions by cumulative time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.deployment import REPO, Deployment, deployment, report  # noqa: E402
from bench.raw_limit import raw_limit  # noqa: E402

AGENTS = 20
EXTENSIONS = [str(201 + n) for n in range(AGENTS)]
CLIENTS = 20_000
SEED = 20261123
START = datetime(2025, 1, 1, tzinfo=UTC)  # the import's default PBX time zone is UTC
FIRST_NAMES = ["Ivan", "Olga", "Anna", "Sergey", "Maria", "Dmitry", "Elena", "Pavel", "Jane", "John", "Tom", "Kate"]
LAST_NAMES = ["Petrov", "Ivanova", "Smirnov", "Kuznetsova", "Popov", "Sokolova", "Smith", "Brown", "Taylor"]
MOBILE_CODES = ["903", "905", "910", "915", "916", "925", "926", "977", "985", "999"]


def _client(n: int) -> tuple[str, str | None]:
    """(number as the PBX writes it, display name or None) of client n; a pure function of n."""
    rng = random.Random(n * 7919 + SEED)
    kind = n % 10
    if kind == 9:  # London
        number = f"+4420{rng.choice('378')}{rng.randrange(10**6, 10**7):07d}"[:13]
    else:
        code = "495" if kind < 6 else rng.choice(MOBILE_CODES)
        subscriber = f"{rng.randrange(10**6, 10**7)}"
        number = f"8{code}{subscriber}" if n % 2 else f"+7{code}{subscriber}"
    name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}" if rng.random() < 0.6 else None
    return number, name


def _quote(value: object) -> str:
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace('"', '""') + '"'


def _clid(number: str, name: str | None) -> str:
    return f'"{name}" <{number}>' if name else number


def write_cdr(path: Path, rows: int, seed: int = SEED) -> dict[str, int]:
    """Write `rows` data rows to `path`, one at a time; returns how many of each kind were written."""
    rng = random.Random(seed)
    clients = [_client(n) for n in range(CLIENTS)]
    kinds = {"answered": 0, "missed": 0, "withheld": 0, "outbound": 0, "internal": 0, "malformed": 0}
    t = START.timestamp()
    channel = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        for n in range(1, rows + 1):
            t += int(rng.expovariate(1 / 30)) + 1
            start = int(t)
            ring = rng.randint(2, 25)
            talk = int(rng.expovariate(1 / 180)) + 5
            ext = rng.choice(EXTENSIONS)
            number, name = clients[int(rng.paretovariate(1.2) * 37 + rng.randrange(CLIENTS)) % CLIENTS]
            channel += 2
            trunk, leg = f"SIP/rt-trunk-{channel:08x}", f"SIP/{ext}-{channel + 1:08x}"
            r = rng.random()
            answered = True
            if r < 0.70:
                kind = "answered"
                src, dst, context, clid, chan, dstchan = number, ext, "from-pstn", _clid(number, name), trunk, leg
                app, data = "Dial", f"SIP/{ext},30"
            elif r < 0.85:
                kind, answered = "missed", False
                src, dst, context, clid = number, rng.choice([ext, "s"]), "from-pstn", _clid(number, name)
                chan, dstchan = trunk, leg
                app, data = "Dial", f"SIP/{ext},30"
            elif r < 0.88:
                kind, answered = "withheld", rng.random() < 0.6
                src, dst, context, clid = "anonymous", ext, "from-pstn", '"Anonymous" <anonymous>'
                chan, dstchan = trunk, leg
                app, data = "Dial", f"SIP/{ext},30"
            elif r < 0.98:
                kind, answered = "outbound", rng.random() < 0.8
                dialled = "8" + number[2:] if number.startswith("+7") else number
                src, dst, context, clid = ext, dialled, "from-internal", f'"Agent {ext}" <{ext}>'
                chan, dstchan = f"PJSIP/{ext}-{channel:08x}", f"PJSIP/rt-trunk-{channel + 1:08x}"
                app, data = "Dial", f"PJSIP/{dialled}@rt-trunk,60"
            elif r < 0.99:
                kind = "internal"
                other = rng.choice(EXTENSIONS)
                src, dst, context, clid = ext, other, "from-internal", f'"Agent {ext}" <{ext}>'
                chan, dstchan = f"PJSIP/{ext}-{channel:08x}", f"PJSIP/{other}-{channel + 1:08x}"
                app, data = "Dial", f"PJSIP/{other},20"
            else:  # the rest is answered inbound again, except one row in a thousand that is malformed
                kind = "malformed" if r >= 0.999 else "answered"
                src, dst, context, clid, chan, dstchan = number, ext, "from-pstn", _clid(number, name), trunk, leg
                app, data = "Dial", f"SIP/{ext},30"
            if answered:
                disposition, billsec = "ANSWERED", talk
                answer = datetime.fromtimestamp(start + ring, UTC).strftime("%Y-%m-%d %H:%M:%S")
                end = start + ring + talk
            else:
                disposition, billsec, answer = rng.choice(["NO ANSWER", "NO ANSWER", "BUSY"]), 0, ""
                end = start + (ring if disposition == "NO ANSWER" else 1)
            fields: list[object] = [
                "support", src, dst, context, clid, chan, dstchan, app, data,
                datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%d %H:%M:%S"), answer,
                datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%d %H:%M:%S"),
                end - start, billsec, disposition, "DOCUMENTATION", f"{start}.{n}", "",
            ]
            if kind == "malformed":
                broken = rng.randrange(3)
                if broken == 0:
                    fields = fields[:9]  # truncated row
                elif broken == 1:
                    fields[9] = "2025-13-45 25:61:00"  # bad start date
                else:
                    fields[14] = "WEIRD"  # unknown disposition
            kinds[kind] += 1
            out.write(",".join(_quote(f) for f in fields) + "\n")
    return kinds


SUMMARY = {
    "imported": re.compile(r"^imported (\d+) calls: (\d+) callback tickets opened, (\d+) other tickets opened, "
                           r"(\d+) added to open tickets, (\d+) on customer cards only$", re.M),
    "skipped": re.compile(r"^skipped (\d+): (\d+) already imported, (\d+) internal calls$", re.M),
    "rejected": re.compile(r"^rejected (\d+)", re.M),
}


def import_file(setup: Deployment, path: Path, *, profile: Path | None = None) -> tuple[float, float, dict[str, int]]:
    """(wall seconds, peak RSS in MiB, summary counts) of one `switchboard calls import` process.

    The counts also hold the process's own CPU time (user + system) in milliseconds, as "cpu_ms"."""
    command = [sys.executable, *(["-m", "cProfile", "-o", str(profile)] if profile else []),
               "-m", "switchboard.cli", "calls", "import", "--region", "RU", "--no-progress", str(path)]
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        began = time.perf_counter()
        process = subprocess.Popen(command, env=setup.env, cwd=REPO, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - began
        process.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        text = stdout.read().decode()
        assert process.returncode == 0, (process.returncode, text[-2000:], stderr.read().decode()[-2000:])
    counts: dict[str, int] = {}
    imported, skipped, rejected = (SUMMARY[k].search(text) for k in ("imported", "skipped", "rejected"))
    assert imported and skipped and rejected, text[:2000]
    counts["imported"], counts["callbacks"], counts["new_tickets"], counts["on_tickets"], counts["card_only"] = (
        int(g) for g in imported.groups())
    counts["skipped"], counts["duplicates"], counts["internal"] = (int(g) for g in skipped.groups())
    counts["rejected"] = int(rejected.group(1))
    counts["cpu_ms"] = round((usage.ru_utime + usage.ru_stime) * 1000)
    rss_mib = usage.ru_maxrss / 1024  # KiB on Linux
    return elapsed, rss_mib, counts


async def one_run(path: Path, rows: int, kinds: dict[str, int], *, capacity: int,
                  profile: Path | None = None, rerun: bool = True) -> dict[str, float]:
    async with deployment(agents=0, capacity=rows) as setup:
        for n, ext in enumerate(EXTENSIONS):
            setup.cli("agent", "add", f"Agent {ext}", "--email", f"agent{n}@example.com", "--extension", ext,
                      "--capacity", str(capacity))
        elapsed, rss, counts = import_file(setup, path, profile=profile)
        print("first import:", counts, f"{elapsed:.1f} s, {rss:.0f} MiB", flush=True)
        assert counts["imported"] + counts["skipped"] + counts["rejected"] == rows, (counts, rows)
        assert counts["internal"] == kinds["internal"] and counts["rejected"] == kinds["malformed"], (counts, kinds)
        assert counts["duplicates"] == 0
        calls = await setup.count("SELECT count(*) FROM calls")
        assert calls == counts["imported"], (calls, counts)
        first = {"rows_per_s": rows / elapsed, "seconds": elapsed, "import_cpu_s": counts["cpu_ms"] / 1000,
                 "peak_rss_mib": rss}
        if profile:
            return first
        # the raw limit (bench/raw_limit.py) on the same server, right after: a call that lands on a ticket writes
        # what one ingest writes; the import is one process writing 500-row batches, the raw limit 32 connections
        first["raw_txn_per_s"] = await raw_limit(3000, 32)
        first["ratio"] = first["rows_per_s"] / first["raw_txn_per_s"]
        if not rerun:
            return first
        again, again_rss, recount = import_file(setup, path)
        print("re-run:", recount, f"{again:.1f} s, {again_rss:.0f} MiB", flush=True)
        assert recount["imported"] == 0 and recount["duplicates"] == counts["imported"], recount
        assert recount["skipped"] + recount["rejected"] == rows - recount["imported"], recount
        return {**first, "rerun_rows_per_s": rows / again, "rerun_seconds": again, "rerun_peak_rss_mib": again_rss}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--capacity", type=int, default=25,
                        help="each agent's capacity: callbacks beyond it wait in the queue (default 25)")
    parser.add_argument("--no-rerun", dest="rerun", action="store_false", help="skip the second, all-skipped import")
    parser.add_argument("--profile", type=Path, help="one profiled import (cProfile output here), no timed runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sb_cdr_") as tmp:
        path = Path(tmp) / "Master.csv"
        began = time.perf_counter()
        kinds = write_cdr(path, args.rows)
        print(f"wrote {args.rows} rows, {path.stat().st_size / 2**20:.1f} MiB in {time.perf_counter() - began:.1f} s:",
              kinds, flush=True)
        if args.profile:
            await one_run(path, args.rows, kinds, capacity=args.capacity, profile=args.profile.resolve())
            import pstats

            pstats.Stats(str(args.profile.resolve())).sort_stats("cumulative").print_stats(40)
            return
        results = []
        for _ in range(args.runs):
            results.append(await one_run(path, args.rows, kinds, capacity=args.capacity, rerun=args.rerun))
            print(f"load average: {os.getloadavg()}", flush=True)
    report(results, f"{args.rows} CDR rows, `calls import` into PostgreSQL, agent capacity {args.capacity}",
           keys=[k for k in ("rows_per_s", "raw_txn_per_s", "ratio", "peak_rss_mib", "rerun_rows_per_s",
                             "rerun_peak_rss_mib") if k in results[0]], digits=3)


if __name__ == "__main__":
    asyncio.run(main())
