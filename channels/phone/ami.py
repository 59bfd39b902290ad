"""Asterisk AMI: one manager session (panoramisk) whose channel events become the same call events the CTI endpoint
takes, so a ringing extension pops the caller's card and the hang-up logs the call once.

A call is its `Linkedid` (the first channel's uniqueid, which is also its CDR's `uniqueid`, so a later `switchboard
calls import` of Master.csv finds it logged). `DialBegin` to an agent's extension rings it (Asterisk 11's `Dial`
Begin too, and an extension's channel reported `Ringing`, its caller the connected line); `DialEnd` with `ANSWER`
is the answer (or the phone's channel going up, entering the call's bridge, a queue's `AgentConnect`), and the
`Hangup` of the call's first channel ends it. The session reconnects with backoff (1 s doubling to a minute),
pings the PBX and keeps TCP keepalive on, so a silent link is noticed; the events are applied in the order Asterisk
sent them, one at a time, and an event that cannot be stored is parked, never blocking the next.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol
from redis.exceptions import RedisError

from channels.phone.call_events import apply_call_event, read_number
from channels.phone.entry import CHANNEL
from tickets import phone_numbers as numbers
from tickets.actions.live_calls import CallEvent
from tickets.errors import StoreUnavailable
from tickets.models import Direction, LiveCall
from web.runtime import Runtime

log = logging.getLogger(__name__)

DEFAULT_PORT = 5038
CAUSES = {1: "notFound", 3: "notFound", 16: "normalClearing", 17: "busy", 18: "noAnswer", 19: "noAnswer",
          21: "busy", 27: "failed", 34: "congestion", 38: "congestion", 41: "failed", 42: "congestion"}
"""Q.850 hang-up causes as Zammad's CTI names them (what the call log makes of a call nobody answered)."""
RINGING, UP = "5", "6"
"""Asterisk's channel states: the phone rings; it is off the hook."""
STATES = {"ringing": RINGING, "up": UP}
ANSWERS = ("Newstate", "BridgeEnter", "AgentConnect")
"""Events that say which phone took an inbound call (besides `DialEnd` with `ANSWER`)."""
REMEMBERED_CALLS = 10_000
"""Calls in progress kept in memory; a call whose hang-up never came is forgotten after this many newer ones."""


class AmiRefused(Exception):
    """The PBX refused the login (the user or secret in SWITCHBOARD_AMI_URL is wrong)."""


@dataclass(frozen=True)
class AmiTarget:
    host: str
    port: int
    username: str
    secret: str
    tls: bool = False

    def __str__(self) -> str:
        return f"{'amis' if self.tls else 'ami'}://{self.username}@{self.host}:{self.port}"


