"""The routing CLI (`agent list|set`, `skill`, `rule`, `group list`) run as a user runs it, as subprocesses.

Each test runs twice: on the embedded default (no database URL, `./data` under the working directory) and on a
PostgreSQL database given by SWITCHBOARD_DATABASE_URL. Outputs are checked as printed and the state they claim
is read back from the database; a refused command exits 2 with one `switchboard: …` line and changes nothing.
"""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from switchboard.cli import CHANNELS
from tests.conftest import free_port
from tests.integration.test_serve import clean_env, cli
from tickets.db import create_engine
from tickets.models import Agent, AgentSkill, Group, RoutingRule, Skill


@dataclass
class Staff:
    """The CLI pointed at one database, and that database read directly to check what the CLI says."""

    cwd: Path
    env: dict[str, str]
    url: str

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return cli(self.cwd, self.env, *args)

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 0, f"switchboard {' '.join(args)}: {result.stderr}"
        return result.stdout

    def refused(self, *args: str) -> str:
        """The one error line of a command the domain or the CLI refuses."""
        result = self.run(*args)
        assert result.returncode == 2, f"switchboard {' '.join(args)} exited {result.returncode}: {result.stdout}"
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("switchboard: "), result.stderr
        return lines[0]

    def refused_all(self, cases: list[tuple[list[str], str]]) -> None:
        """Refusals change nothing, so they can run side by side; each must name its problem."""
        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(lambda case: self.run(*case[0]), cases))
        for (args, expected), result in zip(cases, results, strict=True):
            assert result.returncode == 2, f"switchboard {' '.join(args)} exited {result.returncode}: {result.stdout}"
            assert expected in result.stderr, f"switchboard {' '.join(args)}: {result.stderr}"
            if not expected.startswith("argument "):  # argparse prints its usage; the rest is one line, no traceback
                lines = result.stderr.strip().splitlines()
                assert len(lines) == 1 and lines[0].startswith("switchboard: "), result.stderr
            assert result.stdout == "", result.stdout

    def add_agent(self, name: str, *args: str) -> int:
        result = self.run("agent", "add", name, *args)
        assert result.returncode == 0, result.stderr
        added = re.search(r"^added agent (\d+) ", result.stderr, re.M)
        assert added, result.stderr
        return int(added.group(1))

    async def rows(self, statement: Any) -> list[Any]:
        engine = create_engine(self.url)
        try:
            async with engine.connect() as connection:
                return list(await connection.execute(statement))
        finally:
            await engine.dispose()


@pytest.fixture
def staff(database_url: str, tmp_path: Path) -> Staff:
    """SQLite runs as the embedded default (the CLI migrates ./data itself); PostgreSQL through its URL."""
    env = clean_env(free_port())
    if database_url.startswith("sqlite"):
        return Staff(tmp_path, env, f"sqlite+aiosqlite:///{tmp_path / 'data' / 'switchboard.db'}")
    env["SWITCHBOARD_DATABASE_URL"] = database_url
    return Staff(tmp_path, env, database_url)


def agent_line(agent_id: int, who: str, presence: str, open_capacity: str, groups: str, skills: str,
               *, role: str = "agent", load: str = "0") -> str:
    return (f"{agent_id:>4}  {who}  {role}  {presence}  {open_capacity} open  load {load}  "
            f"groups: {groups}  skills: {skills}")


