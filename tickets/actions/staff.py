"""Staff and routing configuration: agents, presence, groups, skills, canned responses and routing rules.

Every change that can free room (an agent becoming available, a higher capacity, a new skill or group) drains the
queues it touches in the same transaction.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.access import group_ids_of
from tickets.db import rows_changed
from tickets.deps import Deps
from tickets.errors import Conflict, InvalidInput, NotFound
from tickets.ingest import ensure_group
from tickets.models import (
    REMIND_BY,
    Agent,
    AgentGroup,
    AgentSkill,
    CannedResponse,
    Group,
    Presence,
    Priority,
    Role,
    RoutingRule,
    Skill,
    skill_key,
)
from tickets.numbers import as_id
from tickets.queries.staff import SEEN_EVERY, AgentView, RuleView, agent_views, hash_token, skills_named
from tickets.tags import normalize_tags

SKILL_NAME = re.compile(r"^[a-z0-9][a-z0-9_.+-]{0,63}$")


@dataclass(frozen=True)
class AgentChanges:
    """What an admin changes about an agent; None leaves a field as it is. Lists replace the old ones."""

    presence: Presence | None = None
    capacity: int | None = None
    skills: list[str] | None = None
    groups: list[str] | None = None


async def add_agent(deps: Deps, name: str,
    email: str,
    *,
    phone: str | None = None,
    extension: str | None = None,
    role: Role = Role.agent,
    groups: list[str] | None = None,
    skills: list[str] | None = None,
    capacity: int = 10,
    presence: Presence = Presence.available,
    language: str | None = None,
) -> tuple[Agent, str]:
    """Create an agent and return the API token, which is shown once and stored only hashed."""
    errors: dict[str, str] = {}
    if not name.strip():
        errors["name"] = "an agent needs a name"
    if capacity < 1:
        errors["capacity"] = "must be at least 1"
    if errors:
        raise InvalidInput(errors)
    token = secrets.token_urlsafe(32)
    now = deps.clock.now()
    async with deps.store.session() as session:
        if await session.scalar(select(Agent.id).where(Agent.email == email)) is not None:
            raise Conflict(f"an agent with email {email} exists already")
        if extension and await session.scalar(select(Agent.id).where(Agent.extension == extension)) is not None:
            raise Conflict(f"extension {extension} belongs to another agent already")
        member_of = await _groups_named(deps, session, groups or [deps.default_group], now)
        known_skills = await skills_named(session, skills or [])
        agent = Agent(
            name=name.strip(), email=email, phone=phone, extension=extension, role=role, presence=presence,
            presence_since=now, capacity=capacity, token_hash=hash_token(token), created_at=now, language=language,
        )
        session.add(agent)
        await session.flush()
        session.add_all(AgentGroup(agent_id=agent.id, group_id=g.id) for g in member_of)
        session.add_all(AgentSkill(agent_id=agent.id, skill_id=s.id) for s in known_skills)
        await session.flush()
        await deps.router.drain(session, [g.id for g in member_of], now)
    return agent, token


async def authenticate(deps: Deps, token: str) -> Agent | None:
    """The agent behind a token; their request counts as being seen (what keeps them from going idle)."""
    now = deps.clock.now()
    async with deps.store.session() as session:
        agent = await session.scalar(select(Agent).where(Agent.token_hash == hash_token(token)))
        if agent is not None and (agent.last_seen_at is None or now - agent.last_seen_at >= SEEN_EVERY):
            agent.last_seen_at = now
        return agent


async def link_telegram(deps: Deps, agent_id: int, chat_id: str) -> Agent | None:
    """Alerts to this agent may go to this Telegram chat; a chat linked to someone else before moves to them."""
    async with deps.store.session() as session:
        agent = await session.get(Agent, agent_id, with_for_update=True)
        if agent is None:
            return None
        await session.execute(update(Agent).where(Agent.telegram_chat_id == chat_id, Agent.id != agent_id)
                              .values(telegram_chat_id=None))
        await session.flush()
        agent.telegram_chat_id = chat_id
        return agent


async def set_presence(deps: Deps, agent_id: int, presence: Presence, *, reason: str | None = None) -> AgentView:
    """Available takes waiting tickets at once; offline hands back the router's untouched assignments."""
    return await update_agent(deps, agent_id, AgentChanges(presence=presence), reason=reason)


