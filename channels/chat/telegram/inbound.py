"""A Telegram message becomes the core's `Inbound`: who wrote, in which chat, what they said and sent.

Pure functions only: downloading files is the caller's job (`updates.py`), which passes the stored refs in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from aiogram.types import Message, User

from tickets.identities import InvalidAddress, phone_identity
from tickets.inbound import AttachmentRef, Identity, Inbound
from tickets.language import supported

CHANNEL = "telegram"
COMMANDS = ("start", "new", "status", "link")


@dataclass(frozen=True)
class TelegramFile:
    """A file a message carries, to fetch through getFile before the message is stored."""

    file_id: str
    name: str
    content_type: str
    kind: str


def identity(user: User) -> Identity:
    return Identity(CHANNEL, str(user.id))


def language(user: User | None) -> str | None:
    """ru or en from the client's Telegram interface language; anything else is unknown."""
    return supported(user.language_code if user else None)


def full_name(user: User | None) -> str | None:
    if user is None:
        return None
    return " ".join(part for part in (user.first_name, user.last_name) if part) or user.username or None


def command(message: Message) -> tuple[str, str] | None:
    """(`start`|`new`|`status`, the rest of the text) for one of our commands, else None."""
    text = (message.text or "").strip()
    if not text.startswith("/"):
        return None
    head, _, rest = text.partition(" ")
    name = head[1:].split("@", 1)[0].lower()
    if name not in COMMANDS:
        return None
    return name, rest.strip()


def kind_of(message: Message) -> str:
    """Telegram's name for what the message carries: text, photo, sticker, poll, …"""
    kind = message.content_type
    return str(getattr(kind, "value", kind))


def external_id(message: Message) -> str:
    """Unique per chat: a redelivered update (or a retried webhook call) finds the stored message."""
    return f"{message.chat.id}:{message.message_id}"


def files(message: Message) -> list[TelegramFile]:
    """Photo (the largest size), document, voice, audio, video and video note."""
    found: list[TelegramFile] = []
    if message.photo:
        largest = max(message.photo, key=lambda p: (p.file_size or 0, p.width * p.height))
        found.append(TelegramFile(largest.file_id, f"photo-{largest.file_unique_id}.jpg", "image/jpeg", "photo"))
    if message.document:
        doc = message.document
        found.append(TelegramFile(doc.file_id, doc.file_name or f"document-{doc.file_unique_id}",
                                  doc.mime_type or "application/octet-stream", "document"))
    if message.voice:
        found.append(TelegramFile(message.voice.file_id, f"voice-{message.voice.file_unique_id}.ogg",
                                  message.voice.mime_type or "audio/ogg", "voice"))
    if message.audio:
        audio = message.audio
        found.append(TelegramFile(audio.file_id, audio.file_name or f"audio-{audio.file_unique_id}",
                                  audio.mime_type or "audio/mpeg", "audio"))
    if message.video:
        video = message.video
        found.append(TelegramFile(video.file_id, video.file_name or f"video-{video.file_unique_id}.mp4",
                                  video.mime_type or "video/mp4", "video"))
    if message.video_note:
        found.append(TelegramFile(message.video_note.file_id, f"video-note-{message.video_note.file_unique_id}.mp4",
                                  "video/mp4", "video_note"))
    return found


SUPPORTED = {"text", "photo", "document", "voice", "audio", "video", "video_note", "contact"}


def _body(message: Message, text: str | None) -> tuple[str, tuple[Identity, ...]]:
    """The text to store and any extra identity the message proves (the client's own shared contact)."""
    kind = kind_of(message)
    if kind == "contact" and message.contact is not None:
        contact = message.contact
        raw = contact.phone_number.strip()
        own = message.from_user is not None and contact.user_id == message.from_user.id
        extra: tuple[Identity, ...] = ()
        shown = raw
        try:
            phone = phone_identity(raw if raw.startswith("+") else f"+{raw}")
            shown = phone.address
            if own:
                extra = (phone,)
        except InvalidAddress:
            pass
        who = "own phone number" if own else f"contact {full_name_of_contact(message)}"
        return f"[shared {who}: {shown}]", extra
    body = text if text is not None else (message.text or message.caption or "")
    if kind not in SUPPORTED:
        note = f"[unsupported Telegram message: {kind}]"
        body = f"{note}\n{body}" if body else note
    elif not body.strip() and kind != "text":
        body = f"[{kind.replace('_', ' ')}]"
    return body, ()


def full_name_of_contact(message: Message) -> str:
    contact = message.contact
    if contact is None:
        return ""
    return " ".join(p for p in (contact.first_name, contact.last_name) if p)


def to_inbound(
    message: Message,
    *,
    thread_window: timedelta,
    attachments: tuple[AttachmentRef, ...] = (),
    problems: tuple[str, ...] = (),
    new_ticket: bool = False,
    text: str | None = None,
    update_id: int | None = None,
) -> Inbound:
    """The message as `Inbound`; `new_ticket` (after /new) opens a ticket instead of joining the open one.

    `text` replaces the message text (the words after `/new`).
    """
    user = message.from_user
    if user is None:  # channel posts and anonymous admins: the chat itself is the sender
        identities: tuple[Identity, ...] = (Identity(CHANNEL, str(message.chat.id)),)
    else:
        identities = (identity(user),)
    body, extra = _body(message, text)
    first_line = next((line.strip() for line in body.splitlines() if line.strip()), "")
    return Inbound(
        channel=CHANNEL,
        identities=identities + extra,
        body_text=body,
        subject=first_line[:80],
        external_id=external_id(message),
        customer_name=full_name(user) or message.chat.title or message.chat.full_name or None,
        language=language(user),
        attachments=attachments,
        continue_open_within=None if new_ticket else thread_window,
        meta={
            "chat_id": message.chat.id,
            "message_id": message.message_id,
            "update_id": update_id,
            "user_id": user.id if user else None,
            "username": user.username if user else None,
            "content_type": kind_of(message),
            "date": message.date.isoformat() if message.date else None,
        },
        problems=problems,
    )
