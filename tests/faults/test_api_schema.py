"""Schemathesis against the running application's own `/api/v1/openapi.json`: every operation is called with
generated valid and invalid input (its negative modes on, NUL in strings allowed; as an admin, who may call them
all) and none may answer 5xx. It runs the real `switchboard serve` (embedded SQLite and Redis) and schemathesis'
own command line, bounded in examples and time."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.integration.test_serve import Serve, cli

MAX_EXAMPLES = 15
MAX_SECONDS = 75


def test_no_generated_request_makes_the_api_answer_5xx(tmp_path: Path) -> None:
    serve = Serve(tmp_path)
    try:
        serve.wait_ready()
        added = cli(serve.cwd, serve.env, "agent", "add", "Ada", "--email", "ada@example.com", "--role", "admin")
        assert added.returncode == 0, added.stderr
        token = added.stdout.strip().splitlines()[-1]
        run = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "run", f"{serve.base}/api/v1/openapi.json",
             "--checks", "not_a_server_error", "--header", f"Authorization: Bearer {token}",
             # invalid data too (wrong types, out-of-range numbers, missing fields), and NUL in strings
             "--mode", "all", "--phases", "examples,coverage,fuzzing", "--generation-allow-x00", "true",
             "--max-examples", str(MAX_EXAMPLES), "--seed", "20261201", "--max-time", str(MAX_SECONDS),
             "--request-timeout", "20", "--workers", "1"],
            cwd=tmp_path, capture_output=True, text=True, timeout=MAX_SECONDS + 120)
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
        tested = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
        assert tested and int(tested.group(1)) > 500, run.stdout[-3000:]  # it really ran
    finally:
        serve.stop()
