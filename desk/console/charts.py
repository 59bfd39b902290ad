"""Charts as inline SVG, drawn on the server: the dashboard works offline, with no script and no CDN.

Every label goes through `escape`; the SVG is then marked safe for the template as a whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

PALETTE = ("#457b9d", "#e76f51", "#2a9d8f", "#e9c46a", "#8d99ae", "#6d597a")
OPEN, WAITING, SPARE = "#457b9d", "#e9a23b", "#d5dde6"
"""Load: work in hand, work waiting on the client, room left (grey: nothing to do, not "good")."""
LABEL_CHARS = 36
"""A row label longer than this is cut with an ellipsis (the whole label shows on hover)."""
IN_TIME, LATE, NOT_DUE = "#2a9d8f", "#e76f51", "#d5dde6"
"""Regulation steps: green only ever means "kept in time"."""


@dataclass(frozen=True)
class Bar:
    label: str
    values: Sequence[float]
    """Stacked segments, in the order of the chart's series."""
    note: str = ""
    """Shown after the bar (e.g. "7 / 10")."""


def bars(title: str, series: Sequence[str], rows: Sequence[Bar], *, scale: float | None = None,
         colours: Sequence[str] = PALETTE) -> Markup:
    """Horizontal stacked bars, one row each, with a legend; `scale` is the value of a full-width bar; `colours`
    one per series (the same colour never means two things on one dashboard)."""
    width, label_w, row_h, top = 640, 230, 26, 58
    biggest = scale or max((sum(r.values) for r in rows), default=0) or 1
    height = top + row_h * max(1, len(rows)) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
             f'width="100%" aria-label="{escape(title)}"><title>{escape(title)}</title>'
             f'<text x="0" y="16" font-size="15" font-weight="600">{escape(title)}</text>']
    legend_x = label_w
    for index, name in enumerate(series):
        parts.append(f'<rect x="{legend_x}" y="30" width="12" height="12" fill="{colours[index % len(colours)]}"/>'
                     f'<text x="{legend_x + 16}" y="40" font-size="12">{escape(name)}</text>')
        legend_x += 24 + 7 * len(name)
    plot = width - label_w - 70
    for number, row in enumerate(rows):
        y = top + number * row_h
        cut = len(row.label) > LABEL_CHARS
        shown = (f"<title>{escape(row.label)}</title>{escape(row.label[:LABEL_CHARS - 1])}…" if cut
                 else escape(row.label))
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" font-size="12" text-anchor="end">{shown}</text>')
        x = float(label_w)
        for index, value in enumerate(row.values):
            w = plot * value / biggest
            if w > 0:
                parts.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" '
                             f'fill="{colours[index % len(colours)]}"><title>{escape(series[index])}: '
                             f'{value:g}</title></rect>')
            x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + 15}" font-size="12">{escape(row.note)}</text>')
    if not rows:
        parts.append(f'<text x="{label_w}" y="{top + 15}" font-size="12">—</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
