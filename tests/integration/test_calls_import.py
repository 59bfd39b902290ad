"""`switchboard calls import` as a user runs it: real CDR files, a real database, the real command in a subprocess."""

from __future__ import annotations

import asyncio
import csv
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from switchboard.bootstrap import Runtime
from tests.conftest import REPO
from tickets.models import Role

CORPUS = REPO / "tests" / "corpus" / "cdr"


def command_env(database_url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    return {**env, "SWITCHBOARD_DATABASE_URL": database_url, "SWITCHBOARD_DATA_DIR": str(data_dir),
            "SWITCHBOARD_PHONE_REGION": "RU"}


async def switchboard(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "switchboard.cli", *args], cwd=REPO, env=env, capture_output=True,
        text=True, timeout=120,
    )


async def test_import_reports_progress_opens_routed_callbacks_and_is_safe_to_run_again(
    database_url: str, tmp_path: Path, runtime: Runtime
) -> None:
    env = command_env(database_url, tmp_path / "data")
    for extension in ("201", "202"):
        added = await switchboard(env, "agent", "add", f"Agent {extension}", "--email", f"a{extension}@example.com",
                                  "--extension", extension)
        assert added.returncode == 0, added.stderr

    first = await switchboard(env, "calls", "import", str(CORPUS / "master_18.csv"), str(CORPUS / "malformed.csv"))
    assert first.returncode == 0, first.stderr
    assert "master_18.csv: 100%" in first.stderr and "malformed.csv: 100%" in first.stderr  # the progress bars
    lines = first.stdout.splitlines()
    assert lines[:3] == [
        "imported 16 calls: 3 callback tickets opened, 0 other tickets opened, 0 added to open tickets, "
        "13 on customer cards only",
        "skipped 0: 0 already imported, 0 internal calls",
        "rejected 6:",
    ]
    assert lines[3:] == [
        "  malformed.csv line 2: bad start date '2026-13-01 02:00:00'",
        "  malformed.csv line 4: 15 columns expected at least, got 9",
        "  malformed.csv line 6: unbalanced quotes: ',' expected after '\"'",
        "  malformed.csv line 8: unknown disposition 'WEIRD'",
        "  malformed.csv line 13: unbalanced quotes: a quoted field is not closed before the next row",
        "  malformed.csv line 15: bad duration 'sixty': whole seconds expected",
    ]

    manager, _ = await runtime.service.add_agent("Mia", "mia@example.com", role=Role.manager, groups=[])
    callbacks = (await runtime.service.list_tickets(manager)).tickets
    assert len(callbacks) == 3
    assert all(t.category == "callback" and t.channel == "phone" and t.assignee_id is not None for t in callbacks)
    assert {t.assignee_id for t in callbacks} == {a.agent.id for a in await runtime.service.list_agents()
                                                   if a.agent.extension in ("201", "202")}
    jane = next(t for t in callbacks if "+442079460958" in t.subject)
    view = await runtime.service.get_ticket(manager, jane.id)
    assert [(d.regulation, str(d.status)) for d in view.deadlines] == [("callback", "pending")]
    assert [(str(c.disposition), c.extension) for c in view.calls] == [("missed", "202")]

    again = await switchboard(env, "calls", "import", "--no-progress", str(CORPUS / "master_18.csv"),
                              str(CORPUS / "master_18_overlap.csv"))
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[:2] == [  # the overlapping export brings one new call
        "imported 1 calls: 0 callback tickets opened, 0 other tickets opened, 0 added to open tickets, "
        "1 on customer cards only",
        "skipped 10: 10 already imported, 0 internal calls",
    ]
    assert "100%" not in again.stderr
    assert len((await runtime.service.list_tickets(manager)).tickets) == 3


async def test_a_client_who_called_and_then_wrote_has_one_card_with_both(
    database_url: str, tmp_path: Path, runtime: Runtime
) -> None:
    env = command_env(database_url, tmp_path / "data")
    master = tmp_path / "Master.csv"
    master.write_text(
        '"support","+74951234567","201","from-pstn","""Ivan Petrov"" <+74951234567>","SIP/trunk-1","","Dial",'
        '"SIP/201,30","2026-03-02 10:00:00","","2026-03-02 10:00:25",25,0,"NO ANSWER","DOCUMENTATION","1.1",""\n'
        '"support","+74957654321","201","from-pstn","+74957654321","SIP/trunk-2","SIP/201-2","Dial","SIP/201,30",'
        '"2026-03-02 10:05:00","2026-03-02 10:05:04","2026-03-02 10:09:04",244,240,"ANSWERED","DOCUMENTATION",'
        '"1.2",""\n'
        '"support","201","202","from-internal","201","SIP/201-3","SIP/202-4","Dial","SIP/202",'
        '"2026-03-02 10:10:00","2026-03-02 10:10:02","2026-03-02 10:11:00",60,58,"ANSWERED","DOCUMENTATION","1.3",""\n',
        encoding="utf-8",
    )
    await runtime.service.add_agent("Anna", "anna@example.com", extension="201")
    result = await switchboard(env, "calls", "import", "--no-progress", "--rejects", str(tmp_path / "rejects.csv"),
                               str(master))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "imported 2 calls: 1 callback tickets opened, 0 other tickets opened, 0 added to open tickets, "
        "1 on customer cards only",
        "skipped 1: 0 already imported, 1 internal calls",
        "rejected 0",
    ]
    with (tmp_path / "rejects.csv").open(newline="", encoding="utf-8") as rejects:
        assert list(csv.reader(rejects)) == [["file", "line", "reason", "row"]]

    # Ivan writes in through the form with the number he called from: the same card, both tickets on it.
    from tickets.inbound import Identity, Inbound

    written = await runtime.service.ingest(Inbound(
        channel="webform", identities=(Identity("email", "ivan@example.com"), Identity("phone", "+74951234567")),
        body_text="I called this morning", external_id="form:ivan"))
    manager, _ = await runtime.service.add_agent("Mia", "mia@example.com", role=Role.manager, groups=[])
    card = await runtime.service.get_customer(manager, written.ticket.customer_id)
    assert card.customer.name == "Ivan Petrov"
    assert sorted(t.channel for t in card.tickets) == ["phone", "webform"]
    assert [(c.call_id, str(c.disposition)) for c in card.calls] == [("1.1", "missed")]


async def test_bad_arguments_are_plain_errors(database_url: str, tmp_path: Path, runtime: Any) -> None:
    env = command_env(database_url, tmp_path / "data")
    missing = await switchboard(env, "calls", "import", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2 and "no such file" in missing.stderr and "Traceback" not in missing.stderr
    zone = await switchboard(env, "calls", "import", "--timezone", "Mars/Base", str(CORPUS / "master_18.csv"))
    assert zone.returncode == 2 and "unknown time zone 'Mars/Base'" in zone.stderr
    calendar = await switchboard({**env, "SWITCHBOARD_CALENDAR_HOURS": "9-6"}, "calls", "import",
                                 str(CORPUS / "master_18.csv"))
    assert calendar.returncode == 2 and "invalid configuration" in calendar.stderr and "09:00-18:00" in calendar.stderr
