"""SMTP ingest: messages/s accepted and committed by `switchboard smtp` at 32 concurrent clients (10 KB mails).

For scale, the same run measures a bare aiosmtpd server that only parses each message (policy.default). Each run
also reports the CPU milliseconds per message of the `smtp` role, of the `worker` (its dispatch and acknowledgement
of the burst, 2 s after the last message included) and of the bare server: on a 2-core machine shared with the
client, the sum is the limit.
Usage: uv run python bench/smtp_ingest.py [--messages 2000] [--concurrency 32] [--runs 3] [--env NAME=VALUE ...]
Needs PostgreSQL (BENCH_PG_URL) and Redis (BENCH_REDIS_URL); traffic goes only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import textwrap
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.deployment import deployment, report  # noqa: E402
from tests.conftest import free_port  # noqa: E402

BARE_SERVER = textwrap.dedent("""
    import asyncio, sys, email, email.policy
    from aiosmtpd.smtp import SMTP
    class Parse:
        async def handle_DATA(self, server, session, envelope):
            email.message_from_bytes(envelope.original_content, policy=email.policy.default).get_body()
            return "250 OK"
    async def main():
        server = await asyncio.get_running_loop().create_server(lambda: SMTP(Parse()), "127.0.0.1", int(sys.argv[1]))
        await asyncio.Event().wait()
    asyncio.run(main())
""")


def message(n: int) -> bytes:
    mail = EmailMessage()
    mail["From"] = f"Client {n} <client{n}@example.org>"
    mail["To"] = "support@example.com"
    mail["Subject"] = f"Принтер не печатает #{n}"
    mail["Message-ID"] = f"<bench-{uuid.uuid4().hex}@example.org>"
    mail.set_content(("Здравствуйте! Принтер снова не печатает. " * 200)[:10_000])
    return mail.as_bytes()


async def wait_port(port: int) -> None:
    for _ in range(300):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


async def blast(port: int, count: int, concurrency: int) -> float:
    bodies = [message(n) for n in range(count)]
    queue = iter(range(count))

    async def client() -> None:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60) as smtp:
            for n in queue:
                await smtp.sendmail(f"client{n}@example.org", ["support@example.com"], bodies[n])

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return count / (time.perf_counter() - began)


async def one_run(count: int, concurrency: int, env: dict[str, str]) -> dict[str, float]:
    async with deployment(agents=5, capacity=count, SWITCHBOARD_SMTP_SENDER_RATE_LIMIT="0", **env) as setup:
        ours, bare = free_port(), free_port()
        setup.start("smtp", SWITCHBOARD_SMTP_PORT=str(ours))
        setup.processes.append(subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(bare)],
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        await wait_port(ours)
        await wait_port(bare)
        worker, smtp, server = (process.pid for process in setup.processes)
        before = setup.cpu_seconds()
        bare_rate = await blast(bare, count, concurrency)
        between = setup.cpu_seconds()
        our_rate = await blast(ours, count, concurrency)
        await asyncio.sleep(2)  # the worker finishes dispatching and acknowledging the burst
        after = setup.cpu_seconds()
        stored = await setup.count("SELECT count(*) FROM messages WHERE channel = 'email' AND direction = 'in'")
        assert stored == count, (stored, count)

        def per_message(pid: int, start: dict[int, float], end: dict[int, float]) -> float:
            return (end[pid] - start[pid]) / count * 1000

        return {"switchboard_msgs_per_s": our_rate, "bare_parse_msgs_per_s": bare_rate, "ratio": our_rate / bare_rate,
                "cpu_ms_per_msg_smtp": per_message(smtp, between, after),
                "cpu_ms_per_msg_worker": per_message(worker, between, after),
                "cpu_ms_per_msg_bare": per_message(server, before, between)}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for every Switchboard process (e.g. SWITCHBOARD_DISPATCH_BY=receiver)")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    results = [await one_run(args.messages, args.concurrency, env) for _ in range(args.runs)]
    report(results, f"{args.messages} messages of 10 KB, {args.concurrency} clients")


if __name__ == "__main__":
    asyncio.run(main())
