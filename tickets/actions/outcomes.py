"""How requests end: the outcomes and refusal reasons the admin keeps, and a resolved ticket's outcome."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets import audit
from tickets.actions.catalogues import add_entry
from tickets.deps import Deps
from tickets.errors import InvalidInput
from tickets.models import CLOSED_STATUSES, Agent, EventKind, Outcome, OutcomeReason, Ticket


@dataclass(frozen=True)
class Outcomes:
    outcomes: list[Outcome]
    reasons: list[OutcomeReason]


async def outcomes(deps: Deps) -> Outcomes:
    async with deps.store.session() as session:
        return Outcomes(list(await session.scalars(select(Outcome).order_by(Outcome.id))),
                        list(await session.scalars(select(OutcomeReason).order_by(OutcomeReason.id))))


async def add_outcome(deps: Deps, name: str, *, needs_reason: bool = False) -> Outcome:
    return await add_entry(deps, Outcome, name, longest=40, noun="outcome", needs_reason=needs_reason)


async def add_reason(deps: Deps, name: str) -> OutcomeReason:
    return await add_entry(deps, OutcomeReason, name, longest=60, noun="reason")


async def set_outcome(session: AsyncSession, viewer: Agent, ticket: Ticket, outcome: str | None,
                      reason: str | None, now: datetime) -> None:
    """A resolved (or closed) ticket's outcome, from the list; a refusal's reason too. Audited when it changes."""
    outcome = (outcome or "").strip().lower() or None
    reason = (reason or "").strip().lower() or None
    if outcome is not None and ticket.status not in CLOSED_STATUSES:
        raise InvalidInput({"outcome": "is set when the ticket is resolved or closed"})
    needs_reason = False
    if outcome is not None:
        found = await session.scalar(select(Outcome).where(Outcome.name == outcome))
        if found is None:
            raise InvalidInput({"outcome": f"no outcome {outcome!r}; the admin adds it with `switchboard outcome add`"})
        needs_reason = found.needs_reason
    if needs_reason and reason is None:
        raise InvalidInput({"outcome_reason": f"{outcome!r} needs a reason"})
    if not needs_reason:
        reason = None
    elif await session.scalar(select(OutcomeReason.id).where(OutcomeReason.name == reason)) is None:
        raise InvalidInput({"outcome_reason": f"no reason {reason!r}; the admin adds it with "
                                              "`switchboard outcome reason-add`"})
    if (outcome, reason) != (ticket.outcome, ticket.outcome_reason):
        audit.record(session, ticket.id, EventKind.outcome_set, now, actor=viewer,
                     old=" / ".join(filter(None, (ticket.outcome, ticket.outcome_reason))),
                     new=" / ".join(filter(None, (outcome, reason))))
        ticket.outcome, ticket.outcome_reason = outcome, reason
