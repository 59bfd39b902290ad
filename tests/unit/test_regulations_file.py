"""A regulations file is the promise to clients: a typo must stop the start with the line, the field and why,
never quietly drop an escalation. YAML and TOML say the same thing; the built-in default is checked the same way.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sla.regulations import (
    RegulationsError,
    Span,
    TicketFacts,
    builtin_book,
    load_book,
    parse_span,
)

DEFAULT_CALENDAR = {"timezone": "UTC", "hours": "09:00-18:00", "days": "mon-fri", "holidays": None, "days_off": ""}

YAML = """\
calendars:
  moscow:
    timezone: Europe/Moscow
    hours: {mon-fri: "09:00-18:00", sat: "10:00-14:00"}
    holidays: RU
    days_off: [2026-12-31]
contacts:
  production_manager: {email: pm@example.com, phone: "+74951234567"}
regulations:
  - name: vip
    match: {tier: gold}
    targets:
      first_response: {within: 30 minutes, warn_at: 80%}
      next_update: {within: 2h}
  - name: critical_defect
    match: {category: defect, priority: critical}
    calendar: moscow
    steps:
      - name: day_one
        at: end of business day 1
        unless: processed
        notify: [{to: production_manager, by: [email, sms]}]
      - name: breach
        after: 2 days
        unless: resolved
        breach: true
        notify: [{to: [production_manager, group_head], by: [email, sms]}]
  - name: request
    steps:
      - {name: reassign, after: 10s, unless: processed, reassign: true, notify: [{to: [assignee, previous_assignee]}]}
      - {name: head, after: 10s, since: previous, unless: resolved, raise_priority: up,
         notify: [{to: group_head, by: [email, sms]}]}
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _problems(tmp_path: Path, name: str, text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(RegulationsError) as caught:
        load_book(_write(tmp_path, name, text), DEFAULT_CALENDAR)
    return caught.value.problems


def test_a_yaml_file_gives_each_ticket_the_first_regulation_that_matches(tmp_path: Path) -> None:
    book = load_book(_write(tmp_path, "r.yaml", YAML), DEFAULT_CALENDAR)
    assert [r.name for r in book.regulations] == ["vip", "critical_defect", "request"]

    def facts(**kw: str) -> TicketFacts:
        return TicketFacts(**{"category": None, "priority": "normal", "channel": "email", "group": "Support", **kw})

    assert book.for_ticket(facts(category="defect", priority="critical")).name == "critical_defect"
    assert book.for_ticket(facts(category="defect", priority="high")).name == "request"
    assert book.for_ticket(facts(tier="gold", category="defect", priority="critical")).name == "vip"
    vip = book.named("vip")
    assert [(s.name, s.kind, s.unless, s.since) for s in vip.steps] == [
        ("first_response.warning", "warning", "processed", "creation"),
        ("first_response", "target", "processed", "creation"),
        ("next_update", "target", "replied", "client_message"),
    ]
    assert vip.steps[0].after == Span(seconds=30 * 60 * 0.8) and vip.steps[1].breach
    assert not vip.business_time  # no calendar named: every hour of the clock counts
    defect = book.named("critical_defect")
    assert defect.business_time and defect.steps[0].end_of_day == 1 and defect.steps[1].after == Span(days=2)
    assert book.contacts["production_manager"].phone == "+74951234567"
    request = book.named("request")
    assert request.steps[1].since == "previous" and request.steps[1].raise_priority == "up"


def test_toml_says_the_same_as_yaml(tmp_path: Path) -> None:
    toml = """
[[regulations]]
name = "request"
[[regulations.steps]]
name = "reassign"
after = "1 day"
unless = "processed"
reassign = true
[[regulations.steps]]
name = "head"
after = "2 days"
unless = "resolved"
notify = [{to = "group_head", by = ["email", "sms"]}]
"""
    book = load_book(_write(tmp_path, "r.toml", toml), DEFAULT_CALENDAR)
    steps = book.named("request").steps
    assert [(s.name, s.after, s.reassign) for s in steps] == [("reassign", Span(days=1), True),
                                                              ("head", Span(days=2), False)]
    assert steps[1].notify[0].by == ("email", "sms")


def test_every_mistake_is_reported_with_its_line_field_and_why(tmp_path: Path) -> None:
    text = """\
regulations:
  - name: request
    calendar: office
    steps:
      - name: reassign
        after: one day
        unless: processed
        reassign: true
      - name: head
        after: 2 days
        unless: answered
        notify: [{to: [head_of_sales]}]
"""
    problems = _problems(tmp_path, "r.yaml", text)
    assert (6, "regulations.0.steps.0.after",
            "'one day' is not a duration like 30s, 90 minutes, 2h or 1 day") in problems
    assert any(line == 11 and field == "regulations.0.steps.1.unless" and "processed" in why
               for line, field, why in problems), problems
    # The names are checked once every field is right: an unknown calendar and an unknown recipient.
    fixed = text.replace("one day", "1 day").replace("answered", "resolved")
    problems = _problems(tmp_path, "r.yaml", fixed)
    assert (3, "regulations.0.calendar",
            "no calendar 'office' (define it under calendars, or use 'default')") in problems
    assert any(line == 12 and "head_of_sales" in why for line, _, why in problems), problems


def test_a_step_that_does_nothing_or_has_two_times_is_refused(tmp_path: Path) -> None:
    text = """\
regulations:
  - name: request
    steps:
      - {name: idle, after: 1h, unless: processed}
      - {name: both, after: 1h, at: end of business day 1, unless: processed, breach: true}
"""
    whys = {field: why for _, field, why in _problems(tmp_path, "r.yaml", text)}
    assert "must do something" in whys["regulations.0.steps.0"]
    assert "exactly one of after" in whys["regulations.0.steps.1"]


def test_toml_errors_name_their_line_too(tmp_path: Path) -> None:
    text = '[[regulations]]\nname = "request"\n[[regulations.steps]]\nname = "x"\nafter = "soon"\n' \
           'unless = "processed"\nbreach = true\n'
    assert (5, "regulations.0.steps.0.after", "'soon' is not a duration like 30s, 90 minutes, 2h or 1 day") in \
        _problems(tmp_path, "r.toml", text)
    syntax = _problems(tmp_path, "bad.toml", '[[regulations]]\nname = "request\n')
    assert syntax[0][0] == 2 and "not valid TOML" in syntax[0][2]
    yaml_syntax = _problems(tmp_path, "bad.yaml", "regulations:\n  - name: [unclosed\n")
    assert yaml_syntax[0][0] is not None and "not valid YAML" in yaml_syntax[0][2]


def test_an_unreadable_or_unknown_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RegulationsError, match="cannot read the file"):
        load_book(tmp_path / "missing.yaml", DEFAULT_CALENDAR)
    with pytest.raises(RegulationsError, match="name it .yaml, .yml or .toml"):
        load_book(_write(tmp_path, "r.json", "{}"), DEFAULT_CALENDAR)
    assert _problems(tmp_path, "empty.yaml", "regulations: []\n")[0][1] == "regulations"


