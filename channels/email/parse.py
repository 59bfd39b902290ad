"""One raw RFC 5322 message (bytes as received over SMTP) → a `ParsedMail`; never raises.

Mail from the wild is often broken: wrong or unknown charsets, raw 8-bit headers, truncated
base64, multiparts without a boundary. A support desk must still show the customer's words, so
every step here degrades to a best-effort value and writes what went wrong into `problems`
instead of rejecting the message. This module is pure (no ORM, no I/O) so it is cheap to test.

This is the parse driver (MIME structure, headers, bodies, attachments, DSNs); what it leans on lives beside it:
`html_text` (HTML bodies as text), `charsets` (charset labels, RFC 2047 words), `automatic` (auto-replies and
classic bounces) and `preview` (the new part of a reply).
"""

from __future__ import annotations

import binascii
import mimetypes
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email import errors as email_errors
from email import policy
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from functools import cached_property
from typing import Any
from urllib.parse import unquote

from channels.email.automatic import (
    BOUNCED_RECIPIENT,
    COPY_MARKER,
    EMBEDDED_ID,
    FAILURE_SUBJECT,
    SMTP_REPLY,
    STATUS_CODE,
    auto_reply_reason,
    bounced_recipients,
)
from channels.email.charsets import (
    ASCII_LIKE,
    DETECT_CANDIDATES,
    ENCODED_WORD,
    b64_lenient,
    has_surrogates,
    python_codec,
    unfold,
)
from channels.email.html_text import html_to_text
from channels.email.preview import DEFAULT_REPLY_LANGUAGES, PREVIEW_SOURCE_LIMIT, reply_preview

__all__ = [
    "DEFAULT_REPLY_LANGUAGES",
    "PREVIEW_SOURCE_LIMIT",
    "Address",
    "Bounce",
    "MailAttachment",
    "ParsedMail",
    "html_to_text",
    "is_from_mailer_daemon",
    "parse_mail",
    "ticket_token",
]

_PARSER = BytesParser(policy=policy.default)
# Re-serialising an embedded message: compat32 writes the stored raw header strings back as they
# came (policy.default would rebuild and refold every header object, ~10x slower).
_EMBEDDED_POLICY = policy.compat32.clone(max_line_length=0, linesep="\r\n")


@dataclass(frozen=True)
class Address:
    """A mailbox as written in a header: display name and the address, lower-cased for matching."""

    name: str
    address: str


@dataclass(frozen=True)
class MailAttachment:
    """A non-body MIME part; `content_id` is bare (no angle brackets) so it matches `cid:` URLs."""

    filename: str
    content_type: str
    data: bytes
    content_id: str | None
    inline: bool

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class Bounce:
    """A delivery failure report: which of our messages failed, for whom, and why."""

    original_message_id: str | None
    recipients: tuple[str, ...]
    status: str | None
    diagnostic: str | None


