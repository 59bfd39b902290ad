"""An agent's work on a ticket: replies and notes, and changes of status, priority, category, skills, group and
assignee, each audited; capacity a change frees is filled from the queue in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tickets import audit, deadlines
from tickets.access import sees_everything, visible_ticket
from tickets.actions.outcomes import set_outcome
from tickets.deps import Deps
from tickets.errors import Conflict, Forbidden, InvalidInput
from tickets.inbound import AttachmentRef
from tickets.models import (
    CLOSED_STATUSES,
    LOAD_STATUSES,
    Agent,
    DeliveryStatus,
    Direction,
    EventKind,
    Group,
    Message,
    Priority,
    Role,
    Ticket,
    TicketSeen,
    TicketStatus,
    TicketTag,
    skill_set,
)
from tickets.ports import LockedAgent
from tickets.queries.staff import skill_names
from tickets.queries.tickets import TicketView, ticket_view
from tickets.tags import normalize_tags
from tickets.uow import UnitOfWork

MAX_BODY = 100_000


async def mark_opened(deps: Deps, viewer: Agent, number: int) -> None:
    """The viewer opened the ticket now: the client's messages so far are read (the queue stops marking them)."""

    async def work(uow: UnitOfWork) -> None:
        now = deps.clock.now()
        changed = await uow.session.execute(update(TicketSeen).where(
            TicketSeen.agent_id == viewer.id, TicketSeen.ticket_id == number).values(seen_at=now))
        if not changed.rowcount:  # type: ignore[attr-defined]
            uow.session.add(TicketSeen(agent_id=viewer.id, ticket_id=number, seen_at=now))

    await deps.store.run(work)  # two tabs at once: the loser of the insert retries as an update


async def _retag(session: AsyncSession, viewer: Agent, ticket: Ticket, tags: list[str], now: datetime) -> None:
    """The ticket's tags become `tags` (the whole list), audited when they change."""
    old = sorted(await session.scalars(select(TicketTag.tag).where(TicketTag.ticket_id == ticket.id)))
    if old == tags:
        return
    await session.execute(delete(TicketTag).where(TicketTag.ticket_id == ticket.id))
    session.add_all([TicketTag(ticket_id=ticket.id, tag=tag) for tag in tags])
    audit.record(session, ticket.id, EventKind.tags_changed, now, actor=viewer, old=", ".join(old), new=", ".join(tags))


async def add_message(deps: Deps, viewer: Agent, number: int, body: str, *, internal: bool,
                      attachments: Sequence[AttachmentRef] = ()) -> Message:
    """A public reply is queued for its channel to send (its files with it, by email); an internal note is only for
    agents."""
    if not body.strip():
        raise InvalidInput({"body": "must not be empty"})
    if len(body) > MAX_BODY:
        raise InvalidInput({"body": f"longer than {MAX_BODY} characters"})
    now = deps.clock.now()
    async with deps.store.unit() as uow:
        session = uow.session
        ticket = await visible_ticket(session, viewer, number, lock=True)
        message = Message(
            ticket_id=ticket.id,
            direction=Direction.internal if internal else Direction.outbound,
            channel=ticket.channel,
            author_id=viewer.id,
            body_text=body,
            delivery_status=None if internal else DeliveryStatus.queued,
            attachments=[ref.as_dict() for ref in attachments],
            created_at=now,
        )
        session.add(message)
        ticket.updated_at = now
        if not internal:
            if ticket.first_response_at is None:
                ticket.first_response_at = now
            ticket.processed_at = ticket.processed_at or now
            await deadlines.fulfil(session, ticket.id, deadlines.FIRST_RESPONSE, now)
        await session.flush()
        audit.record(
            session, ticket.id, EventKind.note_added if internal else EventKind.replied, now, actor=viewer,
            message_id=message.id,
        )
        if not internal:
            uow.schedule(await deps.track(session, ticket, now, f"{viewer.name} replied"))
            if deps.notifications is not None:
                uow.deliver(await deps.notifications.reply_added(session, ticket, message, now))
    return message


