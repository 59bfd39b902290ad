"""The embedded default under the peer bench's client: `switchboard serve` (SQLite, embedded Redis, every role in one
process) taking the JSON web form from `wrk -t1 -c32` with a 2 KB message and a new address each request
(../shared/peer-bench/wrk_sb.lua), --runs times; tickets/s counted from the database once the count settles, and
whether every ticket was assigned once dispatch caught up.

Usage: uv run python bench/serve_webform.py [--runs 3] [--seconds 20]
Needs wrk (Debian's package). Traffic goes only to 127.0.0.1; each wrk run stops after --seconds.
"""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO.parent / "shared" / "peer-bench" / "wrk_sb.lua"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def count(db: Path, sql: str) -> int:
    with sqlite3.connect(db, timeout=30) as connection:
        return int(connection.execute(sql).fetchone()[0])


def settle(db: Path, sql: str = "SELECT count(*) FROM tickets", quiet: float = 1.5, limit: float = 120) -> None:
    last, since, end = count(db, sql), time.time(), time.time() + limit
    while time.time() < end:
        time.sleep(0.5)
        now = count(db, sql)
        if now != last:
            last, since = now, time.time()
        elif time.time() - since >= quiet:
            return


def wrk(base: str, seconds: float, db: Path) -> dict[str, object]:
    settle(db)
    before, began = count(db, "SELECT count(*) FROM tickets"), time.time()
    out = subprocess.run(["wrk", "-t1", "-c32", f"-d{int(seconds)}s", "--latency", "--timeout", "30s", "-s",
                          str(SCRIPT), base], capture_output=True, text=True, timeout=seconds + 60).stdout
    settle(db)
    made = count(db, "SELECT count(*) FROM tickets") - before
    p50 = re.search(r"\s50%\s+(\S+)", out)
    p99 = re.search(r"\s99%\s+(\S+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"per_s": made / (time.time() - began), "p50": p50.group(1) if p50 else "?",
            "p99": p99.group(1) if p99 else "?", "non2xx": int(errors.group(1)) if errors else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sb-serve-bench-", ignore_cleanup_errors=True) as tmp:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
        env.update(SWITCHBOARD_DATA_DIR=f"{tmp}/data", SWITCHBOARD_HTTP_PORT=str(port),
                   SWITCHBOARD_SMTP_PORT=str(free_port()), SWITCHBOARD_HTTP_FORM_RATE_LIMIT="0")
        cli = [sys.executable, "-m", "switchboard.cli"]
        subprocess.run([*cli, "migrate"], env=env, cwd=REPO, check=True, capture_output=True)
        for name in ("anna", "boris", "clara", "dora", "egor"):
            subprocess.run([*cli, "agent", "add", name, "--email", f"{name}@example.com", "--capacity", "100000"],
                           env=env, cwd=REPO, check=True, capture_output=True)
        serve = subprocess.Popen([*cli, "serve"], env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                                 stderr=open(f"{tmp}/serve.log", "wb"))  # noqa: SIM115 - the process owns it
        base, db = f"http://127.0.0.1:{port}", Path(tmp) / "data" / "switchboard.db"
        try:
            for _ in range(120):
                try:
                    urllib.request.urlopen(f"{base}/healthz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.5)
            wrk(base, 3, db)  # warm-up
            runs = [wrk(base, args.seconds, db) for _ in range(args.runs)]
            for i, run in enumerate(runs, 1):
                print(f"run {i}: serve webform {run['per_s']:.1f}/s (p50 {run['p50']} p99 {run['p99']} "
                      f"non2xx {run['non2xx']})", flush=True)
            settle(db, "SELECT count(*) FROM tickets WHERE assignee_id IS NOT NULL")
            unassigned = count(db, "SELECT count(*) FROM tickets WHERE assignee_id IS NULL")
            print(f"serve_webform: {statistics.median(r['per_s'] for r in runs):.1f} tickets/s "  # type: ignore[misc]
                  f"(median of {args.runs} x {args.seconds:g} s; unassigned {unassigned})")
        finally:
            serve.terminate()
            try:
                serve.wait(30)
            except subprocess.TimeoutExpired:
                log = (Path(tmp) / "serve.log").read_text(errors="replace").splitlines()
                print("serve did not stop within 30 s of SIGTERM; its log ends:", *log[-15:], sep="\n  ",
                      file=sys.stderr)
                serve.kill()
                serve.wait(30)


if __name__ == "__main__":
    main()
