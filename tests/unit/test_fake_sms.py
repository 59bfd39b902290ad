"""The fake SMS gateway must behave like the providers it stands in for, or tests of our deliverer prove nothing:
both profiles accept, refuse (auth, bad number, missing body) and fail on demand as the real ones do; a stall that
accepts and answers late followed by a retry with the same idempotency key delivers once (twice without
idempotency); receipts reach our server carrying the bearer token or a Twilio signature that checks out; and the
log holds one line per delivered SMS. Real HTTP on 127.0.0.1 throughout.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Self

import aiohttp
import pytest
from aiohttp import web

from tests.fake_sms import FakeSmsGateway, Profile, twilio_signature

REPO = Path(__file__).resolve().parents[2]
PHONE = "+4915112345678"
SENDER = "+15005550006"


def basic(user: str, password: str) -> str:
    """A basic Authorization header, spelt out (aiohttp deprecates BasicAuth)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def send(session: aiohttp.ClientSession, gateway: FakeSmsGateway, to: str = PHONE, text: str | None = "hello",
               *, key: str | None = None, timeout: float | None = None, password: str | None = None,
               **extra: str) -> tuple[int, dict[str, Any], Any]:
    """One send the way a client of that profile would; (status, JSON body, headers)."""
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    if gateway.profile == "json":
        headers = {"Authorization": f"Bearer {password or gateway.token}"}
        if key:
            headers["Idempotency-Key"] = key
        body = {gateway.to_field: to, **extra}
        if text is not None:
            body[gateway.text_field] = text
        request = session.post(gateway.url, json=body, headers=headers, timeout=client_timeout)
    else:
        headers = {"Authorization": basic(gateway.account_sid, password or gateway.auth_token)}
        if key:
            headers["I-Twilio-Idempotency-Token"] = key
        form = {"To": to, "From": SENDER, **extra}
        if text is not None:
            form["Body"] = text
        url = f"{gateway.url}/2010-04-01/Accounts/{gateway.account_sid}/Messages.json"
        request = session.post(url, data=form, headers=headers, timeout=client_timeout)
    async with request as response:
        return response.status, await response.json(), response.headers


