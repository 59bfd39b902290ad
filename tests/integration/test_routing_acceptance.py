"""Issue 6's acceptance, tried as a new user would: `switchboard serve` with no configuration, the CLI and HTTP.

Three agents in Support, one away: fifty web forms split 25/25 between the two available ones; the third comes
back and takes the next tickets until loads are level. A form in Russian needs the skill `ru` (by a routing
rule) and goes only to agents who have it. With every agent at a capacity of 2, new tickets wait in the queue
until an agent resolves one, and the waiting ticket goes to that agent.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_serve import Serve, cli, http


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """`switchboard serve` on the embedded default; fifty forms from one address need the rate limit off."""
    server = Serve(tmp_path, {"SWITCHBOARD_HTTP_FORM_RATE_LIMIT": "0"})
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


class Desk:
    """What the user types and calls: the CLI beside the running serve, and its HTTP API."""

    def __init__(self, serve: Serve) -> None:
        self.serve = serve
        self.tokens: dict[str, str] = {}
        self.ids: dict[str, int] = {}

    def cli(self, *args: str) -> str:
        result = cli(self.serve.cwd, self.serve.env, *args)
        assert result.returncode == 0, f"switchboard {' '.join(args)}: {result.stderr}"
        return result.stdout

    def add_agent(self, name: str, *args: str) -> None:
        self.tokens[name] = self.cli("agent", "add", name, "--email", f"{name.lower()}@example.com", *args) \
            .strip().splitlines()[-1]
        self.ids[name] = next(a["id"] for a in self.agents().values() if a["name"] == name)

    def api(self, method: str, path: str, as_agent: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[as_agent]}", "Content-Type": "application/json"}
        status, text = http(method, f"{self.serve.base}{path}", headers=headers,
                            data=json.dumps(body).encode() if body is not None else None)
        return status, json.loads(text)

    def form(self, n: int, language: str = "en-GB,en;q=0.9", category: str = "question") -> int:
        """A web form from a new client; the browser's Accept-Language is the client's language. The form is answered
        once stored; the ticket is routed a moment later, which the desk shows as its `assigned` or `queued` event."""
        payload = {"name": f"Client {n}", "email": f"client{n}@example.org", "message": f"Question number {n}",
                   "category": category}
        status, text = http("POST", f"{self.serve.base}/api/v1/webform", data=json.dumps(payload).encode(),
                            headers={"Content-Type": "application/json", "Accept-Language": language})
        assert status == 201, text
        number = int(json.loads(text)["number"])
        deadline = time.monotonic() + 10
        while not any(e["kind"] in ("assigned", "queued") for e in self.ticket(number)["events"]):
            assert time.monotonic() < deadline, f"ticket #{number} was not routed within 10 s"
            time.sleep(0.02)
        return number

    def agents(self) -> dict[str, dict[str, Any]]:
        viewer = next(iter(self.tokens))
        status, body = self.api("GET", "/api/v1/agents", viewer)
        assert status == 200, body
        return {a["name"]: a for a in body["items"]}

    def open_tickets(self) -> dict[str, int]:
        return {name: a["open_tickets"] for name, a in self.agents().items()}

    def ticket(self, number: int) -> dict[str, Any]:
        status, body = self.api("GET", f"/api/v1/tickets/{number}", next(iter(self.tokens)))
        assert status == 200, body
        return body

    def holder(self, number: int) -> str | None:
        assignee = self.ticket(number)["assignee_id"]
        return next((name for name, i in self.ids.items() if i == assignee), None) if assignee else None

    def events(self, number: int, kind: str) -> list[str]:
        return [e["reason"] for e in self.ticket(number)["events"] if e["kind"] == kind]


def test_fifty_forms_split_between_available_agents_and_a_returning_agent_catches_up(serve: Serve) -> None:
    desk = Desk(serve)
    for name in ("Anna", "Boris", "Vera"):
        desk.add_agent(name, "--capacity", "30")
    assert "  away  0/30 open" in desk.cli("agent", "set", "vera@example.com", "--presence", "away")

    first = [desk.form(n) for n in range(50)]
    agents = desk.agents()
    assert {n: (a["open_tickets"], a["load"], a["presence"]) for n, a in agents.items()} == {
        "Anna": (25, 25.0, "available"), "Boris": (25, 25.0, "available"), "Vera": (0, 0.0, "away")}
    assert Counter(desk.holder(n) for n in first[-4:]) == {"Anna": 2, "Boris": 2}
    assert desk.events(first[-1], "assigned")[0].startswith("least-loaded: 24 open; next best 25 open")

    status, me = desk.api("PATCH", "/api/v1/agents/me", "Vera", {"presence": "available"})
    assert status == 200 and me["presence"] == "available" and me["open_tickets"] == 0, me
    catching_up = [desk.form(n) for n in range(50, 75)]
    assert [desk.holder(n) for n in catching_up] == ["Vera"] * 25
    assert desk.events(catching_up[0], "assigned") == ["least-loaded: 0 open; next best 25 open"]
    assert desk.open_tickets() == {"Anna": 25, "Boris": 25, "Vera": 25}

    level = [desk.form(n) for n in range(75, 78)]
    assert sorted(desk.holder(n) for n in level) == ["Anna", "Boris", "Vera"]
    assert desk.open_tickets() == {"Anna": 26, "Boris": 26, "Vera": 26}


def test_a_russian_form_goes_only_to_agents_with_the_skill_ru(serve: Serve) -> None:
    desk = Desk(serve)
    for name in ("Anna", "Boris", "Vera"):
        desk.add_agent(name)
    assert desk.cli("skill", "add", "ru", "--description", "Russian-speaking clients").startswith("added skill ru")
    assert desk.cli("agent", "set", "vera@example.com", "--add-skill", "ru").rstrip().endswith("skills: ru")
    rule = desk.cli("rule", "add", "--language", "ru", "--skill", "ru")
    assert rule.startswith("added rule #") and "when language=ru  then skills=ru" in rule
    rule_id = rule.split("#")[1].split()[0]
    assert {n: a["skills"] for n, a in desk.agents().items()} == {"Anna": [], "Boris": [], "Vera": ["ru"]}

    russian = [desk.form(n, language="ru-RU,ru;q=0.9,en;q=0.8") for n in range(3)]
    assert [desk.holder(n) for n in russian] == ["Vera"] * 3  # even once she is the busiest
    assert f"routing rules #{rule_id}" in desk.events(russian[2], "created")[0]
    assert desk.events(russian[2], "assigned") == ["least-loaded: 2 open; the only agent who could take it"]
    english = [desk.form(n) for n in range(3, 5)]
    assert sorted(desk.holder(n) for n in english) == ["Anna", "Boris"]

    status, _ = desk.api("PATCH", "/api/v1/agents/me", "Vera", {"presence": "away"})
    assert status == 200
    waiting = desk.form(5, language="ru")
    ticket = desk.ticket(waiting)
    assert (ticket["status"], ticket["assignee_id"]) == ("new", None)
    assert desk.events(waiting, "queued") == ["no available agent has the skills ru"]
    assert desk.holder(desk.form(6)) in ("Anna", "Boris")  # English forms do not wait behind it

    back = desk.cli("agent", "set", "vera@example.com", "--presence", "available")
    assert "  available  4/10 open" in back, back
    assert desk.holder(waiting) == "Vera"
    assert desk.events(waiting, "assigned")[0].startswith("from the queue, least-loaded: 3 open")
    assert desk.open_tickets() == {"Anna": 2, "Boris": 1, "Vera": 4}  # idle longest wins a tie


def test_full_agents_leave_new_tickets_queued_until_one_is_resolved(serve: Serve) -> None:
    desk = Desk(serve)
    for name in ("Anna", "Boris", "Vera"):
        desk.add_agent(name, "--capacity", "2")
    seated = [desk.form(n) for n in range(6)]
    assert desk.open_tickets() == {"Anna": 2, "Boris": 2, "Vera": 2}
    assert Counter(desk.holder(n) for n in seated) == {"Anna": 2, "Boris": 2, "Vera": 2}

    queued = [desk.form(n) for n in range(6, 8)]
    for number in queued:
        ticket = desk.ticket(number)
        assert (ticket["status"], ticket["assignee_id"]) == ("new", None)
        assert desk.events(number, "queued") == ["every available agent is at capacity"]
    assert desk.open_tickets() == {"Anna": 2, "Boris": 2, "Vera": 2}

    resolver = desk.holder(seated[1])
    assert resolver is not None
    status, body = desk.api("PATCH", f"/api/v1/tickets/{seated[1]}", resolver, {"status": "resolved"})
    assert status == 200 and body["status"] == "resolved", body

    first_waiting = desk.ticket(queued[0])
    assert (first_waiting["status"], desk.holder(queued[0])) == ("open", resolver)
    assert desk.events(queued[0], "assigned")[0].startswith("from the queue, least-loaded: 1 open")
    assert desk.ticket(queued[1])["assignee_id"] is None  # one seat freed, one ticket moved
    assert desk.open_tickets() == {"Anna": 2, "Boris": 2, "Vera": 2}
