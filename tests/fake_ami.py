"""A stand-in Asterisk manager (AMI) on 127.0.0.1 speaking the real protocol: the `Asterisk Call Manager/…` banner,
`Login` (one user and secret; a wrong one is answered `Error` and the link closed, as Asterisk does), `Ping`, and
the channel events a test sends, framed as Asterisk frames them. It can drop every session (an Asterisk restart),
leave the ActionID out of its answers and leave Ping unanswered, and counts the logins, so reconnection is
observable from outside.

`inbound_call` / `answer` / `hang_up` send the event sequences Asterisk 18 sends for a call from a trunk to an
extension (Newchannel, DialBegin, the phone's Newchannel and Newstate Ringing, DialEnd, Newstate Up, BridgeEnter,
Hangup of each channel), with its field names.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass, field

CRLF = "\r\n"


@dataclass
class FakeCall:
    linkedid: str
    caller: str
    extension: str
    trunk: str
    phones: list[str] = field(default_factory=list)


class FakeAmi:
    def __init__(self, username: str = "switchboard", secret: str = "s3cret") -> None:
        self.username, self.secret = username, secret
        self.action_ids = True
        """False: answers without the ActionID (as some proxies and minimal managers do)."""
        self.pongs = True
        """False: Ping goes unanswered (a hung manager, or one that does not know Ping)."""
        self.logins: list[tuple[str, bool]] = []
        self._sessions: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._logged_in = asyncio.Condition()
        self._ids = itertools.count(1)
        self.port = 0

    @property
    def url(self) -> str:
        return f"ami://{self.username}:{self.secret}@127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> FakeAmi:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self.drop()
            await self._server.wait_closed()
            self._server = None

    async def drop(self) -> None:
        """Close every session, as an Asterisk restart does."""
        for writer in list(self._sessions):
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        self._sessions.clear()

    async def logged_in(self, count: int = 1, timeout: float = 10) -> None:
        """Wait until `count` logins have succeeded since the start."""
        async with self._logged_in:
            await asyncio.wait_for(self._logged_in.wait_for(
                lambda: sum(ok for _, ok in self.logins) >= count and bool(self._sessions)), timeout)

    async def send(self, event: str, **fields: str) -> None:
        """One event to every logged-in session."""
        frame = CRLF.join([f"Event: {event}", "Privilege: call,all", *(f"{k}: {v}" for k, v in fields.items())])
        for writer in list(self._sessions):
            writer.write((frame + CRLF + CRLF).encode())
            with contextlib.suppress(ConnectionError):
                await writer.drain()

    # --- a call from a trunk to an extension, as Asterisk 18 reports it -----------------------------------------

    async def inbound_call(self, caller: str, extension: str, linkedid: str | None = None) -> FakeCall:
        linkedid = linkedid or f"1765000000.{next(self._ids)}"
        call = FakeCall(linkedid, caller, extension, f"PJSIP/trunk-{next(self._ids):08x}")
        await self.send("Newchannel", Channel=call.trunk, ChannelState="4", ChannelStateDesc="Ring",
                        CallerIDNum=caller, CallerIDName="", ConnectedLineNum="<unknown>", Language="en",
                        AccountCode="", Context="from-trunk", Exten=extension, Priority="1", Uniqueid=linkedid,
                        Linkedid=linkedid)
        await self.ring(call, extension)
        return call

    async def ring(self, call: FakeCall, extension: str) -> None:
        """Another phone rings for the call (a ring group or a queue member)."""
        phone = f"PJSIP/{extension}-{next(self._ids):08x}"
        call.phones.append(phone)
        await self.send("DialBegin", Channel=call.trunk, ChannelState="4", CallerIDNum=call.caller,
                        Context="from-trunk", Exten=call.extension, Uniqueid=call.linkedid, Linkedid=call.linkedid,
                        DestChannel=phone, DestChannelState="0", DestCallerIDNum=extension,
                        DestConnectedLineNum=call.caller, DestContext="from-internal", DestExten=extension,
                        DestUniqueid=f"{call.linkedid}{len(call.phones)}", DestLinkedid=call.linkedid,
                        DialString=extension)
        await self.send("Newchannel", Channel=phone, ChannelState="0", ChannelStateDesc="Down",
                        CallerIDNum=extension, ConnectedLineNum=call.caller, Uniqueid=phone, Linkedid=call.linkedid)
        await self.send("Newstate", Channel=phone, ChannelState="5", ChannelStateDesc="Ringing",
                        CallerIDNum=extension, ConnectedLineNum=call.caller, Uniqueid=phone, Linkedid=call.linkedid)

    async def answer(self, call: FakeCall, extension: str | None = None) -> None:
        phone = next(p for p in call.phones if p.startswith(f"PJSIP/{extension or call.extension}-"))
        await self.send("DialEnd", Channel=call.trunk, CallerIDNum=call.caller, Uniqueid=call.linkedid,
                        Linkedid=call.linkedid, DestChannel=phone, DestLinkedid=call.linkedid, DialStatus="ANSWER")
        await self.send("Newstate", Channel=phone, ChannelState="6", ChannelStateDesc="Up", Uniqueid=phone,
                        Linkedid=call.linkedid)
        for channel, uniqueid in ((phone, phone), (call.trunk, call.linkedid)):
            await self.send("BridgeEnter", Channel=channel, Uniqueid=uniqueid, Linkedid=call.linkedid,
                            BridgeUniqueid="b-" + call.linkedid)

    async def hang_up(self, call: FakeCall, cause: int = 16) -> None:
        for phone in call.phones:
            await self.send("Hangup", Channel=phone, Uniqueid=phone, Linkedid=call.linkedid, Cause=str(cause),
                            **{"Cause-txt": "Normal Clearing"})
        await self.send("Hangup", Channel=call.trunk, CallerIDNum=call.caller, Uniqueid=call.linkedid,
                        Linkedid=call.linkedid, Cause=str(cause), **{"Cause-txt": "Normal Clearing"})

    # --- the protocol ------------------------------------------------------------------------------------------

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(f"Asterisk Call Manager/7.0.3{CRLF}".encode())
        try:
            while True:
                try:
                    raw = await reader.readuntil((CRLF + CRLF).encode())
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                action = dict(line.split(": ", 1) for line in raw.decode().split(CRLF) if ": " in line)
                name = action.get("Action", "").lower()
                reply = {"ActionID": action.get("ActionID", "")} if self.action_ids else {}
                if name == "login":
                    ok = (action.get("Username"), action.get("Secret")) == (self.username, self.secret)
                    async with self._logged_in:
                        self.logins.append((action.get("Username", ""), ok))
                        if ok:
                            self._sessions.add(writer)
                        self._logged_in.notify_all()
                    if not ok:
                        writer.write(_frame(Response="Error", Message="Authentication failed", **reply))
                        await writer.drain()
                        return
                    writer.write(_frame(Response="Success", Message="Authentication accepted", **reply))
                    writer.write(_frame(Event="FullyBooted", Privilege="system,all", Status="Fully Booted"))
                elif name == "ping":
                    if self.pongs:
                        writer.write(_frame(Response="Success", Ping="Pong", Timestamp="1765000000.000000", **reply))
                else:
                    writer.write(_frame(Response="Error", Message="Invalid/unknown command", **reply))
                await writer.drain()
        finally:
            self._sessions.discard(writer)
            writer.close()


def _frame(**fields: str) -> bytes:
    return (CRLF.join(f"{k}: {v}" for k, v in fields.items()) + CRLF + CRLF).encode()
