"""Streaming parser for Asterisk ``cdr-csv`` files (``Master.csv``) → `CdrRow` / `CdrRejection`.

Asterisk writes one row per call leg, without a header, in this column order::

    accountcode, src, dst, dcontext, clid, channel, dstchannel, lastapp, lastdata,
    start, answer, end, duration, billsec, disposition, amaflags, uniqueid, userfield

The last three are optional in some configurations, so rows have 15–18 columns. A header row
(first cell literally ``accountcode``) is skipped wherever it appears, so concatenated exports
work. Blank lines are skipped.

`read_cdr` is a generator: it reads one physical line at a time (plus at most one line of
look-ahead while a quoted field is open) and never holds more than one row, so a file of any
size is read in constant memory. A bad row becomes a `CdrRejection` with its 1-based start line
and a plain reason; the stream goes on.

Quoted fields may contain newlines (a row then spans several physical lines). A row whose
quote is never closed would otherwise swallow the rest of the file, so a continuation line that
is itself a complete, balanced row of 15+ columns is taken as the start of the next row and the
open one is rejected ("unbalanced quotes"); a row also may not span more than
`MAX_ROW_LINES` lines or `MAX_ROW_CHARS` characters.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import IO, Literal

from tickets import phone_numbers as numbers
from tickets.numbers import whole_number

__all__ = [
    "COLUMNS",
    "DEFAULT_INBOUND_CONTEXTS",
    "CdrRejection",
    "CdrRow",
    "CdrLines",
    "read_cdr",
]

COLUMNS = (
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
    "lastdata", "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
    "uniqueid", "userfield",
)
MIN_COLUMNS = 15
MAX_COLUMNS = len(COLUMNS)
MAX_ROW_LINES = 50
MAX_ROW_CHARS = 64 * 1024
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
MAX_ID = 150
MAX_NAME = 200

DEFAULT_INBOUND_CONTEXTS = frozenset({"from-pstn", "from-trunk", "from-external", "incoming", "inbound"})
"""Asterisk dialplan contexts that calls from the outside world land in (compared lower-cased)."""

Disposition = Literal["answered", "missed", "busy", "failed", "voicemail"]
Direction = Literal["in", "out"]

ABANDON_APPS = frozenset({"queue", "playback", "background", "waitexten", "read", "hangup", "ivr"})
"""Dialplan apps that answer a call before any agent does: a caller who hangs up in them was never served."""

_DISPOSITIONS: dict[str, Disposition] = {
    "ANSWERED": "answered",
    "NO ANSWER": "missed",
    "BUSY": "busy",
    "FAILED": "failed",
    "CONGESTION": "failed",
}


@dataclass(frozen=True, slots=True)
class CdrRow:
    """One call as the PBX recorded it, with both parties normalised."""

    line: int
    """1-based physical line where the row starts."""
    record_id: str
    """Asterisk uniqueid, or ``cdr:<sha1 of the row's fields>`` when the file has none."""
    caller: str | None
    """E.164 number of the calling party; None when withheld or when the caller is an extension."""
    caller_name: str | None
    """Display name from the callerid ("Ivan Petrov"), if any."""
    called: str | None
    """E.164 number of the called party; None when it is an extension or not a phone number."""
    extension: str | None
    """The internal party (the extension that answered or dialled), if known."""
    direction: Direction
    started_at: datetime
    answered_at: datetime | None
    """None unless the call was answered."""
    ended_at: datetime
    duration: int
    """Seconds from start to end."""
    talk_time: int
    """Seconds from answer to end (Asterisk ``billsec``)."""
    disposition: Disposition
    accountcode: str
    dcontext: str
    channel: str
    dstchannel: str
    userfield: str


@dataclass(frozen=True, slots=True)
class CdrRejection:
    """A row that could not become a `CdrRow`, and why."""

    line: int
    """1-based physical line where the row starts."""
    reason: str
    raw: str
    """The row's text as read (physical lines joined, final line break removed)."""
    internal: bool = False
    """A well-formed row of a call between extensions: not wrong, just not a customer call."""


class _Reject(Exception):
    def __init__(self, reason: str, *, internal: bool = False) -> None:
        super().__init__(reason)
        self.internal = internal


class CdrLines:
    """A CDR file's lines the way `read_cdr` needs them (UTF-8, undecodable bytes replaced, line breaks kept as
    written, as with ``newline=""``), counting the bytes read so a progress bar can show how far along it is."""

    def __init__(self, binary: IO[bytes]) -> None:
        self._binary = binary
        self.bytes_read = 0

    def __iter__(self) -> Iterator[str]:
        for raw in self._binary:  # split on b"\n" only: a "\r\n" stays, as csv's newline="" expects
            self.bytes_read += len(raw)
            yield raw.decode("utf-8", "replace")


