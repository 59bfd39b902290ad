"""Routing rules: a new ticket's group, required skills, priority and tags, from its channel, category and language."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.models import Priority, RoutingRule, Ticket, skill_key, skill_set


@dataclass(frozen=True)
class Placement:
    rules: list[int]
    """Ids of the rules that matched, in the order they were checked."""
    tags: tuple[str, ...] = ()
    """Every matching rule's tags, each once."""

    def describe(self) -> str | None:
        return f"routing rules {', '.join(f'#{r}' for r in self.rules)}" if self.rules else None


class RuleRow(NamedTuple):
    """A rule as the PostgreSQL receipt reads it, in the order rules are checked."""

    id: int
    channel: str | None
    category: str | None
    language: str | None
    from_group_id: int | None
    group_id: int | None
    skills: str
    priority: str | None
    tags: str


Rule = RoutingRule | RuleRow
"""What placing reads of a rule: the ORM row, or a `RuleRow` read with the receipt."""


def matches(rule: Rule, ticket: Ticket, language: str | None) -> bool:
    return (
        (rule.channel is None or rule.channel == ticket.channel)
        and (rule.category is None or rule.category == (ticket.category or "").lower())
        and (rule.language is None or rule.language == (language or "").lower())
        and (rule.from_group_id is None or rule.from_group_id == ticket.group_id)
    )


async def place(session: AsyncSession, ticket: Ticket, language: str | None) -> Placement:
    """Every matching rule adds its skills; the first that names a group (or a priority) decides it.

    `ticket.group_id` is the group the channel address chose; rules may match on it and move the ticket on.
    """
    return apply(list(await session.scalars(select(RoutingRule).order_by(RoutingRule.position, RoutingRule.id))),
                 ticket, language)


def apply(rules: Sequence[Rule], ticket: Ticket, language: str | None) -> Placement:
    """`place` over rules already read, in the order they are checked."""
    matched = [rule for rule in rules if matches(rule, ticket, language)]
    if not matched:
        return Placement([])
    group_id = next((r.group_id for r in matched if r.group_id is not None), None)
    priority = next((r.priority for r in matched if r.priority is not None), None)
    if group_id is not None:
        ticket.group_id = group_id
    if priority is not None:
        ticket.priority = Priority(priority)
    ticket.skills = skill_key([*skill_set(ticket.skills), *(s for r in matched for s in skill_set(r.skills))])
    tags = {tag for r in matched for tag in (r.tags or "").split(",") if tag}
    return Placement([r.id for r in matched], tuple(sorted(tags)))