class Receiver:
    """Our side of delivery receipts: a tiny server that records what it is sent."""

    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        """(full URL as requested, headers, body fields) of every request."""
        self.arrived = asyncio.Event()
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/receipts?tenant=7"

    async def _record(self, request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            fields = await request.json()
        else:
            fields = {name: str(value) for name, value in (await request.post()).items()}
        self.got.append((str(request.url), dict(request.headers), fields))
        self.arrived.set()
        return web.Response(status=204)

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/receipts", self._record)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


# --- accepting and refusing -----------------------------------------------------------------------------


async def test_json_gateway_accepts_and_keeps_every_field(session: aiohttp.ClientSession) -> None:
    async with FakeSmsGateway("json") as gateway:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/sms", gateway.url)
        status, body, _ = await send(session, gateway, text="Ticket #12 is yours", key="k1",
                                     **{"from": "Support", "reference": "outbox-3"})
        assert status == 200 and body["status"] == "accepted"
        [sms] = await gateway.wait_for(1)
        assert (sms.id, sms.to, sms.text, sms.sender, sms.key) == (body["id"], PHONE, "Ticket #12 is yours",
                                                                   "Support", "k1")
        assert sms.fields["reference"] == "outbox-3" and sms.received_at.tzinfo is not None
        assert gateway.to(PHONE) == [sms] and gateway.to("+4400000000") == []
        assert gateway.requests == [(200, sms.fields)]


async def test_json_gateway_field_names_can_be_renamed(session: aiohttp.ClientSession) -> None:
    async with Receiver() as ours, FakeSmsGateway("json", to_field="msisdn", text_field="message",
                                                  from_field="sender", callback_field="dlr_url") as gateway:
        status, body, _ = await send(session, gateway, text="hi", sender="Desk", dlr_url=ours.url)
        assert status == 200
        [sms] = gateway.delivered
        assert (sms.to, sms.text, sms.sender) == (PHONE, "hi", "Desk")
        assert sms.fields == {"msisdn": PHONE, "message": "hi", "sender": "Desk", "dlr_url": ours.url}
        assert await gateway.send_receipt(body["id"]) == 204


@pytest.mark.parametrize(("to", "text", "error"), [
    ("12345678", "hi", "invalid number"),
    ("+1234567", "hi", "invalid number"),
    ("+1234567890123456", "hi", "invalid number"),
    ("", "hi", "missing 'to'"),
    (PHONE, None, "missing 'text'"),
    (PHONE, "", "missing 'text'"),
])
async def test_json_gateway_refuses_bad_requests(session: aiohttp.ClientSession, to: str, text: str | None,
                                                 error: str) -> None:
    async with FakeSmsGateway("json") as gateway:
        assert (await send(session, gateway, to, text))[:2] == (400, {"error": error})
        assert gateway.delivered == [] and gateway.requests[0][0] == 400


async def test_json_gateway_wants_the_bearer_token(session: aiohttp.ClientSession) -> None:
    async with FakeSmsGateway("json", token="s3cret") as gateway:
        status, body, _ = await send(session, gateway, password="wrong")
        assert (status, body) == (401, {"error": "unauthorized"})
        async with session.post(gateway.url, json={"to": PHONE, "text": "x"}) as response:
            assert response.status == 401
        assert gateway.delivered == [] and [s for s, _ in gateway.requests] == [401, 401]
        assert (await send(session, gateway))[0] == 200


async def test_twilio_gateway_accepts(session: aiohttp.ClientSession) -> None:
    async with FakeSmsGateway("twilio") as gateway:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", gateway.url)
        status, body, _ = await send(session, gateway, text="Your ticket", StatusCallback="http://x/cb")
        assert status == 201
        assert re.fullmatch(r"SM[0-9a-f]{32}", body["sid"])
        assert {k: body[k] for k in ("status", "to", "from", "body", "account_sid")} == {
            "status": "queued", "to": PHONE, "from": SENDER, "body": "Your ticket", "account_sid": "ACtest"}
        [sms] = gateway.delivered
        assert (sms.id, sms.sender, sms.fields["StatusCallback"]) == (body["sid"], SENDER, "http://x/cb")


async def test_twilio_gateway_takes_a_messaging_service_instead_of_from(session: aiohttp.ClientSession) -> None:
    async with FakeSmsGateway("twilio") as gateway:
        url = f"{gateway.url}/2010-04-01/Accounts/ACtest/Messages.json"
        form = {"To": PHONE, "MessagingServiceSid": "MG1", "Body": "hi"}
        async with session.post(url, data=form,
                                headers={"Authorization": basic("ACtest", "twilio-secret")}) as response:
            assert response.status == 201
        assert gateway.delivered[0].sender is None


async def test_twilio_gateway_authenticates_the_account(session: aiohttp.ClientSession) -> None:
    refused = {"code": 20003, "message": "Authenticate", "status": 401}
    async with FakeSmsGateway("twilio", account_sid="AC1", auth_token="tok") as gateway:
        assert (await send(session, gateway, password="bad"))[:2] == (401, refused)
        # right credentials, another account's path
        url = f"{gateway.url}/2010-04-01/Accounts/AC2/Messages.json"
        form = {"To": PHONE, "From": SENDER, "Body": "hi"}
        async with session.post(url, data=form, headers={"Authorization": basic("AC1", "tok")}) as response:
            assert (response.status, await response.json()) == (401, refused)
        assert gateway.delivered == []
        assert (await send(session, gateway))[0] == 201


async def test_twilio_gateway_refuses_with_twilio_codes(session: aiohttp.ClientSession) -> None:
    async with FakeSmsGateway("twilio") as gateway:
        assert (await send(session, gateway, "0049151"))[:2] == (400, {
            "code": 21211, "message": "The 'To' number 0049151 is not a valid phone number.", "status": 400})
        assert (await send(session, gateway, text=None))[:2] == (400, {
            "code": 21602, "message": "Message body is required.", "status": 400})
        assert gateway.delivered == [] and [s for s, _ in gateway.requests] == [400, 400]


# --- faults ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["json", "twilio"])
async def test_fail_answers_the_next_requests_then_recovers(session: aiohttp.ClientSession, profile: Profile) -> None:
    async with FakeSmsGateway(profile) as gateway:
        gateway.fail(503, times=2, retry_after=7)
        for _ in range(2):
            status, body, headers = await send(session, gateway)
            assert status == 503 and headers["Retry-After"] == "7"
            assert body == ({"error": "service unavailable"} if profile == "json"
                            else {"code": 20503, "message": "Service Unavailable", "status": 503})
        assert gateway.delivered == []
        status, _, headers = await send(session, gateway)
        assert status in (200, 201) and "Retry-After" not in headers
        assert len(gateway.delivered) == 1
        assert [s for s, _ in gateway.requests] == [503, 503, status]


async def test_faults_are_taken_in_order_and_clear_drops_them(session: aiohttp.ClientSession) -> None:
    async with FakeSmsGateway("twilio") as gateway:
        gateway.fail(500)
        gateway.fail(429, times=1)
        gateway.fail(400, times=5)
        assert (await send(session, gateway))[0] == 500
        status, body, headers = await send(session, gateway)
        assert (status, body["code"], "Retry-After" in headers) == (429, 20429, False)
        assert (await send(session, gateway))[0] == 400
        gateway.clear()
        assert (await send(session, gateway))[0] == 201


@pytest.mark.parametrize("profile", ["json", "twilio"])
async def test_a_late_answer_then_a_retry_with_the_same_key_delivers_once(session: aiohttp.ClientSession,
                                                                         profile: Profile) -> None:
    async with FakeSmsGateway(profile) as gateway:
        gateway.stall(0.5)
        with pytest.raises(asyncio.TimeoutError):
            await send(session, gateway, key="outbox-9", timeout=0.1)
        [first] = await gateway.wait_for(1, timeout=1)  # the gateway has it even though the client gave up
        status, body, _ = await send(session, gateway, key="outbox-9")
        assert status == 200 and body.get("id", body.get("sid")) == first.id
        assert gateway.delivered == [first] and gateway.duplicates_suppressed == 1
        assert [s for s, _ in gateway.requests] == [200 if profile == "json" else 201, 200]


async def test_without_idempotency_the_retry_delivers_again(session: aiohttp.ClientSession) -> None:
    async with FakeSmsGateway("json", honour_idempotency=False) as gateway:
        gateway.stall(0.5)
        with pytest.raises(asyncio.TimeoutError):
            await send(session, gateway, key="outbox-9", timeout=0.1)
        assert (await send(session, gateway, key="outbox-9"))[0] == 200
        first, second = await gateway.wait_for(2, timeout=1)
        assert first.id != second.id and first.key == second.key == "outbox-9"
        assert gateway.duplicates_suppressed == 0


async def test_a_stall_before_accepting_delivers_nothing_to_a_client_that_gave_up(
        session: aiohttp.ClientSession) -> None:
    async with FakeSmsGateway("json") as gateway:
        gateway.stall(0.3, accept=False)
        with pytest.raises(asyncio.TimeoutError):
            await send(session, gateway, timeout=0.1)
        assert gateway.delivered == []
        [sms] = await gateway.wait_for(1, timeout=1)  # then it carries on as if nothing happened
        assert sms.to == PHONE


async def test_wait_for_says_what_arrived(session: aiohttp.ClientSession) -> None:
    async with FakeSmsGateway("json") as gateway:
        await send(session, gateway, text="only one")
        with pytest.raises(AssertionError, match="expected 2 SMS.*only one"):
            await gateway.wait_for(2, timeout=0.05)


# --- receipts -------------------------------------------------------------------------------------------


def test_twilio_signature_matches_twilios_published_example() -> None:
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234", "From": "+12349013030",
              "To": "+18005551212"}
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature("12345", url, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert twilio_signature("12345", url, {**params, "Digits": "9"}) != "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


async def test_json_receipt_goes_to_the_callback_url_with_the_bearer(session: aiohttp.ClientSession) -> None:
    async with Receiver() as ours, FakeSmsGateway("json", receipt_token="rt") as gateway:
        _, body, _ = await send(session, gateway, callback_url=ours.url)
        assert await gateway.send_receipt(body["id"], "failed", error="absent subscriber") == 204
        [(url, headers, fields)] = ours.got
        assert url == ours.url and headers["Authorization"] == "Bearer rt"
        assert fields == {"id": body["id"], "status": "failed", "error": "absent subscriber", "to": PHONE}
        assert gateway.receipts == [(body["id"], "failed", 204)]


async def test_twilio_status_callback_is_signed(session: aiohttp.ClientSession) -> None:
    async with Receiver() as ours, FakeSmsGateway("twilio", auth_token="tok") as gateway:
        _, body, _ = await send(session, gateway, StatusCallback=ours.url)
        assert await gateway.send_receipt(body["sid"], "undelivered", error="30003") == 204
        [(url, headers, fields)] = ours.got
        assert fields == {"MessageSid": body["sid"], "MessageStatus": "undelivered", "ErrorCode": "30003",
                          "AccountSid": "ACtest", "To": PHONE, "From": SENDER}
        assert headers["X-Twilio-Signature"] == twilio_signature("tok", url, fields)
        assert headers["X-Twilio-Signature"] != twilio_signature("other", url, fields)


async def test_receipt_to_an_explicit_url(session: aiohttp.ClientSession) -> None:
    async with Receiver() as ours, FakeSmsGateway("twilio") as gateway:
        _, body, _ = await send(session, gateway)
        with pytest.raises(ValueError, match="no callback URL"):
            await gateway.send_receipt(body["sid"])
        assert await gateway.send_receipt(body["sid"], url=ours.url) == 204
        assert ours.got[0][2]["MessageStatus"] == "delivered" and "ErrorCode" not in ours.got[0][2]


async def test_auto_receipt_follows_each_accepted_message(session: aiohttp.ClientSession) -> None:
    async with Receiver() as ours, FakeSmsGateway("json", auto_receipt=0.05) as gateway:
        _, body, _ = await send(session, gateway, callback_url=ours.url)
        await send(session, gateway)  # no callback URL: no receipt, no error
        await asyncio.wait_for(ours.arrived.wait(), 2)
        assert [fields for _, _, fields in ours.got] == [
            {"id": body["id"], "status": "delivered", "error": None, "to": PHONE}]


# --- the log and the command line -----------------------------------------------------------------------


async def test_log_has_one_line_per_delivered_sms(session: aiohttp.ClientSession, tmp_path: Path) -> None:
    log = tmp_path / "sms-gateway.log"
    async with FakeSmsGateway("json", log_path=log) as gateway:
        await send(session, gateway, "+3612345678", "first", key="a", **{"from": "Desk"})
        await send(session, gateway, "+3612345678", "first", key="a")  # duplicate: not delivered again
        await send(session, gateway, "bad", "refused")
        await send(session, gateway, "+3687654321", "second")
        lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    first, second = gateway.delivered
    assert lines == [
        {"id": first.id, "to": "+3612345678", "text": "first", "from": "Desk", "key": "a",
         "at": first.received_at.isoformat()},
        {"id": second.id, "to": "+3687654321", "text": "second", "from": None, "key": None,
         "at": second.received_at.isoformat()},
    ]


async def test_command_line_prints_the_url_and_each_sms(session: aiohttp.ClientSession) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fake_sms", "--port", "0", "--profile", "json", "--token", "T",
        "--fail", "503", "--times", "1", cwd=REPO, stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    try:
        async with asyncio.timeout(4):
            first = (await process.stdout.readline()).decode().strip()
            name, _, url = first.partition("=")
            assert name == "SWITCHBOARD_SMS_GATEWAY_URL" and url.endswith("/sms")
            headers = {"Authorization": "Bearer T"}
            for expected in (503, 200):
                async with session.post(url, json={"to": PHONE, "text": "by hand"}, headers=headers) as response:
                    assert response.status == expected
            lines = []
            while not lines or not lines[-1].startswith("SMS "):
                lines.append((await process.stdout.readline()).decode().strip())
    finally:
        process.terminate()
        await process.wait()
    assert any(line.startswith("REFUSED 503") for line in lines)
    assert re.fullmatch(rf"SMS msg-\w+ to \{PHONE}: by hand", lines[-1])
