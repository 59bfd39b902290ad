"""What a ticket costs its agent: load is counted across every channel, weighted per channel and priority."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlalchemy.sql.selectable import Select

from tickets.models import LOAD_STATUSES, Priority, Ticket

DEFAULT_CHANNEL_WEIGHTS = {"telegram": 2.0, "webchat": 2.0}
"""A live chat keeps its agent busier than an email or a form; channels not listed weigh 1."""
DEFAULT_PRIORITY_WEIGHTS = {"low": 1.0, "normal": 1.0, "high": 1.5, "critical": 2.0}


@dataclass(frozen=True)
class Load:
    open: int
    """Open and pending tickets held: what capacity limits."""
    weighted: float
    """The sum of their weights: what the router compares."""

    def describe(self) -> str:
        if self.weighted == self.open:
            return f"{self.open} open"
        return f"load {self.weighted:g} ({self.open} open)"


@dataclass(frozen=True)
class LoadWeights:
    channel: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_CHANNEL_WEIGHTS))
    priority: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_PRIORITY_WEIGHTS))

    def __post_init__(self) -> None:
        """Refuse at start-up a weight that would make loads meaningless (0, negative, infinite or NaN).

        A NaN compares false with everything, so the least-loaded choice would silently become arbitrary.
        """
        for kind, weights in (("channel", self.channel), ("priority", self.priority)):
            for name, weight in weights.items():
                if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) \
                        or weight <= 0:
                    raise ValueError(f"{kind} weight {name}={weight!r}: a weight is a finite number above 0")

    def of(self, channel: str, priority: Priority | str) -> float:
        return self.channel.get(channel, 1.0) * self.priority.get(str(priority), 1.0)

    def expression(self) -> ColumnElement[float]:
        """The same weight in SQL, so a load is one aggregate over the agent's open tickets."""
        by_channel: ColumnElement[float] = (
            case({name: weight for name, weight in self.channel.items()}, value=Ticket.channel, else_=1.0)
            if self.channel else literal(1.0)
        )
        by_priority: ColumnElement[float] = case(
            {p: self.priority.get(p.value, 1.0) for p in Priority}, value=Ticket.priority, else_=1.0
        )
        return by_channel * by_priority

    def loads_of(self, agent_ids: Sequence[int] | BindParameter[Any]) -> Select[tuple[int, int, float]]:
        """Open count and weighted load per agent holding any, in one pass over their open tickets."""
        return (
            select(Ticket.assignee_id.label("agent_id"), func.count().label("open"),
                   func.sum(self.expression()).label("weighted"))
            .where(Ticket.assignee_id.in_(agent_ids), Ticket.status.in_(LOAD_STATUSES))
            .group_by(Ticket.assignee_id)
        )

    async def loads(self, session: AsyncSession, agent_ids: Sequence[int]) -> dict[int, Load]:
        loads = {agent_id: Load(0, 0.0) for agent_id in agent_ids}
        if agent_ids:
            await session.flush()  # status changes made earlier in this transaction must count
            rows = await session.execute(self.loads_of(list(agent_ids)))
            loads.update({agent_id: Load(count, round(float(total or 0), 6)) for agent_id, count, total in rows})
        return loads
