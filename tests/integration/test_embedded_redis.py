"""The embedded valkey-server: reachable, ours alone, and never left behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from arq.connections import RedisSettings, create_pool

from switchboard.embedded_redis import (
    EmbeddedRedis,
    EmbeddedRedisError,
    valkey_executable,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="relies on /proc and PR_SET_PDEATHSIG"
)


def alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def is_valkey(pid: int) -> bool:
    try:
        return b"valkey-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


async def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if not alive(pid):
            return True
        await asyncio.sleep(0.05)
    return not alive(pid)


def kill_if_valkey(pid: int | None) -> None:
    """Last-resort cleanup of a server pid a test created; never kills anything else."""
    if pid and alive(pid) and is_valkey(pid):
        os.kill(pid, signal.SIGKILL)


async def server_pid(url: str) -> int:
    client = aioredis.from_url(url)
    try:
        assert await client.ping() is True
        return int((await client.info("server"))["process_id"])
    finally:
        await client.aclose()


@pytest.fixture
async def embedded() -> AsyncIterator[Callable[[Path], Awaitable[EmbeddedRedis]]]:
    """Start EmbeddedRedis instances and always stop them (and their pids) afterwards."""
    started: list[EmbeddedRedis] = []
    pids: list[int] = []

    async def start(data_dir: Path) -> EmbeddedRedis:
        er = EmbeddedRedis(data_dir, start_timeout=8.0)
        started.append(er)
        await er.start()
        assert er.pid is not None
        pids.append(er.pid)
        return er

    try:
        yield start
    finally:
        for er in started:
            await er.stop()
        for pid in pids:
            kill_if_valkey(pid)


async def test_start_serves_redis_and_arq_then_stop_cleans_up(
    tmp_path: Path, embedded: Callable[[Path], Awaitable[EmbeddedRedis]]
) -> None:
    data_dir = tmp_path / "redis"  # does not exist yet: start() creates it
    er = await embedded(data_dir)
    url, pid = er.url, er.pid
    assert url == f"unix://{data_dir / 'redis.sock'}"
    assert pid is not None and is_valkey(pid)
    assert (data_dir / "redis.sock").is_socket()
    assert (data_dir / "redis.sock").stat().st_mode & 0o777 == 0o700
    assert (data_dir / "redis.pid").read_text().strip() == str(pid)

    assert await server_pid(url) == pid
    client = aioredis.from_url(url)
    try:
        assert await client.set("greeting", "hello") is True
        assert await client.get("greeting") == b"hello"
    finally:
        await client.aclose()

    settings = RedisSettings.from_dsn(url)
    assert settings.unix_socket_path == str(data_dir / "redis.sock")
    pool = await create_pool(settings)
    try:
        job = await pool.enqueue_job("send_digest", 42, _job_id="job-1")
        assert job is not None and job.job_id == "job-1"
        assert await pool.zcard("arq:queue") == 1
    finally:
        await pool.aclose()

    await er.stop()
    assert await wait_gone(pid, 1.0)
    assert er.url is None and er.pid is None
    assert not (data_dir / "redis.sock").exists()
    assert not (data_dir / "redis.pid").exists()
    await er.stop()  # idempotent


async def test_stop_without_start_is_harmless(tmp_path: Path) -> None:
    er = EmbeddedRedis(tmp_path / "never")
    await er.stop()
    assert er.url is None and er.pid is None
    assert not (tmp_path / "never").exists()


async def test_server_dies_with_sigkilled_parent(tmp_path: Path) -> None:
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from switchboard.embedded_redis import EmbeddedRedis\n"
        "async def main():\n"
        "    er = EmbeddedRedis(Path(sys.argv[1]))\n"
        "    await er.start()\n"
        "    print(er.pid, flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
    )}
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, str(tmp_path),
        cwd=REPO_ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    valkey_pid: int | None = None
    try:
        line = await asyncio.wait_for(parent.stdout.readline(), 8.0)  # type: ignore[union-attr]
        assert line.strip(), (await parent.stderr.read()).decode()  # type: ignore[union-attr]
        valkey_pid = int(line)
        assert alive(valkey_pid) and is_valkey(valkey_pid)

        parent.kill()  # SIGKILL: no cleanup code runs in the parent
        await asyncio.wait_for(parent.wait(), 5.0)
        assert parent.returncode == -signal.SIGKILL

        assert await wait_gone(valkey_pid, 5.0), "valkey-server outlived its SIGKILLed parent"
    finally:
        if parent.returncode is None:
            parent.kill()
            await parent.wait()
        kill_if_valkey(valkey_pid)


def spawn_orphan_valkey(data_dir: Path) -> int:
    """Leave a valkey-server behind the way a crashed parent would: reparented, no pdeathsig."""
    sock = data_dir / "redis.sock"
    out = subprocess.run(
        [
            "sh", "-c", '"$@" >/dev/null 2>&1 & echo $!', "sh",
            valkey_executable(),
            "--daemonize", "no", "--save", "", "--appendonly", "no",
            "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
            "--dir", str(data_dir), "--logfile", str(data_dir / "orphan.log"),
        ],
        check=True, capture_output=True, text=True, timeout=5,
    )  # fmt: skip
    return int(out.stdout)


async def test_stale_server_from_a_crash_is_replaced(
    tmp_path: Path, embedded: Callable[[Path], Awaitable[EmbeddedRedis]]
) -> None:
    orphan = spawn_orphan_valkey(tmp_path)
    try:
        url = f"unix://{tmp_path / 'redis.sock'}"
        for _ in range(100):  # wait until the orphan really serves the socket
            try:
                assert await server_pid(url) == orphan
                break
            except (OSError, aioredis.RedisError):
                await asyncio.sleep(0.05)
        else:
            pytest.fail("orphan valkey-server never answered")
        assert os.getppid() != orphan and is_valkey(orphan)
        (tmp_path / "redis.pid").write_text(f"{orphan}\n")

        er = await embedded(tmp_path)

        assert await wait_gone(orphan, 1.0), "stale server was not killed"
        assert er.pid != orphan
        assert er.url == url
        assert await server_pid(url) == er.pid
        assert (tmp_path / "redis.pid").read_text().strip() == str(er.pid)
    finally:
        kill_if_valkey(orphan)


async def test_pid_file_naming_a_non_valkey_process_is_left_alone(
    tmp_path: Path, embedded: Callable[[Path], Awaitable[EmbeddedRedis]]
) -> None:
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        (tmp_path / "redis.pid").write_text(f"{bystander.pid}\n")

        er = await embedded(tmp_path)

        assert bystander.poll() is None, "a non-valkey process named in the pid file was killed"
        assert alive(bystander.pid)
        assert er.pid != bystander.pid
        assert er.url is not None and await server_pid(er.url) == er.pid
        assert (tmp_path / "redis.pid").read_text().strip() == str(er.pid)
    finally:
        bystander.kill()
        bystander.wait(timeout=5)


async def test_second_instance_on_same_dir_refuses_instead_of_killing_the_first(
    tmp_path: Path, embedded: Callable[[Path], Awaitable[EmbeddedRedis]]
) -> None:
    first = await embedded(tmp_path)
    second = EmbeddedRedis(tmp_path)
    with pytest.raises(EmbeddedRedisError, match="in use"):
        await second.start()
    await second.stop()  # must not remove the first instance's files
    assert first.url is not None and await server_pid(first.url) == first.pid
    assert (tmp_path / "redis.sock").is_socket()
    assert (tmp_path / "redis.pid").read_text().strip() == str(first.pid)


async def test_long_data_dir_falls_back_to_loopback_tcp(
    tmp_path: Path, embedded: Callable[[Path], Awaitable[EmbeddedRedis]]
) -> None:
    data_dir = tmp_path / ("d" * max(1, 115 - len(str(tmp_path))))
    assert len(str(data_dir)) > 110

    er = await embedded(data_dir)

    assert er.url is not None and er.url.startswith("redis://127.0.0.1:")
    assert er.url.endswith("/0")
    assert not (data_dir / "redis.sock").exists()
    assert await server_pid(er.url) == er.pid
    settings = RedisSettings.from_dsn(er.url)
    assert settings.unix_socket_path is None and settings.host == "127.0.0.1"
    pool = await create_pool(settings)
    try:
        assert await pool.enqueue_job("send_digest", _job_id="job-tcp") is not None
    finally:
        await pool.aclose()
    pid = er.pid
    await er.stop()
    assert pid is not None and await wait_gone(pid, 1.0)


def fake_server(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-valkey-server"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(script)


async def test_server_that_exits_at_start_raises_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = valkey_executable()
    fake = fake_server(tmp_path, f'exec "{real}" "$@" --no-such-directive yes')
    monkeypatch.setattr("switchboard.embedded_redis.valkey_executable", lambda: fake)
    er = EmbeddedRedis(tmp_path / "data", start_timeout=5.0)
    with pytest.raises(EmbeddedRedisError, match="(?s)exited with code 1.*no-such-directive"):
        await er.start()
    assert er.url is None and er.pid is None
    assert not (tmp_path / "data" / "redis.pid").exists()


async def test_server_that_never_answers_times_out_and_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = fake_server(tmp_path, "exec sleep 30")
    monkeypatch.setattr("switchboard.embedded_redis.valkey_executable", lambda: fake)
    er = EmbeddedRedis(tmp_path / "data", start_timeout=1.0)
    spawned: list[int] = []
    original = asyncio.create_subprocess_exec

    async def spy(*args: object, **kwargs: object) -> asyncio.subprocess.Process:
        proc = await original(*args, **kwargs)  # type: ignore[arg-type]
        spawned.append(proc.pid)
        return proc

    monkeypatch.setattr(asyncio, "create_subprocess_exec", spy)
    try:
        with pytest.raises(EmbeddedRedisError, match="did not answer PING"):
            await er.start()
        assert len(spawned) == 1
        assert await wait_gone(spawned[0], 1.0), "unresponsive child was left running"
    finally:
        for pid in spawned:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


async def test_refuses_a_server_that_is_not_its_own_child(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    embedded: Callable[[Path], Awaitable[EmbeddedRedis]],
) -> None:
    # Someone else's server already holds the loopback port we are about to use.
    other = await embedded(tmp_path / ("o" * max(1, 115 - len(str(tmp_path)))))
    assert other.url is not None and other.url.startswith("redis://")
    port = int(other.url.rsplit(":", 1)[1].split("/")[0])

    fake = fake_server(tmp_path, "exec sleep 30")  # our "server" never binds
    monkeypatch.setattr("switchboard.embedded_redis.valkey_executable", lambda: fake)
    monkeypatch.setattr("switchboard.embedded_redis._free_tcp_port", lambda: port)
    er = EmbeddedRedis(tmp_path / ("m" * max(1, 115 - len(str(tmp_path)))), start_timeout=2.0)
    with pytest.raises(EmbeddedRedisError, match="not by our valkey-server"):
        await er.start()
    assert er.url is None
    assert await server_pid(other.url) == other.pid  # the other server was not touched
