"""The env variable names in ARCHITECTURE.md are a public interface."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.settings import Settings


def test_nothing_set_means_the_embedded_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("SWITCHBOARD_"):
            monkeypatch.delenv(name)
    settings = Settings()
    assert settings.uses_embedded_database
    assert settings.database_url == f"sqlite+aiosqlite:///{(Path('data') / 'switchboard.db').resolve()}"
    assert settings.redis.url is None
    assert (settings.http.host, settings.http.port) == ("127.0.0.1", 8080)
    assert (settings.smtp.host, settings.smtp.port) == ("127.0.0.1", 2525)


def test_documented_environment_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "regulations.toml").write_text(
        '[[regulations]]\nname = "request"\n[[regulations.steps]]\nname = "alert"\nafter = "1 day"\n'
        'unless = "processed"\nnotify = [{to = "group_head"}]\n'
    )
    env = {
        "SWITCHBOARD_DATABASE_URL": "postgresql+asyncpg://u@db/sb",
        "SWITCHBOARD_REDIS_URL": "redis://cache:6379/1",
        "SWITCHBOARD_HTTP_HOST": "0.0.0.0",
        "SWITCHBOARD_HTTP_PORT": "9000",
        "SWITCHBOARD_HTTP_CORS_ORIGINS": "https://a.example, https://b.example",
        "SWITCHBOARD_HTTP_FORM_RATE_LIMIT": "5",
        "SWITCHBOARD_SMTP_HOST": "0.0.0.0",
        "SWITCHBOARD_SMTP_PORT": "25",
        "SWITCHBOARD_DATA_DIR": str(tmp_path),
        "SWITCHBOARD_TELEGRAM_TOKEN": "123:abc",
        "SWITCHBOARD_TELEGRAM_API_BASE": "http://127.0.0.1:8081",
        "SWITCHBOARD_SMTP_RELAY_URL": "smtp://relay:587",
        "SWITCHBOARD_SMS_GATEWAY_URL": "http://sms.example/send",
        "SWITCHBOARD_REGULATIONS": str(tmp_path / "regulations.toml"),
        "SWITCHBOARD_DEFAULT_GROUP": "Helpdesk",
        "SWITCHBOARD_PHONE_REGION": "DE",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = Settings()
    assert s.database_url == "postgresql+asyncpg://u@db/sb" and not s.uses_embedded_database
    assert s.redis.url == "redis://cache:6379/1"
    assert (s.http.host, s.http.port, s.http.form_rate_limit) == ("0.0.0.0", 9000, 5)
    assert s.http.cors_origins == ["https://a.example", "https://b.example"]
    assert (s.smtp.host, s.smtp.port, s.smtp.relay_url) == ("0.0.0.0", 25, "smtp://relay:587")
    assert s.data_dir == tmp_path and s.attachments_dir == tmp_path / "attachments"
    assert (s.telegram.token, s.telegram.api_base) == ("123:abc", "http://127.0.0.1:8081")
    assert s.sms.gateway_url == "http://sms.example/send"
    assert s.regulations == tmp_path / "regulations.toml"
    assert [r.name for r in s.regulation_book().regulations] == ["request"]
    assert (s.default_group, s.phone_region) == ("Helpdesk", "DE")