@dataclass(frozen=True)
class ParsedMail:
    """Everything ingest needs from one email, already decoded; `problems` says what was repaired."""

    raw: bytes
    message_id: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    subject: str = ""
    sender: Address | None = None
    reply_to: Address | None = None
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    date: datetime | None = None
    text: str = ""
    html: str | None = None
    """Raw HTML of the body, NOT sanitised (ingest runs nh3). `cid:` images are in `html_cids`."""
    html_cids: tuple[str, ...] = ()
    """Content-ids the HTML references (`cid:` URLs): nh3 drops that scheme unless ingest rewrites them."""
    reply_languages: tuple[str, ...] = DEFAULT_REPLY_LANGUAGES
    attachments: tuple[MailAttachment, ...] = ()
    auto_reply: str | None = None
    """Why this looks machine-sent (vacation, bulk, auto-submitted); such mail must not be auto-answered."""
    bounce: Bounce | None = None
    problems: tuple[str, ...] = ()

    @cached_property
    def preview(self) -> str:
        """The new part of a reply, worked out when first asked for: at ~3 ms a mail (mail-parser-reply) it was a
        fifth of the SMTP role's time, spent on every mail received for something nothing stored needs."""
        return reply_preview(self.text, self.reply_languages)

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Message-ids this mail answers, nearest first, for matching it to an existing ticket."""
        ids = ([self.in_reply_to] if self.in_reply_to else []) + list(reversed(self.references))
        return tuple(dict.fromkeys(ids))


# ---------------------------------------------------------------- small public helpers

_TICKET_TOKEN = re.compile(r"\[#(\d{1,18})\]")


def ticket_token(subject: str | None) -> int | None:
    """The ticket number from a `[#123]` subject token (the form our replies carry), else None."""
    match = _TICKET_TOKEN.search(subject or "")
    return int(match.group(1)) if match else None


_DAEMON_LOCALPARTS = frozenset({"mailer-daemon", "mailer_daemon", "mailerdaemon", "mail-daemon", "postmaster"})


def is_from_mailer_daemon(sender: Address | str | None) -> bool:
    """Whether mail comes from a mail system rather than a person (bounces must never open tickets)."""
    if sender is None:
        return False
    address = sender.address if isinstance(sender, Address) else sender
    if "<" in address:
        address = address[address.rfind("<") + 1 :].rstrip("> ")
    local = address.strip().split("@", 1)[0].strip().lower()
    return local in _DAEMON_LOCALPARTS


# ---------------------------------------------------------------- the parse


class _Draft:
    """What has been obtained so far; an unexpected failure still returns all of it."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.message_id: str | None = None
        self.in_reply_to: str | None = None
        self.references: tuple[str, ...] = ()
        self.subject = ""
        self.sender: Address | None = None
        self.reply_to: Address | None = None
        self.to: tuple[Address, ...] = ()
        self.cc: tuple[Address, ...] = ()
        self.date: datetime | None = None
        self.text = ""
        self.html: str | None = None
        self.html_cids: tuple[str, ...] = ()
        self.reply_languages: tuple[str, ...] = DEFAULT_REPLY_LANGUAGES
        self.attachments: tuple[MailAttachment, ...] = ()
        self.auto_reply: str | None = None
        self.bounce: Bounce | None = None
        self.problems: list[str] = []

    def freeze(self) -> ParsedMail:
        return ParsedMail(
            raw=self.raw,
            message_id=self.message_id,
            in_reply_to=self.in_reply_to,
            references=self.references,
            subject=self.subject,
            sender=self.sender,
            reply_to=self.reply_to,
            to=self.to,
            cc=self.cc,
            date=self.date,
            text=self.text,
            html=self.html,
            html_cids=self.html_cids,
            reply_languages=self.reply_languages,
            attachments=self.attachments,
            auto_reply=self.auto_reply,
            bounce=self.bounce,
            problems=tuple(dict.fromkeys(self.problems)),
        )


def parse_mail(
    raw: bytes,
    envelope_from: str | None = None,
    *,
    reply_languages: Iterable[str] = DEFAULT_REPLY_LANGUAGES,
) -> ParsedMail:
    """Parse one message as received; never raises. `envelope_from` (SMTP MAIL FROM) is the
    sender of last resort when the headers name nobody."""
    raw = bytes(raw) if not isinstance(raw, str) else raw.encode("utf-8", "surrogateescape")
    draft = _Draft(raw)
    draft.reply_languages = tuple(reply_languages)
    try:
        _Parse(raw, draft, envelope_from).run()
    except Exception as exc:  # noqa: BLE001 — the contract is "never raise"; the reason is kept
        draft.problems.append(f"parser failed: {type(exc).__name__}: {exc}")
        if not draft.text:
            draft.text = _raw_body_text(raw)
    return draft.freeze()


def _raw_body_text(raw: bytes) -> str:
    """Best effort when nothing else worked: whatever follows the first blank line, as text."""
    ends = [i + len(sep) for sep in (b"\n\n", b"\n\r\n") if (i := raw.find(sep)) >= 0]
    body = raw[min(ends) :] if ends else raw
    try:
        return body.decode("utf-8").strip()
    except UnicodeDecodeError:
        return body.decode("utf-8", "replace").strip()


