"""What the commands (`tickets.actions`) and queries (`tickets.queries`) take besides their own arguments."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tickets.clock import Clock
from tickets.models import Ticket
from tickets.ports import Assigner, Notifications, Regulations, Timer
from tickets.uow import Store


@dataclass
class Deps:
    """The store's units of work, the router, the clock and the default group; the regulation engine and the
    notices are absent in a bare store (some tests, CLI tools), and then nothing is planned or sent."""

    store: Store
    router: Assigner
    clock: Clock
    default_group: str
    regulations: Regulations | None = None
    notifications: Notifications | None = None
    wake_dispatcher: Callable[[], None] | None = None
    """Set when a dispatcher completes this process's receipts (its own loop, or the worker's through Redis):
    receipts wake it instead of dispatching themselves."""

    async def track(self, session: AsyncSession, ticket: Ticket, now: datetime, reason: str,
                    *, new: bool = False) -> list[Timer]:
        """The ticket's regulation plan brought in line with what changed; the timers to set after commit."""
        if self.regulations is None:
            return []
        return await self.regulations.track(session, ticket, now, reason, new=new)
