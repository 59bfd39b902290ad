"""Staff as the desk lists them: agents with their load, groups, skills, canned responses and routing rules; and
the agent behind an API token."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.deps import Deps
from tickets.errors import InvalidInput, NotFound
from tickets.models import (
    Agent,
    AgentGroup,
    AgentSkill,
    CannedResponse,
    Group,
    RoutingRule,
    Skill,
    Ticket,
    TicketStatus,
    skill_key,
    skill_set,
)
from tickets.numbers import as_id
from tickets.ports import AgentLoad

SEEN_EVERY = timedelta(minutes=1)
"""How stale `last_seen_at` may get before a request writes it again (one write a minute, not one a request)."""
K = TypeVar("K")
V = TypeVar("V")


def hash_token(token: str) -> str:
    """API tokens are stored only as SHA-256: they are long random strings, so a fast hash is enough."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class AgentView:
    agent: Agent
    load: AgentLoad
    groups: list[str]
    skills: list[str]


@dataclass(frozen=True)
class GroupView:
    group: Group
    agents: int
    waiting: int
    """Tickets in its queue (new, nobody assigned)."""


@dataclass(frozen=True)
class SkillView:
    skill: Skill
    agents: int


@dataclass(frozen=True)
class RuleView:
    rule: RoutingRule
    from_group: str | None
    group: str | None


async def skills_named(session: AsyncSession, names: Sequence[str]) -> list[Skill]:
    wanted = sorted(skill_set(skill_key(names)))
    if not wanted:
        return []
    found = {s.name: s for s in await session.scalars(select(Skill).where(Skill.name.in_(wanted)))}
    missing = [n for n in wanted if n not in found]
    if missing:
        raise InvalidInput({"skills": f"no skill named {', '.join(map(repr, missing))}; "
                                      "add it with `switchboard skill add`"})
    return [found[n] for n in wanted]


async def pairs(session: AsyncSession, query: Select[K, V]) -> dict[K, V]:
    """A two-column query as a dict.

    Not `dict(result.tuples())`: on SQLAlchemy 2.1 `tuples()` hands back the Result itself, whose `keys()`
    makes `dict()` take it for a mapping and index it by column name (TypeError).
    """
    return {key: value for key, value in await session.execute(query)}


async def skill_names(session: AsyncSession, names: Sequence[str]) -> str:
    """Validate skill names against the catalogue and return them as `Ticket.skills` holds them."""
    return skill_key(s.name for s in await skills_named(session, names))


async def find_agent(deps: Deps, reference: str) -> Agent:
    """An agent by id or email (the CLI's way to name one)."""
    async with deps.store.session() as session:
        agent_id = as_id(reference)
        query = select(Agent).where(Agent.id == agent_id) if agent_id is not None else \
            select(Agent).where(func.lower(Agent.email) == reference.strip().lower())
        agent = await session.scalar(query)
        if agent is None:
            raise NotFound(f"no agent {reference}")
        return agent


async def all_agents(deps: Deps) -> list[Agent]:
    """Every agent's row alone (names, roles, presence): for pages that name people, without their loads."""
    async with deps.store.session() as session:
        return list(await session.scalars(select(Agent).order_by(Agent.id)))


async def list_agents(deps: Deps) -> list[AgentView]:
    async with deps.store.session() as session:
        agents = list(await session.scalars(select(Agent).order_by(Agent.id)))
        return await agent_views(deps, session, agents)


async def agent_views(deps: Deps, session: AsyncSession, agents: Sequence[Agent]) -> list[AgentView]:
    ids = [a.id for a in agents]
    loads = await deps.router.loads(session, ids)
    groups: dict[int, list[str]] = {}
    for agent_id, name in await session.execute(
        select(AgentGroup.agent_id, Group.name).join(Group, Group.id == AgentGroup.group_id)
        .where(AgentGroup.agent_id.in_(ids)).order_by(Group.name)
    ):
        groups.setdefault(agent_id, []).append(name)
    skills: dict[int, list[str]] = {}
    for agent_id, name in await session.execute(
        select(AgentSkill.agent_id, Skill.name).join(Skill, Skill.id == AgentSkill.skill_id)
        .where(AgentSkill.agent_id.in_(ids)).order_by(Skill.name)
    ):
        skills.setdefault(agent_id, []).append(name)
    return [AgentView(a, loads[a.id], groups.get(a.id, []), skills.get(a.id, [])) for a in agents]


async def list_groups(deps: Deps) -> list[GroupView]:
    async with deps.store.session() as session:
        groups = list(await session.scalars(select(Group).order_by(Group.name)))
        agents = await pairs(session, select(AgentGroup.group_id, func.count()).group_by(AgentGroup.group_id))
        waiting = await pairs(
            session,
            select(Ticket.group_id, func.count())
            .where(Ticket.status == TicketStatus.new, Ticket.assignee_id.is_(None))
            .group_by(Ticket.group_id),
        )
        return [GroupView(g, agents.get(g.id, 0), waiting.get(g.id, 0)) for g in groups]


async def list_canned(deps: Deps) -> list[CannedResponse]:
    async with deps.store.session() as session:
        return list(await session.scalars(select(CannedResponse).order_by(CannedResponse.title)))


async def list_skills(deps: Deps) -> list[SkillView]:
    async with deps.store.session() as session:
        counts = await pairs(session, select(AgentSkill.skill_id, func.count()).group_by(AgentSkill.skill_id))
        return [SkillView(s, counts.get(s.id, 0))
                for s in await session.scalars(select(Skill).order_by(Skill.name))]


async def list_rules(deps: Deps) -> list[RuleView]:
    async with deps.store.session() as session:
        names = await pairs(session, select(Group.id, Group.name))
        rules = await session.scalars(select(RoutingRule).order_by(RoutingRule.position, RoutingRule.id))
        return [RuleView(r, names.get(r.from_group_id or 0), names.get(r.group_id or 0)) for r in rules]
