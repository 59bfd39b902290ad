"""DispatchOwed: what follows from receipts (routing, the regulation plan, the notices), done for many tickets at once.

A receipt stores what the client is told was received and marks the ticket `dispatch_owed_at`; nothing in it
locks an agent. This completes the rest in one transaction per batch: it takes the owed tickets nobody else is
dispatching (`FOR UPDATE SKIP LOCKED`), plans each one's regulation from the time it was received, locks the
agents of all their groups once, chooses for every ticket that waits for an agent over the loads it read, and
clears the marks. Dispatching is idempotent: a crash before the commit leaves the marks, and the next batch (a
wake, or any dispatcher's sweep every few seconds) does it all again, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.models import Agent, Customer, Group, Outbox, OutboxStatus, Ticket, TicketStatus
from tickets.ports import Assigner, Regulations, Timer

BATCH = 200
"""Owed tickets one dispatch transaction takes at most."""


@dataclass
class Dispatched:
    tickets: list[Ticket] = field(default_factory=list)
    """The tickets this batch completed, as they are now."""
    timers: list[Timer] = field(default_factory=list)
    outbox: list[int] = field(default_factory=list)
    """What the receipts of the batch's tickets queued (acknowledgements), for the worker once this commits."""
    assigned: int = 0


def registered_via(channel: str) -> str:
    """What a receipt that opened a ticket tells the dispatch (`tickets.dispatch_reason`), on every path."""
    return f"registered via {channel}"


def owe(ticket: Ticket, now: datetime, reason: str, *, route: bool = False) -> None:
    """Mark what the dispatcher owes this ticket (in the receipt's transaction): keep the first time it was owed, as
    the regulation's clock counts from it, and route it if any receipt asked for that."""
    if ticket.dispatch_owed_at is None:
        ticket.dispatch_owed_at = now
        ticket.dispatch_reason = reason[:200]
        ticket.route_owed = route
    else:
        ticket.route_owed = bool(ticket.route_owed) or route


async def dispatch_owed_in(session: AsyncSession, router: Assigner, regulations: Regulations | None, now: datetime,
                           *, limit: int = BATCH, numbers: Sequence[int] | None = None,
                           owed_before: datetime | None = None) -> Dispatched:
    """One batch in the caller's transaction: the oldest owed tickets (or only `numbers` of them, or only those owed
    since before `owed_before`) no other transaction holds."""
    query = select(Ticket).where(Ticket.dispatch_owed_at.is_not(None))
    if owed_before is not None:
        query = query.where(Ticket.dispatch_owed_at < owed_before)
    if numbers is not None:
        query = query.where(Ticket.id.in_(sorted(set(numbers))))
    tickets = [ticket for ticket, _, _ in await session.execute(
        # The batch's clients and groups come with it (kept by the session for the plans that read them).
        query.add_columns(Customer, Group).join(Customer, Customer.id == Ticket.customer_id)
        .join(Group, Group.id == Ticket.group_id)
        .order_by(Ticket.id).limit(limit).with_for_update(of=Ticket, skip_locked=True))]
    done = Dispatched(tickets)
    if not tickets:
        return done
    received = [(t, t.dispatch_owed_at or now, t.dispatch_reason or "received", t.regulation is None) for t in tickets]
    waiting = [t for t in tickets if t.route_owed and t.status == TicketStatus.new and t.assignee_id is None]
    named = await _named_agents(session, waiting)
    if chosen := [t for t in waiting if t.id not in named]:
        done.assigned = await router.assign_all(session, chosen, now)
    for ticket in waiting:  # after the router's locks, as every transaction takes agents' rows in that order
        if (agent := named.get(ticket.id)) is not None:
            router.give(session, ticket, agent, now, "took the call", actor="phone")
            done.assigned += 1
    # Planned after routing (a new ticket's clock runs whether it is new or open), and the marks cleared with it: each
    # ticket is then written by one UPDATE, not three. Every index of `tickets` changes with each (a trigram index
    # among them), which cost the database more than the rest of the batch.
    timers = await regulations.plan_all(session, received) if regulations is not None else list
    for ticket in tickets:
        ticket.dispatch_owed_at, ticket.dispatch_reason, ticket.route_owed, ticket.route_to_id = None, None, False, None
    await session.flush()
    done.timers = timers()
    # Every queued row, not only those due by `now`: `now` was read before the batch's SELECT, and a receipt that
    # committed in between (in another process) dates its acknowledgement after it; left out, it waited for the
    # minute's sweep. A row queued for later is found early by its job, which queues itself for its time.
    done.outbox = list(await session.scalars(
        select(Outbox.id).where(Outbox.ticket_id.in_([t.id for t in tickets]), Outbox.status == OutboxStatus.queued)))
    return done


async def _named_agents(session: AsyncSession, tickets: Sequence[Ticket]) -> dict[int, Agent]:
    """The agent each receipt named (the agent who took the call), by ticket: given the ticket without a choice.
    A ticket whose agent has gone since is left to the router."""
    wanted = {t.route_to_id for t in tickets if t.route_to_id is not None}
    if not wanted:
        return {}
    agents = {agent.id: agent for agent in await session.scalars(select(Agent).where(Agent.id.in_(wanted)))}
    return {t.id: agents[t.route_to_id] for t in tickets if t.route_to_id in agents}
