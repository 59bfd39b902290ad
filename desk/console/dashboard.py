"""The manager dashboard: load per agent, queues, regulation compliance, answer and resolution times, tickets
by channel, the overdue list — each chart drawn on the server and downloadable as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from desk.console.auth import Signed, require
from desk.console.charts import IN_TIME, LATE, NOT_DUE, OPEN, SPARE, WAITING, Bar, bars
from desk.console.render import WORDS, language, page, refused
from notifier.alerts import waited
from tickets.models import OPEN_STATUSES
from tickets.numbers import as_id
from tickets.queries.reports import Histogram, Report, Scope
from tickets.queries.staff import AgentView, GroupView
from web.auth import MANAGERS
from web.runtime import runtime


async def _manager(request: web.Request) -> Signed:
    signed = await require(request)
    if signed.agent.role not in MANAGERS:
        raise refused(request, signed, "only_managers")
    return signed


def _bucket_rows(histogram: Histogram, lang: str) -> list[list[Any]]:
    return [[label, count] for label, count in zip(_bucket_labels(histogram, lang), histogram.counts, strict=True)]


def _bucket_labels(histogram: Histogram, lang: str) -> list[str]:
    labels = [f"≤ {waited(bound, lang)}" for bound in histogram.bounds]
    return [*labels, f"> {waited(histogram.bounds[-1], lang)}"]


PERIODS = (7, 14, 30, 90)
"""The windows a manager may look back over (`?days=`), in days."""
STALE_DAYS = 3
"""Days without anything happening that make an active ticket protracted, unless the head says (`?stale=`)."""


@dataclass(frozen=True)
class Asked:
    """What the dashboard looks at, as its address says: a period, and one group's or one agent's tickets."""

    days: int
    group: GroupView | None
    agent: AgentView | None
    groups: list[GroupView]
    """Every group and every agent, read once for the page: the choices, and the charts' rows."""
    agents: list[AgentView]
    stale_days: int = STALE_DAYS
    """A ticket nothing happened on for this long is protracted."""
    band: tuple[int, int] | None = None
    """The head's band for tickets in work per agent (`?band=3-15`): values outside it are highlighted."""

    @classmethod
    async def read(cls, request: web.Request) -> Asked:
        service = runtime(request).service
        query = request.query
        days = int(query["days"]) if query.get("days", "").isdigit() and int(query["days"]) in PERIODS else 14
        groups, agents = await service.list_groups(), await service.list_agents()
        group = next((g for g in groups if g.group.name == query.get("group")), None)
        wanted = as_id(query.get("agent", ""))
        agent = next((a for a in agents if a.agent.id == wanted), None)
        stale = query.get("stale", "")
        stale_days = int(stale) if stale.isdigit() and 1 <= int(stale) <= 90 else STALE_DAYS
        low, _, high = query.get("band", "").partition("-")
        band = (int(low), int(high)) if low.isdigit() and high.isdigit() and int(low) <= int(high) <= 10_000 \
            else None
        return cls(days, group, agent, groups, agents, stale_days, band)

    def out_of_band(self, in_work: int) -> bool:
        return self.band is not None and not self.band[0] <= in_work <= self.band[1]

    @property
    def scope(self) -> Scope:
        return Scope(self.group.group.id if self.group else None, self.agent.agent.id if self.agent else None)

    def query(self, **changes: Any) -> str:
        """This view's address after `?`, with `changes` (a CSV link, another period)."""
        values = {"days": self.days, "group": self.group.group.name if self.group else None,
                  "agent": self.agent.agent.id if self.agent else None,
                  "stale": self.stale_days if self.stale_days != STALE_DAYS else None,
                  "band": f"{self.band[0]}-{self.band[1]}" if self.band else None, **changes}
        return urlencode({k: v for k, v in values.items() if v is not None})


def agents_in(asked: Asked) -> list[AgentView]:
    """The agents the dashboard is scoped to: everyone, one group's, or one agent."""
    return [a for a in asked.agents if (asked.agent is None or a.agent.id == asked.agent.agent.id)
            and (asked.group is None or asked.group.group.name in a.groups)]


async def _tables(request: web.Request, lang: str,
                  asked: Asked) -> tuple[dict[str, tuple[list[str], list[list[Any]]]], Report]:
    """Every chart's data as (columns, rows): what the page draws and the CSV export writes."""
    service = runtime(request).service
    report = await service.report(asked.days, asked.scope)
    indicators = await service.indicators(asked.days, asked.scope, timedelta(days=asked.stale_days))
    agents = agents_in(asked)
    groups = [g for g in asked.groups if asked.group is None or g.group.id == asked.group.group.id]
    channels = sorted({c for day in report.by_channel.values() for c in day})
    names = {v.agent.id: v.agent.name for v in agents}
    tables: dict[str, tuple[list[str], list[list[Any]]]] = {
        "load": (["agent", "presence", "open", "pending", "capacity"],
                 [[v.agent.name, WORDS[lang][str(v.agent.presence)],
                   v.load.open - report.pending_by_agent.get(v.agent.id, 0),
                   report.pending_by_agent.get(v.agent.id, 0), v.agent.capacity] for v in agents]),
        "queues": (["group", "waiting", "agents"], [[g.group.name, g.waiting, g.agents] for g in groups]),
        "compliance": (["regulation", "step", "in_time", "late", "not_due"],
                       [[c.regulation, c.step, c.met, c.late, c.pending] for c in report.compliance]),
        "first_response": (["time", "tickets"], _bucket_rows(report.first_response, lang)),
        "resolution": (["time", "tickets"], _bucket_rows(report.resolution, lang)),
        "channels": (["day", *channels], [[day, *(counts.get(c, 0) for c in channels)]
                                          for day, counts in report.by_channel.items()]),
        "satisfaction": (["score", "answers"], [[score, count] for score, count in enumerate(report.ratings, 1)]),
        "tags": (["tag", "tickets"], [[tag, count] for tag, count in report.tags]),
        "outcomes": (["outcome", "reason", "tickets"],
                     [[WORDS[lang].get(f"outcome_{o}", o), WORDS[lang].get(f"reason_{r}", r) if r else "", n]
                      for o, r, n in report.outcomes]),
        "activities": (["activity", "contacts"], [[WORDS[lang].get(f"activity_{name}", name), n]
                                                  for name, n in report.activities]),
        "indicators": (["agent", "in_work", "planned", "overdue_planned", "first_response_h", "handling_h",
                        "protracted"],
                       [[names[i.agent_id], i.in_work, i.planned, i.overdue_planned, _hours(i.first_response),
                         _hours(i.handling), i.protracted] for i in indicators if i.agent_id in names]),
    }
    return tables, report


