"""Receipts: what a channel hands in (a message, a call) stored in one short transaction, and the dispatch that
routes, plans and notifies from what the receipts committed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

from tickets import receipt_new, receipt_pg, receipt_pg_call, receipt_sqlite
from tickets.calls import CallResult, finish_batch, log_call_in, start_batch
from tickets.db import is_postgresql, refresh_statistics
from tickets.deps import Deps
from tickets.dispatch import BATCH, Dispatched, dispatch_owed_in, owe, registered_via
from tickets.inbound import Inbound
from tickets.ingest import IngestResult, ingest_in
from tickets.loads import WEIGH, recount, unit_weight
from tickets.models import Ticket
from tickets.text import clean_inbound
from tickets.uow import UnitOfWork

log = logging.getLogger(__name__)


async def ingest(deps: Deps, inbound: Inbound) -> IngestResult:
    """IngestMessage: the receipt (store and thread one inbound message, acknowledge it), then its dispatch.

    Redelivery returns the same ticket. The receipt is one short transaction that locks no agent; routing and
    the regulation plan follow from what it committed (`dispatch_owed`): in this call when no dispatcher runs in
    the process, else by the dispatcher it wakes."""
    inbound = clean_inbound(inbound)

    async def work(uow: UnitOfWork) -> IngestResult:
        session, now = uow.session, deps.clock.now()
        if receipt_new.applies(inbound):
            receipt = receipt_pg if is_postgresql(session) else receipt_sqlite
            fast = await receipt.receive_new(session, inbound, now, deps.router, deps.notifications,
                                             deps.default_group)
            if fast is not None:
                ticket, message = fast
                return IngestResult(ticket, message, created=True, duplicate=False, needs_routing=True)
        result = await ingest_in(session, inbound, now, deps.router, deps.default_group)
        if result.created and deps.notifications is not None:
            # Sent once dispatched: the dispatcher hands its batch's waiting rows to the worker.
            await deps.notifications.ticket_created(session, result.ticket, result.message, now)
        if not result.duplicate:
            owe(result.ticket, now, registered_via(inbound.channel) if result.created
                else f"the client wrote via {inbound.channel}", route=result.needs_routing)
        return result

    result = await deps.store.run(work)
    if result.duplicate:
        return result
    dispatched = await dispatch_after_receipt(deps, [result.ticket.id])
    return replace(result, ticket=dispatched.get(result.ticket.id, result.ticket))


async def dispatch_owed(deps: Deps, *, limit: int = BATCH, numbers: Sequence[int] | None = None,
                        owed_for: timedelta | None = None) -> Dispatched:
    """DispatchOwed: one batch of what receipts left owed (routing, regulation plans, notices), in one
    transaction; the dispatcher loop runs it until nothing is owed, and every sweep runs it again. `owed_for`
    takes only tickets owed at least that long (what the process that received them did not get to)."""

    async def work(uow: UnitOfWork) -> Dispatched:
        now = deps.clock.now()
        done = await dispatch_owed_in(uow.session, deps.router, deps.regulations, now, limit=limit,
                                      numbers=numbers, owed_before=now - owed_for if owed_for else None)
        uow.deliver(done.outbox)
        uow.schedule(done.timers)
        return done

    return await deps.store.run(work)


async def recount_loads(deps: Deps) -> int:
    """Set every agent's load counters from their tickets; returns how many agents' counters were wrong."""
    async with deps.store.session() as session:
        return await recount(session, session.info.get(WEIGH) or unit_weight)


async def dispatch_after_receipt(deps: Deps, numbers: Sequence[int]) -> dict[int, Ticket]:
    """Wake the dispatcher, or dispatch these tickets now when none is set (a command, a test); returns the
    tickets as dispatched here. A failure leaves them owed for the sweep: the receipt stands."""
    if deps.wake_dispatcher is not None:
        deps.wake_dispatcher()
        return {}
    try:
        done = await dispatch_owed(deps, numbers=numbers)
    except Exception:  # noqa: BLE001 - the receipt is committed; the next sweep dispatches what is owed
        log.warning("could not dispatch tickets %s now; the sweep will", list(numbers), exc_info=True)
        return {}
    return {ticket.id: ticket for ticket in done.tickets}


async def log_calls(deps: Deps, inbounds: Sequence[Inbound]) -> list[CallResult]:
    """LogCall for each phone call, all in one transaction (a batch of a CDR import, or one API entry).

    Calls logged before come back as duplicates, so a batch can be sent again after any failure. Like any
    receipt, it leaves routing and the regulation plans owed to the dispatcher.
    """
    inbounds = [clean_inbound(inbound) for inbound in inbounds]

    async def work(uow: UnitOfWork) -> list[CallResult]:
        session, now = uow.session, deps.clock.now()
        if is_postgresql(session) and receipt_pg_call.applies(inbounds):
            fast = await receipt_pg_call.receive_call(session, inbounds[0], now, deps.router, deps.regulations,
                                                      deps.default_group)
            if fast is not None:
                return [fast]
        batch = await start_batch(session, inbounds)
        results = [
            await log_call_in(session, inbound, now, deps.router, deps.default_group, deps.regulations, batch)
            for inbound in inbounds
        ]
        results = await finish_batch(session, batch, results)
        for result in results:
            if result.ticket is not None and not result.duplicate:
                owe(result.ticket, now, "a call was logged",
                    route=result.created and result.ticket.assignee_id is None)
        return results

    results = await deps.store.run(work)
    touched = sorted({r.ticket.id for r in results if r.ticket is not None and not r.duplicate})
    if touched:
        dispatched = await dispatch_after_receipt(deps, touched)
        results = [replace(r, ticket=dispatched.get(r.ticket.id, r.ticket)) if r.ticket is not None else r
                   for r in results]
    return results


async def refresh_call_statistics(deps: Deps) -> None:
    """After a large import step: keep the planner's picture of the tables calls grow true (PostgreSQL)."""
    async with deps.store.session() as session:
        await refresh_statistics(session, ["calls", "customers", "customer_identities", "tickets", "messages"])
