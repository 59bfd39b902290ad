"""The customer card: its service level, and addresses an agent adds to it (merging the card that had one)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tickets import audit
from tickets.access import customer_visible, visibility
from tickets.deps import Deps
from tickets.errors import Conflict, Forbidden, NotFound
from tickets.inbound import Identity
from tickets.models import CLOSED_STATUSES, Agent, Call, Customer, CustomerIdentity, EventKind, Message, Ticket
from tickets.queries.customers import CustomerView, customer_view


async def set_customer_tier(deps: Deps, viewer: Agent, customer_id: int, tier: str | None) -> CustomerView:
    """A client's service level changed: their open tickets move to the regulation that now matches."""
    now = deps.clock.now()
    async with deps.store.unit() as uow:
        session = uow.session
        customer = await session.get(Customer, customer_id, with_for_update=True)
        if customer is None:
            raise NotFound(f"no customer {customer_id}")
        if customer.tier != tier:
            customer.tier, customer.updated_at = tier, now
            open_tickets = await session.scalars(
                select(Ticket).where(Ticket.customer_id == customer_id,
                                     Ticket.status.not_in(CLOSED_STATUSES))
                .order_by(Ticket.id).with_for_update())
            for ticket in open_tickets:
                uow.schedule(await deps.track(session, ticket, now, f"{viewer.name} set the tier to {tier}"))
        return await customer_view(session, viewer, customer_id)


async def add_identity(
    deps: Deps, viewer: Agent, customer_id: int, identity: Identity, *, merge: bool = False
) -> CustomerView:
    """An address the client gave an agent (on a call, say) joins their card, so what they send from it lands there.

    An address on another card is refused unless `merge`: then that card, with its tickets and calls, joins this
    one.
    """
    now = deps.clock.now()
    async with deps.store.session() as session:
        customer = await session.get(Customer, customer_id, with_for_update=True)
        visible = await visibility(session, viewer)
        if customer is None or not await customer_visible(session, viewer, customer_id, visible):
            raise NotFound(f"no customer {customer_id}")
        owner = await session.scalar(
            select(CustomerIdentity.customer_id).where(
                CustomerIdentity.kind == identity.kind, CustomerIdentity.address == identity.address
            )
        )
        if owner is None:
            session.add(CustomerIdentity(customer_id=customer.id, kind=identity.kind, address=identity.address,
                                         created_at=now))
        elif owner != customer.id:
            if not await customer_visible(session, viewer, owner, visible):
                # Not "on customer N's card": an agent learns nothing of a card they may not open.
                raise Forbidden("this address belongs to a client whose card you may not open; ask a manager")
            if not merge:
                raise Conflict(f"{identity.address} is on customer {owner}'s card; send merge: true to merge "
                               f"that card into this one")
            await merge_customers(session, await session.get_one(Customer, owner, with_for_update=True), customer,
                                  viewer, now)
        customer.updated_at = now
        await session.flush()
        return await customer_view(session, viewer, customer_id)


async def merge_customers(
    session: AsyncSession, source: Customer, target: Customer, actor: Agent, now: datetime
) -> None:
    """Everything of `source` (identities, tickets, calls, messages) moves to `target`; `source` is deleted."""
    moved = list(await session.scalars(select(Ticket.id).where(Ticket.customer_id == source.id)))
    for model in (CustomerIdentity, Ticket, Call, Message):
        await session.execute(
            update(model).where(model.customer_id == source.id).values(customer_id=target.id)
            .execution_options(synchronize_session=False)
        )
    target.name = target.name or source.name
    target.language = target.language or source.language
    for ticket_id in moved:
        audit.record(session, ticket_id, EventKind.customer_merged, now, actor=actor,
                     reason=f"customer {source.id} merged into customer {target.id}",
                     from_customer_id=source.id, to_customer_id=target.id)
    await session.flush()
    await session.execute(delete(Customer).where(Customer.id == source.id))
