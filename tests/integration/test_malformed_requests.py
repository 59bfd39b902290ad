"""Malformed requests are the sender's mistake: 4xx with a reason, never a 5xx or a dropped socket."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.test_webchat import chat_options as chat_options  # noqa: F401 - the fixture
from tests.integration.test_webchat import chat_runtime as chat_runtime  # noqa: F401 - the fixture
from tests.integration.test_webchat import connect
from tests.integration.test_webchat import sink as sink  # noqa: F401 - the fixture
from tests.integration.test_webchat import web as web  # noqa: F401 - the fixture

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("path", ["/api/v1/webform", "/api/v1/calls", "/api/v1/tickets/1/messages"])
async def test_json_bodies_in_an_unknown_charset_or_nested_too_deep_are_4xx(
    client: TestClient[Any, Any], add_agent: Any, path: str
) -> None:
    _, headers = await add_agent("Ada")
    unknown = await client.post(path, data=b'{"message": "hi"}',
                                headers={**headers, "Content-Type": "application/json; charset=klingon"})
    assert 400 <= unknown.status < 500, await unknown.text()
    deep = await client.post(path, data=DEEP, headers={**headers, "Content-Type": "application/json"})
    assert 400 <= deep.status < 500, await deep.text()


async def test_forms_in_an_unknown_charset_or_without_a_boundary_or_truncated_are_4xx(
    client: TestClient[Any, Any]
) -> None:
    for content_type, body in [
        ("application/x-www-form-urlencoded; charset=klingon", b"email=a%40example.com&message=hi"),
        ("multipart/form-data", b"--x\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\nhi\r\n--x--\r\n"),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\nhi"),
        ("multipart/form-data; boundary=x",
         b"--x\r\nContent-Type: text/plain; charset=klingon\r\nContent-Disposition: form-data; name=\"message\"\r\n"
         b"\r\nhi\r\n--x--\r\n"),
    ]:
        for path in ("/contact", "/desk/login"):
            response = await client.post(path, data=body, headers={"Content-Type": content_type})
            assert 400 <= response.status < 500, (path, content_type, response.status, await response.text())


async def test_a_call_at_the_edge_of_time_is_422(client: TestClient[Any, Any], add_agent: Any) -> None:
    _, headers = await add_agent("Ada")
    for started in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"):
        response = await client.post("/api/v1/calls", headers=headers, json={
            "call_id": f"edge-{started[:4]}", "direction": "in", "disposition": "missed", "caller": "+447911123456",
            "started_at": started})
        assert response.status == 422, await response.text()


async def test_web_chat_frames_that_are_not_what_they_claim_keep_the_socket(web: TestClient[Any, Any]) -> None:
    visitor, _ = await connect(web, name="Peter", email="peter@example.com")
    for frame in ('{"type": "message", "id": 12345678901234567890, "text": "hi"}',
                  '{"type": "message", "id": "c-1", "text": ' + "[" * 5_000 + "]" * 5_000 + "}",
                  "[" * 5_000 + "]" * 5_000,  # deep, within the frame size (past it the socket closes with 1009)
                  '{"type": "seen", "ids": [12345678901234567890]}'):
        await visitor.ws.send_str(frame)
        refusal = await visitor.next("error")
        assert refusal["code"] == "invalid", refusal
    ack = await visitor.say("still here", "c-2")
    assert ack["id"] == "c-2" and not visitor.ws.closed