async def dashboard(request: web.Request) -> web.Response:
    signed = await _manager(request)
    lang = language(request, signed)
    words = WORDS[lang]
    asked = await Asked.read(request)
    tables, report = await _tables(request, lang, asked)
    load_rows = tables["load"][1]
    charts = {
        "load": bars(words["chart_load"], [words["open"], words["status_pending"], words["free"]],
                     [Bar(name, [working, waiting, max(0, capacity - working - waiting)],
                          f"{working + waiting} / {capacity}")
                      for name, _, working, waiting, capacity in load_rows], colours=(OPEN, WAITING, SPARE)),
        "queues": bars(words["chart_queues"], [words["waiting"]],
                       [Bar(name, [waiting], str(waiting)) for name, waiting, _ in tables["queues"][1]]),
        "compliance": bars(words["chart_compliance"], [words["in_time"], words["late"], words["not_due"]],
                           [Bar(f"{r}: {WORDS[lang].get(f'step_{s}', s)}", [m, late, p],
                                f"{round(100 * m / (m + late)) if m + late else '—'} %")
                            for r, s, m, late, p in tables["compliance"][1]], colours=(IN_TIME, LATE, NOT_DUE)),
        "first_response": _histogram_chart(words["chart_first_response"], tables["first_response"][1], words),
        "resolution": _histogram_chart(words["chart_resolution"], tables["resolution"][1], words),
        "channels": bars(words["chart_channels"], tables["channels"][0][1:],
                         [Bar(day, counts, str(sum(counts))) for day, *counts in tables["channels"][1]]),
        "satisfaction": bars(f"{words['chart_satisfaction']}: "
                             f"{f'{report.satisfaction:.1f} / 5' if report.satisfaction is not None else '—'}",
                             [words["answers"]], [Bar(f"{score} ★", [count], str(count))
                                                  for score, count in tables["satisfaction"][1]]),
        "tags": bars(words["chart_tags"], [words["tickets"]],
                     [Bar(f"#{tag}", [count], str(count)) for tag, count in tables["tags"][1]]),
        "outcomes": bars(words["chart_outcomes"], [words["tickets"]],
                         [Bar(f"{o}: {r}" if r else o, [n], f"{round(100 * n / total)} %")
                          for total in [sum(row[2] for row in tables["outcomes"][1]) or 1]
                          for o, r, n in tables["outcomes"][1]]),
        "activities": bars(words["chart_activities"], [words["contacts"]],
                           [Bar(name, [n], str(n)) for name, n in tables["activities"][1]]),
    }
    overdue = (await runtime(request).service.list_tickets(
        signed.agent, status=list(OPEN_STATUSES), overdue=True, limit=20,
        group=asked.group.group.name if asked.group else None,
        assignee=asked.agent.agent.id if asked.agent else "any")).tickets
    late_plans = await runtime(request).service.overdue_plans([v.agent.id for v in agents_in(asked)])
    return page(request, "dashboard.html", signed, charts=charts, overdue=overdue, since=report.since,
                indicators=tables["indicators"][1], late_plans=late_plans,
                agent_names={v.agent.id: v.agent.name for v in asked.agents},
                now=runtime(request).clock.now(), asked=asked, periods=PERIODS, comments=report.comments,
                groups=[g.group.name for g in asked.groups], agents=[v.agent for v in asked.agents])


def _hours(seconds: float | None) -> str:
    return f"{seconds / 3600:.1f}" if seconds is not None else ""


def _histogram_chart(title: str, rows: Sequence[Sequence[Any]], words: dict[str, str]) -> Any:
    return bars(title, [words["tickets"]], [Bar(label, [count], str(count)) for label, count in rows])


async def export(request: web.Request) -> web.Response:
    signed = await _manager(request)
    tables, _ = await _tables(request, language(request, signed), await Asked.read(request))
    name = request.match_info["chart"]
    if name not in tables:
        raise web.HTTPNotFound(text=f"no chart {name!r}; one of {', '.join(tables)}")
    columns, rows = tables[name]
    words = WORDS[language(request, signed)]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([words.get(f"col_{column}", column) for column in columns])  # a channel's name stays as is
    writer.writerows(rows)
    # The byte-order mark tells Excel the file is UTF-8 (without it, Cyrillic names came out garbled).
    return web.Response(text="\ufeff" + out.getvalue(), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="switchboard-{name}.csv"'})


def routes() -> list[Any]:
    return [web.get("/desk/dashboard", dashboard), web.get("/desk/dashboard/{chart}.csv", export)]
