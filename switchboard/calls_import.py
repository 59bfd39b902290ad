"""`switchboard calls import`: the progress bar, the rejections spill file and the summary around the importer."""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tqdm import tqdm

from channels.phone.cdr import CdrRejection
from channels.phone.importer import ImportSummary, import_cdr
from switchboard.errors import CliError
from switchboard.settings import Settings
from tickets.errors import StoreUnavailable

SHOWN_REJECTIONS = 1000
"""Rejections printed in the summary; all of them go to --rejects."""


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CliError(f"--timezone: unknown time zone {name!r} (e.g. Europe/Moscow, UTC)") from None


async def run_import(settings: Settings, service: Any, args: argparse.Namespace) -> int:
    paths = [Path(name) for name in args.files]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise CliError(f"no such file: {', '.join(missing)}")
    tz = _zone(args.timezone or settings.phone.timezone or settings.calendar.timezone)
    region = args.region or settings.phone_region
    spill = await asyncio.to_thread(tempfile.TemporaryFile, "w+", encoding="utf-8", newline="")
    rejects: IO[str] | None = (
        await asyncio.to_thread(open, args.rejects, "w", encoding="utf-8", newline="") if args.rejects else None
    )
    writer = csv.writer(rejects) if rejects else None
    if writer:
        writer.writerow(["file", "line", "reason", "row"])
    totals = ImportSummary()
    try:
        for path in paths:
            size = (await asyncio.to_thread(path.stat)).st_size
            bar = tqdm(total=size, unit="B", unit_scale=True, desc=path.name, file=sys.stderr,
                       disable=not args.progress, mininterval=0.5, dynamic_ncols=True)

            def progress(summary: ImportSummary, bar: tqdm = bar) -> None:
                bar.update(summary.bytes_read - bar.n)
                bar.set_postfix(imported=summary.imported, skipped=summary.skipped, rejected=summary.rejected,
                                refresh=False)

            def rejected(rejection: CdrRejection, name: str = path.name) -> None:
                spill.write(f"{name}\t{rejection.line}\t{rejection.reason}\n")
                if writer:
                    writer.writerow([name, rejection.line, rejection.reason, rejection.raw])

            try:
                summary = await import_cdr(
                    path, service, default_region=region, tz=tz, inbound_contexts=settings.phone.inbound_contexts,
                    on_progress=progress, on_rejection=rejected,
                )
            except StoreUnavailable as exc:
                raise CliError(f"{exc} while importing {path}; run the same command again: "
                               "calls already imported are skipped") from exc
            finally:
                bar.close()
            _add(totals, summary)
        await asyncio.to_thread(_print_summary, totals, spill, len(paths) > 1, args.rejects)
    finally:
        await asyncio.to_thread(spill.close)
        if rejects:
            await asyncio.to_thread(rejects.close)
    return 0


def _add(totals: ImportSummary, summary: ImportSummary) -> None:
    for count in fields(ImportSummary):
        setattr(totals, count.name, getattr(totals, count.name) + getattr(summary, count.name))


def _print_summary(totals: ImportSummary, spill: IO[str], several: bool, rejects_path: str | None) -> None:
    card_only = totals.imported - totals.callbacks - totals.new_tickets - totals.on_tickets
    print(f"imported {totals.imported} calls: {totals.callbacks} callback tickets opened, "
          f"{totals.new_tickets} other tickets opened, {totals.on_tickets} added to open tickets, "
          f"{card_only} on customer cards only")
    print(f"skipped {totals.skipped}: {totals.duplicates} already imported, {totals.internal} internal calls")
    print(f"rejected {totals.rejected}" + (":" if totals.rejected else ""))
    spill.seek(0)
    for shown, entry in enumerate(spill):
        if shown == SHOWN_REJECTIONS:
            rest = totals.rejected - SHOWN_REJECTIONS
            hint = f" (all are in {rejects_path})" if rejects_path else " (use --rejects FILE to save them all)"
            print(f"  … and {rest} more{hint}")
            break
        name, line, reason = entry.rstrip("\n").split("\t", 2)
        print(f"  {name + ' ' if several else ''}line {line}: {reason}")