async def test_agents_get_skills_presence_capacity_and_groups(staff: Staff) -> None:
    assert staff.ok("skill", "add", "ru", "--description", "Russian-speaking clients") == \
        "added skill ru  Russian-speaking clients\n"
    assert staff.ok("skill", "add", "Billing") == "added skill billing\n"
    assert staff.ok("group", "add", "Sales").startswith("added group ")
    alice = staff.add_agent("Alice", "--email", "alice@example.com", "--skill", "ru", "--capacity", "5")
    bob = staff.add_agent("Bob", "--email", "bob@example.com", "--group", "Sales", "--group", "Support",
                          "--skill", "ru", "--skill", "billing")

    assert staff.ok("agent", "list").splitlines() == [
        agent_line(alice, "Alice <alice@example.com>", "available", "0/5", "Support", "ru"),
        agent_line(bob, "Bob <bob@example.com>", "available", "0/10", "Sales, Support", "billing, ru"),
    ]

    changed = staff.ok("agent", "set", "alice@example.com", "--presence", "away", "--capacity", "3",
                       "--add-skill", "Billing", "--add-group", "Sales")
    assert changed == agent_line(alice, "Alice <alice@example.com>", "away", "0/3", "Sales, Support",
                                 "billing, ru") + "\n"
    changed = staff.ok("agent", "set", str(bob), "--remove-skill", "ru", "--remove-group", "Support",
                       "--add-skill", "billing")  # adding a skill they have already is harmless
    assert changed == agent_line(bob, "Bob <bob@example.com>", "available", "0/10", "Sales", "billing") + "\n"
    staff.ok("agent", "set", "ALICE@example.com", "--presence", "offline", "--remove-skill", "billing",
             "--remove-skill", "ru")

    assert staff.ok("agent", "list").splitlines() == [
        agent_line(alice, "Alice <alice@example.com>", "offline", "0/3", "Sales, Support", "-"),
        agent_line(bob, "Bob <bob@example.com>", "available", "0/10", "Sales", "billing"),
    ]
    stored = await staff.rows(select(Agent.id, Agent.presence, Agent.capacity).order_by(Agent.id))
    assert [(i, str(p), c) for i, p, c in stored] == [(alice, "offline", 3), (bob, "available", 10)]
    held = await staff.rows(select(AgentSkill.agent_id, Skill.name).join(Skill, Skill.id == AgentSkill.skill_id))
    assert sorted(held) == [(bob, "billing")]
    assert sorted(await staff.rows(select(Skill.name, Skill.description))) == [
        ("billing", None), ("ru", "Russian-speaking clients")]

    assert staff.ok("skill", "list").splitlines() == ["billing  1 agent", "ru  0 agents  Russian-speaking clients"]
    assert [re.sub(r"^\s*\d+  ", "", line) for line in staff.ok("group", "list").splitlines()] == [
        "Sales  head: -  2 agents  0 waiting",
        "Support  head: -  1 agent  0 waiting",
    ]


async def test_refused_agent_and_skill_commands_change_nothing(staff: Staff) -> None:
    staff.ok("skill", "add", "ru")
    alice = staff.add_agent("Alice", "--email", "alice@example.com", "--skill", "ru")
    before = staff.ok("agent", "list")
    me = ["agent", "set", "alice@example.com"]
    staff.refused_all([
        (["agent", "set", "nobody@example.com", "--presence", "away"], "switchboard: no agent nobody@example.com"),
        (me, "switchboard: nothing to change: give --presence"),
        ([*me, "--capacity", "0"], "switchboard: --capacity: must be at least 1"),
        # one bad part refuses the whole command: presence and capacity stay as they were
        ([*me, "--presence", "away", "--capacity", "4", "--add-skill", "nope"],
         "no skill named 'nope'; add it with `switchboard skill add`"),
        ([*me, "--presence", "away", "--add-group", "Nowhere"],
         "no group named 'Nowhere'; add it with `switchboard group add`"),
        ([*me, "--remove-skill", "billing"],
         "switchboard: --remove-skill: the agent has no skill 'billing' (their skills: ru)"),
        ([*me, "--add-skill", "ru", "--remove-skill", "RU"],
         "switchboard: --add-skill and --remove-skill both name 'ru'"),
        ([*me, "--presence", "busy"], "argument --presence: invalid choice: 'busy'"),
        (["agent", "add", "Bob", "--email", "bob@example.com", "--skill", "nope"],
         "no skill named 'nope'"),
        (["skill", "add", "bad name"], "a skill is a short name"),
        (["skill", "add", "RU"], "switchboard: skill 'ru' exists already"),
        (["skill", "add", "long", "--description", "x" * 301], "switchboard: --description: at most 300 characters"),
    ])
    assert "an agent works in at least one group" in staff.refused(*me, "--remove-group", "Support")
    assert staff.ok("agent", "list") == before
    assert [a for (a,) in await staff.rows(select(Agent.id))] == [alice]
    assert [s for (s,) in await staff.rows(select(Skill.name))] == ["ru"]