async def update_agent(deps: Deps, agent_id: int, changes: AgentChanges, *, reason: str | None = None) -> AgentView:
    """Change presence, capacity, skills or groups; room this frees is filled from the queues at once."""
    if changes.capacity is not None and changes.capacity < 1:
        raise InvalidInput({"capacity": "must be at least 1"})
    now = deps.clock.now()
    async with deps.store.session() as session:
        old_groups = await group_ids_of(session, agent_id)
        new_groups = await _groups_named(deps, session, changes.groups, now) if changes.groups is not None else None
        touched = {*old_groups, *(g.id for g in new_groups or [])}
        await deps.router.lock(session, touched, [agent_id])
        agent = await session.get(Agent, agent_id)
        if agent is None:
            raise NotFound(f"no agent {agent_id}")
        if changes.capacity is not None:
            agent.capacity = changes.capacity
        if changes.skills is not None:
            await session.execute(delete(AgentSkill).where(AgentSkill.agent_id == agent_id))
            session.add_all(AgentSkill(agent_id=agent_id, skill_id=s.id)
                            for s in await skills_named(session, changes.skills))
        if new_groups is not None:
            if not new_groups:
                raise InvalidInput({"groups": "an agent works in at least one group"})
            await session.execute(delete(AgentGroup).where(AgentGroup.agent_id == agent_id))
            session.add_all(AgentGroup(agent_id=agent_id, group_id=g.id) for g in new_groups)
        returned: list[int] = []
        if changes.presence is not None and changes.presence != agent.presence:
            agent.presence = changes.presence
            agent.presence_since = now
            if changes.presence == Presence.offline:
                why = f"{agent.name} went offline" + (f" ({reason})" if reason else "")
                returned = [t.group_id for t in await deps.router.release(session, agent, now, why)]
        await session.flush()
        await deps.router.drain(session, {*touched, *returned}, now)
        return (await agent_views(deps, session, [agent]))[0]


UNREACHABLE = {"telegram": "link Telegram first: send the bot the code from `switchboard agent telegram` (or POST "
                            "/api/v1/agents/me/telegram)",
               "sms": "there is no phone number on the agent's profile"}
"""What to do first, for a reminder medium that cannot reach the agent yet."""


async def set_remind_by(deps: Deps, agent_id: int, medium: str | None) -> Agent:
    """How the agent's planned contacts remind them besides the console notice; None (or `auto`): Telegram when
    they linked it, else email. A medium they cannot be reached by is refused, saying what to do first."""
    medium = None if medium in (None, "", "auto") else medium
    if medium is not None and medium not in REMIND_BY:
        raise InvalidInput({"remind_by": f"one of {', '.join((*REMIND_BY, 'auto'))}"})
    async with deps.store.unit() as uow:
        agent = await uow.session.get(Agent, agent_id, with_for_update=True)
        if agent is None:
            raise NotFound(f"no agent {agent_id}")
        if medium is not None and not agent.reachable_by(medium):
            raise InvalidInput({"remind_by": UNREACHABLE[medium]})
        agent.remind_by = medium
        return agent


async def sweep_idle_agents(deps: Deps, idle: timedelta) -> list[int]:
    """Agents who made no request for `idle` go offline (agents who never signed in are left alone).

    One transaction for the whole sweep, every idle agent offline before any work is re-routed: one at a time,
    the first one's tickets went to the next idle agent and came straight back when that one went offline too.
    Idleness is checked again under the lock, so a request made meanwhile keeps its agent online.
    """
    now = deps.clock.now()
    idle_now = (Agent.presence != Presence.offline, Agent.last_seen_at < now - idle)
    minutes = f"{idle.total_seconds() / 60:g}"
    async with deps.store.session() as session:
        ids = list(await session.scalars(select(Agent.id).where(*idle_now)))
        if not ids:
            return []
        groups = set(await session.scalars(select(AgentGroup.group_id).where(AgentGroup.agent_id.in_(ids))))
        await deps.router.lock(session, groups, ids)
        agents = list(await session.scalars(select(Agent).where(Agent.id.in_(ids), *idle_now).order_by(Agent.id)))
        for agent in agents:
            agent.presence = Presence.offline
            agent.presence_since = now
        for agent in agents:
            why = f"{agent.name} went offline (idle for {minutes} minutes)"
            groups.update(t.group_id for t in await deps.router.release(session, agent, now, why))
        await session.flush()
        await deps.router.drain(session, groups, now)
        return [agent.id for agent in agents]


async def drain_queues(deps: Deps) -> int:
    """Safety net run by the worker: assign anything waiting while some agent has room."""
    async with deps.store.session() as session:
        group_ids = list(await session.scalars(select(Group.id)))
        return await deps.router.drain(session, group_ids, deps.clock.now())


async def add_group(deps: Deps, name: str, head_email: str | None = None, *, acknowledge: bool = True) -> Group:
    name = name.strip()
    if not name:
        raise InvalidInput({"name": "a group needs a name"})
    async with deps.store.session() as session:
        if await session.scalar(select(Group.id).where(Group.name == name)) is not None:
            raise Conflict(f"group {name!r} exists already; change it with `switchboard group set` "
                           "or PATCH /api/v1/groups/{id}")
        group = Group(name=name, head_email=head_email, acknowledge=acknowledge, created_at=deps.clock.now())
        session.add(group)
        return group


