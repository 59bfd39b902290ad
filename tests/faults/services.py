"""Private PostgreSQL and Redis servers a fault test may stop, kill, flush and restart without touching the shared
ones other tests use, and Switchboard's roles run against them as separate processes, as in production.

PostgreSQL is a throw-away cluster (`initdb`, then `pg_ctl` on a free port of 127.0.0.1, run as the `postgres`
user when the tests run as root); Redis is `redis-server` on a free port with nothing kept on disk, so a restart
is also a flush. Every process started here is stopped when its context ends.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from tests.conftest import REPO, free_port, unavailable

STARTUP_SECONDS = 60.0


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


def _as_postgres(command: list[str]) -> list[str]:
    """initdb refuses to run as root: as root, run the server tools as the `postgres` user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class PrivatePostgres:
    root: Path
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        binary = _postgres_bin()
        assert binary is not None
        subprocess.run(_as_postgres([str(binary / "pg_ctl"), "-D", str(self.root / "data"), *args]),
                       check=True, capture_output=True, timeout=STARTUP_SECONDS)

    def init(self) -> None:
        binary = _postgres_bin()
        if binary is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
            unavailable("PostgreSQL server binaries (initdb, pg_ctl) for a private cluster")
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        subprocess.run(_as_postgres([str(binary / "initdb"), "-D", str(self.root / "data"), "-A", "trust",
                                     "-U", "postgres", "--no-sync"]), check=True, capture_output=True, timeout=120)
        self.start()

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
                   "-c fsync=off -c max_connections=200")
        self._pg_ctl("-o", options, "-l", str(self.root / "server.log"), "-w", "start")

    def stop(self, mode: str = "immediate") -> None:
        """`immediate`: the server dies at once, like a crash; open connections break mid-transaction."""
        self._pg_ctl("-m", mode, "-w", "stop")

    async def fetch(self, sql: str, *args: object) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(self.dsn)
        try:
            return list(await connection.fetch(sql, *args))
        finally:
            await connection.close()


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    with tempfile.TemporaryDirectory(prefix="sb-fault-pg-") as root:
        server = PrivatePostgres(Path(root))
        server.init()
        try:
            yield server
        finally:
            try:
                server.stop("immediate")
            except subprocess.CalledProcessError:
                pass  # stopped already


@dataclass
class PrivateRedis:
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or shutil.which("valkey-server")
        if binary is None:
            unavailable("redis-server for a private Redis")
        self.process = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.kill()


def _wait_port(port: int, timeout: float = STARTUP_SECONDS) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@dataclass
class Roles:
    """Switchboard's roles (`web`, `smtp`, `worker`, …) as processes sharing one configuration."""

    env: dict[str, str]
    logs: Path
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "switchboard.cli", *args], cwd=REPO, env=self.env, text=True,
                              capture_output=True, timeout=120, input=stdin)

    def start(self, role: str, name: str | None = None) -> None:
        name = name or role
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - the process owns it until it ends
        self.running[name] = subprocess.Popen([sys.executable, "-m", "switchboard.cli", role], cwd=REPO,
                                              env=self.env, stdout=log, stderr=log)
        log.close()

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.running.pop(name)
        process.send_signal(sig)
        process.wait(30)

    def alive(self, name: str) -> bool:
        return self.running[name].poll() is None

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for name in list(self.running):
            process = self.running.pop(name)
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)


@contextmanager
def roles(database_url: str, redis_url: str, **env: str) -> Iterator[Roles]:
    with tempfile.TemporaryDirectory(prefix="sb-fault-") as data_dir:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
        deployment = Roles({**clean, "SWITCHBOARD_DATABASE_URL": database_url, "SWITCHBOARD_REDIS_URL": redis_url,
                            "SWITCHBOARD_DATA_DIR": data_dir, **env}, Path(data_dir))
        migrated = deployment.cli("migrate")
        assert migrated.returncode == 0, migrated.stderr
        try:
            yield deployment
        finally:
            deployment.stop_all()


async def eventually(check: Callable[[], Awaitable[bool]], what: str, deadline: float, pause: float = 0.5) -> None:
    """Wait until `check()` holds, failing with `what` once `time.monotonic()` passes `deadline`."""
    while not await check():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(pause)