async def test_routing_rules_are_added_listed_in_order_and_removed(staff: Staff) -> None:
    staff.ok("skill", "add", "ru")
    staff.ok("skill", "add", "billing")
    staff.ok("group", "add", "Billing")
    first = staff.ok("rule", "add", "--language", "ru", "--skill", "ru")
    assert re.fullmatch(r"added rule #(\d+)  position 10  when language=ru  then skills=ru\n", first), first
    second = staff.ok("rule", "add", "--channel", "webform", "--category", "Billing", "--group", "Billing",
                      "--skill", "billing", "--skill", "ru", "--priority", "high")
    assert re.fullmatch(r"added rule #(\d+)  position 20  when channel=webform category=billing  "
                        r"then group=Billing skills=billing,ru priority=high\n", second), second
    third = staff.ok("rule", "add", "--from-group", "Billing", "--priority", "critical", "--position", "5",
                     "--tag", "Urgent Invoice", "--tag", "vip")
    assert re.fullmatch(r"added rule #(\d+)  position 5  when from-group=Billing  "
                        r"then priority=critical tags=urgent-invoice,vip\n", third), third
    ids = [int(re.search(r"#(\d+)", line).group(1)) for line in (first, second, third)]

    billing = (await staff.rows(select(Group.id).where(Group.name == "Billing")))[0][0]
    columns = (RoutingRule.id, RoutingRule.position, RoutingRule.channel, RoutingRule.category, RoutingRule.language,
               RoutingRule.from_group_id, RoutingRule.group_id, RoutingRule.skills, RoutingRule.tags,
               RoutingRule.priority)
    stored = [(*row[:-1], row[-1] and str(row[-1]))
              for row in await staff.rows(select(*columns).order_by(RoutingRule.position))]
    assert stored == [
        (ids[2], 5, None, None, None, billing, None, "", "urgent-invoice,vip", "critical"),
        (ids[0], 10, None, None, "ru", None, None, "ru", "", None),
        (ids[1], 20, "webform", "billing", None, None, billing, "billing,ru", "", "high"),
    ]

    assert staff.ok("rule", "list").splitlines() == [third[len("added rule "):].rstrip(),
                                                    first[len("added rule "):].rstrip(),
                                                    second[len("added rule "):].rstrip()]
    assert staff.ok("rule", "remove", str(ids[1])) == f"removed rule #{ids[1]}\n"
    staff.refused_all([
        (["rule", "remove", str(ids[1])], f"switchboard: no routing rule {ids[1]}"),
        (["rule", "add", "--group", "Billing"], "give at least one condition"),
        (["rule", "add", "--language", "ru"], "give at least one effect"),
        (["rule", "add", "--language", "ru", "--skill", "nope"], "no skill named 'nope'"),
        (["rule", "add", "--language", "ru", "--group", "Nowhere"], "no group named 'Nowhere'"),
        (["rule", "add", "--from-group", "Nowhere", "--skill", "ru"], "no group named 'Nowhere'"),
        (["rule", "add", "--category", "x" * 65, "--skill", "ru"], "switchboard: --category: at most 64 characters"),
        (["rule", "add", "--language", "de", "--skill", "ru"], "argument --language: invalid choice: 'de'"),
        (["rule", "add", "--language", "ru", "--tag", "a/b"], "'a/b': at most 40 letters, digits and - _ ."),
    ])
    assert [i for (i,) in await staff.rows(select(RoutingRule.id).order_by(RoutingRule.id))] == [ids[0], ids[2]]


def test_rule_channels_are_the_channels_names() -> None:
    from channels.chat.telegram.inbound import CHANNEL as TELEGRAM
    from channels.chat.webchat.visitor import CHANNEL as WEBCHAT
    from channels.email.inbound import CHANNEL as EMAIL
    from channels.phone.entry import CHANNEL as PHONE
    from channels.webform.form import CHANNEL as WEBFORM

    assert sorted(CHANNELS) == sorted([EMAIL, WEBFORM, WEBCHAT, TELEGRAM, PHONE])


async def test_a_group_created_by_its_first_agent_gets_a_head_later(staff: Staff) -> None:
    """`agent add` creates Support without a head; README's notification recipe then sets one."""
    staff.add_agent("Alice", "--email", "alice@example.com")
    assert "exists already; change it with `switchboard group set`" in staff.refused(
        "group", "add", "Support", "--head", "head@example.com")
    assert staff.ok("group", "set", "Support", "--head", "Head@Example.com").endswith(
        "Support: head head@example.com, acknowledges\n")
    assert "head: head@example.com" in staff.ok("group", "list")
    assert staff.ok("group", "set", "Support", "--no-head", "--no-acknowledge").endswith(
        "Support: head -, sends no acknowledgement\n")
    assert "nothing to change" in staff.refused("group", "set", "Support")
    assert "no group Nowhere" in staff.refused("group", "set", "Nowhere", "--no-head")
