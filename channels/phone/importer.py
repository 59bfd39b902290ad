"""Importing Asterisk CDR files: stream, batch, log; safe to run again, and a bad row never stops it.

The file is read and parsed in a worker thread one batch at a time (the event loop never blocks on the
disk), each batch is logged in one transaction, and only counts and a spill file of rejections are
kept, so memory stays flat however long the file is. Calls already logged are skipped by their id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Protocol

from channels.phone.cdr import CdrLines, CdrRejection, CdrRow, read_cdr
from channels.phone.entry import cdr_inbound
from tickets.calls import CALLBACK, CallResult
from tickets.errors import StoreUnavailable
from tickets.inbound import Inbound

BATCH = 500
REFRESH_AFTER = (2, 10, 40)
"""Batches after which the store refreshes its table statistics, then every `REFRESH_EVERY` batches."""
REFRESH_EVERY = 100


class CallLog(Protocol):
    async def log_calls(self, inbounds: list[Inbound]) -> list[CallResult]: ...

    async def refresh_call_statistics(self) -> None: ...


@dataclass
class ImportSummary:
    imported: int = 0
    callbacks: int = 0
    """Callback tickets the missed calls opened."""
    new_tickets: int = 0
    """Other tickets opened (answered calls with notes and no open ticket)."""
    on_tickets: int = 0
    """Calls that joined a ticket already open."""
    duplicates: int = 0
    internal: int = 0
    rejected: int = 0
    rows: int = 0
    bytes_read: int = 0

    @property
    def skipped(self) -> int:
        return self.duplicates + self.internal


def merge_legs(items: Iterable[CdrRow | CdrRejection]) -> Iterator[CdrRow | CdrRejection]:
    """One record per call: adjacent rows with the same uniqueid (a ring group's legs) become the leg that was
    answered, else the first; a call that rang three phones is one call, answered if anyone took it."""
    pending: CdrRow | None = None
    for item in items:
        if isinstance(item, CdrRow) and pending is not None and item.record_id == pending.record_id:
            if pending.disposition != "answered" and item.disposition == "answered":
                pending = item
            continue
        if pending is not None:
            yield pending
            pending = None
        if isinstance(item, CdrRow):
            pending = item
        else:
            yield item
    if pending is not None:
        yield pending


async def import_cdr(
    path: Path,
    log: CallLog,
    *,
    default_region: str | None,
    tz: tzinfo,
    inbound_contexts: Iterable[str],
    on_progress: Callable[[ImportSummary], None] = lambda summary: None,
    on_rejection: Callable[[CdrRejection], None] = lambda rejection: None,
    batch: int = BATCH,
) -> ImportSummary:
    """Log every call of one ``Master.csv``; `on_rejection` hears each bad row as it is found (in a worker thread)."""
    summary = ImportSummary()
    binary = await asyncio.to_thread(path.open, "rb")
    try:
        lines = CdrLines(binary)
        items = merge_legs(read_cdr(lines, default_region=default_region, tz=tz, inbound_contexts=inbound_contexts))

        def next_batch() -> list[CdrRow]:
            rows: list[CdrRow] = []
            for item in items:
                if isinstance(item, CdrRow):
                    rows.append(item)
                    if len(rows) >= batch:
                        break
                elif item.internal:
                    summary.internal += 1
                else:
                    summary.rejected += 1
                    on_rejection(item)
            return rows

        batches = 0
        while rows := await asyncio.to_thread(next_batch):
            for result in await _log_batch(log, rows, summary, on_rejection):
                _count(summary, result)
            batches += 1
            if batches in REFRESH_AFTER or batches % REFRESH_EVERY == 0:
                await log.refresh_call_statistics()
            summary.rows += len(rows)
            summary.bytes_read = lines.bytes_read
            on_progress(summary)
        summary.bytes_read = lines.bytes_read
        on_progress(summary)
    finally:
        await asyncio.to_thread(binary.close)
    return summary


async def _log_batch(
    log: CallLog, rows: list[CdrRow], summary: ImportSummary, on_rejection: Callable[[CdrRejection], None]
) -> list[CallResult]:
    """One transaction for the batch; if the store refuses it, row by row, so only the row it refuses is rejected."""
    inbounds = [cdr_inbound(row) for row in rows]
    try:
        return await log.log_calls(inbounds)
    except StoreUnavailable:
        raise
    except Exception:  # noqa: BLE001 - whatever the store refused, the rows alone will say which one
        pass
    results: list[CallResult] = []
    for row, inbound in zip(rows, inbounds, strict=True):
        try:
            results += await log.log_calls([inbound])
        except StoreUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - reported as the row's rejection; the import goes on
            summary.rejected += 1
            reason = f"not stored: {exc.__class__.__name__}: {exc}".splitlines()[0][:300]
            await asyncio.to_thread(on_rejection, CdrRejection(row.line, reason, ""))
    return results


def _count(summary: ImportSummary, result: CallResult) -> None:
    if result.duplicate:
        summary.duplicates += 1
        return
    summary.imported += 1
    if result.created and result.ticket is not None and result.ticket.category == CALLBACK:
        summary.callbacks += 1
    elif result.created:
        summary.new_tickets += 1
    elif result.ticket is not None:
        summary.on_tickets += 1
