"""The web chat's HTTP side: the page, the embeddable script, and the WebSocket every browser talks over."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web
from jinja2 import Environment, PackageLoader, select_autoescape

from channels.chat.webchat.conversation import Conversation
from channels.chat.webchat.hub import ChatHub
from tickets.errors import InvalidInput
from tickets.language import DEFAULT, from_accept_language
from tickets.text import clean
from web.endpoints import Endpoint
from web.http import decode_json
from web.pages import HEADERS
from web.ratelimit import RateLimiter
from web.runtime import RUNTIME, runtime

log = logging.getLogger(__name__)

HUB = web.AppKey("webchat.hub", ChatHub)
LIMITER = web.AppKey("webchat.limiter", RateLimiter)
STATIC = Path(__file__).parent / "static"
ASSETS = {"chat.js": "text/javascript", "chat.css": "text/css", "widget.js": "text/javascript"}
HEARTBEAT = 25.0
"""Seconds between pings: proxies drop idle sockets, and a dead peer is noticed within two beats."""

_templates = Environment(
    loader=PackageLoader("channels.chat.webchat", "templates"), autoescape=select_autoescape(["html"])
)

STRINGS = {
    "en": {
        "title": "Chat with support", "intro": "Write to us here; an agent answers as soon as they can. "
        "Leave your email if you would like answers to reach you when you have left.",
        "name": "Your name (optional)", "email": "Email (optional)", "save": "Save", "message": "Message",
        "send": "Send", "connecting": "Connecting…", "online": "Connected", "offline": "Offline — your messages "
        "will be sent when the connection is back", "you": "You", "support": "Support", "pending": "sending…",
        "hint": "Enter sends, Shift+Enter starts a new line.", "saved": "Saved.", "open_chat": "Chat with us",
        "close_chat": "Close chat",
    },
    "ru": {
        "title": "Чат с поддержкой", "intro": "Напишите нам здесь — оператор ответит, как только сможет. "
        "Оставьте email, чтобы ответ дошёл до вас, даже если вы закроете страницу.",
        "name": "Ваше имя (необязательно)", "email": "Email (необязательно)", "save": "Сохранить",
        "message": "Сообщение", "send": "Отправить", "connecting": "Подключение…", "online": "На связи",
        "offline": "Нет связи — сообщения уйдут, когда связь восстановится", "you": "Вы", "support": "Поддержка",
        "pending": "отправляется…", "hint": "Enter — отправить, Shift+Enter — новая строка.", "saved": "Сохранено.",
        "open_chat": "Написать нам", "close_chat": "Закрыть чат",
    },
}


def _language(request: web.Request) -> str:
    asked = request.query.get("lang", "")
    if asked in STRINGS:
        return asked
    return from_accept_language(request.headers.get("Accept-Language", "")) or DEFAULT


async def chat_page(request: web.Request) -> web.Response:
    """The chat on its own page, or inside the widget's frame (`?embed=1`)."""
    language = _language(request)
    html = _templates.get_template("chat.html").render(
        lang=language, t=STRINGS[language], embed=request.query.get("embed") == "1",
        strings=json.dumps(STRINGS[language], ensure_ascii=False),
    )
    # The widget frames this page on the sites allowed to (SWITCHBOARD_HTTP_CORS_ORIGINS), or on any site.
    framers = " ".join(runtime(request).settings.http.cors_origins) or "*"
    policy = HEADERS["Content-Security-Policy"].replace("frame-ancestors 'none'", f"frame-ancestors {framers}")
    return web.Response(text=html, content_type="text/html",
                        headers={**HEADERS, "Content-Security-Policy": policy})


async def asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound()
    return web.FileResponse(
        STATIC / name, headers={"Content-Type": ASSETS[name], "Cache-Control": "public, max-age=300"}
    )


async def widget_script(request: web.Request) -> web.StreamResponse:
    """The snippet a site embeds: `<script src="…/chat/widget.js" async></script>`."""
    return web.FileResponse(STATIC / "widget.js", headers={"Content-Type": ASSETS["widget.js"],
                                                           "Access-Control-Allow-Origin": "*",
                                                           "Cache-Control": "public, max-age=300"})


def origin_allowed(request: web.Request) -> bool:
    """Browsers open the socket from our own page (the widget frames it); other origins only if configured.

    A client without an Origin header is not a browser and cannot borrow a visitor's cookies: we use none.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    settings = runtime(request).settings
    allowed = settings.http.cors_origins
    if "*" in allowed or origin in allowed:
        return True
    host = urlsplit(origin).netloc.lower()
    return host in {request.host.lower(), urlsplit(settings.public_url).netloc.lower()}


async def chat_socket(request: web.Request) -> web.StreamResponse:
    if not origin_allowed(request):
        raise web.HTTPForbidden(text="this origin may not open the chat; add it to SWITCHBOARD_HTTP_CORS_ORIGINS")
    rt = runtime(request)
    settings = rt.settings.webchat
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT, max_msg_size=settings.max_message_chars * 6 + 4096)
    await ws.prepare(request)
    hub = request.app[HUB]
    conversation = Conversation(ws, rt.service, hub, request.app[LIMITER], settings, rt.clock.now)
    try:
        async for frame in ws:
            if frame.type == WSMsgType.TEXT:
                cleaned = 0
                try:
                    data, cleaned = clean(decode_json(frame.data))
                except InvalidInput:  # not JSON, or nested past MAX_DEPTH: answered as any frame that is not one
                    data = None
                await conversation.handle(data, cleaned)
            elif frame.type == WSMsgType.BINARY:
                await ws.send_json({"type": "error", "code": "invalid", "detail": "send JSON text frames"})
    finally:
        if conversation.visitor is not None:
            hub.leave(conversation.visitor, ws)
    return ws


ENDPOINTS = [
    Endpoint("GET", "/chat", chat_page, "The website chat (HTML; `?embed=1` inside the widget's frame, `?lang=ru|en`)",
             "webchat", auth=False, response_media="text/html"),
    Endpoint("GET", "/chat/widget.js", widget_script,
             "The embeddable chat button: `<script src=\"…/chat/widget.js\" async></script>` on any page", "webchat",
             auth=False, response_media="text/javascript"),
    Endpoint("GET", "/chat/ws", chat_socket, "The chat WebSocket (JSON frames: hello, message, seen, profile, history)",
             "webchat", auth=False, errors=(403,), in_openapi=False),
    Endpoint("GET", "/chat/static/{name}", asset, "The chat page's script and styles", "webchat", auth=False,
             in_openapi=False),
]


def setup(app: web.Application) -> None:
    """Routes, the per-visitor limiter, and the hub that listens to Redis while the app runs."""
    rt = app[RUNTIME]
    app[LIMITER] = RateLimiter(rt.redis, rt.settings.webchat.rate_limit, prefix="ratelimit:webchat")
    app[HUB] = ChatHub(rt.redis)
    for endpoint in ENDPOINTS:
        app.router.add_route(endpoint.method, endpoint.path, endpoint.handler)

    async def start(app: web.Application) -> None:
        await app[HUB].start()

    async def stop(app: web.Application) -> None:
        await app[HUB].stop()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)