async def update_group(deps: Deps, reference: str, changes: dict[str, Any]) -> Group:
    """Set a group's head (`head_email`, None: no head) or whether it acknowledges (`acknowledge`); the group by
    id or name. Its head is alerted by the escalations fired from now on."""
    unknown = set(changes) - {"head_email", "acknowledge"}
    if unknown:
        raise InvalidInput({name: "not a group setting" for name in sorted(unknown)})
    async with deps.store.session() as session:
        number = as_id(reference)
        found = (Group.id == number) if number is not None else (Group.name == reference.strip())
        group = await session.scalar(select(Group).where(found).with_for_update())
        if group is None:
            raise NotFound(f"no group {reference}")
        if "head_email" in changes:
            group.head_email = changes["head_email"]
        if "acknowledge" in changes:
            group.acknowledge = bool(changes["acknowledge"])
        return group


async def _groups_named(deps: Deps, session: AsyncSession, names: Sequence[str], now: datetime) -> list[Group]:
    found: list[Group] = []
    for name in dict.fromkeys(n.strip() for n in names):
        if name == deps.default_group:
            found.append(await ensure_group(session, name, now))
            continue
        group = await session.scalar(select(Group).where(Group.name == name))
        if group is None:
            raise InvalidInput({"groups": f"no group named {name!r}; add it with `switchboard group add`"})
        found.append(group)
    return found


async def add_canned(deps: Deps, title: str, body: str) -> CannedResponse:
    title, body = " ".join(title.split()), body.strip()
    if not title or len(title) > 100:
        raise InvalidInput({"title": "a short title, at most 100 characters"})
    if not body:
        raise InvalidInput({"text": "the response needs its text"})
    async with deps.store.session() as session:
        if await session.scalar(select(CannedResponse.id).where(CannedResponse.title == title)) is not None:
            raise Conflict(f"a canned response titled {title!r} exists already")
        canned = CannedResponse(title=title, body=body, created_at=deps.clock.now())
        session.add(canned)
        return canned


async def remove_canned(deps: Deps, canned_id: int) -> None:
    async with deps.store.session() as session:
        if not await rows_changed(session, delete(CannedResponse).where(CannedResponse.id == canned_id)):
            raise NotFound(f"no canned response {canned_id}")


async def add_skill(deps: Deps, name: str, description: str | None = None) -> Skill:
    name = name.strip().lower()
    if not SKILL_NAME.match(name):
        raise InvalidInput(
            {"name": "a skill is a short name: letters, digits and _ . + - (ru, billing, product-x)"})
    async with deps.store.session() as session:
        if await session.scalar(select(Skill.id).where(Skill.name == name)) is not None:
            raise Conflict(f"skill {name!r} exists already")
        skill = Skill(name=name, description=description, created_at=deps.clock.now())
        session.add(skill)
        return skill


async def add_rule(deps: Deps, *,
    channel: str | None = None,
    category: str | None = None,
    language: str | None = None,
    from_group: str | None = None,
    group: str | None = None,
    skills: Sequence[str] = (),
    priority: Priority | None = None,
    tags: Sequence[str] = (),
    position: int | None = None,
) -> RuleView:
    """A rule needs at least one condition and one effect; rules run in `position` order (default: last)."""
    conditions = {"channel": channel, "category": category, "language": language, "from_group": from_group}
    if not any(conditions.values()):
        raise InvalidInput({"rule": "give at least one condition: channel, category, language or from_group"})
    if group is None and not skills and priority is None and not tags:
        raise InvalidInput({"rule": "give at least one effect: group, skills, priority or tags"})
    tagged = normalize_tags(tags)
    now = deps.clock.now()
    async with deps.store.session() as session:
        target = await _group_for_field(deps, session, "group", group, now) if group else None
        source = await _group_for_field(deps, session, "from_group", from_group, now) if from_group else None
        needed = await skills_named(session, skills)
        if position is None:
            position = (await session.scalar(select(func.max(RoutingRule.position))) or 0) + 10
        rule = RoutingRule(
            position=position,
            channel=channel.strip().lower() if channel else None,
            category=category.strip().lower() if category else None,
            language=language.strip().lower() if language else None,
            from_group_id=source.id if source else None,
            group_id=target.id if target else None,
            skills=skill_key(s.name for s in needed),
            priority=priority,
            tags=",".join(tagged),
            created_at=now,
        )
        session.add(rule)
        await session.flush()
        return RuleView(rule, source.name if source else None, target.name if target else None)


async def _group_for_field(deps: Deps, session: AsyncSession, field: str, name: str, now: datetime) -> Group:
    """The group a rule names, an unknown one refused under the rule's own field (not `_groups_named`'s)."""
    try:
        return (await _groups_named(deps, session, [name], now))[0]
    except InvalidInput as exc:
        raise InvalidInput({field: exc.fields["groups"]}) from None


async def remove_rule(deps: Deps, rule_id: int) -> None:
    async with deps.store.session() as session:
        if not await rows_changed(session, delete(RoutingRule).where(RoutingRule.id == rule_id)):
            raise NotFound(f"no routing rule {rule_id}")
