"""Dispatch lag: from the receipt (the ticket's creation) to its dispatch (the `assigned` or `queued` event the
dispatcher wrote, stamped when its batch began), p50/p90/p99/max, over the tickets created in the last --minutes.

With --rate it first offers that many web forms a second for --seconds to --url (open loop: a form every 1/rate
s whatever the answers, as clients arrive), the load the target is stated at; without it, it reads what is there
(the peer bench's database right after `../shared/peer-bench/run.sh`, say).

Usage: uv run python bench/dispatch_lag.py [--dsn postgresql://postgres@127.0.0.1:5433/sbbench] [--minutes 10]
           [--rate 310 --seconds 20 --url http://127.0.0.1:8091] [--log /tmp/bench/sb_worker.log]
A batch's own duration (from its start to its commit) comes on top: `--log` reads it from a dispatcher log at
debug level (`dispatched N tickets in M ms`). Traffic goes only to --url, which must be on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

QUERY = """
SELECT t.id, t.created_at, EXTRACT(EPOCH FROM (min(e.created_at) - t.created_at)) * 1000 AS lag_ms
FROM tickets t JOIN events e ON e.ticket_id = t.id AND e.kind IN ('assigned', 'queued')
WHERE t.created_at > now() - make_interval(mins => $1) AND t.created_at >= $2
GROUP BY t.id, t.created_at
"""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def offer(url: str, rate: float, seconds: float) -> tuple[int, int]:
    """Post forms at `rate` a second for `seconds`; returns (answered 201, other answers)."""
    import aiohttp

    assert url.startswith(("http://127.0.0.1", "http://localhost")), "load goes to this machine only"
    body = "x" * 2048
    answers: list[int] = []

    async def one(session: aiohttp.ClientSession, n: int) -> None:
        payload = {"name": "Client", "email": f"lag{n}@example.com", "subject": "Printer on fire", "message": body}
        try:
            async with session.post(f"{url}/api/v1/webform", json=payload) as response:
                answers.append(response.status)
        except aiohttp.ClientError:
            answers.append(0)

    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        began, tasks = loop.time(), []
        for n in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, began + n / rate - loop.time()))
            tasks.append(asyncio.create_task(one(session, n)))
        await asyncio.gather(*tasks)
    return answers.count(201), len(answers) - answers.count(201)


async def main(dsn: str, minutes: int, log: Path | None, since: datetime) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(QUERY, minutes, since)
        lags = [float(row["lag_ms"]) for row in rows]
        undispatched = await connection.fetchval("SELECT count(*) FROM tickets WHERE dispatch_owed_at IS NOT NULL")
    finally:
        await connection.close()
    if not lags:
        print("dispatch_lag: no dispatched tickets in the window")
        return
    line = (f"dispatch_lag: {len(lags)} tickets, receipt → batch start p50 {percentile(lags, 50):.0f} ms, "
            f"p90 {percentile(lags, 90):.0f} ms, p99 {percentile(lags, 99):.0f} ms, max {max(lags):.0f} ms; "
            f"still owed {undispatched}")
    if log is not None:
        batches = [(int(m.group(1)), int(m.group(2)), float(m.group(3)), datetime.fromisoformat(m.group(4)))
                   for m in re.finditer(r"dispatched \d+ tickets \(#(\d+)-#(\d+)\) in (\d+) ms, committed at (\S+)",
                                        log.read_text())]
        committed = [(commit - row["created_at"]).total_seconds() * 1000 for row in rows
                     if (commit := next((b[3] for b in batches if b[0] <= row["id"] <= b[1]), None)) is not None]
        durations = [b[2] for b in batches]
        if committed:
            line += (f" | receipt → batch commit p50 {percentile(committed, 50):.0f} ms, "
                     f"p99 {percentile(committed, 99):.0f} ms, max {max(committed):.0f} ms; {len(batches)} batches, "
                     f"p50 {percentile(durations, 50):.0f} ms, p99 {percentile(durations, 99):.0f} ms")
    print(line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5433/sbbench")
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--log", type=Path)
    parser.add_argument("--rate", type=float)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--url", default="http://127.0.0.1:8091")
    args = parser.parse_args()
    since = datetime.min.replace(tzinfo=UTC)
    if args.rate:
        since = datetime.now(UTC)  # only the offered tickets count
        ok, refused = asyncio.run(offer(args.url, args.rate, args.seconds))
        print(f"offered {args.rate:g}/s for {args.seconds:g} s: {ok} stored, {refused} refused")
        time.sleep(3)  # the last batches commit
    asyncio.run(main(args.dsn, args.minutes, args.log, since))
