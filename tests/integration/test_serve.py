"""`switchboard serve` as a new user runs it: no configuration, embedded SQLite and Redis, then the README
walk-through."""

from __future__ import annotations

import json
import os
import re
import signal
import smtplib
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, free_port

pytestmark = pytest.mark.embedded_default

STARTUP_TIMEOUT = 30


def clean_env(port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env["SWITCHBOARD_HTTP_PORT"] = str(port)
    env["SWITCHBOARD_SMTP_PORT"] = str(free_port())
    return env


def cli(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "switchboard.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def http(method: str, url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Serve:
    def __init__(self, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.cwd = cwd
        self.port = free_port()
        self.env = {**clean_env(self.port), **(env or {})}
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "switchboard.cli", "serve"], cwd=cwd, env=self.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )

    def wait_ready(self) -> None:
        def healthy() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited {self.process.returncode}: {self.process.stderr.read()}")
            try:
                return http("GET", f"{self.base}/healthz")[0] == 200
            except OSError:
                return False

        wait_for(healthy, STARTUP_TIMEOUT, "serve to become healthy")

    def redis_pid(self) -> int:
        return int((self.cwd / "data" / "redis" / "redis.pid").read_text())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    server = Serve(tmp_path)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def submit_form(base: str, name: str, email: str, message: str) -> int:
    boundary = "----switchboardtest"
    parts = []
    for field, value in {"name": name, "email": email, "message": message, "category": "question"}.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n{value}\r\n')
    body = ("".join(parts) + f"--{boundary}--\r\n").encode()
    status, page = http("POST", f"{base}/contact", data=body,
                        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 200, page
    match = re.search(r'data-ticket-number="(\d+)"', page)
    assert match, page
    return int(match.group(1))


def routed(base: str, number: int, auth: dict[str, str]) -> dict[str, Any] | None:
    """The ticket once an agent has it, else None."""
    status, body = http("GET", f"{base}/api/v1/tickets/{number}", headers=auth)
    assert status == 200, body
    ticket: dict[str, Any] = json.loads(body)
    return ticket if ticket["assignee"] else None


def held(base: str, auth: dict[str, str], total: int) -> dict[str, float] | None:
    """Each agent's load once they hold `total` tickets between them, else None."""
    status, body = http("GET", f"{base}/api/v1/agents", headers=auth)
    loads = {a["name"]: a["load"] for a in json.loads(body)["items"]}
    return loads if sum(loads.values()) == total else None


def test_readme_walkthrough_on_the_embedded_default(serve: Serve) -> None:
    alice = cli(serve.cwd, serve.env, "agent", "add", "Alice", "--email", "alice@example.com")
    assert alice.returncode == 0, alice.stderr
    token = alice.stdout.strip().splitlines()[-1]
    auth = {"Authorization": f"Bearer {token}"}
    assert (serve.cwd / "data" / "switchboard.db").exists()

    status, page = http("GET", f"{serve.base}/contact")
    assert status == 200 and 'name="message"' in page

    number = submit_form(serve.base, "Carl", "carl@example.com", "The printer is on fire")
    # The form is answered once stored; routing follows a moment later, as README says.
    wait_for(lambda: routed(serve.base, number, auth) is not None, 10, f"ticket #{number} to be assigned")
    ticket = routed(serve.base, number, auth)
    assert ticket is not None and ticket["assignee"]["name"] == "Alice"
    assert ticket["messages"][0]["body_text"] == "The printer is on fire"

    bob = cli(serve.cwd, serve.env, "agent", "add", "Bob", "--email", "bob@example.com")
    assert bob.returncode == 0, bob.stderr
    for n in range(10):
        submit_form(serve.base, f"Client {n}", f"client{n}@example.com", f"question {n}")
    wait_for(lambda: held(serve.base, auth, 11) is not None, 10, "the eleven tickets to be assigned")
    loads = held(serve.base, auth, 11)
    assert loads is not None
    assert abs(loads["Alice"] - loads["Bob"]) <= 1, loads

    payload = json.dumps({"name": "Dora", "email": "dora@example.com", "message": "twice"}).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": "dora-1"}
    first = json.loads(http("POST", f"{serve.base}/api/v1/webform", data=payload, headers=headers)[1])
    second = json.loads(http("POST", f"{serve.base}/api/v1/webform", data=payload, headers=headers)[1])
    assert first["number"] == second["number"] and second["duplicate"] is True
    status, body = http("GET", f"{serve.base}/api/v1/tickets?limit=200", headers=auth)
    assert len(json.loads(body)["items"]) == 12


def test_sigterm_shuts_down_cleanly_and_stops_embedded_redis(serve: Serve) -> None:
    redis_pid = serve.redis_pid()
    assert alive(redis_pid)
    serve.process.send_signal(signal.SIGTERM)
    assert serve.process.wait(15) == 0
    wait_for(lambda: not alive(redis_pid), 5, "embedded Redis to stop")
    assert not (serve.cwd / "data" / "redis" / "redis.pid").exists()


def test_killed_serve_takes_embedded_redis_with_it_and_restarts(tmp_path: Path) -> None:
    first = Serve(tmp_path)
    try:
        first.wait_ready()
        redis_pid = first.redis_pid()
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(10)
        wait_for(lambda: not alive(redis_pid), 5, "embedded Redis to die with its parent")
    finally:
        first.stop()

    second = Serve(tmp_path)  # the stale pid file and socket are cleaned up
    try:
        second.wait_ready()
        assert second.redis_pid() != redis_pid
    finally:
        second.stop()


def test_scaled_roles_refuse_to_start_without_redis(tmp_path: Path) -> None:
    result = cli(tmp_path, clean_env(free_port()), "worker")
    assert result.returncode == 2
    assert "SWITCHBOARD_REDIS_URL" in result.stderr


def test_the_pbx_role_says_what_it_needs(tmp_path: Path) -> None:
    unset = cli(tmp_path, clean_env(free_port()), "pbx")
    assert unset.returncode == 2 and "SWITCHBOARD_AMI_URL" in unset.stderr and "manager.conf" in unset.stderr
    wrong = cli(tmp_path, {**clean_env(free_port()), "SWITCHBOARD_AMI_URL": "ami://pbx.example.org"}, "pbx")
    assert wrong.returncode == 2
    assert "invalid configuration: ami_url: expected ami://USER:SECRET@HOST:PORT" in wrong.stderr
    no_redis = cli(tmp_path, {**clean_env(free_port()), "SWITCHBOARD_AMI_URL": "ami://u:p@127.0.0.1"}, "pbx")
    assert no_redis.returncode == 2 and "SWITCHBOARD_REDIS_URL" in no_redis.stderr


def test_agent_add_errors_are_clear(tmp_path: Path) -> None:
    env = clean_env(free_port())
    assert cli(tmp_path, env, "agent", "add", "Eve", "--email", "eve@example.com").returncode == 0
    duplicate = cli(tmp_path, env, "agent", "add", "Eve", "--email", "eve@example.com")
    assert duplicate.returncode == 2 and "exists already" in duplicate.stderr
    bad_group = cli(tmp_path, env, "agent", "add", "Fay", "--email", "fay@example.com", "--group", "Nope")
    assert bad_group.returncode == 2 and "switchboard group add" in bad_group.stderr
    bad_email = cli(tmp_path, env, "agent", "add", "Gus", "--email", "not-an-email")
    assert bad_email.returncode == 2 and "email" in bad_email.stderr.lower()
    group = cli(tmp_path, env, "group", "add", "Sales", "--head", "head@example.com")
    assert group.returncode == 0 and "Sales" in group.stdout
    assert cli(tmp_path, env, "agent", "add", "Fay", "--email", "fay@example.com", "--group", "Sales").returncode == 0


def test_email_walkthrough_on_the_embedded_default(serve: Serve) -> None:
    """Issue 3's acceptance: a Russian mail opens a ticket, the reply goes out threaded, the answer joins."""
    import smtplib
    from email import message_from_bytes, policy
    from email.message import EmailMessage

    token = cli(serve.cwd, serve.env, "agent", "add", "Alice", "--email", "alice@example.com").stdout.split()[-1]
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    smtp_port = int(serve.env["SWITCHBOARD_SMTP_PORT"])

    first = EmailMessage()
    first["From"], first["To"] = "Иван <ivan@example.org>", "support@example.com"
    first["Subject"] = "Принтер не печатает"
    first["Message-ID"] = "<first@example.org>"
    first.set_content("Здравствуйте! Принтер снова не печатает.")
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as client:
        client.send_message(first)
    tickets = json.loads(http("GET", f"{serve.base}/api/v1/tickets", headers=auth)[1])["items"]
    assert [t["subject"] for t in tickets] == ["Принтер не печатает"]
    number, customer_id = tickets[0]["number"], tickets[0]["customer_id"]
    card = json.loads(http("GET", f"{serve.base}/api/v1/customers/{customer_id}", headers=auth)[1])
    assert card["identities"] == [{"kind": "email", "address": "ivan@example.org"}]

    status, _ = http("POST", f"{serve.base}/api/v1/tickets/{number}/messages", headers=auth,
                     data=json.dumps({"body": "Добрый день! Выезжаем."}).encode())
    assert status == 201

    def sent_reply() -> bytes | None:
        for path in sorted((serve.cwd / "data" / "mail-sink").glob("*.eml")):
            if "Выезжаем".encode() in path.read_bytes() or b"Re:" in path.read_bytes():
                return path.read_bytes()
        return None

    wait_for(lambda: sent_reply() is not None, 15, "the reply in the mail sink")
    reply = message_from_bytes(sent_reply(), policy=policy.default)
    assert f"[#{number}]" in reply["Subject"] and reply["In-Reply-To"] == "<first@example.org>"
    assert reply["To"] == "ivan@example.org" or "ivan@example.org" in reply["To"]
    listing = cli(serve.cwd, serve.env, "mail", "outbox")
    assert listing.returncode == 0 and f"[#{number}]" in listing.stdout

    answer = EmailMessage()
    answer["From"], answer["To"] = "ivan@example.org", "support@example.com"
    answer["Subject"] = "Re: " + str(reply["Subject"])
    answer["Message-ID"], answer["In-Reply-To"] = "<answer@example.org>", reply["Message-ID"]
    answer["References"] = f"<first@example.org> {reply['Message-ID']}"
    answer.set_content("Спасибо, ждём.")
    oof = EmailMessage()
    oof["From"], oof["To"], oof["Subject"] = "boss@example.org", "support@example.com", "Out of office"
    oof["Auto-Submitted"] = "auto-replied"
    oof.set_content("I am away.")
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as client:
        client.send_message(answer)
        client.send_message(oof)

    tickets = json.loads(http("GET", f"{serve.base}/api/v1/tickets", headers=auth)[1])["items"]
    assert [t["number"] for t in tickets] == [number]
    ticket = json.loads(http("GET", f"{serve.base}/api/v1/tickets/{number}", headers=auth)[1])
    assert ticket["messages"][-1]["body_text"].strip() == "Спасибо, ждём."
    assert ticket["messages"][-1]["thread_reason"].startswith(f"replies to {reply['Message-ID']}")


def test_phone_acceptance_on_the_embedded_default(serve: Serve) -> None:
    """Import Master.csv beside a running serve: progress and summary, callbacks assigned, one card for call and
    mail."""
    for name, extension in (("Anna", "201"), ("Boris", "202")):
        added = cli(serve.cwd, serve.env, "agent", "add", name, "--email", f"{name.lower()}@example.com",
                    "--extension", extension)
        assert added.returncode == 0, added.stderr
    auth = {"Authorization": f"Bearer {added.stdout.strip().splitlines()[-1]}"}
    master = serve.cwd / "Master.csv"
    master.write_bytes((REPO / "tests" / "corpus" / "cdr" / "master_18.csv").read_bytes())

    imported = cli(serve.cwd, serve.env, "calls", "import", "--region", "RU", str(master))
    assert imported.returncode == 0, imported.stderr
    assert "Master.csv: 100%" in imported.stderr
    assert imported.stdout.splitlines()[0].startswith("imported 8 calls: 3 callback tickets opened")

    status, body = http("GET", f"{serve.base}/api/v1/tickets?limit=200", headers=auth)
    callbacks = json.loads(body)["items"]
    assert status == 200 and len(callbacks) == 3
    assert all(t["category"] == "callback" and t["assignee_id"] for t in callbacks)

    jane = next(t for t in callbacks if "+442079460958" in t["subject"])
    status, body = http("POST", f"{serve.base}/api/v1/customers/{jane['customer_id']}/identities",
                        data=json.dumps({"kind": "email", "address": "jane@example.com"}).encode(),
                        headers={**auth, "Content-Type": "application/json"})
    assert status == 200, body
    with smtplib.SMTP("127.0.0.1", int(serve.env["SWITCHBOARD_SMTP_PORT"]), timeout=10) as smtp:
        smtp.sendmail("jane@example.com", ["support@example.com"],
                      b"From: Jane Smith <jane@example.com>\r\nTo: support@example.com\r\nSubject: About my call\r\n"
                      b"Message-ID: <jane-1@example.com>\r\n\r\nYou missed my call.\r\n")
    status, body = http("GET", f"{serve.base}/api/v1/customers/{jane['customer_id']}", headers=auth)
    card = json.loads(body)
    assert sorted(t["channel"] for t in card["tickets"]) == ["email", "phone"]
    assert [(c["direction"], c["disposition"], c["duration"]) for c in card["calls"]] == [("in", "missed", 20)]


def test_fifty_mails_at_once_with_the_same_new_attachment_are_all_stored(serve: Serve) -> None:
    """Issue 26: concurrent saves of one attachment shared a temporary file name, and a session whose file another
    had already moved into place was answered 451 (one in fifty, the first time the file came in). Fifty
    clients on threads of their own, as other mail servers are, against `serve`."""
    import smtplib
    from concurrent.futures import ThreadPoolExecutor
    from email.message import EmailMessage

    token = cli(serve.cwd, serve.env, "agent", "add", "Alice", "--email", "alice@example.com").stdout.split()[-1]
    smtp_port = int(serve.env["SWITCHBOARD_SMTP_PORT"])
    invoice = b"%PDF-1.4 the same invoice " * 12_000

    def send(n: int) -> tuple[int, bytes]:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = f"client{n}@example.org", "support@example.com", f"#{n}"
        message.set_content("The invoice is attached.")
        message.add_attachment(invoice, maintype="application", subtype="pdf", filename="invoice.pdf")
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as client:
            client.ehlo()
            client.mail(f"client{n}@example.org")
            client.rcpt("support@example.com")
            return client.data(message.as_bytes())

    with ThreadPoolExecutor(50) as pool:
        replies = list(pool.map(send, range(50)))
    assert [code for code, _ in replies] == [250] * 50, [r for r in replies if r[0] != 250]
    status, body = http("GET", f"{serve.base}/api/v1/tickets?limit=100", headers={"Authorization": f"Bearer {token}"})
    assert status == 200 and len(json.loads(body)["items"]) == 50, body
