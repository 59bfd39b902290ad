"""What a ticket costs its agent: load is counted across every channel, weighted per channel and priority."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.loads import settled
from tickets.models import Agent, Priority

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

    def milli(self, channel: str, priority: str) -> int:
        """The weight in thousandths, as the agents' load counters add it up (`tickets.loads`)."""
        return round(self.of(channel, priority) * 1000)

    async def loads(self, session: AsyncSession, agent_ids: Sequence[int]) -> dict[int, Load]:
        """The agents' load counters (flushed first: changes made earlier in this transaction count)."""
        loads = {agent_id: Load(0, 0.0) for agent_id in agent_ids}
        if agent_ids:
            await settled(session)
            rows = await session.execute(select(Agent.id, Agent.load_open, Agent.load_weight)
                                         .where(Agent.id.in_(list(agent_ids))))
            loads.update({agent_id: counted(count, weight) for agent_id, count, weight in rows})
        return loads


def counted(count: int, weight: int) -> Load:
    """A load as the counters hold it (the weight in thousandths)."""
    return Load(count, round(weight / 1000, 6))
