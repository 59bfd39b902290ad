"""Property tests over the readers every request body and frame passes: whatever arrives, the answer is a value
or a refusal (`InvalidInput`), never another exception; and the text rule leaves nothing the store refuses."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from tickets.errors import InvalidInput
from tickets.text import clean, clean_text
from web.http import MAX_DEPTH, decode_json

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000) | st.text(max_size=2000))
def test_any_bytes_or_text_decode_or_are_refused(raw: bytes | str) -> None:
    try:
        decode_json(raw)
    except InvalidInput as exc:
        assert exc.fields.get("body")


@settings(max_examples=200, deadline=None)
@given(JSON_VALUES)
def test_what_json_can_say_is_read_back_as_said(value: object) -> None:
    assert decode_json(json.dumps(value)) == value


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=20_000), st.sampled_from(["[", "{\"a\":"]))
def test_deep_nesting_is_refused_at_the_limit_without_recursion(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    text = opener * depth + "0" + closer * depth
    try:
        decode_json(text)
        assert depth <= MAX_DEPTH
    except InvalidInput as exc:
        assert depth > MAX_DEPTH and "nested deeper" in exc.fields["body"]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=200))  # surrogates too
def test_cleaned_text_holds_no_nul_and_encodes_as_utf8(text: str) -> None:
    cleaned, count = clean_text(text)
    assert "\x00" not in cleaned
    cleaned.encode("utf-8")  # an unpaired surrogate would raise here
    assert count == sum(1 for c in text if c == "\x00" or 0xD800 <= ord(c) <= 0xDFFF)
    assert clean({"k": [text]})[0] == {"k": [cleaned]}
