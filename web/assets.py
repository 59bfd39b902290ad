"""The stylesheet, icon and shared page head every page uses (console, dashboard, portal, public forms), served
from the package so the product works offline and behind a strict Content-Security-Policy."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).parent / "static"
TEMPLATES = Path(__file__).parent / "templates"
"""Templates any page set may include (`head.html`)."""
PREFIX = "/assets"


@cache
def asset(name: str) -> str:
    """The file's address with its content's hash, so a browser never keeps a stale stylesheet after an upgrade."""
    digest = hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]
    return f"{PREFIX}/{name}?v={digest}"


async def favicon(request: web.Request) -> web.FileResponse:
    """Browsers ask for /favicon.ico whatever the page says."""
    return web.FileResponse(STATIC / "favicon.svg", headers={"Content-Type": "image/svg+xml",
                                                             "Cache-Control": "public, max-age=86400"})


def routes() -> list[web.AbstractRouteDef]:
    return [web.static(PREFIX, STATIC), web.get("/favicon.ico", favicon)]
