"""A parsed mail becomes the core's `Inbound`: addresses, threading hints, files, and why it is noise if it is."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import replace

from channels.email.parse import ParsedMail, ticket_token
from tickets.attachments import AttachmentStore
from tickets.inbound import Identity, Inbound

CHANNEL = "email"
MAX_THREAD_IDS = 50
UNKNOWN_SENDER = "unknown-sender@switchboard.invalid"
_CYRILLIC = re.compile(r"[А-Яа-яЁё]")


def _message_id(parsed: ParsedMail) -> str:
    """The Message-ID, or one derived from the bytes so a redelivery of an id-less mail still dedupes."""
    if parsed.message_id:
        return parsed.message_id[:255]
    return f"<sha256-{hashlib.sha256(parsed.raw).hexdigest()}@switchboard.invalid>"


def _thread_ids(parsed: ParsedMail) -> tuple[str, ...]:
    ordered = [parsed.in_reply_to] if parsed.in_reply_to else []
    ordered += reversed(parsed.references)
    seen: dict[str, None] = {}
    for message_id in ordered:
        seen.setdefault(message_id, None)
    return tuple(seen)[:MAX_THREAD_IDS]


def _language(parsed: ParsedMail) -> str | None:
    sample = f"{parsed.subject} {parsed.text[:2000]}"
    return "ru" if len(_CYRILLIC.findall(sample)) >= 3 else None


async def to_inbound(
    parsed: ParsedMail, recipients: Sequence[str], addresses: dict[str, str], attachments: AttachmentStore
) -> Inbound:
    """Store the raw message and its files, then describe the mail for `ingest()`."""
    raw_ref = await attachments.save("message.eml", "message/rfc822", parsed.raw)
    files = tuple(
        [replace(await attachments.save(a.filename, a.content_type, a.data), content_id=a.content_id, inline=a.inline)
         for a in parsed.attachments]
    )
    support = [r.lower() for r in recipients]
    recipient = next((r for r in support if r in addresses), support[0] if support else None)
    # Mail with no sender at all is still kept (on one "unknown sender" card) rather than refused forever.
    sender = (parsed.sender.address if parsed.sender else "") or UNKNOWN_SENDER
    ours = set(support) | set(addresses)
    participants = tuple(
        dict.fromkeys(a.address for a in (*parsed.to, *parsed.cc) if a.address and a.address not in ours | {sender})
    )
    bounce = parsed.bounce
    return Inbound(
        channel=CHANNEL,
        identities=(Identity("email", sender),),
        body_text=parsed.text,
        subject=parsed.subject,
        external_id=_message_id(parsed),
        customer_name=(parsed.sender.name or None) if parsed.sender else None,
        language=_language(parsed),
        body_html=parsed.html,
        attachments=files,
        group=addresses.get(recipient) if recipient else None,
        ticket_number=ticket_token(parsed.subject),
        thread_ids=_thread_ids(parsed),
        participants=participants,
        auto_reply=parsed.auto_reply,
        bounce_of=bounce.original_message_id if bounce else None,
        bounce_reason=" ".join(filter(None, (bounce.status, bounce.diagnostic))) or None if bounce else None,
        meta={
            "message_id": parsed.message_id,
            "from": sender,
            "to": [a.address for a in parsed.to],
            "cc": [a.address for a in parsed.cc],
            "recipient": recipient,
            "subject": parsed.subject,
            "in_reply_to": parsed.in_reply_to,
            "references": list(parsed.references),
            "date": parsed.date.isoformat() if parsed.date else None,
        },
        problems=parsed.problems,
        raw=raw_ref,
    )