def read_cdr(
    lines: Iterable[str],
    *,
    default_region: str | None = None,
    tz: tzinfo = UTC,
    inbound_contexts: Iterable[str] = DEFAULT_INBOUND_CONTEXTS,
) -> Iterator[CdrRow | CdrRejection]:
    """Yield a `CdrRow` or a `CdrRejection` for every row of a ``Master.csv``, lazily.

    `lines` is any iterable of physical lines, e.g. `CdrLines` over a file opened "rb" (``newline=""`` keeps
    line breaks inside quoted fields intact). `default_region` ("RU", "GB") lets numbers written
    without a country code become E.164. `tz` is the PBX's local time zone (a `zoneinfo.ZoneInfo`
    or fixed offset; the file's naive times are read as wall-clock times in it).
    `inbound_contexts` are the dialplan contexts that mean "a call from outside".
    """
    contexts = frozenset(c.strip().lower() for c in inbound_contexts)
    for start, text in _records(lines):
        raw = _strip_eol(text)
        try:
            fields = _split(text)
        except _Reject as exc:
            yield CdrRejection(start, str(exc), raw)
            continue
        if fields is None:  # blank line
            continue
        if fields[0].strip() == "accountcode":
            continue
        try:
            yield _row(start, fields, default_region, tz, contexts)
        except _Reject as exc:
            yield CdrRejection(start, str(exc), raw, internal=exc.internal)


# -- physical lines → rows -------------------------------------------------------------------