_DEFECT_TEXT = {
    "NoBoundaryInMultipartDefect": "multipart without a boundary parameter; body read as text",
    "StartBoundaryNotFoundDefect": "MIME boundary never occurs in the body; body read as text",
    "CloseBoundaryNotFoundDefect": "closing MIME boundary missing (truncated message?)",
    "MultipartInvariantViolationDefect": "declared multipart but has no parts",
    "MissingHeaderBodySeparatorDefect": "header block not ended by a blank line (malformed or truncated headers)",
    "FirstHeaderLineIsContinuationDefect": "first header line is a continuation line",
    "MisplacedEnvelopeHeaderDefect": "a 'From ' envelope line inside the headers",
    "InvalidBase64PaddingDefect": "base64 body has wrong padding",
    "InvalidBase64CharactersDefect": "base64 body contains invalid characters (skipped)",
    "InvalidBase64LengthDefect": "base64 body is truncated; kept what decodes",
    "InvalidMultipartContentTransferEncodingDefect": "multipart with a transfer encoding other than 7bit/8bit/binary",
    "UndecodableBytesDefect": "undecodable 8-bit bytes",
    "InvalidDateDefect": "unparseable date",
}
# Obsolete-but-valid syntax (RFC 5322 section 4) and encoded-words in quoted display names
# (Outlook, The Bat!, 1C all send `"=?windows-1251?B?...?=" <a@b>`) are everyday mail that is
# decoded fine; flagging them would bury the real problems.
_IGNORED_DEFECTS = (email_errors.ObsoleteHeaderDefect,)
_IGNORED_DEFECT_TEXT = ("encoded word inside quoted string", "whitespace after encoded-word")


def _worth_reporting(defect: Exception) -> bool:
    if isinstance(defect, _IGNORED_DEFECTS):
        return False
    detail = str(defect)
    return not any(text in detail for text in _IGNORED_DEFECT_TEXT)


def _describe(defect: Exception) -> str:
    name = type(defect).__name__
    detail = str(defect)
    text = _DEFECT_TEXT.get(name, name)
    return f"{text} ({detail})" if detail and name not in _DEFECT_TEXT else text


_MESSAGE_ID = re.compile(r"<([^<>]+)>")
_CHARSET_HINT = re.compile(
    rb"""charset\s*=\s*["']?([A-Za-z0-9_.:-]+)|=\?([A-Za-z0-9_.:-]+)(?:\*[^?]*)?\?[BbQq]\?"""
)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.I)
_CID_URL = re.compile(r"""cid:([^"'\s)>]+)""", re.I)


@dataclass(frozen=True, slots=True)
class _Mime:
    ctype: str
    params: dict[str, str]
    disposition: str | None
    filename: str | None
    content_id: str | None


_MIME_TYPE = re.compile(r"[\w!#$&^.+-]+/[\w!#$&^.+-]+")
_SIMPLE_PARAM = re.compile(r"""\s*;\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"([^"\\]*)"|([^;"\s]*))\s*""")


def _simple_mime_header(raw: str) -> tuple[str, dict[str, str]] | None:
    """Content-Type/-Disposition value and parameters when the syntax is plain, else None.

    Most parts look like `text/plain; charset="utf-8"`; building policy.default's header object
    for them costs ~0.1 ms each. Anything unusual (RFC 2231, encoded-words, escapes, comments,
    8-bit bytes) returns None and goes to the stdlib parser."""
    if "*" in raw or "=?" in raw or "\\" in raw or "(" in raw or not raw.isascii():
        return None
    value = unfold(raw)
    head = value.split(";", 1)[0]
    params: dict[str, str] = {}
    position = len(head)
    while position < len(value):
        match = _SIMPLE_PARAM.match(value, position)
        if match is None or match.end() == position:
            if value[position:].strip(" \t;"):
                return None
            break
        name = match.group(1).lower()
        params.setdefault(name, match.group(2) if match.group(2) is not None else match.group(3))
        position = match.end()
    return head.strip().lower(), params


def _raw_param(header: str, name: str) -> str | None:
    """A parameter's value straight from the raw header, surrogate-escaped bytes and all."""
    match = re.search(rf"""(?:^|;)\s*{re.escape(name)}\s*=\s*(?:"([^"]*)"|([^;\s]+))""", unfold(header), re.I)
    return (match.group(1) or match.group(2)) if match else None