async def update_ticket(deps: Deps, viewer: Agent, number: int, changes: dict[str, Any]) -> TicketView:
    """Apply status/outcome/priority/category/skills/group/assignee changes; each is audited, freed capacity re-routes.

    A ticket moved to another group, returned to the queue or given other skills while waiting is routed
    again at once; the agent who returned it is not handed it straight back. The changes that need no
    agent's load are written first, so the agents are locked only for the reassignment and the re-routing;
    the view is read after commit, outside the lock.
    """
    now = deps.clock.now()
    async with deps.store.unit() as uow:
        session = uow.session
        ticket = await visible_ticket(session, viewer, number, lock=True)
        ticket.updated_at = now  # first, so the changes below go out in one UPDATE whatever flushes between
        old_group = ticket.group_id
        target_group = await _target_group(session, viewer, ticket, changes)
        if target_group is not None and "assignee" not in changes and ticket.assignee_id is not None:
            changes = {**changes, "assignee": None}  # a ticket sent to another group joins its queue
        target_id = changes.get("assignee")
        reroute = False
        if target_group is not None:
            audit.record(session, ticket.id, EventKind.group_changed, now, actor=viewer,
                         old=old_group, new=target_group.id, reason=f"moved to {target_group.name}")
            ticket.group_id = target_group.id
            reroute = True
        if "skills" in changes:
            key = await skill_names(session, changes["skills"] or [])
            if key != ticket.skills:
                audit.record(session, ticket.id, EventKind.skills_changed, now, actor=viewer,
                             old=ticket.skills, new=key)
                ticket.skills = key
                reroute = True
        frees_capacity = False
        if "status" in changes:
            was_resolved = ticket.status == TicketStatus.resolved
            assignee_after = target_id if "assignee" in changes else ticket.assignee_id
            frees_capacity = set_status(session, viewer, ticket, TicketStatus(changes["status"]), now,
                                        assignee_after)
            if ticket.status in CLOSED_STATUSES:
                await deadlines.cancel(session, ticket.id)
            if ticket.status == TicketStatus.resolved and not was_resolved and deps.notifications is not None:
                uow.deliver(await deps.notifications.ticket_resolved(session, ticket, now))
        if "outcome" in changes or "outcome_reason" in changes:
            await set_outcome(session, viewer, ticket, changes.get("outcome", ticket.outcome),
                              changes.get("outcome_reason", ticket.outcome_reason), now)
        if "priority" in changes and changes["priority"] != ticket.priority:
            audit.record(
                session, ticket.id, EventKind.priority_changed, now, actor=viewer,
                old=str(ticket.priority), new=str(changes["priority"]),
            )
            ticket.priority = Priority(changes["priority"])
        if "category" in changes and changes["category"] != ticket.category:
            audit.record(
                session, ticket.id, EventKind.category_changed, now, actor=viewer,
                old=ticket.category, new=changes["category"],
            )
            ticket.category = changes["category"]
        if changes.get("tags") is not None:
            await _retag(session, viewer, ticket, normalize_tags(changes["tags"]), now)
        if "assignee" in changes and target_id == viewer.id and ticket.assignee_id != viewer.id:
            ticket.processed_at = ticket.processed_at or now  # an explicit take-over processes the ticket
        uow.schedule(await deps.track(session, ticket, now, f"{viewer.name} changed {', '.join(sorted(changes))}"))
        # Everyone whose load or queue this may move is locked, in the router's order; what was written above
        # commits while they are locked, so every choice made under the lock sees all of it or none of it.
        held = await deps.router.lock(
            session, {old_group, ticket.group_id}, [a for a in (ticket.assignee_id, target_id) if a is not None]
        )
        locked: Sequence[LockedAgent] | None = held
        returned_by: int | None = None
        if "assignee" in changes:
            if target_id is None:
                returned_by = ticket.assignee_id
                reroute = True
            target = next((c for c in held if c.agent.id == target_id), None)
            if await _reassign(deps, session, viewer, ticket, target_id, target, now):
                frees_capacity = True
            locked = None  # loads moved: the router reads them again
        hold: list[int] = []
        if reroute and ticket.status == TicketStatus.new and ticket.assignee_id is None:
            await deps.router.assign(session, ticket, now, exclude=[returned_by] if returned_by else [])
            hold.append(ticket.id)
            locked = None
        if frees_capacity or ticket.group_id != old_group:
            await deps.router.drain(session, {old_group, ticket.group_id}, now, hold=hold, locked=locked)
    async with deps.store.session() as session:
        return await ticket_view(session, await session.get_one(Ticket, number), now)


