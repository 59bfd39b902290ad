"""The web process's aiohttp application, assembled from the desk (API, console, health, metrics) and the channels
that speak HTTP (contact form, web chat, portal, call log, Telegram webhook) on the plumbing in `web`."""

from __future__ import annotations

from importlib.metadata import version

from aiohttp import web

from channels.chat.webchat import handlers as webchat
from channels.phone import handlers as phone
from channels.portal import handlers as portal
from channels.webform import handlers as webform
from desk import api, health, metrics, notifications, plans
from desk.console import admin as console_admin
from desk.console import auth as console_auth
from desk.console import calls as console_calls
from desk.console import customers as console_customers
from desk.console import dashboard as console_dashboard
from desk.console import live as console_live
from desk.console import pages as console_pages
from switchboard.bootstrap import Runtime
from web import assets
from web.endpoints import Endpoint, register
from web.errors import domain_errors
from web.openapi import build_openapi, openapi_handler
from web.runtime import RUNTIME


def all_endpoints() -> list[Endpoint]:
    return [*api.ENDPOINTS, *notifications.ENDPOINTS, *plans.ENDPOINTS, *health.ENDPOINTS, *metrics.ENDPOINTS,
            *phone.ENDPOINTS, *webform.ENDPOINTS, *webchat.ENDPOINTS]


def create_app(rt: Runtime) -> web.Application:
    app = web.Application(middlewares=[metrics.count_requests, domain_errors],
                          client_max_size=rt.settings.http.max_upload_mb * 1024 * 1024)
    app[RUNTIME] = rt
    register(app, [*api.ENDPOINTS, *notifications.ENDPOINTS, *plans.ENDPOINTS, *health.ENDPOINTS, *metrics.ENDPOINTS,
                   *phone.ENDPOINTS])
    webform.setup(app)
    webchat.setup(app)
    console_live.setup(app)
    document = build_openapi(all_endpoints(), version("switchboard"))
    app.router.add_get("/api/v1/openapi.json", openapi_handler(document))
    app.router.add_routes([*console_auth.routes(), *console_pages.routes(), *console_calls.routes(),
                           *console_customers.routes(), *console_dashboard.routes(),
                           *console_admin.routes(), *portal.routes(), *assets.routes()])
    app.router.add_get("/", _home)
    if rt.telegram_bot is not None:
        from channels.chat.telegram import webhook
        from channels.chat.telegram.bot import webhook_secret

        webhook.setup(app, rt.telegram_bot, rt.telegram_updates(), webhook_secret(rt.settings.telegram))
    return app


async def _home(request: web.Request) -> web.Response:
    raise web.HTTPFound("/contact")
