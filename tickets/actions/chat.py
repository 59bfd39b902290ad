"""The web chat's read receipts: replies a visitor's screen showed are delivered."""

from __future__ import annotations

from sqlalchemy import update

from tickets.db import rows_changed
from tickets.deps import Deps
from tickets.models import DeliveryStatus, Direction, Message
from tickets.queries.chat import chat_tickets


async def mark_seen(deps: Deps, channel: str, sender_prefix: str, message_ids: list[int]) -> int:
    """The client's screen showed these replies: they are delivered, and fallback copies are not sent."""
    if not message_ids:
        return 0
    async with deps.store.session() as session:
        return await rows_changed(
            session,
            update(Message)
            .where(
                Message.id.in_(message_ids),
                Message.direction == Direction.outbound,
                Message.ticket_id.in_(chat_tickets(channel, sender_prefix)),
                Message.delivery_open(),
            )
            .values(delivery_status=DeliveryStatus.delivered, delivery_error=None)
            .execution_options(synchronize_session=False),
        )