async def _target_group(session: AsyncSession, viewer: Agent, ticket: Ticket, changes: dict[str, Any]) -> Group | None:
    """The group a manager moves the ticket to, or None when it stays."""
    name = changes.get("group")
    if name is None:
        return None
    if not sees_everything(viewer):
        raise Forbidden("only a manager may move a ticket to another group")
    group = await session.scalar(select(Group).where(Group.name == name))
    if group is None:
        raise InvalidInput({"group": f"no group named {name!r}"})
    return None if group.id == ticket.group_id else group


def set_status(session: AsyncSession, viewer: Agent, ticket: Ticket, status: TicketStatus, now: datetime,
               assignee_after: int | None) -> bool:
    """`assignee_after` is who holds the ticket once the same update's reassignment is applied."""
    if status == ticket.status:
        return False
    if status == TicketStatus.new:
        raise InvalidInput({"status": "a ticket becomes new only by returning it to the queue (assignee: null)"})
    if status in LOAD_STATUSES and assignee_after is None:
        raise InvalidInput({"status": f"assign the ticket before setting it {status}"})
    old = ticket.status
    ticket.status = status
    if status == TicketStatus.resolved:
        ticket.resolved_at = now
    elif status == TicketStatus.closed:
        ticket.closed_at = now
        ticket.resolved_at = ticket.resolved_at or now
    else:
        ticket.resolved_at = None
        ticket.closed_at = None
    audit.record(session, ticket.id, EventKind.status_changed, now, actor=viewer, old=str(old), new=str(status))
    return old in LOAD_STATUSES and status not in LOAD_STATUSES


async def _reassign(deps: Deps, session: AsyncSession, viewer: Agent, ticket: Ticket, target_id: int | None,
                    locked_target: LockedAgent | None, now: datetime) -> bool:
    """`locked_target` is the new assignee as the router's lock read them (None: no such agent)."""
    if target_id == ticket.assignee_id:
        return False
    manager = viewer.role in (Role.manager, Role.admin)
    if target_id is None:
        if not manager and ticket.assignee_id != viewer.id:
            raise Forbidden("only the assignee or a manager may return a ticket to the queue")
        audit.record(session, ticket.id, EventKind.unassigned, now, actor=viewer, agent_id=ticket.assignee_id)
        ticket.assignee_id = None
        if ticket.status in LOAD_STATUSES:
            ticket.status = TicketStatus.new
        return True
    if not manager and target_id != viewer.id:
        raise Forbidden("only a manager may assign a ticket to someone else")
    if not manager and ticket.assignee_id is not None:
        raise Forbidden("only a manager may transfer a ticket from its assignee; ask them to return it")
    if locked_target is None:
        raise InvalidInput({"assignee": f"no agent {target_id}"})
    target = locked_target.agent
    if not manager:
        # Managers may overrule capacity and skills; an agent taking work may not.
        load = locked_target.load
        if load.open >= target.capacity:
            raise Conflict(f"you are at capacity ({load.open} of {target.capacity} open tickets)")
        missing = skill_set(ticket.skills) - locked_target.skills
        if missing:
            raise Conflict(f"ticket #{ticket.id} needs the skills {', '.join(sorted(missing))}, which you lack")
    previous = ticket.assignee_id
    ticket.assignee_id = target.id
    if ticket.status == TicketStatus.new:
        ticket.status = TicketStatus.open
    await deps.router.stamp(session, [target.id], now)
    kind = EventKind.taken if target.id == viewer.id else EventKind.transferred
    audit.record(session, ticket.id, kind, now, actor=viewer, agent_id=target.id, previous_agent_id=previous)
    return previous is not None
