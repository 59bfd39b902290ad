"""The receipt of one phone call on PostgreSQL: two round trips on the session's own connection.

A PBX posts each call as it ends. Most are a client whose card has nothing open: a missed call opens a callback
ticket with its deadline, a call with notes opens a ticket owed to the agent who took it, a call without notes
goes on the card alone. For that shape the ORM's fifteen statements are replaced, as for a message
(`tickets.receipt_pg`), by one read (the call logged before, the card, whether anything of theirs is open, the
agent, the group, the routing rules) and one data-modifying CTE writing the card, the ticket, its events, the
message, the callback deadline and the call. Anything else (a call already logged, an open ticket to join, an
unknown agent or group, a withheld number) goes to the ORM path (`tickets.calls`), which decides every case; the
rows written are the same as that path writes.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.calls import CALLBACK, CHANNEL, CallResult, call_meta, callback_subject, describe, responds
from tickets.deadlines import FIRST_RESPONSE
from tickets.inbound import CallDetails, Inbound
from tickets.ingest import subject_from
from tickets.models import (
    Call,
    CallDisposition,
    Direction,
    EventKind,
    Priority,
    Ticket,
    TicketStatus,
)
from tickets.ports import Assigner, Regulations
from tickets.receipt_new import ACTIVE
from tickets.receipt_pg import RULES, guarded, on_raw_connection

_READ = f"""
SELECT
  EXISTS (SELECT 1 FROM calls WHERE call_id = $1) AS seen,
  c.id, c.name,
  EXISTS (SELECT 1 FROM tickets t WHERE t.customer_id = c.id AND t.status IN {ACTIVE}) AS open,
  (SELECT a.id FROM agents a WHERE a.id = $4) AS by_id,
  (SELECT a.id FROM agents a WHERE a.email = $5) AS by_email,
  (SELECT a.id FROM agents a WHERE a.extension = $6 ORDER BY a.id LIMIT 1) AS by_extension,
  g.id,
  {RULES} AS rules
