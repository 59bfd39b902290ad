"""Typed numbers: ASCII digits only, and never past what a 64-bit key holds."""

from __future__ import annotations

import pytest

from tickets.numbers import MAX_ID, as_id, whole_number


@pytest.mark.parametrize(("text", "expected"), [
    ("42", 42), (" 7 ", 7), ("0", 0), (str(MAX_ID), MAX_ID), (str(MAX_ID + 1), None), ("²", None), ("١٢", None),
    ("-3", None), ("+3", None), ("3.0", None), ("", None), ("0" * 30 + "1", None),
])
def test_whole_numbers(text: str, expected: int | None) -> None:
    assert whole_number(text) == expected


def test_ids_are_positive_and_bounded_by_the_caller() -> None:
    assert as_id("0") is None and as_id("15") == 15
    assert whole_number("61", maximum=60) is None and whole_number("60", maximum=60) == 60
