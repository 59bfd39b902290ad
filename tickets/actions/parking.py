"""The dead-letter table: an inbound item a channel could not store after its retries is kept whole here, so the
channel moves on and an admin sees it (console administration, `switchboard parked`)."""

from __future__ import annotations

from tickets.deps import Deps
from tickets.inbound import AttachmentRef
from tickets.models import Parked
from tickets.text import clean_text

MAX_PAYLOAD = 1_000_000
"""A payload kept as text is cut here (a mail's bytes go to a file instead)."""


async def park(deps: Deps, channel: str, reference: str | None, error: str, *, payload: str | None = None,
               raw: AttachmentRef | None = None, attempts: int = 1) -> int:
    """Keep the item; returns its number in the table. Its text is cleaned like any text the store keeps."""
    async with deps.store.session() as session:
        row = Parked(
            channel=channel[:32], reference=clean_text(reference)[0][:255] if reference else None,
            payload=clean_text(payload)[0][:MAX_PAYLOAD] if payload is not None else None,
            raw=raw.as_dict() if raw is not None else None, error=clean_text(error)[0][:4000], attempts=attempts,
            created_at=deps.clock.now(),
        )
        session.add(row)
        await session.flush()
        return row.id
