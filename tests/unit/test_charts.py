"""The dashboard's SVG bars: labels that fit are shown whole, longer ones cut with the whole label on hover, every
label escaped, and each series in the colour the caller gave it."""

from __future__ import annotations

import re

from desk.console.charts import IN_TIME, LABEL_CHARS, LATE, NOT_DUE, Bar, bars


def test_a_long_label_is_cut_with_an_ellipsis_and_shown_whole_on_hover() -> None:
    long = "critical_defect: unprocessed at the end of day 1"
    assert len(long) > LABEL_CHARS
    svg = str(bars("Steps kept", ["in time", "late", "not yet due"],
                   [Bar(long, [3, 1, 2], "75 %"), Bar("request: <b>reassign</b>", [1, 0, 0], "100 %")],
                   colours=(IN_TIME, LATE, NOT_DUE)))
    cut = re.search(r'text-anchor="end"><title>([^<]+)</title>([^<]+)</text>', svg)
    assert cut and cut.group(1) == long and cut.group(2) == long[:LABEL_CHARS - 1] + "…"
    assert ">request: &lt;b&gt;reassign&lt;/b&gt;</text>" in svg and "<b>" not in svg
    assert re.findall(r'<rect x="[\d.]+" y="30" width="12" height="12" fill="([^"]+)"/>', svg) == [
        IN_TIME, LATE, NOT_DUE]
