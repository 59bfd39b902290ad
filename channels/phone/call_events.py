"""What every live-call source does with one event (the CTI endpoint and the AMI session alike): apply it to the
call's row, tell the consoles, and at hang-up log the call through the path `POST /api/v1/calls` takes — once,
whichever source or CDR import reports it."""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError

from channels.phone.entry import CHANNEL
from channels.poison import ParkedItem, store_or_park
from notifier.live import RedisCallFeed
from tickets import phone_numbers as numbers
from tickets.actions.live_calls import CallChange, CallEvent, ended_call_inbound
from tickets.errors import DomainError
from tickets.identities import InvalidAddress
from web.runtime import Runtime

log = logging.getLogger(__name__)


def read_number(raw: str | None, region: str | None) -> tuple[str | None, str | None]:
    """(as the call keeps it, the client's E.164): an extension as written, E.164 for an outside number. A number
    given without its `+` (trunks often do; curl's form encoding turns `+` into a space) is read as international
    when it is valid so; one that cannot be read is kept as written, on no card, and said in the log."""
    if raw is None or numbers.is_withheld(raw):
        return None, None
    extension = numbers.extension_of(raw)
    if extension is not None:
        return extension, None
    for candidate in (raw, f"+{raw.strip()}" if raw.strip()[:1].isdigit() and raw.strip()[:1] != "0" else None):
        if candidate is None:
            continue
        try:
            e164 = numbers.to_e164(candidate, region)
        except InvalidAddress:
            continue
        return e164, e164
    log.warning("the call's number %r is not one Switchboard can read%s; the call goes on no card", raw,
                "" if region else " (national numbers need SWITCHBOARD_PHONE_REGION)")
    return raw, None


async def apply_call_event(rt: Runtime, event: CallEvent) -> dict[str, Any]:
    """Record the event, pop or update the consoles, and log the call when it ended; what happened, for the
    reporter."""
    change = await rt.service.record_call_event(event)
    await tell(rt, change)
    call = change.call
    body: dict[str, Any] = {"call_id": call.call_id, "state": str(call.state)}
    if event.kind == "hangup" and call.logged_call_id is None:
        body |= await log_ended(rt, change)
    return body


async def log_ended(rt: Runtime, change: CallChange) -> dict[str, Any]:
    """Log the ended call through the path `POST /api/v1/calls` takes; once, whoever reports it."""
    inbound = ended_call_inbound(change.call)

    async def park(error: str, attempts: int) -> int:
        return await rt.service.park(CHANNEL, change.call.call_id, error, payload=None, attempts=attempts)

    outcome = await store_or_park(lambda: rt.service.log_calls([inbound]), park, passes=(DomainError,),
                                  what=f"call {change.call.call_id}")
    if isinstance(outcome, ParkedItem):
        return {"logged": False, "parked": outcome.number}
    (result,) = outcome
    assert result.call is not None
    await rt.service.mark_call_logged(change.call.call_id, result.call.id)
    await tell(rt, change, logged=True)
    return {"logged": True, "duplicate": result.duplicate, "ticket": result.ticket.id if result.ticket else None}


async def tell(rt: Runtime, change: CallChange, *, logged: bool = False) -> None:
    """Best effort: a console that misses it still shows the call in the caller log and on the card."""
    try:
        await RedisCallFeed(rt.redis).changed(change.call.call_id, "logged" if logged else str(change.call.state),
                                              change.agents)
    except (RedisError, OSError) as exc:
        log.warning("call %s: the consoles were not told (%r)", change.call.call_id, exc)