def _records(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(start line, text) per row; an unterminated row is passed on as is and fails in `_split`."""
    buffer: list[str] = []
    size = 0
    start = 0
    for number, line in enumerate(lines, 1):
        if number == 1:
            line = line.removeprefix("\ufeff")
        if buffer and _is_complete_row(line):
            yield start, "".join(buffer)  # the open quote was never closed; `_split` says so
            buffer, size = [], 0
        if not buffer:
            start = number
        buffer.append(line)
        size += len(line)
        text = "".join(buffer)
        if not _is_open(text) or len(buffer) >= MAX_ROW_LINES or size >= MAX_ROW_CHARS:
            yield start, text
            buffer, size = [], 0
    if buffer:
        yield start, "".join(buffer)


def _is_open(text: str) -> bool:
    """True while `text` ends inside a quoted field (the row continues on the next line)."""
    try:
        next(csv.reader(io.StringIO(text, newline=""), strict=True), None)
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def _is_complete_row(line: str) -> bool:
    """A line that is on its own a full CDR row: the start of a new row, not a continuation."""
    if not line.strip() or line.count('"') % 2:
        return False
    try:
        fields = next(csv.reader(io.StringIO(line, newline=""), strict=True), [])
    except csv.Error:
        return False
    return len(fields) >= MIN_COLUMNS


def _split(text: str) -> list[str] | None:
    if not text.strip():
        return None
    try:
        fields = next(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        message = str(exc)
        if "unexpected end of data" in message:
            raise _Reject("unbalanced quotes: a quoted field is not closed before the next row") from exc
        if text.count('"') % 2:
            raise _Reject(f"unbalanced quotes: {message}") from exc
        raise _Reject(f"malformed CSV: {message}") from exc
    except StopIteration:
        return None
    if len(fields) < MIN_COLUMNS:
        raise _Reject(f"{MIN_COLUMNS} columns expected at least, got {len(fields)}")
    if len(fields) > MAX_COLUMNS:
        raise _Reject(f"{MAX_COLUMNS} columns expected at most, got {len(fields)}")
    return fields


def _strip_eol(text: str) -> str:
    return text.removesuffix("\n").removesuffix("\r")


# -- fields → CdrRow -----------------------------------------------------------------------


def _row(
    line: int, fields: list[str], default_region: str | None, tz: tzinfo, contexts: frozenset[str]
) -> CdrRow:
    cells = dict(zip(COLUMNS, fields, strict=False))  # trailing columns are optional
    get = lambda name: cells.get(name, "")  # noqa: E731 - optional trailing columns

    disposition = _DISPOSITIONS.get(get("disposition").strip().upper())
    if disposition is None:
        raise _Reject(f"unknown disposition {get('disposition')!r}")
    started_at = _date(get("start"), "start", tz)
    ended_at = _date(get("end"), "end", tz)
    answered_at = _date(get("answer"), "answer", tz) if get("answer").strip() else None
    if disposition != "answered":
        answered_at = None
    duration = _seconds(get("duration"), "duration")
    talk_time = _seconds(get("billsec"), "billsec")

    src, dst = get("src").strip(), get("dst").strip()
    direction = _direction(src, dst, get("dcontext"), contexts)
    caller = called = None
    src_extension = numbers.extension_of(src)
    dst_extension = numbers.extension_of(dst)
    if not numbers.is_withheld(src) and src_extension is None:
        try:
            caller = numbers.to_e164(src, default_region)
        except numbers.InvalidAddress as exc:
            raise _Reject(f"bad caller number {src!r}: {exc}") from exc
    if dst_extension is None and numbers.looks_external(dst):
        try:
            called = numbers.to_e164(dst, default_region)
        except numbers.InvalidAddress as exc:
            if direction == "out":  # the client we dialled; without it the call is useless
                raise _Reject(f"bad called number {dst!r}: {exc}") from exc
    if direction == "in":
        extension = dst_extension or numbers.extension_from_channel(get("dstchannel"))
    else:
        extension = src_extension or numbers.extension_from_channel(get("channel"))
    disposition = _served(disposition, direction, numbers.extension_from_channel(get("dstchannel")), get("lastapp"))
    if disposition != "answered":
        answered_at = None
    caller_name, _ = numbers.parse_clid(get("clid"))
    caller_name = caller_name[:MAX_NAME] if caller_name else None
    if numbers.is_withheld(src) and caller_name and caller_name.lower() in numbers.WITHHELD:
        caller_name = None

    return CdrRow(
        line=line,
        record_id=_record_id(fields, get("uniqueid")),
        caller=caller,
        caller_name=caller_name,
        called=called,
        extension=extension,
        direction=direction,
        started_at=started_at,
        answered_at=answered_at,
        ended_at=ended_at,
        duration=duration,
        talk_time=talk_time,
        disposition=disposition,
        accountcode=get("accountcode"),
        dcontext=get("dcontext"),
        channel=get("channel"),
        dstchannel=get("dstchannel"),
        userfield=get("userfield"),
    )


def _direction(src: str, dst: str, dcontext: str, contexts: frozenset[str]) -> Direction:
    """Which way the call went, from the PBX's point of view.

    1. "in" when the destination context is an inbound one (`inbound_contexts`, e.g. "from-pstn");
    2. "in" when the destination is an internal extension (2–5 digits) and the source a longer,
       external-looking number;
    3. "out" when the source is an internal extension and the destination external-looking;
    4. "in" when the caller id is withheld or external-looking (someone outside called us);
    5. otherwise the row is rejected: an extension calling an extension or a feature code ("*97")
       is an internal call, not a customer call.
    """
    if dcontext.strip().lower() in contexts:
        return "in"
    src_extension, dst_extension = numbers.extension_of(src), numbers.extension_of(dst)
    src_external = src_extension is None and numbers.looks_external(src)
    if dst_extension and src_external:
        return "in"
    if src_extension and numbers.looks_external(dst):
        return "out"
    if numbers.is_withheld(src) or src_external:
        return "in"
    raise _Reject(f"internal call, not a customer call: from {src!r} to {dst!r} in context {dcontext!r}", internal=True)


def _served(disposition: Disposition, direction: Direction, agent_phone: str | None, lastapp: str) -> Disposition:
    """An inbound call the PBX itself answered: voicemail took a message, or the caller gave up in a queue or menu
    before any agent's phone (`agent_phone`, from dstchannel; a queue's number in dst is no agent) was bridged."""
    app = lastapp.strip().lower()
    if disposition != "answered" or direction != "in":
        return disposition
    if app == "voicemail":
        return "voicemail"
    if agent_phone is None and app in ABANDON_APPS:
        return "missed"
    return disposition


def _date(value: str, column: str, tz: tzinfo) -> datetime:
    try:
        return datetime.strptime(value.strip(), DATE_FORMAT).replace(tzinfo=tz)
    except ValueError:
        raise _Reject(f"bad {column} date {value!r}") from None


def _seconds(value: str, column: str) -> int:
    seconds = whole_number(value, maximum=2**31 - 1)
    if seconds is None:
        raise _Reject(f"bad {column} {value!r}: whole seconds expected")
    return seconds


def _record_id(fields: list[str], uniqueid: str) -> str:
    """The uniqueid; a hash of it when it is too long to store, or of the whole row when there is none."""
    if uniqueid.strip():
        if len(uniqueid.strip()) <= MAX_ID:
            return uniqueid.strip()
        fields = [uniqueid.strip()]
    digest = hashlib.sha1("\x1f".join(fields).encode("utf-8", "surrogatepass")).hexdigest()
    return f"cdr:{digest}"