def test_durations_read_as_people_write_them() -> None:
    assert parse_span("30s") == Span(seconds=30)
    assert parse_span("90 minutes") == Span(seconds=5400)
    assert parse_span("1.5h") == Span(seconds=5400)
    assert parse_span("2 days") == Span(days=2)
    assert parse_span("1 week") == Span(days=7)
    for wrong in ("", "soon", "-1h", "0s", "1 fortnight"):
        with pytest.raises(ValueError):
            parse_span(wrong)


def test_the_built_in_default_is_our_regulation() -> None:
    book = builtin_book(DEFAULT_CALENDAR, callback_hours=2)
    assert [r.name for r in book.regulations] == ["callback", "critical_defect", "request"]
    request = book.named("request")
    # The seed's reading: unsatisfied (not resolved) a day, to another agent; another day, to the head.
    assert [(s.name, s.after, s.since, s.unless, s.reassign) for s in request.steps] == [
        ("reassign", Span(days=1), "creation", "resolved", True),
        ("head_alert", Span(days=1), "previous", "resolved", False)]
    assert request.steps[1].notify[0].to == ("group_head",) and request.steps[1].notify[0].by == ("email", "sms")
    defect = book.named("critical_defect")
    assert defect.steps[0].end_of_day == 1 and defect.steps[0].notify[0].to == ("production_manager",)
    assert defect.steps[1].notify[0].to == ("production_manager", "group_head") and defect.steps[1].breach
    assert book.named("callback").steps[0].after == Span(seconds=7200)
    assert all(r.business_time for r in book.regulations)


def test_the_readme_example_is_a_valid_file(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = readme.split("**A regulations file**", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    book = load_book(_write(tmp_path, "readme.yaml", example), DEFAULT_CALENDAR)
    assert [r.name for r in book.regulations] == ["critical_defect", "request"]
    assert book.named("critical_defect").calendar_name == "office"


def test_the_regulations_read_back_in_words() -> None:
    from sla.describe import describe_book

    text = describe_book(builtin_book(DEFAULT_CALENDAR))
    assert "regulations from built-in" in text
    assert "critical_defect (version " in text and "tickets with category defect, priority critical" in text
    assert "1. unprocessed_day_1 [step]: at the end of business day 1 unless processed → notify production_manager " \
           "by email and sms" in text
    assert "1. reassign [step]: 1 day after registration unless resolved → reassign to the least-loaded other " \
           "agent; notify assignee, previous_assignee by email" in text
    assert "call_back [step]: 2 h after registration" in text


def test_a_step_without_unless_holds_until_the_ticket_is_resolved(tmp_path: Path) -> None:
    """README presents `unless` as optional; a step without it was refused."""
    text = """\
regulations:
  - name: request
    steps:
      - {name: head, after: 2 days, notify: [{to: group_head, by: [email]}]}
"""
    [regulation] = load_book(_write(tmp_path, "r.yaml", text), DEFAULT_CALENDAR).regulations
    [step] = regulation.steps
    assert step.unless == "resolved"
