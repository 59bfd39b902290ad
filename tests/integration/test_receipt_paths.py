"""The two paths of a receipt store the same rows, on each backend.

A message of the common shape (one address, nothing to thread) goes through the backend's own receipt
(`tickets.receipt_pg` on PostgreSQL, `tickets.receipt_sqlite` on SQLite, both decided by `tickets.receipt_new`);
one from a client known by two addresses goes through the ORM (`tickets.ingest`). Everything else equal, the
stored rows must be equal too, column by column as the database holds them (text formats of times and JSON
included), or the ORM would read the fast path's rows differently from its own.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import event, text

from switchboard.bootstrap import Runtime
from tickets.clock import ManualClock
from tickets.inbound import AttachmentRef, Identity, Inbound
from tickets.models import Priority


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def form(*identities: Identity) -> Inbound:
    return Inbound(
        channel="webform", identities=identities, body_text="The invoice total is wrong\nsecond line",
        subject="Invoice", customer_name="Vera", language="ru", body_html="<p>The <b>invoice</b><script>x</script></p>",
        attachments=(AttachmentRef("a.pdf", "application/pdf", 3, "ab/cd", "0" * 64),), category="billing",
        priority=Priority.high, meta={"page": "/contact"}, problems=("attachment b.exe refused",))


async def rows(runtime: Runtime, table: str, where: str, **params: Any) -> list[dict[str, Any]]:
    async with runtime.sessions() as session:
        result = await session.execute(text(f"SELECT * FROM {table} WHERE {where} ORDER BY id"), params)
        return [dict(row._mapping) for row in result]


def parsed(value: Any) -> dict[str, Any]:
    """A JSON column as SQLite (text) or asyncpg (text for `json`) hands it over."""
    return json.loads(value) if isinstance(value, str) else dict(value)


def same(fast: list[dict[str, Any]], orm: list[dict[str, Any]], *varying: str) -> None:
    """Equal row for row, but for the columns that name this ticket or client; a difference names its column."""
    assert len(fast) == len(orm)
    for one, other in zip(fast, orm, strict=True):
        differ = {k: (v, other.get(k)) for k, v in one.items() if k not in varying and v != other.get(k)}
        assert not differ, differ


async def test_the_backend_receipt_and_the_orm_store_the_same_rows(runtime: Runtime) -> None:
    await runtime.service.ingest(form(Identity("email", "first@example.com")))  # the ORM creates the default group
    through_orm: list[str] = []

    def heard(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        through_orm.append(statement.split()[0].upper())

    event.listen(runtime.engine.sync_engine, "before_cursor_execute", heard)
    fast = await runtime.service.ingest(form(Identity("email", "vera@example.com")))
    fast_writes, through_orm[:] = through_orm.count("INSERT"), []  # its dispatch's only
    orm = await runtime.service.ingest(form(Identity("email", "vera2@example.com"), Identity("phone", "+447700900123")))
    event.remove(runtime.engine.sync_engine, "before_cursor_execute", heard)
    assert fast.created and orm.created and fast.ticket.id != orm.ticket.id
    # the same dispatch, and a statement at least for each of the receipt's card, identities, ticket, message,
    # event and acknowledgement
    assert through_orm.count("INSERT") >= fast_writes + 6

    async def both(table: str, column: str) -> list[list[dict[str, Any]]]:
        return [await rows(runtime, table, f"{column} = :id", id=r.ticket.id) for r in (fast, orm)]

    fast_ticket, orm_ticket = await both("tickets", "id")
    same(fast_ticket, orm_ticket, "id", "customer_id", "portal_key")
    assert fast_ticket[0]["priority"] == "high" and fast_ticket[0]["dispatch_owed_at"] is None  # dispatched

    fast_message, orm_message = await both("messages", "ticket_id")
    same(fast_message, orm_message, "id", "ticket_id", "customer_id")
    assert "<script>" not in fast_message[0]["body_html"]

    fast_events, orm_events = await both("events", "ticket_id")
    same(fast_events, orm_events, "id", "ticket_id")
    assert fast_events[0]["kind"] == "created"

    fast_out, orm_out = await both("outbox", "ticket_id")
    varying = ("id", "ticket_id", "recipient", "dedupe_key", "headers", "params")  # the address, the number
    same(fast_out, orm_out, *varying)
    assert [row["kind"] for row in fast_out] == ["ack"]
    assert fast_out[0]["recipient"] == "vera@example.com" and fast_out[0]["dedupe_key"] == f"ack:{fast.ticket.id}"
    for column in ("headers", "params"):
        assert parsed(fast_out[0][column]).keys() == parsed(orm_out[0][column]).keys()
    assert parsed(fast_out[0]["headers"])["To"] == "vera@example.com"

    fast_card, orm_card = [await rows(runtime, "customers", "id = :id", id=r.ticket.customer_id) for r in (fast, orm)]
    same(fast_card, orm_card, "id")
    identities = await rows(runtime, "customer_identities", "customer_id = :id", id=fast.ticket.customer_id)
    assert [(row["kind"], row["address"]) for row in identities] == [("email", "vera@example.com")]


async def test_a_known_client_keeps_their_card_and_its_name(runtime: Runtime) -> None:
    first = await runtime.service.ingest(form(Identity("email", "vera@example.com")))
    later = await runtime.service.ingest(
        Inbound(channel="email", identities=(Identity("email", "vera@example.com"),), body_text="Another thing",
                customer_name="Somebody Else"))

    assert later.created and later.ticket.id != first.ticket.id
    assert later.ticket.customer_id == first.ticket.customer_id
    card = await rows(runtime, "customers", "id = :id", id=first.ticket.customer_id)
    assert card[0]["name"] == "Vera"