def parse_ami_url(url: str) -> AmiTarget:
    """`ami://USER:SECRET@HOST[:PORT]` (`amis://` over TLS); a clear `ValueError` otherwise."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("ami", "amis"):
        raise ValueError(f"expected ami://USER:SECRET@HOST:PORT (amis:// for TLS), got scheme {parts.scheme!r}")
    if not parts.hostname or not parts.username or parts.password is None:
        raise ValueError("expected ami://USER:SECRET@HOST:PORT: the manager.conf user, its secret and the PBX host")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError as exc:
        raise ValueError(f"the AMI port is not a port number ({exc})") from None
    return AmiTarget(parts.hostname, port, unquote(parts.username), unquote(parts.password), parts.scheme == "amis")


@dataclass
class _Call:
    direction: Literal["in", "out"]
    caller: str | None
    called: str | None
    client: str | None
    answered: bool = False
    rung: set[str] = field(default_factory=set)
    """The extensions told of it already (Asterisk reports one phone ringing more than once)."""


class AmiCalls:
    """Turns AMI channel events into call events; remembers the calls it saw ring, by `Linkedid`."""

    EVENTS = ("DialBegin", "DialEnd", "Dial", "Newchannel", "Newstate", "BridgeEnter", "AgentConnect", "Hangup")
    """The events `read` makes something of: the session follows these."""

    def __init__(self, region: str | None) -> None:
        self.region = region
        self._calls: dict[str, _Call] = {}

    def resume(self, calls: Iterable[LiveCall]) -> int:
        """Take up the calls the session reported before this process started (ringing or in progress): their
        answer and hang-up are then read as if it had never stopped."""
        for call in calls:
            self._calls[call.call_id] = _Call("out" if call.direction == Direction.outbound else "in", call.caller,
                                              call.called, call.client_number, answered=call.answered_at is not None)
        return len(self._calls)

    def read(self, event: Mapping[str, str]) -> CallEvent | None:
        """The call event this AMI event (its header names lower-cased) is, or None: an internal call, a leg we do
        not follow, another event, or one that tells nothing new (a phone already ringing, a call answered)."""
        name = event.get("event", "")
        if name == "Dial":  # Asterisk 11 and older: `Dial` with SubEvent Begin or End, the callee its `Destination`
            name = {"begin": "DialBegin", "end": "DialEnd"}.get(event.get("subevent", "").lower(), "")
            event = {**event, "destchannel": event.get("destchannel") or event.get("destination", "")}
        linked = event.get("linkedid") or event.get("uniqueid") or ""
        if not linked:
            return None
        if name == "DialBegin":
            return self._dial(linked, event)
        if name in ("Newchannel", "Newstate") and _state(event) == RINGING:
            return self._phone_rings(linked, event)
        call = self._calls.get(linked)
        if call is None:
            return None
        if name == "DialEnd":
            if event.get("dialstatus", "").upper() != "ANSWER":
                return None
            taker = _extension(event.get("destchannel", "")) if call.direction == "in" else call.caller
            return self._answered(linked, call, taker)
        if name in ANSWERS and call.direction == "in" \
                and (name == "AgentConnect" or event.get("uniqueid") != linked) \
                and (name != "Newstate" or _state(event) == UP):
            # The phone that took it: its channel went up, entered the call's bridge, or took the queue's call.
            leg = event.get("destchannel") or event.get("interface", "") if name == "AgentConnect" \
                else event.get("channel", "")
            return self._answered(linked, call, _extension(leg))
        if name == "Hangup" and event.get("uniqueid") == linked:
            del self._calls[linked]
            cause = CAUSES.get(_int(event.get("cause")), "normalClearing")
            return self._event(linked, call, "hangup", cause=cause)
        return None

    def _dial(self, linked: str, event: Mapping[str, str]) -> CallEvent | None:
        ringing = _extension(event.get("destchannel", ""))
        call = self._calls.get(linked)
        if call is not None:  # another phone rings for it (a ring group, a queue's members)
            return self._rings(linked, call, ringing)
        dialling = _extension(event.get("channel", "")) or numbers.extension_of(event.get("calleridnum", ""))
        if ringing and not dialling:
            caller, client = read_number(_number(event.get("calleridnum")), self.region)
            return self._new(linked, _Call("in", caller, ringing, client), ringing)
        if dialling and not ringing:
            dialled = event.get("exten") or event.get("dialstring", "").rsplit("/", 1)[-1]
            called, client = read_number(dialled or None, self.region)
            return self._new(linked, _Call("out", dialling, called, client), dialling)
        return None  # between two extensions, or between two outside lines

    def _phone_rings(self, linked: str, event: Mapping[str, str]) -> CallEvent | None:
        """An extension's channel is ringing (PBXs and tools that report no `DialBegin` still report this); the
        caller is its connected line."""
        ringing = _extension(event.get("channel", ""))
        call = self._calls.get(linked)
        if call is not None:
            return self._rings(linked, call, ringing)
        if not ringing:
            return None
        caller_number = _number(event.get("connectedlinenum"))
        if event.get("uniqueid") == linked and event.get("linkedid") or \
                (caller_number and numbers.extension_of(caller_number)):
            return None  # the call's own first channel (an originated call), or a colleague calling
        caller, client = read_number(caller_number, self.region)
        return self._new(linked, _Call("in", caller, ringing, client), ringing)

    def _new(self, linked: str, call: _Call, extension: str) -> CallEvent:
        self._calls[linked] = call
        while len(self._calls) > REMEMBERED_CALLS:
            del self._calls[next(iter(self._calls))]
        call.rung.add(extension)
        return self._event(linked, call, "ring", extensions=(extension,))

    def _rings(self, linked: str, call: _Call, extension: str | None) -> CallEvent | None:
        if call.direction != "in" or call.answered or not extension or extension in call.rung:
            return None
        call.rung.add(extension)
        return self._event(linked, call, "ring", extensions=(extension,))

    def _answered(self, linked: str, call: _Call, taker: str | None) -> CallEvent | None:
        if call.answered or not taker:
            return None
        call.answered = True
        return self._event(linked, call, "answer", answering=taker)

    @staticmethod
    def _event(linked: str, call: _Call, kind: Literal["ring", "answer", "hangup"], *,
               extensions: tuple[str, ...] = (), answering: str | None = None, cause: str | None = None) -> CallEvent:
        return CallEvent(call_id=linked, kind=kind, direction=call.direction, caller=call.caller, called=call.called,
                         client_number=call.client, extensions=extensions, answering=answering, cause=cause,
                         source="ami")


def _extension(channel: str) -> str | None:
    return numbers.extension_from_channel(channel) if channel else None


def _state(event: Mapping[str, str]) -> str:
    """The channel's state as its number (`ChannelState`), or from its words (`ChannelStateDesc`) alone."""
    return event.get("channelstate") or STATES.get(event.get("channelstatedesc", "").lower(), "")


