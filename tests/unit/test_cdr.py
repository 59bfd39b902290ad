"""Asterisk cdr-csv rows become call records; bad rows become rejections with line and reason."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from channels.phone.cdr import CdrLines, CdrRejection, CdrRow, read_cdr

CORPUS = Path(__file__).parent.parent / "corpus" / "cdr"
MOSCOW = ZoneInfo("Europe/Moscow")


def _read(name: str, **kwargs) -> list[CdrRow | CdrRejection]:
    with (CORPUS / name).open("rb") as binary:
        return list(read_cdr(CdrLines(binary), **kwargs))


def _rows(results) -> list[CdrRow]:
    return [r for r in results if isinstance(r, CdrRow)]


def _rejections(results) -> list[CdrRejection]:
    return [r for r in results if isinstance(r, CdrRejection)]


def test_eighteen_column_file_gives_every_kind_of_call() -> None:
    results = _read("master_18.csv", default_region="RU", tz=MOSCOW)
    assert _rejections(results) == []
    by_line = {r.line: r for r in results}
    assert sorted(by_line) == [1, 2, 3, 4, 5, 6, 7, 8]

    answered = by_line[1]
    assert answered.record_id == "1772434800.1"
    assert (answered.caller, answered.caller_name) == ("+74951234567", "Ivan Petrov")
    assert answered.called is None  # dst "s" is not a number
    assert (answered.extension, answered.direction, answered.disposition) == ("201", "in", "answered")
    assert answered.started_at == datetime(2026, 3, 2, 10, 0, 0, tzinfo=MOSCOW)
    assert answered.started_at.astimezone(UTC) == datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    assert answered.answered_at == datetime(2026, 3, 2, 10, 0, 7, tzinfo=MOSCOW)
    assert answered.ended_at == datetime(2026, 3, 2, 10, 5, 7, tzinfo=MOSCOW)
    assert (answered.duration, answered.talk_time) == (307, 300)
    assert (answered.accountcode, answered.dcontext) == ("support", "from-pstn")

    missed = by_line[2]
    assert (missed.caller, missed.caller_name) == ("+442079460958", "Jane Smith")
    assert (missed.direction, missed.extension, missed.disposition) == ("in", "202", "missed")
    assert missed.answered_at is None and missed.talk_time == 0

    busy = by_line[3]
    assert (busy.caller, busy.caller_name, busy.called) == ("+79031234567", None, "+74957771122")
    assert (busy.disposition, busy.userfield) == ("busy", "vip")

    failed = by_line[4]
    assert (failed.caller, failed.extension, failed.disposition) == ("+74951112233", "203", "failed")

    withheld = by_line[5]
    assert (withheld.caller, withheld.caller_name, withheld.direction) == (None, None, "in")
    assert withheld.disposition == "answered" and withheld.extension == "201"

    outbound = by_line[6]
    assert (outbound.direction, outbound.extension) == ("out", "201")
    assert (outbound.caller, outbound.called) == (None, "+74959876543")
    assert outbound.caller_name == "Olga (agent)"

    congestion = by_line[7]
    assert (congestion.direction, congestion.called, congestion.disposition) == ("out", "+442079460321", "failed")
    assert congestion.answered_at is None

    empty_src = by_line[8]
    assert (empty_src.caller, empty_src.direction, empty_src.disposition) == (None, "in", "missed")


def test_rows_are_frozen() -> None:
    row = _rows(_read("master_18.csv", default_region="RU"))[0]
    with pytest.raises(AttributeError):
        row.caller = "+10000000000"  # type: ignore[misc]


def test_default_timezone_is_utc() -> None:
    row = _rows(_read("master_18.csv", default_region="RU"))[0]
    assert row.started_at == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert row.started_at.utcoffset().total_seconds() == 0


def test_local_numbers_without_a_region_are_rejected_with_the_reason() -> None:
    results = _read("master_18.csv")  # no default region: "8495…" cannot become E.164
    rejected = {r.line: r.reason for r in _rejections(results)}
    assert rejected[1] == "bad caller number '84951234567': include the country code, e.g. +44 20 7946 0958"
    # international and withheld callers still parse
    assert {r.line for r in _rows(results)} >= {2, 5, 8}


def test_sixteen_column_file_skips_its_header_and_gets_stable_fallback_ids() -> None:
    first = _read("master_16.csv", default_region="GB", tz=ZoneInfo("Europe/London"))
    second = _read("master_16.csv", default_region="GB", tz=ZoneInfo("Europe/London"))
    assert _rejections(first) == []
    rows = _rows(first)
    assert [r.line for r in rows] == [2, 3, 4]  # line 1 is the header
    ids = [r.record_id for r in rows]
    assert all(i.startswith("cdr:") and len(i) == 4 + 40 for i in ids)
    assert len(set(ids)) == 3  # the two calls from Jane differ only in time: still distinct
    assert ids == [r.record_id for r in _rows(second)]
    assert rows[2].direction == "out" and rows[2].called == "+442079460000" and rows[2].extension == "201"
    assert rows[0].userfield == "" and rows[0].caller == "+442079460958"


def test_fallback_id_does_not_depend_on_line_endings_or_position() -> None:
    text = (CORPUS / "master_16.csv").read_text(encoding="utf-8")
    body = text.splitlines()[1:]
    crlf = list(read_cdr(io.StringIO("\r\n".join(reversed(body)) + "\r\n", newline=""), default_region="GB"))
    plain = _read("master_16.csv", default_region="GB")
    assert sorted(r.record_id for r in crlf) == sorted(r.record_id for r in plain)


def test_malformed_rows_are_rejected_one_by_one_and_the_good_ones_around_them_parse() -> None:
    results = _read("malformed.csv", default_region="RU", tz=MOSCOW)
    rejected = {r.line: r.reason for r in _rejections(results)}
    assert rejected == {
        2: "bad start date '2026-13-01 02:00:00'",
        4: "15 columns expected at least, got 9",
        6: "unbalanced quotes: ',' expected after '\"'",
        8: "unknown disposition 'WEIRD'",
        13: "unbalanced quotes: a quoted field is not closed before the next row",
        15: "bad duration 'sixty': whole seconds expected",
    }
    rows = _rows(results)
    assert [r.line for r in rows] == [1, 3, 5, 7, 9, 11, 14, 16]
    assert [r.record_id for r in rows] == [
        "1772582400.1", "1772589600.3", "1772596800.5", "1772607600.7",
        "1772614800.9", "1772622000.11", "1772632800.14", "1772640000.16",
    ]
    assert all(r.caller == "+74951234567" and r.disposition == "answered" for r in rows)
    multiline = next(r for r in rows if r.line == 9)
    assert multiline.userfield == "callback requested\nafter 18:00"
    # a rejection carries the row's own text, not its neighbours'
    unclosed = next(r for r in _rejections(results) if r.line == 13)
    assert unclosed.raw.endswith('"1772629200.13","call back') and "\n" not in unclosed.raw


def test_unclosed_quote_on_the_last_row_is_rejected_at_end_of_file() -> None:
    lines = (CORPUS / "malformed.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    results = list(read_cdr([*lines[:2], lines[12]], default_region="RU"))
    assert isinstance(results[0], CdrRow)
    assert isinstance(results[1], CdrRejection) and results[1].line == 2
    assert isinstance(results[2], CdrRejection) and results[2].line == 3
    assert results[2].reason.startswith("unbalanced quotes")


def test_same_uniqueid_in_two_files_gives_the_same_record_id() -> None:
    first = {r.record_id: r for r in _rows(_read("master_18.csv", default_region="RU"))}
    second = _rows(_read("master_18_overlap.csv", default_region="RU"))
    shared = [r for r in second if r.record_id in first]
    assert [r.record_id for r in shared] == ["1772445600.11", "1772442000.9"]
    for again in shared:
        original = first[again.record_id]
        assert again.line != original.line
        assert (again.caller, again.called, again.started_at) == (original.caller, original.called, original.started_at)
    assert [r.record_id for r in second if r.record_id not in first] == ["1772456400.20"]


def test_other_rejections_and_edge_cases() -> None:
    base = ['""', '"+442079460958"', '"201"', '"from-pstn"', '""', '"SIP/t-1"', '"SIP/201-2"', '"Dial"', '""',
            '"2026-03-02 10:00:00"', '""', '"2026-03-02 10:00:20"', "20", "0", '"NO ANSWER"']
    def line(*changes: tuple[int, str], extra: list[str] = ()) -> str:
        cells = list(base)
        for index, value in changes:
            cells[index] = value
        return ",".join(cells + list(extra)) + "\n"

    results = list(read_cdr([
        line(extra=['""', '""', '""', '"x"']),            # 19 columns
        line((11, '""')),                                   # no end date
        line((13, "-5")),                                   # negative billsec
        line((1, '"202"'), (3, '"from-internal"')),         # extension to extension
        line((1, '"restricted"'), (14, '"answered"')),      # lower-case disposition, withheld
        line((1, '"12"'), (2, '"+7 (495) 123-45-67"'), (3, '"from-internal"')),  # extension dials formatted number
    ], default_region="RU"))
    assert [(r.line, r.reason) for r in _rejections(results)] == [
        (1, "18 columns expected at most, got 19"),
        (2, "bad end date ''"),
        (3, "bad billsec '-5': whole seconds expected"),
        (4, "internal call, not a customer call: from '202' to '201' in context 'from-internal'"),
    ]
    withheld, dialled = _rows(results)
    assert (withheld.line, withheld.caller, withheld.disposition, withheld.answered_at) == (5, None, "answered", None)
    assert (dialled.direction, dialled.extension, dialled.called) == ("out", "12", "+74951234567")


def test_bom_blank_lines_and_custom_inbound_contexts() -> None:
    row = ('"","84951234567","s","pstn-in","","SIP/t-1","SIP/305-2","Dial","","2026-03-02 10:00:00",'
           '"2026-03-02 10:00:01","2026-03-02 10:00:20",20,19,"ANSWERED","DOCUMENTATION","1.1",""\n')
    default = list(read_cdr(["\ufeff\n", "\n", row], default_region="RU"))
    assert [type(r) for r in default] == [CdrRow] and default[0].line == 3
    # "s" is no extension and "pstn-in" unknown: rule 4 (external caller) still says "in"
    assert default[0].direction == "in" and default[0].extension == "305"
    callback = row.replace('"84951234567","s"', '"201","84951234567"')  # an extension, a public number
    assert next(read_cdr([callback], default_region="RU")).direction == "out"
    custom = next(read_cdr([callback], default_region="RU", inbound_contexts={"PSTN-IN"}))
    assert (custom.direction, custom.called, custom.extension) == ("in", "+74951234567", "305")


def test_read_cdr_is_lazy() -> None:
    pulled = 0
    row = ('"","84951234567","201","from-pstn","","SIP/t-1","SIP/201-2","Dial","","2026-03-02 10:00:00",'
           '"","2026-03-02 10:00:20",20,0,"NO ANSWER","DOCUMENTATION","{n}",""\n')

    def lines() -> Iterator[str]:
        nonlocal pulled
        for n in range(200_000):
            pulled += 1
            yield row.format(n=n)

    stream = read_cdr(lines(), default_region="RU")
    first = [next(stream) for _ in range(10)]
    assert [r.record_id for r in first] == [str(n) for n in range(10)]
    assert pulled <= 11
