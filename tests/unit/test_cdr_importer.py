"""The CDR importer's bookkeeping against a stand-in call log: counts, batches, and a row the store refuses."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from channels.phone.cdr import CdrRejection
from channels.phone.importer import ImportSummary, import_cdr
from tickets.calls import CallResult
from tickets.errors import InvalidInput, StoreUnavailable
from tickets.inbound import Inbound
from tickets.models import Call, CallDisposition, Direction, Ticket

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "cdr"


class StandInLog:
    """Records each batch; refuses any batch holding `refuse`, and fails entirely after `outage_after` batches."""

    def __init__(self, refuse: str | None = None, outage_after: int | None = None) -> None:
        self.batches: list[list[str]] = []
        self.refuse = refuse
        self.outage_after = outage_after
        self.seen: set[str] = set()
        self.refreshed_after: list[int] = []

    async def refresh_call_statistics(self) -> None:
        self.refreshed_after.append(len(self.batches))

    async def log_calls(self, inbounds: list[Inbound]) -> list[CallResult]:
        if self.outage_after is not None and len(self.batches) >= self.outage_after:
            raise StoreUnavailable("database unavailable: OSError")
        ids = [i.external_id or "" for i in inbounds]
        self.batches.append(ids)
        if self.refuse in ids:
            raise InvalidInput({"call_id": f"refused {self.refuse}"})
        results = []
        for inbound in inbounds:
            assert inbound.call is not None and inbound.external_id is not None
            call = Call(call_id=inbound.external_id, direction=Direction(inbound.call.direction),
                        disposition=CallDisposition(inbound.call.disposition), started_at=datetime.now(UTC))
            missed = inbound.call.missed and bool(inbound.identities)
            ticket = Ticket(category="callback") if missed else None
            duplicate = inbound.external_id in self.seen
            self.seen.add(inbound.external_id)
            results.append(CallResult(call.call_id, call, ticket, created=missed and not duplicate,
                                      duplicate=duplicate))
        return results


async def run(log: StandInLog, name: str = "master_18.csv", batch: int = 3) -> tuple[ImportSummary, list[CdrRejection]]:
    rejected: list[CdrRejection] = []
    summary = await import_cdr(CORPUS / name, log, default_region="RU", tz=UTC,
                               inbound_contexts=["from-pstn", "from-trunk", "incoming"], on_rejection=rejected.append,
                               batch=batch)
    return summary, rejected


async def test_rows_go_in_batches_and_every_row_is_counted_once() -> None:
    log = StandInLog()
    summary, rejected = await run(log)
    assert [len(b) for b in log.batches] == [3, 3, 2]
    assert log.refreshed_after == [2]  # the tables' statistics, once they hold some calls
    assert (summary.imported, summary.duplicates, summary.rejected, summary.rows) == (8, 0, 0, 8)
    assert summary.callbacks == 3  # the missed, busy and failed calls with a number
    assert summary.bytes_read == (CORPUS / "master_18.csv").stat().st_size and rejected == []


async def test_a_row_the_store_refuses_is_rejected_alone_and_the_rest_of_its_batch_is_stored() -> None:
    log = StandInLog(refuse="1772438400.5")
    summary, rejected = await run(log)
    assert (summary.imported, summary.rejected) == (7, 1)
    assert [(r.line, r.reason) for r in rejected] == [
        (3, "not stored: InvalidInput: call_id: refused 1772438400.5")]
    # The refused batch was tried whole once, then row by row.
    assert log.batches[0] == log.batches[1] + log.batches[2] + log.batches[3]


async def test_an_outage_stops_the_import_instead_of_rejecting_rows() -> None:
    with pytest.raises(StoreUnavailable):
        await run(StandInLog(outage_after=1))


async def test_parse_errors_are_reported_with_their_lines_and_internal_calls_only_counted() -> None:
    summary, rejected = await run(StandInLog(), name="malformed.csv", batch=500)
    assert summary.rejected == len(rejected) == 6
    assert [r.line for r in rejected] == [2, 4, 6, 8, 13, 15]
    assert summary.internal == 0
