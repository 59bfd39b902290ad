"""The public pages carry a Content-Security-Policy, and the console's sign-in form refuses a post that did not
come from it (login CSRF: an attacker signing a victim in to the attacker's account)."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.integration.test_console import PASSWORD, login_token
from tests.integration.test_console import anna as anna  # noqa: F401 - the fixture
from tickets.models import Agent


async def test_contact_and_chat_pages_send_a_content_security_policy(client: TestClient[Any, Any]) -> None:
    contact = await client.get("/contact")
    policy = contact.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert contact.headers["X-Content-Type-Options"] == "nosniff"
    chat = await client.get("/chat?embed=1")
    policy = chat.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors *" in policy  # the widget frames it on any site


async def test_a_sign_in_post_without_the_forms_token_is_refused(client: TestClient[Any, Any], anna: Agent) -> None:
    forged = await client.post("/desk/login", allow_redirects=False,
                               data={"email": "anna@example.com", "password": PASSWORD, "next": "/desk"})
    assert forged.status == 403 and "sb_session" not in forged.cookies
    assert "The sign-in form expired" in await forged.text()
    # A token from one browser does not work with another's cookie.
    stolen = await login_token(client)
    client.session.cookie_jar.clear()
    other = await client.post("/desk/login", allow_redirects=False, data={
        "email": "anna@example.com", "password": PASSWORD, "next": "/desk", "login_token": stolen})
    assert other.status == 403
    token = await login_token(client)
    signed = await client.post("/desk/login", allow_redirects=False, data={
        "email": "anna@example.com", "password": PASSWORD, "next": "/desk", "login_token": token})
    assert signed.status == 303 and "sb_session" in signed.cookies
