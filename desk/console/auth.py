"""Signing in to the console: a session cookie (HttpOnly, SameSite=Lax), a CSRF token on every form, login
attempts limited per address and per email, and signing out."""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from desk.console.render import page
from tickets.actions.logins import SESSION_MAX
from tickets.models import Agent
from web.forms import form_fields
from web.ratelimit import RateLimiter
from web.runtime import runtime

log = logging.getLogger(__name__)

COOKIE = "sb_session"
LOGIN_COOKIE = "sb_login"
LOGIN_FORM_SECONDS = 3600
LOGIN_ATTEMPTS = 10
"""Failed or not, per client address and per email, in 15 minutes."""
LOGIN_WINDOW = 900


@dataclass(frozen=True)
class Signed:
    agent: Agent
    csrf: str
    token: str


async def signed_in(request: web.Request) -> Signed | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    found = await runtime(request).service.session_of(token)
    return Signed(found[0], found[1], token) if found else None


async def require(request: web.Request) -> Signed:
    """The signed-in agent, or a redirect to the login page that comes back here afterwards."""
    signed = await signed_in(request)
    if signed is None:
        raise web.HTTPSeeOther(f"/desk/login?next={request.rel_url.path}")
    return signed


async def form_of(request: web.Request, signed: Signed) -> dict[str, str]:
    """The posted form, once its CSRF token matched this session's (403 otherwise)."""
    form = await form_fields(request)
    if not hmac.compare_digest(form.get("csrf", ""), signed.csrf):
        log.warning("console form without a valid CSRF token from %s", request.remote)
        raise web.HTTPForbidden(text="This form has expired or did not come from Switchboard: reload the page.")
    return form


def _limiters(request: web.Request) -> list[RateLimiter]:
    redis = runtime(request).redis
    return [RateLimiter(redis, LOGIN_ATTEMPTS, prefix="ratelimit:login:ip", window_seconds=LOGIN_WINDOW),
            RateLimiter(redis, LOGIN_ATTEMPTS, prefix="ratelimit:login:email", window_seconds=LOGIN_WINDOW)]


def console_path(value: str | None) -> str:
    """Only paths of the console: a link (after sign-in, after a form) must not send anyone elsewhere."""
    return value if value and value.startswith("/desk") and not value.startswith("//") else "/desk"


def _login_form(request: web.Request, *, status: int = 200, headers: dict[str, str] | None = None,
                **context: Any) -> web.Response:
    """The sign-in form with a fresh token, also set as a cookie only this path gets back: a post without the pair
    did not come from this form (login CSRF: signing a victim in to the attacker's account)."""
    token = secrets.token_urlsafe(24)
    response = page(request, "login.html", None, status=status, headers=headers, login_token=token, **context)
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="Strict", path="/desk/login",
                        max_age=LOGIN_FORM_SECONDS, secure=runtime(request).settings.public_url.startswith("https://"))
    return response


async def login_page(request: web.Request) -> web.Response:
    if await signed_in(request) is not None:
        raise web.HTTPSeeOther("/desk")
    return _login_form(request, next=console_path(request.query.get("next")), email="", error=None)


async def login(request: web.Request) -> web.Response:
    form = await form_fields(request)
    email, password, target = form.get("email", "").strip(), form.get("password", ""), console_path(form.get("next"))
    sent, expected = form.get("login_token", ""), request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        log.warning("sign-in without this form's token from %s", request.remote)
        return _login_form(request, status=403, next=target, email=email, error="expired")
    ip_limit, email_limit = _limiters(request)
    wait = await ip_limit.retry_after(request.remote or "?") or await email_limit.retry_after(email.lower())
    if wait:
        return _login_form(request, status=429, next=target, email=email, error="too_many",
                           headers={"Retry-After": str(wait)})
    login = await runtime(request).service.log_in(email, password) if email and password else None
    if login is None:
        return _login_form(request, status=401, next=target, email=email, error="bad_login")
    response = web.HTTPSeeOther(target)
    response.set_cookie(COOKIE, login.token, httponly=True, samesite="Lax", path="/",
                        max_age=int(SESSION_MAX.total_seconds()),
                        secure=runtime(request).settings.public_url.startswith("https://"))
    log.info("agent %s signed in to the console", login.agent.id)
    raise response


async def logout(request: web.Request) -> web.Response:
    signed = await require(request)
    await form_of(request, signed)
    await runtime(request).service.log_out(signed.token)
    response = web.HTTPSeeOther("/desk/login")
    response.del_cookie(COOKIE, path="/")
    raise response


def routes() -> list[Any]:
    return [web.get("/desk/login", login_page), web.post("/desk/login", login), web.post("/desk/logout", logout)]
