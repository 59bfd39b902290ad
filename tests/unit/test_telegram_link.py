"""The code that links an agent's Telegram chat: valid for its agent until it expires, and only with our bot's token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tickets.telegram_link import LINK_TTL, agent_of, link_code

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_a_code_names_its_agent_until_it_expires() -> None:
    code, expires = link_code("bot-token", 7, NOW)
    assert expires == NOW + LINK_TTL
    assert agent_of("bot-token", code, NOW) == 7
    assert agent_of("bot-token", f"  {code} ", NOW + LINK_TTL - timedelta(seconds=1)) == 7
    assert agent_of("bot-token", code, NOW + LINK_TTL + timedelta(seconds=1)) is None


def test_a_forged_or_altered_code_names_nobody() -> None:
    code, _ = link_code("bot-token", 7, NOW)
    agent, expires, signature = code.split("-")
    assert agent_of("other-token", code, NOW) is None
    assert agent_of("bot-token", f"8-{expires}-{signature}", NOW) is None
    assert agent_of("bot-token", f"{agent}-{int(expires) + 3600}-{signature}", NOW) is None
    for junk in ("", "7", "a-b-c", "7-1-", "--"):
        assert agent_of("bot-token", junk, NOW) is None