def _number(raw: str | None) -> str | None:
    """A caller id as Asterisk writes it, `<unknown>` when it has none."""
    return None if raw is None or raw.strip() in ("", "<unknown>") else raw


def _int(raw: str | None) -> int:
    try:
        return int(raw or 0)
    except ValueError:
        return 0


class _Protocol(AMIProtocol):
    """panoramisk's protocol, lenient to a manager (or a proxy in front of one) that drops the ActionID from its
    answers: an answer without one belongs to the one action waiting, if only one is."""

    def handle_message(self, message: Any) -> Any:
        waiting = {id(action): action for action in self.responses.values()}
        if message.id is None and "response" in message and len(waiting) == 1:
            message["ActionID"] = next(iter(waiting.values())).id
        return super().handle_message(message)


class _Session(Manager):
    """panoramisk's manager, reporting a failed connect and a lost link to the bridge instead of reconnecting on a
    fixed timer itself."""

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[Any] = loop.create_future()

    def connection_made(self, f: asyncio.Future[Any]) -> None:
        if f.cancelled() or f.exception() is not None:
            if not self.ready.done():
                self.ready.set_exception(f.exception() or OSError("the connection was cancelled"))
            return
        super().connection_made(f)
        _keep_alive(f.result()[0])
        if not self.ready.done():
            self.ready.set_result(None)

    def connection_lost(self, exc: Any) -> None:
        self._connected = False
        self.close()  # stops panoramisk's pinger
        if not self.lost.done():
            self.lost.set_result(None)


