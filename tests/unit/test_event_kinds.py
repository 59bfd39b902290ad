"""Audit event kinds come from one enum (`tickets.models.EventKind`), never a string typed at the call."""

from __future__ import annotations

import ast
from pathlib import Path

from tickets.models import EventKind

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("channels", "desk", "notifier", "routing", "sla", "switchboard", "tickets")


def kinds_written() -> list[tuple[str, int, ast.expr]]:
    """The kind argument of every `audit.record(...)` call in our packages."""
    found = []
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "record"
                        and isinstance(node.func.value, ast.Name) and node.func.value.id == "audit"):
                    found.append((str(path.relative_to(REPO)), node.lineno, node.args[2]))
    return found


def test_every_recorded_kind_is_a_member_of_the_enum() -> None:
    written = kinds_written()
    assert len(written) > 20  # the scan sees the calls
    literal = [(path, line) for path, line, kind in written
               if any(isinstance(part, ast.Constant) and isinstance(part.value, str) for part in ast.walk(kind))]
    assert literal == []
    named = {part.attr for _, _, kind in written for part in ast.walk(kind)
             if isinstance(part, ast.Attribute) and isinstance(part.value, ast.Name) and part.value.id == "EventKind"}
    assert named <= set(EventKind.__members__)


def test_kinds_are_stored_as_their_names() -> None:
    assert all(kind.value == name for name, kind in EventKind.__members__.items())
    assert str(EventKind.created) == "created" and EventKind.created == "created"