FROM (SELECT 1) AS one
LEFT JOIN customer_identities ci ON ci.kind = $2 AND ci.address = $3
LEFT JOIN customers c ON c.id = ci.customer_id
LEFT JOIN groups g ON g.name = $7
"""

_WRITE = f"""
WITH new_card AS (
  INSERT INTO customers (name, created_at, updated_at) SELECT $1, $2, $2 WHERE $3::bigint IS NULL
  RETURNING id
), card AS (
  SELECT id FROM new_card UNION ALL SELECT $3::bigint WHERE $3::bigint IS NOT NULL
), identity AS (
  INSERT INTO customer_identities (customer_id, kind, address, created_at) SELECT id, $4, $5, $2 FROM new_card
), touched AS (
  UPDATE customers SET updated_at = $2, name = COALESCE(NULLIF(name, ''), $1) WHERE id = $3::bigint
), ticket AS (
  INSERT INTO tickets (subject, status, priority, category, channel, skills, customer_id, group_id, created_at,
                       updated_at, portal_key, first_response_at, processed_at, dispatch_owed_at, dispatch_reason,
                       route_owed, route_to_id)
  SELECT $7, 'new', $8, $9, 'phone', $10, card.id, $11, $2, $2, $12, $13, $13, $2, 'a call was logged', true, $14
  FROM card WHERE $6
  RETURNING id, customer_id
), message AS (
  INSERT INTO messages (ticket_id, direction, channel, external_id, customer_id, author_id, body_text, attachments,
                        thread_reason, meta, problems, created_at)
  SELECT ticket.id, $15::text, 'phone', $16, CASE WHEN $15::text = 'out' THEN NULL ELSE ticket.customer_id END,
         $17, $18, '[]', $19, $20::json, '[]', $2
  FROM ticket
  RETURNING id
), deadline AS (
  INSERT INTO deadlines (ticket_id, regulation, step, met_by, due_at, status, created_at, position, kind, plan,
                         reference_at, breach)
  SELECT ticket.id, $21, 'call_back', $22, $23, 'pending', $2, 0, 'step', 1, $2, false
  FROM ticket WHERE $23::timestamptz IS NOT NULL
), events AS (
  INSERT INTO events (ticket_id, kind, actor_id, actor, reason, data, created_at)
  SELECT ticket.id, e.kind, e.actor_id, e.actor, e.reason, e.data, $2
  FROM ticket, (VALUES (1, '{EventKind.created}', NULL::bigint, 'customer', $24, '{{"channel": "phone"}}'::json),
                       (2, $25, $26::bigint, $27, $28, $29::json)) AS e (n, kind, actor_id, actor, reason, data)
  ORDER BY e.n
), call AS (
  INSERT INTO calls (call_id, direction, disposition, caller, called, caller_name, customer_id, ticket_id, message_id,
                     agent_id, extension, started_at, answered_at, ended_at, duration, talk_time, notes, recording_url,
                     source, created_at)
  SELECT $16, $15::text, $30, $31, $32, $1, card.id, (SELECT id FROM ticket), (SELECT id FROM message), $33, $34,
         $35, $36, $37, $38, $39, $40, $41, $42, $2
  FROM card
  RETURNING id
)
SELECT (SELECT id FROM call), card.id, (SELECT id FROM ticket), (SELECT id FROM message) FROM card
"""


def applies(inbounds: Sequence[Inbound]) -> bool:
    """The shape this path takes: one call (an API entry, not a CDR batch) from a number we can call back, not put
    on a ticket by an agent."""
    call = inbounds[0].call if len(inbounds) == 1 else None
    return call is not None and call.ticket_number is None and len(inbounds[0].identities) == 1 \
        and bool(inbounds[0].external_id)


@dataclass(frozen=True)
class _Found:
    customer_id: int | None
    agent_id: int | None
    group_id: int
    rules: list[list[object]]


async def receive_call(session: AsyncSession, inbound: Inbound, now: datetime, router: Assigner,
                       regulations: Regulations | None, group_name: str) -> CallResult | None:
    """Log a call of a client with nothing open; None when the read shows another case, for the ORM path.

    Returns the call and its ticket as written (not attached to the session), the ticket owed to the dispatcher
    as the ORM path leaves it."""
    return await on_raw_connection(session, lambda connection: _receive(
        connection, inbound, now, router, regulations, group_name))


async def _receive(connection: asyncpg.Connection, inbound: Inbound, now: datetime, router: Assigner,
                   regulations: Regulations | None, group_name: str) -> CallResult | None:
    details = inbound.call
    assert details is not None and inbound.external_id is not None
    found = await _read(connection, inbound, details, group_name)
    if found is None:
        return None
    ticket: Ticket | None = None
    reason, thread_reason, due = "", "", None
    if details.missed:
        ticket = _ticket(inbound, callback_subject(inbound, details), CALLBACK, now)
        reason, thread_reason = "missed call: call the client back", "missed call: callback"
        if regulations is not None:
            due = regulations.callback_due(details.ended_at or details.started_at)
    elif details.notes:
        ticket = _ticket(inbound, subject_from(details.notes), None, now)
        reason, thread_reason = f"{describe(details)} with notes", "notes of a call"
    if ticket is not None:
        ticket.group_id = found.group_id
        placed = router.place_using(found.rules, ticket, inbound.language)
        if placed.tags:
            return None  # a rule tags it: the ORM path stores the tags once the ticket has its number
        rules = placed.describe()
        reason += f"; {rules}" if rules else ""
        if found.agent_id is not None and not details.missed:  # the agent who talked to the client keeps it
            ticket.route_to_id = found.agent_id
    answered = responds(details, found.agent_id)
    if ticket is not None and answered:
        ticket.first_response_at = ticket.processed_at = min(details.answered_at or details.started_at, now)
    outbound = details.direction == "out"
    met = {"call_id": inbound.external_id, "deadlines_met": 0} if answered else None
    row = await guarded(_WRITE, lambda: connection.fetchrow(
        _WRITE, inbound.customer_name, now, found.customer_id, inbound.identities[0].kind,
        inbound.identities[0].address, ticket is not None,
        ticket.subject if ticket else None, str(ticket.priority) if ticket else None,
        ticket.category if ticket else None, ticket.skills if ticket else None,
        ticket.group_id if ticket else None, ticket.portal_key if ticket else None,
        ticket.first_response_at if ticket else None, ticket.route_to_id if ticket else None,
        details.direction, inbound.external_id, found.agent_id if outbound else None,
        details.notes or describe(details), thread_reason[:200] or None, json.dumps({"call": call_meta(details)}),
        CALLBACK, FIRST_RESPONSE, due, reason[:500],
        EventKind.call_response if met else EventKind.call_logged, found.agent_id,
        f"agent:{found.agent_id}" if found.agent_id else "phone", describe(details),
        json.dumps(met or {"call_id": inbound.external_id}),
        details.disposition, details.caller, details.called, found.agent_id, details.extension, details.started_at,
        details.answered_at, details.ended_at, details.duration, details.talk_time, details.notes,
        details.recording_url, details.source))
    assert row is not None
    call_id, customer_id, number, message_id = row
    call = Call(id=call_id, call_id=inbound.external_id, direction=Direction(details.direction),
                disposition=CallDisposition(details.disposition), caller=details.caller, called=details.called,
                caller_name=inbound.customer_name, customer_id=customer_id, ticket_id=number, message_id=message_id,
                agent_id=found.agent_id, extension=details.extension, started_at=details.started_at,
                answered_at=details.answered_at, ended_at=details.ended_at, duration=details.duration,
                talk_time=details.talk_time, notes=details.notes, recording_url=details.recording_url,
                source=details.source, created_at=now)
    if ticket is not None:
        ticket.id, ticket.customer_id = number, customer_id
        ticket.dispatch_owed_at, ticket.dispatch_reason, ticket.route_owed = now, "a call was logged", True
    return CallResult(inbound.external_id, call, ticket, created=ticket is not None, duplicate=False)


async def _read(connection: asyncpg.Connection, inbound: Inbound, details: CallDetails,
                group_name: str) -> _Found | None:
    identity = inbound.identities[0]
    row = await guarded(_READ, lambda: connection.fetchrow(
        _READ, inbound.external_id, identity.kind, identity.address, details.agent_id, details.agent_email,
        details.extension, inbound.group or group_name))
    assert row is not None
    seen, customer_id, _name, has_open, by_id, by_email, by_extension, group_id, rules = row
    named_unknown = (details.agent_id is not None and by_id is None) or \
        (details.agent_email is not None and by_email is None)
    if seen or has_open or group_id is None or named_unknown:
        return None  # a duplicate, a ticket to join, a group to create, or an agent to refuse: the ORM path's cases
    if details.agent_id is not None:
        agent_id = by_id
    elif details.agent_email is not None:
        agent_id = by_email
    else:
        agent_id = by_extension if details.extension is not None else None
    return _Found(customer_id, agent_id, group_id, rules or [])


def _ticket(inbound: Inbound, subject: str, category: str | None, now: datetime) -> Ticket:
    return Ticket(subject=subject[:300], status=TicketStatus.new, priority=inbound.priority or Priority.normal,
                  category=category, channel=CHANNEL, skills="", created_at=now, updated_at=now,
                  portal_key=secrets.token_urlsafe(24))
