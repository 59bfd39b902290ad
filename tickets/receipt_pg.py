"""The receipt of a message that opens a ticket, on PostgreSQL: two round trips on the session's own connection.

One read and one data-modifying CTE, atomic as any statement is, sent through asyncpg on the session's connection
(what they replace, and which cases go to the ORM path instead: `tickets.receipt_new`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

import asyncpg
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.dispatch import registered_via
from tickets.inbound import Inbound
from tickets.models import EventKind, Message, Ticket
from tickets.ports import Assigner, Notifications
from tickets.receipt_new import ACTIVE, Found, open_window, plan, stored

T = TypeVar("T")

RULES = """(SELECT json_agg(json_build_array(r.id, r.channel, r.category, r.language, r.from_group_id, r.group_id,
                                           r.skills, r.priority, r.tags) ORDER BY r.position, r.id)
           FROM routing_rules r)"""
"""Every routing rule, in the order they are checked, as the rows `Assigner.place_using` takes (`RuleRow`)."""

_READ = f"""
SELECT
  (SELECT m.ticket_id FROM messages m WHERE $2::text IS NOT NULL AND m.channel = $1 AND m.external_id = $2) AS seen,
  c.id, c.name, c.language,
  (SELECT i.address FROM customer_identities i WHERE i.customer_id = c.id AND i.kind = 'email'
     ORDER BY i.id LIMIT 1) AS email,
  (SELECT t.id FROM tickets t WHERE $6::timestamptz IS NOT NULL AND t.customer_id = c.id AND t.channel = $1
     AND t.status IN {ACTIVE} AND t.updated_at >= $6 LIMIT 1) AS open_ticket,
  g.id, g.name, g.acknowledge,
  {RULES} AS rules
FROM (SELECT 1) AS one
LEFT JOIN customer_identities ci ON ci.kind = $3 AND ci.address = $4
LEFT JOIN customers c ON c.id = ci.customer_id
LEFT JOIN groups g ON g.name = $5
"""

_WRITE = f"""
WITH new_card AS (
  INSERT INTO customers (name, language, created_at, updated_at)
  SELECT $1, $2, $3, $3 WHERE $4::bigint IS NULL
  RETURNING id
), card AS (
  SELECT id FROM new_card UNION ALL SELECT $4::bigint WHERE $4::bigint IS NOT NULL
), identity AS (
  INSERT INTO customer_identities (customer_id, kind, address, created_at) SELECT id, $5, $6, $3 FROM new_card
), touched AS (
  UPDATE customers SET updated_at = $3, name = COALESCE(NULLIF(name, ''), $1),
    language = COALESCE(NULLIF(language, ''), $2)
  WHERE id = $4::bigint
), ticket AS (
  INSERT INTO tickets (subject, status, priority, category, channel, skills, customer_id, group_id, created_at,
                       updated_at, portal_key, dispatch_owed_at, dispatch_reason, route_owed)
  SELECT $7, 'new', $8, $9, $10, $11, card.id, $12, $3, $3, $13, $3, $14, true FROM card
  RETURNING id, customer_id
), message AS (
  INSERT INTO messages (ticket_id, direction, channel, external_id, customer_id, body_text, body_html, attachments,
                        thread_reason, meta, problems, raw, created_at)
  SELECT ticket.id, 'in', $10, $15, ticket.customer_id, $16, $17, $18::json, $19, $20::json, $21::json, $22::json, $3
  FROM ticket
  RETURNING id
), created AS (
  INSERT INTO events (ticket_id, kind, actor, reason, data, created_at)
  SELECT ticket.id, '{EventKind.created}', 'customer', $23, $24::json, $3 FROM ticket
), ack AS (
  INSERT INTO outbox (kind, channel, recipient, body_text, headers, ticket_id, dedupe_key, status, attempts,
                      next_attempt_at, created_at, updated_at, template, params)
  SELECT $25::text, $26, $27, '', $28::json, ticket.id, $29 || ticket.id, 'queued', 0, $3, $3, $3, $30, $31::json
  FROM ticket WHERE $25::text IS NOT NULL
)
SELECT ticket.id, ticket.customer_id, (SELECT id FROM message) FROM ticket
"""


async def receive_new(session: AsyncSession, inbound: Inbound, now: datetime, router: Assigner,
                      notifications: Notifications | None, group_name: str) -> tuple[Ticket, Message] | None:
    """Store a message that opens a ticket; None when the read shows another case, for the ORM path to decide.

    Returns the ticket and message as they were written (not attached to the session). The change feed hears of
    the ticket from its dispatch."""
    return await on_raw_connection(session, lambda connection: _receive(
        connection, inbound, now, router, notifications, group_name))


async def on_raw_connection(session: AsyncSession, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run `work` on the asyncpg connection under the session. No transaction is begun on it: each write is one
    statement, atomic by itself, and the read before it only decides which path to take (a race it misses ends in
    a unique violation, and the unit of work runs the receipt again). That spares BEGIN and COMMIT their round
    trips."""
    connection = await session.connection()
    try:
        return await work((await connection.get_raw_connection()).driver_connection)
    except DBAPIError as exc:
        if exc.connection_invalidated:  # nothing went through SQLAlchemy: tell its pool this connection is gone
            await connection.invalidate(exc)
        raise


async def _receive(connection: asyncpg.Connection, inbound: Inbound, now: datetime, router: Assigner,
                   notifications: Notifications | None, group_name: str) -> tuple[Ticket, Message] | None:
    identity = inbound.identities[0]
    row = await guarded(_READ, lambda: connection.fetchrow(
        _READ, inbound.channel, inbound.external_id, identity.kind, identity.address, inbound.group or group_name,
        open_window(inbound, now)))
    assert row is not None
    planned = plan(inbound, Found(*row), now, router, notifications)  # json comes decoded (SQLAlchemy's codec)
    if planned is None:
        return None
    ticket, notice = planned.ticket, planned.notice
    written = await guarded(_WRITE, lambda: connection.fetchrow(
        _WRITE, inbound.customer_name, inbound.language, now, planned.customer_id, identity.kind, identity.address,
        ticket.subject, str(ticket.priority), ticket.category, ticket.channel, ticket.skills, ticket.group_id,
        ticket.portal_key, registered_via(inbound.channel), inbound.external_id, inbound.body_text, planned.html,
        json.dumps(planned.attachments), planned.reason[:200], json.dumps(planned.meta),
        json.dumps(list(inbound.problems)), json.dumps(planned.raw),
        planned.reason, json.dumps({"channel": inbound.channel}),
        notice.kind if notice else None, notice.channel if notice else None, notice.recipient if notice else None,
        json.dumps(dict(notice.headers)) if notice else None, notice.dedupe_prefix if notice else None,
        notice.template if notice else None, json.dumps(dict(notice.params)) if notice else None))
    assert written is not None
    return stored(inbound, planned, now, *written)


async def guarded(statement: str, call: Callable[[], Awaitable[T]]) -> T:
    """Raise asyncpg's errors as SQLAlchemy's, so the unit of work retries a lost race and maps an outage to
    StoreUnavailable as it does for every ORM statement."""
    try:
        return await call()
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise IntegrityError(statement, None, exc) from exc
    except asyncpg.PostgresError as exc:
        raise DBAPIError(statement, None, exc) from exc
    except (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, ConnectionError, OSError) as exc:
        raise DBAPIError(statement, None, exc, connection_invalidated=True) from exc
