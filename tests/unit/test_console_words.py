"""Every word the console and the portal show exists in both languages, and every word a template asks for exists:
a missing one would fail the page (StrictUndefined) only in the language nobody tested."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from channels.portal.words import WORDS as PORTAL_WORDS
from desk.console.render import WORDS as CONSOLE_WORDS

ROOT = Path(__file__).parents[2]
PAGES = [
    pytest.param(CONSOLE_WORDS, ROOT / "desk" / "console" / "templates", id="console"),
    pytest.param(PORTAL_WORDS, ROOT / "channels" / "portal" / "templates", id="portal"),
]


@pytest.mark.parametrize(("WORDS", "TEMPLATES"), PAGES)
def test_english_and_russian_have_the_same_words(WORDS: dict[str, dict[str, str]], TEMPLATES: Path) -> None:
    assert set(WORDS["en"]) == set(WORDS["ru"])
    assert all(WORDS["ru"][key].strip() for key in WORDS["ru"])


@pytest.mark.parametrize(("WORDS", "TEMPLATES"), PAGES)
def test_every_word_a_template_names_is_there(WORDS: dict[str, dict[str, str]], TEMPLATES: Path) -> None:
    named = {name for path in TEMPLATES.glob("*.html")
             for name in re.findall(r"\bt\.([a-z_]+)\b", path.read_text(encoding="utf-8"))}
    assert named, "no t.word found: the pattern is wrong"
    assert named - set(WORDS["en"]) == set()
    assert not named & set(dir(dict)), "a word named like a dict method renders the method, not the word"
