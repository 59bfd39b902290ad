"""The router's choice without a database: who is eligible, who wins, what the audit says, what a ticket weighs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from routing.router import Candidate, LeastLoadedRouter
from routing.weights import DEFAULT_PRIORITY_WEIGHTS, Load, LoadWeights
from switchboard.settings import RoutingSettings
from tickets.models import Agent, Presence, Priority, Ticket

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SUPPORT, SALES = 1, 2


def candidate(
    agent_id: int,
    open_: int = 0,
    weighted: float | None = None,
    *,
    capacity: int = 10,
    presence: Presence = Presence.available,
    groups: tuple[int, ...] = (SUPPORT,),
    skills: tuple[str, ...] = (),
    last_assigned_at: datetime | None = None,
) -> Candidate:
    agent = Agent(id=agent_id, name=f"Agent {agent_id}", presence=presence, capacity=capacity,
                  last_assigned_at=last_assigned_at)
    return Candidate(agent, frozenset(groups), frozenset(skills),
                     Load(open_, float(open_) if weighted is None else weighted))


def ticket(group_id: int = SUPPORT, skills: str = "", channel: str = "email",
           priority: Priority = Priority.normal) -> Ticket:
    return Ticket(id=100, group_id=group_id, skills=skills, channel=channel, priority=priority)


def chosen_id(candidates: list[Candidate], t: Ticket, exclude: tuple[int, ...] = ()) -> int | None:
    chosen, _ = LeastLoadedRouter.choose(candidates, t, exclude)
    return chosen.agent.id if chosen else None


# --- LoadWeights.of ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "priority", "weight"),
    [
        ("email", Priority.normal, 1.0),
        ("webform", Priority.low, 1.0),
        ("phone", Priority.normal, 1.0),
        ("telegram", Priority.normal, 2.0),
        ("webchat", Priority.normal, 2.0),
        ("email", Priority.high, 1.5),
        ("email", Priority.critical, 2.0),
        ("telegram", Priority.high, 3.0),
        ("webchat", Priority.critical, 4.0),
        ("carrier-pigeon", Priority.normal, 1.0),
    ],
)
def test_default_weights_per_channel_and_priority(channel: str, priority: Priority, weight: float) -> None:
    assert LoadWeights().of(channel, priority) == weight


def test_weight_of_accepts_a_priority_or_its_name() -> None:
    weights = LoadWeights()
    assert weights.of("telegram", "critical") == weights.of("telegram", Priority.critical) == 4.0
    assert weights.of("email", "no-such-priority") == 1.0


def test_custom_weights_replace_the_defaults() -> None:
    weights = LoadWeights(channel={"email": 3.0}, priority={"low": 0.5, "critical": 5.0})
    assert weights.of("email", Priority.normal) == 3.0
    assert weights.of("telegram", Priority.normal) == 1.0  # not named: weighs 1
    assert weights.of("email", Priority.low) == 1.5
    assert weights.of("email", Priority.critical) == 15.0
    assert weights.of("email", Priority.high) == 3.0  # priority not named: 1


def test_default_weights_are_not_shared_between_instances() -> None:
    one, two = LoadWeights(), LoadWeights()
    one.channel["email"] = 9.0  # type: ignore[index]
    assert two.of("email", Priority.normal) == 1.0


@pytest.mark.parametrize(
    ("channel", "priority"),
    [
        ({"email": 0.0}, {}),
        ({"email": -1.0}, {}),
        ({"email": float("nan")}, {}),
        ({"email": float("inf")}, {}),
        ({}, {"critical": float("nan")}),
        ({}, {"high": 0}),
        ({"email": "2"}, {}),
    ],
)
def test_weights_that_would_make_loads_meaningless_are_refused(
    channel: dict[str, object], priority: dict[str, object]
) -> None:
    with pytest.raises(ValueError, match="a weight is a finite number above 0"):
        LoadWeights(channel=channel, priority=priority)  # type: ignore[arg-type]


def test_settings_that_let_a_nan_weight_through_still_cannot_start_the_router() -> None:
    """RoutingSettings accepts `nan` and `inf` (float() parses them); LoadWeights refuses them at start-up.

    Either refusal will do (pydantic's ValidationError is a ValueError too), should the settings learn to.
    """
    for text in ("email=nan", "email=inf"):
        with pytest.raises(ValueError, match="above 0"):
            RoutingSettings(channel_weights=text).weights()


# --- Load.describe ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("load", "text"),
    [
        (Load(0, 0.0), "0 open"),
        (Load(3, 3.0), "3 open"),
        (Load(1, 2.0), "load 2 (1 open)"),
        (Load(2, 3.5), "load 3.5 (2 open)"),
        (Load(4, 10.25), "load 10.25 (4 open)"),
    ],
)
def test_load_describes_itself_briefly_when_weights_change_nothing(load: Load, text: str) -> None:
    assert load.describe() == text


# --- Candidate --------------------------------------------------------------------------------------


def test_a_candidate_has_room_only_when_available_and_below_capacity() -> None:
    assert candidate(1, 1, capacity=2).has_room
    assert not candidate(1, 2, capacity=2).has_room
    assert not candidate(1, 3, capacity=2).has_room  # a manager overruled the capacity
    assert not candidate(1, 0, presence=Presence.away).has_room
    assert not candidate(1, 0, presence=Presence.offline).has_room


def test_a_candidate_can_take_a_ticket_only_with_every_skill_it_needs() -> None:
    polyglot = candidate(1, skills=("ru", "billing", "en"))
    assert polyglot.can_take(frozenset())
    assert polyglot.can_take(frozenset({"ru"}))
    assert polyglot.can_take(frozenset({"ru", "billing"}))
    assert not polyglot.can_take(frozenset({"ru", "de"}))
    assert not candidate(2, 5, capacity=5, skills=("ru",)).can_take(frozenset({"ru"}))


# --- choose: who wins --------------------------------------------------------------------------------


def test_lowest_weighted_load_wins_not_the_fewest_tickets() -> None:
    chatting = candidate(1, 1, 3.0)  # one high-priority chat
    mailing = candidate(2, 2, 2.0)  # two ordinary emails
    chosen, reason = LeastLoadedRouter.choose([chatting, mailing], ticket())
    assert chosen is mailing
    assert reason == "least-loaded: 2 open; next best load 3 (1 open)"


def test_reason_names_the_winner_and_the_next_best() -> None:
    candidates = [candidate(1, 4), candidate(2, 3), candidate(3, 5)]
    chosen, reason = LeastLoadedRouter.choose(candidates, ticket())
    assert chosen is candidates[1]
    assert reason == "least-loaded: 3 open; next best 4 open"


def test_the_only_eligible_agent_says_so() -> None:
    only = candidate(1, 2)
    chosen, reason = LeastLoadedRouter.choose([only, candidate(2, presence=Presence.away)], ticket())
    assert chosen is only
    assert reason == "least-loaded: 2 open; the only agent who could take it"


def test_ties_go_to_the_never_assigned_then_the_longest_idle_then_the_lowest_id() -> None:
    recent = candidate(1, 1, last_assigned_at=T0 + timedelta(minutes=30))
    earlier = candidate(2, 1, last_assigned_at=T0)
    never_a = candidate(4, 1)
    never_b = candidate(3, 1)
    assert chosen_id([recent, earlier, never_a, never_b], ticket()) == 3
    assert chosen_id([recent, earlier, never_a], ticket()) == 4
    assert chosen_id([recent, earlier], ticket()) == 2
    same_time = [candidate(7, 1, last_assigned_at=T0), candidate(5, 1, last_assigned_at=T0)]
    assert chosen_id(same_time, ticket()) == 5
    # A lower load beats any idle time.
    assert chosen_id([never_a, candidate(9, 0, last_assigned_at=T0 + timedelta(hours=1))], ticket()) == 9


def test_only_members_of_the_tickets_group_are_considered() -> None:
    seller = candidate(1, 0, groups=(SALES,))
    both = candidate(2, 5, groups=(SUPPORT, SALES))
    assert chosen_id([seller, both], ticket(SUPPORT)) == 2
    assert chosen_id([seller, both], ticket(SALES)) == 1
    chosen, reason = LeastLoadedRouter.choose([seller], ticket(SUPPORT))
    assert (chosen, reason) == (None, "no agent available")


def test_skills_filter_the_candidates() -> None:
    plain = candidate(1, 0)
    russian = candidate(2, 6, skills=("ru",))
    both = candidate(3, 8, skills=("ru", "billing"))
    assert chosen_id([plain, russian, both], ticket()) == 1
    assert chosen_id([plain, russian, both], ticket(skills="ru")) == 2
    assert chosen_id([plain, russian, both], ticket(skills="billing,ru")) == 3


def test_away_offline_full_and_excluded_agents_are_passed_over() -> None:
    candidates = [
        candidate(1, 0, presence=Presence.away),
        candidate(2, 0, presence=Presence.offline),
        candidate(3, 2, capacity=2),
        candidate(4, 1),
        candidate(5, 6),
    ]
    assert chosen_id(candidates, ticket()) == 4
    assert chosen_id(candidates, ticket(), exclude=(4,)) == 5
    chosen, reason = LeastLoadedRouter.choose(candidates, ticket(), (4, 5))
    assert (chosen, reason) == (None, "every available agent is at capacity")


@pytest.mark.parametrize(
    ("candidates", "skills", "reason"),
    [
        ([], "", "no agent available"),
        ([candidate(1, presence=Presence.away), candidate(2, presence=Presence.offline)], "", "no agent available"),
        ([candidate(1, skills=("en",))], "ru", "no available agent has the skills ru"),
        ([candidate(1, skills=("ru",))], "billing,ru", "no available agent has the skills billing, ru"),
        ([candidate(1, 1, capacity=1), candidate(2, 3, capacity=3)], "", "every available agent is at capacity"),
        ([candidate(1, 1, capacity=1, skills=("ru",)), candidate(2)], "ru",
         "every available agent with the skills ru is at capacity"),
        ([candidate(1, presence=Presence.away, skills=("ru",)), candidate(2)], "ru",
         "no available agent has the skills ru"),
    ],
)
def test_why_nobody_was_chosen(candidates: list[Candidate], skills: str, reason: str) -> None:
    assert LeastLoadedRouter.choose(candidates, ticket(skills=skills)) == (None, reason)


def test_excluding_everyone_leaves_nobody() -> None:
    assert LeastLoadedRouter.choose([candidate(1), candidate(2)], ticket(), [1, 2]) == (None, "no agent available")


def test_choosing_changes_nothing() -> None:
    a, b = candidate(1, 2), candidate(2, 1)
    LeastLoadedRouter.choose([a, b], ticket())
    assert (a.load, b.load, a.agent.last_assigned_at, b.agent.last_assigned_at) == (
        Load(2, 2.0), Load(1, 1.0), None, None
    )


# --- RoutingSettings ----------------------------------------------------------------------------------


def test_routing_settings_defaults_are_the_documented_ones() -> None:
    settings = RoutingSettings()
    weights = settings.weights()
    assert weights.of("telegram", Priority.normal) == 2.0 and weights.of("webchat", Priority.normal) == 2.0
    assert weights.of("email", Priority.high) == 1.5 and weights.of("email", Priority.critical) == 2.0
    assert settings.return_on_offline is True
    assert settings.idle_offline_minutes == 60


def test_routing_settings_parse_name_weight_pairs() -> None:
    settings = RoutingSettings(channel_weights=" Webchat=3, telegram=2.5 ,,email=1", priority_weights="critical=4")
    assert settings.channel_weights == {"webchat": 3.0, "telegram": 2.5, "email": 1.0}
    # Priorities not named keep their defaults; channels not named weigh 1.
    assert settings.priority_weights == {**DEFAULT_PRIORITY_WEIGHTS, "critical": 4.0}
    weights = settings.weights()
    assert weights.of("webchat", Priority.critical) == 12.0
    assert weights.of("phone", Priority.high) == 1.5


def test_routing_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_ROUTING_CHANNEL_WEIGHTS", "phone=3")
    monkeypatch.setenv("SWITCHBOARD_ROUTING_PRIORITY_WEIGHTS", "high=2")
    monkeypatch.setenv("SWITCHBOARD_ROUTING_RETURN_ON_OFFLINE", "false")
    monkeypatch.setenv("SWITCHBOARD_ROUTING_IDLE_OFFLINE_MINUTES", "15")
    settings = RoutingSettings()
    assert settings.channel_weights == {"phone": 3.0}
    assert settings.priority_weights["high"] == 2.0 and settings.priority_weights["critical"] == 2.0
    assert (settings.return_on_offline, settings.idle_offline_minutes) == (False, 15)
    assert settings.weights().of("telegram", Priority.high) == 2.0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("channel_weights", "webchat", "expected NAME=WEIGHT with a weight above 0, got 'webchat'"),
        ("channel_weights", "=2", "expected NAME=WEIGHT with a weight above 0, got '=2'"),
        ("channel_weights", "webchat=", "expected NAME=WEIGHT with a weight above 0, got 'webchat='"),
        ("channel_weights", "webchat=two", "expected NAME=WEIGHT with a weight above 0, got 'webchat=two'"),
        ("channel_weights", "webchat=0", "expected NAME=WEIGHT with a weight above 0, got 'webchat=0'"),
        ("channel_weights", "email=1,webchat=-2", "expected NAME=WEIGHT with a weight above 0, got 'webchat=-2'"),
        ("priority_weights", "urgent=3", "'urgent' is not one of low, normal, high, critical"),
        ("priority_weights", "high:2", "expected NAME=WEIGHT with a weight above 0, got 'high:2'"),
        ("priority_weights", "critical=0", "expected NAME=WEIGHT with a weight above 0, got 'critical=0'"),
    ],
)
def test_routing_settings_refuse_bad_weights(field: str, value: str, message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        RoutingSettings(**{field: value})
    [error] = refused.value.errors()
    assert error["loc"] == (field,)
    assert message in error["msg"]


def test_routing_settings_refuse_a_negative_idle_time() -> None:
    with pytest.raises(ValidationError) as refused:
        RoutingSettings(idle_offline_minutes=-1)
    assert refused.value.errors()[0]["loc"] == ("idle_offline_minutes",)
