"""Issue 8's acceptance, tried as a new user would: `switchboard serve` with a second-scale regulations file, the
fake SMS gateway from its command line (refusing the first three requests with 503), the CLI and HTTP only.

An escalation fires → the department head's number appears once in the gateway's log and an email with the
ticket link lands in the mail sink; the SMS arrived exactly once after the three 503s; the ticket's notification
history shows each attempt.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port
from tests.integration.test_regulations_acceptance import until
from tests.integration.test_routing_acceptance import Desk
from tests.integration.test_serve import Serve

HEAD_PHONE = "+447911123456"
REGULATIONS = """\
regulations:
  - name: request
    steps:
      - {name: head, after: 3s, unless: resolved, breach: true, notify: [{to: group_head, by: [email, sms]}]}
"""


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port, log = free_port(), tmp_path / "sms-gateway.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_sms", "--port", str(port), "--profile", "json", "--fail", "503",
         "--times", "3", "--log", str(log)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        first = process.stdout.readline() if process.stdout else ""
        assert first.startswith("SWITCHBOARD_SMS_GATEWAY_URL="), first
        yield first.strip().partition("=")[2], log
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def serve(tmp_path: Path, gateway: tuple[str, Path]) -> Iterator[Serve]:
    path = tmp_path / "regulations.yaml"
    path.write_text(REGULATIONS)
    server = Serve(tmp_path, {
        "SWITCHBOARD_HTTP_FORM_RATE_LIMIT": "0", "SWITCHBOARD_REGULATIONS": str(path),
        "SWITCHBOARD_SMS_GATEWAY_URL": gateway[0], "SWITCHBOARD_SMS_TOKEN": "test-token",
        "SWITCHBOARD_SMS_STATUS_TOKEN": "receipt-token", "SWITCHBOARD_NOTIFIER_FIRST_RETRY_SECONDS": "1",
    })
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_an_escalation_texts_the_head_once_through_three_503s_and_the_history_shows_each_attempt(
    serve: Serve, gateway: tuple[str, Path]
) -> None:
    _, log = gateway
    desk = Desk(serve)
    desk.cli("group", "add", "Support", "--head", "max@example.com")
    desk.add_agent("Max", "--role", "manager", "--phone", HEAD_PHONE)
    desk.cli("agent", "set", "max@example.com", "--presence", "offline")
    desk.add_agent("Anna")
    number = desk.form(1)

    def texts() -> list[dict[str, str]]:
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    [sms] = until(texts, timeout=60)
    assert sms["to"] == HEAD_PHONE and f"#{number}" in sms["text"]
    until(lambda: "attempt 4  sent" in desk.cli("notifications", "list", "--ticket", str(number), "--channel", "sms",
                                                "--history"), timeout=30)
    mail = until(lambda: "max@example.com" in (out := desk.cli("mail", "outbox")) and out)
    shown = desk.cli("mail", "outbox", "--show", str(next(
        i for i, line in enumerate(mail.splitlines(), 1) if "max@example.com" in line)))
    assert f"{serve.base}/desk/tickets/{number}" in shown

    history = desk.cli("notifications", "list", "--ticket", str(number), "--channel", "sms", "--history")
    lines = history.splitlines()
    assert HEAD_PHONE in lines[0] and " sent " in lines[0] and sms["id"] in lines[0]
    outcomes = [line.split("attempt ")[1] for line in lines[1:]]
    assert [o.split(":")[0] for o in outcomes] == ["1  retry", "2  retry", "3  retry", "4  sent"]
    assert all("503" in o for o in outcomes[:3])

    status, body = desk.api("GET", f"/api/v1/tickets/{number}/notifications?channel=sms", "Max")
    assert status == 200
    [item] = body["items"]
    assert [h["outcome"] for h in item["history"]] == ["retry", "retry", "retry", "sent"]
    assert texts() == [sms]  # still once