class _Parse:
    """One run of the parse; every step is guarded so a failing step costs only its own field."""

    def __init__(self, raw: bytes, draft: _Draft, envelope_from: str | None) -> None:
        self.raw = raw
        self.draft = draft
        self.envelope_from = envelope_from
        self.problems = draft.problems
        self._hints: list[str] | None = None
        self.plain: list[str] = []
        self.html: list[str] = []
        self.pending_attachments: list[tuple[str, str, bytes, str | None, str | None]] = []
        self.rfc822_parts: list[tuple[Message, str]] = []
        self.reports: list[str] = []

    # ------------------------------------------------------------ driver

    def run(self) -> None:
        self.msg = _PARSER.parsebytes(self.raw)
        self.headers: dict[str, str] = {}
        for name, value in self.msg.raw_items():
            self.headers.setdefault(name.lower(), value)
        if not self.raw.endswith(b"\n") and b"\n\n" not in self.raw and b"\n\r\n" not in self.raw:
            self.problems.append("message ends inside its header block (truncated?)")
        steps: tuple[Callable[[], None], ...] = (
            self.read_body,
            self.read_ids,
            self.read_subject,
            self.read_addresses,
            self.read_date,
            self.read_auto_reply,
            self.read_bounce,
        )
        for step in steps:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 — keep the other fields
                self.problems.append(f"{step.__name__}: {type(exc).__name__}: {exc}")
                if step == self.read_body and not self.draft.text:
                    self.draft.text = _raw_body_text(self.raw)  # the raw body beats an empty ticket

    # ------------------------------------------------------------ charsets

    def hints(self) -> list[str]:
        """Charsets the message declares anywhere: the sender's client most likely used one of them."""
        if self._hints is None:
            found: list[str] = []
            for declared, worded in _CHARSET_HINT.findall(self.raw[:262_144]):
                codec = python_codec((declared or worded).decode("ascii", "ignore"))
                if codec and codec not in ASCII_LIKE and codec not in found:
                    found.append(codec)
            self._hints = found
        return self._hints

    def decode(self, data: bytes, label: str | None, where: str) -> str:
        """Bytes → text: the declared charset, else utf-8, the message's other charsets, detection,
        and finally utf-8 with replacement; any fallback is recorded in problems."""
        codec = python_codec(label)
        if label and codec is None:
            reason = f"unknown charset {label!r}"
        else:
            try:
                return data.decode(codec or "ascii")
            except UnicodeDecodeError as exc:
                if codec and exc.reason == "unexpected end of data":  # cut inside the last character
                    self.problems.append(f"{where}: text ends inside a {label} character (truncated?)")
                    return data.decode(codec, "replace")
                if not label:
                    try:
                        return data.decode("utf-8")  # undeclared 8-bit UTF-8: common and harmless
                    except UnicodeDecodeError:
                        reason = "no charset declared and bytes are not ASCII"
                else:
                    reason = f"bytes are not valid {label}"
        text, used = self.guess(data, exclude=codec)
        self.problems.append(f"{where}: {reason}; decoded as {used}")
        return text

    def guess(self, data: bytes, exclude: str | None = None) -> tuple[str, str]:
        if exclude != "utf_8":
            try:
                return data.decode("utf-8"), "utf-8"
            except UnicodeDecodeError:
                pass
        for hint in self.hints():
            if hint != exclude:
                try:
                    return data.decode(hint), f"{hint} (declared elsewhere in the message)"
                except UnicodeDecodeError:
                    continue
        try:
            from charset_normalizer import from_bytes

            best = from_bytes(data, cp_isolation=DETECT_CANDIDATES).best()
            if best is not None:
                return str(best), f"{best.encoding} (detected)"
        except Exception:  # noqa: BLE001 — detection is an optional nicety
            pass
        return data.decode("utf-8", "replace"), "utf-8 with replacement characters"

    def header_text(self, value: str, where: str) -> str:
        """A header value as text: raw 8-bit bytes re-decoded, RFC 2047 encoded-words decoded leniently."""
        if has_surrogates(value):
            data = value.encode("utf-8", "surrogateescape")
            try:
                value = data.decode("utf-8")  # RFC 6532 allows raw UTF-8 headers
            except UnicodeDecodeError:
                value, used = self.guess(data, exclude="utf_8")
                self.problems.append(f"{where}: raw 8-bit header not in UTF-8; decoded as {used}")
        if "=?" not in value:
            return value
        return self.decode_words(value, where)

    def decode_words(self, value: str, where: str) -> str:
        # Lenient on purpose: adjacent words of one charset are joined as bytes before decoding
        # (clients split multi-byte characters and even base64 quanta across words), and words
        # glued to text are decoded too.
        out: list[str] = []
        position = 0
        charset: str | None = None
        chunks: list[bytes] = []
        b_texts: list[str] = []
        repaired = False

        def flush_b() -> None:
            # A word without padding whose length is not a multiple of 4 was cut mid-quantum:
            # carry the tail into the next word instead of decoding garbage.
            nonlocal repaired
            carry = ""
            for text in b_texts:
                core = carry + text.strip().rstrip("=")
                if text.strip().endswith("=") or len(core) % 4 == 0:
                    data, bad = b64_lenient(core)
                    carry = ""
                else:
                    cut = len(core) - len(core) % 4
                    data, bad = b64_lenient(core[:cut])
                    carry = core[cut:]
                    repaired = True
                chunks.append(data)
                repaired |= bad
            if carry:
                chunks.append(b64_lenient(carry)[0])
            b_texts.clear()

        def flush() -> None:
            nonlocal charset
            flush_b()
            if charset is not None:
                out.append(self.decode(b"".join(chunks), charset, where))
            charset = None
            chunks.clear()

        for match in ENCODED_WORD.finditer(value):
            word_charset = match.group(1).split("*", 1)[0].lower()
            gap = value[position : match.start()]
            if charset is not None and gap.strip() == "":
                if word_charset != charset:
                    flush()
            else:
                flush()
                out.append(gap)
            charset = word_charset
            if match.group(2) in "bB":
                b_texts.append(match.group(3))
            else:
                flush_b()
                chunks.append(binascii.a2b_qp(match.group(3).encode("utf-8", "surrogateescape"), header=True))
            position = match.end()
        flush()
        out.append(value[position:])
        if repaired:
            self.problems.append(f"{where}: malformed base64 encoded-word repaired")
        return "".join(out)

    # ------------------------------------------------------------ headers

    def read_ids(self) -> None:
        self.draft.message_id = _first_id(self.headers.get("message-id"))
        self.draft.in_reply_to = _first_id(self.headers.get("in-reply-to"))
        self.draft.references = _all_ids(self.headers.get("references"))

    def read_subject(self) -> None:
        raw = self.headers.get("subject")
        if raw is not None:
            self.draft.subject = " ".join(self.header_text(unfold(raw), "Subject").split())

    def read_addresses(self) -> None:
        draft = self.draft
        draft.to = self.addresses("To")
        draft.cc = self.addresses("Cc")
        reply_to = self.addresses("Reply-To")
        draft.reply_to = reply_to[0] if reply_to else None
        for name in ("From", "Sender", "Return-Path"):
            found = self.addresses(name)
            if found:
                draft.sender = found[0]
                return
        if self.envelope_from and self.envelope_from.strip("<> "):
            draft.sender = Address("", self.envelope_from.strip("<> ").lower())

    def addresses(self, name: str) -> tuple[Address, ...]:
        raw = self.headers.get(name.lower())
        if raw is None or not raw.strip():
            return ()
        unfolded = unfold(raw)
        # The compat parser is ~10x faster than policy.default's and right for ordinary headers;
        # the strict parser is asked only when it lost an address the header clearly contains.
        pairs = getaddresses([unfolded])
        lost = not any(a.strip() for _, a in pairs) or any(a.strip() and "@" not in a for _, a in pairs)
        if lost and "@" in unfolded and name != "Return-Path":
            try:
                header = self.msg[name]
                for defect in header.defects:
                    # 8-bit bytes are judged by header_text below: raw UTF-8 is legal (RFC 6532).
                    if _worth_reporting(defect) and not isinstance(defect, email_errors.UndecodableBytesDefect):
                        self.problems.append(f"{name}: {_describe(defect)}")
                strict = [(a.display_name or "", a.addr_spec or "") for a in header.addresses]
                if any("@" in a for _, a in strict):
                    pairs = strict
            except Exception as exc:  # noqa: BLE001 — keep what the compat parser found
                self.problems.append(f"{name}: header could not be parsed ({type(exc).__name__}: {exc})")
        result: list[Address] = []
        for display, address in pairs:
            address = self.header_text(address, name).strip().strip("<>").strip()
            if not address:
                continue
            display = self.header_text(display, name)
            result.append(Address(" ".join(display.split()).strip("\"' "), address.lower()))
        return tuple(dict.fromkeys(result))

    def read_date(self) -> None:
        raw = self.headers.get("date")
        if raw is None:
            return
        value: datetime | None = None
        try:
            value = parsedate_to_datetime(unfold(raw).strip())
        except (TypeError, ValueError, IndexError, OverflowError):
            self.problems.append(f"Date: unparseable: {unfold(raw).strip()[:80]!r}")
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)  # "-0000" means UTC with unknown local zone
        self.draft.date = value

    # ------------------------------------------------------------ MIME tree

    def read_body(self) -> None:
        self.walk(self.msg, "message", 0)
        draft = self.draft
        plain = "\n\n".join(t.strip("\n") for t in self.plain if t.strip())
        html = "\n".join(self.html) if self.html else None
        draft.html = html
        cids: tuple[str, ...] = ()
        if html:
            cids = tuple(dict.fromkeys(unquote(c) for c in _CID_URL.findall(html)))
        draft.html_cids = cids
        draft.text = plain.strip() if plain.strip() else (html_to_text(html) if html else "")
        attachments: list[MailAttachment] = []
        for filename, ctype, data, content_id, disposition in self.pending_attachments:
            inline = disposition == "inline" or (disposition is None and content_id is not None) or (
                content_id is not None and content_id in cids
            )
            if not filename:
                filename = f"attachment-{len(attachments) + 1}{_extension(ctype)}"
            attachments.append(MailAttachment(filename, ctype, data, content_id, inline))
        draft.attachments = tuple(attachments)

    def mime(self, part: Message, where: str) -> _Mime:
        """A part's MIME headers, each parsed once (the stdlib re-parses them on every accessor call)."""
        raw: dict[str, str] = {}
        for name, value in part.raw_items():
            raw.setdefault(name.lower(), value)
        ctype, params = part.get_default_type(), dict[str, str]()
        if "content-type" in raw:
            ctype, params = self.mime_header(part, "content-type", raw["content-type"], where)
            valid = _MIME_TYPE.match(ctype)  # "text/plain charset=utf-8" (no ";") is still text/plain
            ctype = valid.group(0) if valid else "text/plain"  # RFC 2045 section 5.2
        disposition, dparams = None, dict[str, str]()
        if "content-disposition" in raw:
            disposition, dparams = self.mime_header(part, "content-disposition", raw["content-disposition"], where)
            disposition = disposition or None
        filename = dparams.get("filename") or params.get("name")
        if filename and "\ufffd" in filename:  # raw 8-bit name in a legacy charset: re-read the bytes
            filename = _raw_param(raw.get("content-disposition", ""), "filename") or _raw_param(
                raw.get("content-type", ""), "name"
            ) or filename
        content_id = unfold(raw.get("content-id", "")).strip().strip("<>").strip() or None
        return _Mime(ctype, params, disposition, filename, content_id)

    def mime_header(self, part: Message, name: str, raw: str, where: str) -> tuple[str, dict[str, str]]:
        simple = _simple_mime_header(raw)
        if simple is not None:
            return simple
        try:
            header: Any = part[name]  # a structured header (policy.default): it has params
            return str(header).split(";", 1)[0].strip().lower(), dict(header.params)
        except Exception as exc:  # noqa: BLE001
            self.problems.append(f"{where}: {name} could not be parsed ({type(exc).__name__})")
            return unfold(raw).split(";", 1)[0].strip().lower(), {}

    def walk(self, part: Message, where: str, depth: int) -> None:
        if depth > 40:
            self.problems.append(f"{where}: MIME nesting deeper than 40 levels ignored")
            return
        mime = self.mime(part, where)
        ctype = mime.ctype
        maintype = ctype.partition("/")[0]
        label = f"{where} ({ctype})"
        if part.is_multipart():
            self.note_defects(part, label)
            if maintype == "message":  # message/rfc822, message/delivery-status: kept whole
                self.add_attachment(part, mime, label)
                return
            if ctype == "multipart/report":
                self.reports.append((mime.params.get("report-type") or "").lower())
            for index, child in enumerate(part.get_payload(), start=1):
                self.walk(child, f"{where}.{index}" if where != "message" else f"part {index}", depth + 1)
            return
        if maintype == "multipart":  # boundary missing or never found: the body is all we have
            self.add_body(part, mime, "text/plain", label)
            return
        if ctype in ("text/plain", "text/html") and mime.disposition != "attachment" and not mime.filename:
            self.add_body(part, mime, ctype, label)
        else:
            self.add_attachment(part, mime, label)

    def note_defects(self, part: Message, where: str) -> None:
        for defect in part.defects:
            if _worth_reporting(defect):
                self.problems.append(f"{where}: {_describe(defect)}")

    def payload(self, part: Message, where: str) -> bytes:
        try:
            data = part.get_payload(decode=True)
        except Exception as exc:  # noqa: BLE001
            self.problems.append(f"{where}: could not decode transfer encoding: {exc}")
            payload = part.get_payload()
            data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
        if any(isinstance(d, email_errors.InvalidBase64LengthDefect) for d in part.defects):
            payload = part.get_payload()  # the stdlib returns the base64 text itself here
            data, _ = b64_lenient(payload if isinstance(payload, str) else "")
        self.note_defects(part, where)
        return data if isinstance(data, bytes) else b""

    def add_body(self, part: Message, mime: _Mime, ctype: str, where: str) -> None:
        data = self.payload(part, where)
        label = mime.params.get("charset")
        if not label and ctype == "text/html":
            meta = _META_CHARSET.search(data[:4096])
            label = meta.group(1).decode("ascii", "ignore") if meta else None
        text = self.decode(data, label or None, where)
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if ctype == "text/html":
            self.html.append(text)
            return
        if mime.params.get("format", "").lower() == "flowed":
            text = _unflow(text, delsp=mime.params.get("delsp", "").lower() == "yes")
        self.plain.append(text)

    def add_attachment(self, part: Message, mime: _Mime, where: str) -> None:
        if part.is_multipart():
            self.rfc822_parts.append((part, mime.ctype))
            try:
                data = b"".join(child.as_bytes(policy=_EMBEDDED_POLICY) for child in _children(part))
            except Exception as exc:  # noqa: BLE001
                self.problems.append(f"{where}: could not re-serialise embedded message: {exc}")
                data = b""
        else:
            data = self.payload(part, where)
        filename = mime.filename
        if filename:
            filename = " ".join(self.header_text(filename, f"{where} file name").split())
        self.pending_attachments.append((filename or "", mime.ctype, data, mime.content_id, mime.disposition))

    # ------------------------------------------------------------ automation

    def read_auto_reply(self) -> None:
        self.draft.auto_reply = auto_reply_reason(self.headers, self.draft.subject, self.reports)

    def read_bounce(self) -> None:
        for report_type in self.reports:
            if report_type in ("delivery-status", "global-delivery-status"):
                self.draft.bounce = self.dsn_bounce()
                if self.draft.bounce is None and self.draft.auto_reply is None:
                    self.draft.auto_reply = "delivery status notification (delivered)"
                return
        if is_from_mailer_daemon(self.draft.sender):
            bounce = self.classic_bounce()
            if bounce.original_message_id or (bounce.recipients and FAILURE_SUBJECT.search(self.draft.subject)):
                self.draft.bounce = bounce

    def original_message_id(self) -> str | None:
        for part, ctype in self.rfc822_parts:
            if ctype in ("message/rfc822", "message/global"):
                for child in _children(part):
                    for name, value in child.raw_items():
                        if name.lower() == "message-id":
                            return _first_id(value)
        for _, ctype, data, _, _ in self.pending_attachments:
            if ctype in ("text/rfc822-headers", "message/rfc822-headers", "text/plain"):
                found = EMBEDDED_ID.search(data.decode("utf-8", "replace"))
                if found:
                    return _first_id(found.group(1))
        return None

    def dsn_bounce(self) -> Bounce | None:
        recipients: list[str] = []
        status: str | None = None
        diagnostic: str | None = None
        delivered = 0
        for part, ctype in self.rfc822_parts:
            if ctype not in ("message/delivery-status", "message/global-delivery-status"):
                continue
            for block in _children(part)[1:]:  # block 0 is per-message
                fields = {name.lower(): unfold(value) for name, value in block.raw_items()}
                action = fields.get("action", "").strip().lower()
                if action in ("delivered", "relayed", "expanded"):
                    delivered += 1
                    continue
                recipient = fields.get("final-recipient") or fields.get("original-recipient") or ""
                recipient = recipient.split(";", 1)[-1].strip().strip("<>").lower()
                if recipient:
                    recipients.append(recipient)
                if status is None and fields.get("status", "").strip():
                    status = fields["status"].strip().split()[0]
                if diagnostic is None and fields.get("diagnostic-code"):
                    diagnostic = " ".join(fields["diagnostic-code"].split(";", 1)[-1].split())
        if delivered and not recipients:
            return None
        return Bounce(self.original_message_id(), tuple(dict.fromkeys(recipients)), status, diagnostic)

    def classic_bounce(self) -> Bounce:
        text = self.draft.text
        marker = COPY_MARKER.search(text)
        head = text[: marker.start()] if marker else text
        recipients = bounced_recipients(head)
        original = self.original_message_id()
        if original is None:
            found = EMBEDDED_ID.search(text[marker.start() :] if marker else text)
            original = _first_id(found.group(1)) if found else None
        status = STATUS_CODE.search(head)
        reply = SMTP_REPLY.search(head)
        diagnostic = reply.group(0) if reply else None
        first = BOUNCED_RECIPIENT.search(head)
        if diagnostic is None and first:  # qmail: the reason is the paragraph after the address
            diagnostic = head[first.end() :].lstrip(": \t\n").split("\n\n", 1)[0] or None
        return Bounce(
            original,
            tuple(dict.fromkeys(recipients)),
            status.group(1) if status else None,
            " ".join(diagnostic.split())[:300] if diagnostic else None,
        )


