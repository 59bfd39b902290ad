"""Agents are told by email of a ticket handed to them — by the router or a manager — in their language; taking a
ticket yourself tells nobody. The rows are written in the transaction that hands the ticket over, as a template and
its parameters; the worker renders them when it delivers them, and the row keeps what went out."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, select

from notifier.senders import list_sink
from switchboard.bootstrap import Runtime
from tickets.inbound import Identity, Inbound
from tickets.models import Outbox, Presence, Role


def form(n: int) -> Inbound:
    return Inbound(channel="webform", identities=(Identity("email", f"client{n}@example.com"),), body_text="Help",
                   subject=f"Question {n}", customer_name=f"Client {n}")


async def notices(runtime: Runtime, kinds: tuple[str, ...] = ("assigned", "reassigned")) -> list[Outbox]:
    async with runtime.sessions() as session:
        return list(await session.scalars(select(Outbox).where(Outbox.kind.in_(kinds)).order_by(Outbox.id)))


async def delivered(runtime: Runtime, kinds: tuple[str, ...] = ("assigned", "reassigned")) -> list[Outbox]:
    """The rows, each delivered by the worker's deliverer first: rendered, sent, and written back as sent."""
    assert runtime.deliverer is not None
    for row in await notices(runtime, kinds):
        assert row.template is not None and row.body_text == ""  # nothing rendered inside the transaction
        assert await runtime.deliverer.deliver(row.id) == "sent"
    return await notices(runtime, kinds)


async def test_the_router_tells_the_agent_in_their_language_and_the_mail_goes_out(
    runtime: Runtime, add_agent: Any
) -> None:
    anna, _ = await add_agent("Anna", language="ru")
    ticket = (await runtime.service.ingest(form(1))).ticket
    [row] = await delivered(runtime)
    assert (row.kind, row.recipient, row.ticket_id, row.channel) == ("assigned", anna.email, ticket.id, "email")
    assert row.subject == f"[#{ticket.id}] Назначена вам: Question 1"
    assert "Client 1 <client1@example.com>, канал webform" in row.body_text
    assert f"{runtime.settings.public_url}/desk/tickets/{ticket.id}" in row.body_text
    assert "Почему вы: " in row.body_text  # the router's reason
    sent = [e for e in list_sink(runtime.settings.data_dir / "mail-sink") if e.to == anna.email]
    assert [e.subject for e in sent] == [row.subject]


async def test_the_notice_names_the_agent_without_reading_them_again_under_the_lock(
    runtime: Runtime, add_agent: Any
) -> None:
    """The group stays locked from the choice to the commit; the agent's row comes back from their stamp."""
    anna, _ = await add_agent("Anna")
    boris, _ = await add_agent("Boris")
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(runtime.engine.sync_engine, "before_cursor_execute", seen)
    try:
        ticket = (await runtime.service.ingest(form(1))).ticket
    finally:
        event.remove(runtime.engine.sync_engine, "before_cursor_execute", seen)
    [row] = await notices(runtime)
    assert row.ticket_id == ticket.id and row.recipient in (anna.email, boris.email)
    reads = [s for s in statements if s.startswith("SELECT") and " FROM agents " in s]
    assert len(reads) == 2, reads  # the lock and the locked read of the members, nothing after
    assert any(s.startswith("UPDATE agents SET last_assigned_at") and "RETURNING" in s for s in statements)


async def test_a_transfer_tells_the_new_agent_and_taking_it_yourself_tells_nobody(
    runtime: Runtime, add_agent: Any
) -> None:
    anna, _ = await add_agent("Anna")
    boris, _ = await add_agent("Boris", presence="offline")
    manager, _ = await add_agent("Mia", role=Role.manager, presence="offline")
    ticket = (await runtime.service.ingest(form(1))).ticket
    await runtime.service.update_ticket(manager, ticket.id, {"assignee": boris.id})
    # Only managers transfer: Boris returns it (Anna away, so the queue keeps it) and she takes it back herself.
    await runtime.service.set_presence(anna.id, Presence.away)
    await runtime.service.update_ticket(boris, ticket.id, {"assignee": None})
    await runtime.service.update_ticket(anna, ticket.id, {"assignee": anna.id})
    rows = await delivered(runtime)
    assert [(r.kind, r.recipient) for r in rows] == [("assigned", anna.email), ("reassigned", boris.email)]
    assert rows[1].subject == f"[#{ticket.id}] Reassigned to you from Anna: Question 1"
    assert "Why you" not in rows[1].body_text  # a manager's choice, not the router's


async def test_the_web_form_client_gets_an_acknowledgement_with_the_number(runtime: Runtime, add_agent: Any) -> None:
    ticket = (await runtime.service.ingest(form(7))).ticket
    [ack] = await delivered(runtime, ("ack",))
    assert ack.recipient == "client7@example.com" and ack.subject == f"[#{ticket.id}] Question 7"
    assert f"ticket #{ticket.id}" in ack.body_text