class AmiBridge:
    """Keeps one AMI session open (reconnecting with backoff) and applies each call event, in order."""

    def __init__(self, rt: Runtime, target: AmiTarget, *, first_delay: float = 1.0, max_delay: float = 60.0,
                 ping_seconds: float = 20.0, timeout: float = 10.0) -> None:
        self.rt, self.target = rt, target
        self.first_delay, self.max_delay = first_delay, max_delay
        self.ping_seconds, self.timeout = ping_seconds, timeout
        self.calls = AmiCalls(rt.settings.phone_region)
        self.connected = asyncio.Event()
        """Set while a session is logged in (the tests and the log wait on it)."""
        self._events: asyncio.Queue[dict[str, str]] = asyncio.Queue()

    async def run(self, stopping: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        try:
            if taken := self.calls.resume(await self.rt.service.calls_in_progress("ami")):
                log.info("took up %d calls in progress from before this process started", taken)
        except (StoreUnavailable, OSError) as exc:
            log.warning("calls in progress before this start not taken up (%s): their CDR import logs them", exc)
        applying = asyncio.create_task(self._apply_all(stopping))
        delay = self.first_delay
        try:
            while not stopping.is_set():
                opened = loop.time()
                try:
                    await self._session(stopping)
                except AmiRefused as exc:
                    log.error("the PBX %s refused the login: %s (check manager.conf and SWITCHBOARD_AMI_URL)",
                              self.target, exc)
                except (OSError, TimeoutError) as exc:
                    log.warning("no AMI session with %s: %s", self.target, exc or type(exc).__name__)
                self.connected.clear()
                if stopping.is_set():
                    break
                if loop.time() - opened > self.max_delay:
                    delay = self.first_delay  # it had been up a while: this is a new outage
                wait = delay * random.uniform(0.8, 1.2)
                log.info("reconnecting to the PBX %s in %.1f s", self.target, wait)
                await _wait(stopping, wait)
                delay = min(delay * 2, self.max_delay)
        finally:
            try:
                await asyncio.wait_for(self._events.join(), self.timeout)  # what Asterisk already said is kept
            except TimeoutError:
                log.warning("stopped with %d AMI events not applied", self._events.qsize())
            applying.cancel()

    async def _session(self, stopping: asyncio.Event) -> None:
        t = self.target
        session = _Session(host=t.host, port=t.port, ssl=t.tls, encoding="utf8", loop=asyncio.get_running_loop(),
                           ping_delay=10**9, log=log, protocol_factory=_Protocol)
        for name in AmiCalls.EVENTS:
            session.register_event(name, self._received)
        try:
            session.connect()
            await asyncio.wait_for(asyncio.shield(session.ready), self.timeout)
            answer = await asyncio.wait_for(session.send_action(
                {"Action": "Login", "Username": t.username, "Secret": t.secret, "Events": "call"}), self.timeout)
            if not answer.success:
                raise AmiRefused(answer.get("Message") or "no reason given")
            log.info("AMI session open with %s", t)
            self.connected.set()
            stop: asyncio.Future[Any] = asyncio.ensure_future(stopping.wait())
            pongs = 0
            try:
                while True:
                    done, _ = await asyncio.wait({session.lost, stop}, timeout=self.ping_seconds,
                                                 return_when=asyncio.FIRST_COMPLETED)
                    if stop in done:
                        return
                    if session.lost in done:
                        raise ConnectionResetError("the PBX closed the session")
                    pongs = await self._ping(session, pongs)
            finally:
                stop.cancel()
        finally:
            session.close()

    async def _ping(self, session: _Session, pongs: int) -> int:
        """A Ping; a manager that has answered one before and now does not within the timeout is taken for hung
        (the link is dropped and made again). One that never answers pings is trusted to TCP keepalive."""
        try:
            await asyncio.wait_for(asyncio.shield(session.send_action({"Action": "Ping"})), self.timeout)
        except TimeoutError:
            if pongs:
                raise TimeoutError(f"the PBX did not answer a Ping within {self.timeout:g} s") from None
            return 0
        return pongs + 1

    def _received(self, _: Manager, event: Mapping[str, Any]) -> None:
        """panoramisk's callback: queue it, so events are applied in the order they came."""
        self._events.put_nowait({str(k).lower(): str(v) for k, v in event.items()})

    async def _apply_all(self, stopping: asyncio.Event) -> None:
        while True:
            event = await self._events.get()
            try:
                call_event = self.calls.read(event)
                if call_event is not None:
                    await self._apply(call_event, event, stopping)
            except Exception:  # noqa: BLE001 - one bad event must not stop the calls after it
                log.exception("AMI event %s of call %s not applied", event.get("event"), event.get("linkedid"))
            finally:
                self._events.task_done()

    async def _apply(self, call_event: CallEvent, event: Mapping[str, str], stopping: asyncio.Event) -> None:
        """Applied, or parked when it fails for its own reasons; while the database or Redis is down it waits."""
        pause, failures = 1.0, 0
        while True:
            try:
                await apply_call_event(self.rt, call_event)
                return
            except (StoreUnavailable, RedisError, OSError) as exc:
                if stopping.is_set():
                    raise
                log.warning("call %s: %s; retrying in %.0f s", call_event.call_id, exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30)
            except Exception as exc:  # noqa: BLE001 - a poisoned event is parked after its third try
                failures += 1
                if failures < 3:
                    continue
                number = await self.rt.service.park(CHANNEL, call_event.call_id, f"{type(exc).__name__}: {exc}",
                                                    payload=json.dumps(dict(event)), attempts=failures)
                log.error("AMI %s of call %s parked as item %d: %s", call_event.kind, call_event.call_id, number, exc)
                return


def _keep_alive(transport: asyncio.BaseTransport) -> None:
    """TCP keepalive on the manager's socket: a link cut without a word is noticed within about a minute even when
    the PBX answers no Ping."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


async def _wait(stopping: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stopping.wait(), seconds)
    except TimeoutError:
        pass
