"""The receipt of a message that opens a ticket, on SQLite: one transaction in one call on the connection's thread.

The read and the five or six writes (what they replace, and which cases go to the ORM path instead:
`tickets.receipt_new`) run as plain sqlite3 statements inside `tickets.db.in_one_call`, so SQLite's write lock is
held for the statements themselves and not for twenty trips through the event loop. Values are stored in the
form SQLAlchemy stores them (its own bind processors for datetimes), so the ORM reads these rows like its own.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tickets.db import in_one_call
from tickets.dispatch import registered_via
from tickets.inbound import Inbound
from tickets.models import EventKind, Message, Ticket, UtcDateTime
from tickets.ports import Assigner, Notifications
from tickets.receipt_new import ACTIVE, Found, Planned, open_window, plan, stored

_READ = f"""
SELECT
  (SELECT m.ticket_id FROM messages m WHERE ?2 IS NOT NULL AND m.channel = ?1 AND m.external_id = ?2) AS seen,
  c.id, c.name, c.language,
  (SELECT i.address FROM customer_identities i WHERE i.customer_id = c.id AND i.kind = 'email'
     ORDER BY i.id LIMIT 1) AS email,
  (SELECT t.id FROM tickets t WHERE ?6 IS NOT NULL AND t.customer_id = c.id AND t.channel = ?1
     AND t.status IN {ACTIVE} AND t.updated_at >= ?6 LIMIT 1) AS open_ticket,
  g.id, g.name, g.acknowledge,
  (SELECT json_group_array(json_array(r.id, r.channel, r.category, r.language, r.from_group_id, r.group_id,
                                      r.skills, r.priority, r.tags))
     FROM (SELECT * FROM routing_rules ORDER BY position, id) AS r) AS rules
FROM (SELECT 1) AS one
LEFT JOIN customer_identities ci ON ci.kind = ?3 AND ci.address = ?4
LEFT JOIN customers c ON c.id = ci.customer_id
LEFT JOIN groups g ON g.name = ?5
"""

_NEW_CARD = "INSERT INTO customers (name, language, created_at, updated_at) VALUES (?1, ?2, ?3, ?3) RETURNING id"
_IDENTITY = "INSERT INTO customer_identities (customer_id, kind, address, created_at) VALUES (?, ?, ?, ?)"
_TOUCH_CARD = """UPDATE customers SET updated_at = ?3, name = COALESCE(NULLIF(name, ''), ?1),
  language = COALESCE(NULLIF(language, ''), ?2) WHERE id = ?4"""
_TICKET = """INSERT INTO tickets (subject, status, priority, category, channel, skills, customer_id, group_id,
  created_at, updated_at, portal_key, dispatch_owed_at, dispatch_reason, route_owed)
VALUES (?1, 'new', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?8, ?10, 1) RETURNING id"""
_MESSAGE = """INSERT INTO messages (ticket_id, direction, channel, external_id, customer_id, body_text, body_html,
  attachments, thread_reason, meta, problems, raw, created_at)
VALUES (?, 'in', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"""
_CREATED = f"""INSERT INTO events (ticket_id, kind, actor, reason, data, created_at)
VALUES (?, '{EventKind.created}', 'customer', ?, ?, ?)"""
_ACK = """INSERT INTO outbox (kind, channel, recipient, body_text, headers, ticket_id, dedupe_key, status, attempts,
  next_attempt_at, created_at, updated_at, template, params)
VALUES (?1, ?2, ?3, '', ?4, ?5, ?6, 'queued', 0, ?7, ?7, ?7, ?8, ?9)"""


async def receive_new(session: AsyncSession, inbound: Inbound, now: datetime, router: Assigner,
                      notifications: Notifications | None, group_name: str) -> tuple[Ticket, Message] | None:
    """Store a message that opens a ticket; None when the read shows another case, for the ORM path to decide.

    Runs in a transaction of its own (the session is left untouched), committed when this returns. Returns the
    ticket and message as they were written (not attached to the session)."""
    engine = session.bind
    assert isinstance(engine, AsyncEngine)
    stamp = _stamper(engine.dialect)
    return await in_one_call(engine, lambda connection: _receive(
        connection, stamp, inbound, now, router, notifications, group_name))


@cache
def _stamper(dialect: Dialect) -> Any:
    """How SQLAlchemy stores a `UtcDateTime` on this dialect (text SQLite compares in time order)."""
    return UtcDateTime().dialect_impl(dialect).bind_processor(dialect)


def _receive(connection: sqlite3.Connection, stamp: Any, inbound: Inbound, now: datetime, router: Assigner,
             notifications: Notifications | None, group_name: str) -> tuple[Ticket, Message] | None:
    identity = inbound.identities[0]
    window = open_window(inbound, now)
    row = connection.execute(_READ, (inbound.channel, inbound.external_id, identity.kind, identity.address,
                                     inbound.group or group_name, stamp(window) if window else None)).fetchone()
    *head, rules = row
    planned = plan(inbound, Found._make([*head, json.loads(rules) if rules else []]), now, router, notifications)
    if planned is None:
        return None
    at = stamp(now)
    card = planned.customer_id
    if card is None:
        card = connection.execute(_NEW_CARD, (inbound.customer_name, inbound.language, at)).fetchone()[0]
        connection.execute(_IDENTITY, (card, identity.kind, identity.address, at))
    else:
        connection.execute(_TOUCH_CARD, (inbound.customer_name, inbound.language, at, card))
    number, message_id = _write_ticket(connection, inbound, planned, card, at)
    return stored(inbound, planned, now, number, card, message_id)


def _write_ticket(connection: sqlite3.Connection, inbound: Inbound, planned: Planned, card: int, at: str
                  ) -> tuple[int, int]:
    ticket, notice = planned.ticket, planned.notice
    number = connection.execute(_TICKET, (
        ticket.subject, str(ticket.priority), ticket.category, ticket.channel, ticket.skills, card, ticket.group_id,
        at, ticket.portal_key, registered_via(inbound.channel))).fetchone()[0]
    message_id = connection.execute(_MESSAGE, (
        number, inbound.channel, inbound.external_id, card, inbound.body_text, planned.html,
        json.dumps(planned.attachments), planned.reason[:200], json.dumps(planned.meta),
        json.dumps(list(inbound.problems)), json.dumps(planned.raw),
        at)).fetchone()[0]
    connection.execute(_CREATED, (number, planned.reason, json.dumps({"channel": inbound.channel}), at))
    if notice is not None:
        connection.execute(_ACK, (notice.kind, notice.channel, notice.recipient, json.dumps(dict(notice.headers)),
                                  number, f"{notice.dedupe_prefix}{number}", at, notice.template,
                                  json.dumps(dict(notice.params))))
    return number, message_id