# ---------------------------------------------------------------- helpers used by the parse


def _first_id(value: str | None) -> str | None:
    """The first message-id in a header, normalised to `<local@domain>` (folding whitespace removed)."""
    if value is None:
        return None
    ids = _all_ids(value)
    return ids[0] if ids else None


def _all_ids(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    found = ["".join(m.split()) for m in _MESSAGE_ID.findall(value)]
    if not found:  # some mailers omit the brackets; take tokens that look like ids
        found = [t.strip(",;") for t in value.split() if "@" in t]
    return tuple(dict.fromkeys(f"<{i}>" for i in found if i))


_EXTENSIONS = {
    "application/octet-stream": ".bin",
    "text/plain": ".txt",
    "image/jpeg": ".jpg",
    "message/rfc822": ".eml",
    "message/global": ".eml",
    "message/delivery-status": ".txt",
    "message/global-delivery-status": ".txt",
    "text/rfc822-headers": ".txt",
    "message/rfc822-headers": ".txt",
}


def _extension(content_type: str) -> str:
    return _EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type, strict=False) or ".bin"


def _unflow(text: str, delsp: bool) -> str:
    """Join format=flowed soft line breaks (RFC 3676) so paragraphs read as written."""
    out: list[str] = []
    buffer: str | None = None
    buffer_depth = 0

    def emit(depth: int, line: str) -> None:
        out.append(("> " * depth if depth else "") + line)

    for line in text.split("\n"):
        content = line.lstrip(">")
        depth = len(line) - len(content)
        if content.startswith(" "):
            content = content[1:]  # space-stuffing
        if buffer is not None and depth != buffer_depth:
            emit(buffer_depth, buffer)
            buffer = None
        flowed = content.endswith(" ") and content != "-- "
        if flowed and delsp:
            content = content[:-1]
        buffer = content if buffer is None else buffer + content
        buffer_depth = depth
        if not flowed:
            emit(depth, buffer)
            buffer = None
    if buffer is not None:
        emit(buffer_depth, buffer)
    return "\n".join(out)


def _children(part: Message) -> list[Message]:
    """The parts inside a multipart or message/* part (none for a leaf)."""
    payload = part.get_payload()
    return [child for child in payload if isinstance(child, Message)] if isinstance(payload, list) else []
