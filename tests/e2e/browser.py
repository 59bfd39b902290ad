"""A headless Chromium driven over the Chrome DevTools Protocol with aiohttp's WebSocket client.

Only what the browser tests need: open a tab, navigate and reload, evaluate JavaScript (also inside a
frame), type, press Enter and click like a user, and poll the page until something shows. Every wait is
bounded; `Chromium.stop()` ends the browser and its helpers (they share the process group we started).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
STARTUP_TIMEOUT = 30.0
CALL_TIMEOUT = 15.0
LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


def find_chromium() -> str | None:
    """The browser binary: $SWITCHBOARD_TEST_CHROMIUM, else the first of the usual names on PATH."""
    explicit = os.environ.get("SWITCHBOARD_TEST_CHROMIUM")
    if explicit:
        return explicit if shutil.which(explicit) else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class CDPError(Exception):
    """The browser answered a command with an error, or a script threw."""


class Connection:
    """One DevTools WebSocket: numbered commands with their answers, and events for whoever waits on them."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._session = session
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._waiters: list[tuple[Callable[[dict[str, Any]], bool], asyncio.Future[dict[str, Any]]]] = []
        self.events: list[dict[str, Any]] = []
        """Every event seen, in order (tests look for dialogs, console errors, attached frames)."""
        self._reader = asyncio.create_task(self._read(), name="cdp-reader")

    @classmethod
    async def open(cls, url: str) -> Connection:
        session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(url, max_msg_size=0, timeout=aiohttp.ClientWSTimeout(ws_close=5))
        except BaseException:
            await session.close()
            raise
        return cls(session, ws)

    async def call(self, method: str, params: dict[str, Any] | None = None, *, session_id: str | None = None,
                   timeout: float = CALL_TIMEOUT) -> dict[str, Any]:
        number = next(self._ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[number] = future
        try:
            await self._ws.send_str(json.dumps(message))
            answer = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise CDPError(f"{method}: no answer within {timeout} s") from None
        finally:
            self._pending.pop(number, None)
        if "error" in answer:
            raise CDPError(f"{method}: {answer['error'].get('message')} {answer['error'].get('data', '')}".strip())
        return dict(answer.get("result", {}))

    def expect(self, method: str, session_id: str | None = None,
               where: Callable[[dict[str, Any]], bool] = lambda params: True) -> asyncio.Future[dict[str, Any]]:
        """A future for the next such event; register it before doing what causes the event."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

        def matches(event: dict[str, Any]) -> bool:
            return (event.get("method") == method and (session_id is None or event.get("sessionId") == session_id)
                    and where(event.get("params", {})))

        self._waiters.append((matches, future))
        return future

    def seen(self, method: str, session_id: str | None = None) -> list[dict[str, Any]]:
        return [e.get("params", {}) for e in self.events
                if e.get("method") == method and (session_id is None or e.get("sessionId") == session_id)]

    async def close(self) -> None:
        self._reader.cancel()
        try:
            await self._reader
        except (asyncio.CancelledError, Exception):  # noqa: BLE001 - only stopping it
            pass
        await self._ws.close()
        await self._session.close()

    async def _read(self) -> None:
        try:
            async for frame in self._ws:
                if frame.type != aiohttp.WSMsgType.TEXT:
                    continue
                data = json.loads(frame.data)
                if "id" in data:
                    future = self._pending.get(data["id"])
                    if future is not None and not future.done():
                        future.set_result(data)
                    continue
                self.events.append(data)
                for matches, future in list(self._waiters):
                    if future.done():
                        self._waiters.remove((matches, future))
                    elif matches(data):
                        future.set_result(data.get("params", {}))
                        self._waiters.remove((matches, future))
        finally:
            gone = CDPError("the DevTools connection closed")
            for future in [*self._pending.values(), *(f for _, f in self._waiters)]:
                if not future.done():
                    future.set_exception(gone)


class Page:
    """One tab, attached with a flat session."""

    def __init__(self, connection: Connection, target_id: str, session_id: str) -> None:
        self.connection = connection
        self.target_id = target_id
        self.session_id = session_id

    async def call(self, method: str, timeout: float = CALL_TIMEOUT, **params: Any) -> dict[str, Any]:
        return await self.connection.call(method, params, session_id=self.session_id, timeout=timeout)

    def expect(self, method: str, where: Callable[[dict[str, Any]], bool] = lambda params: True
               ) -> asyncio.Future[dict[str, Any]]:
        return self.connection.expect(method, self.session_id, where)

    def seen(self, method: str) -> list[dict[str, Any]]:
        return self.connection.seen(method, self.session_id)

    async def navigate(self, url: str, timeout: float = CALL_TIMEOUT) -> None:
        loaded = self.expect("Page.loadEventFired")
        answer = await self.call("Page.navigate", url=url)
        if answer.get("errorText"):
            raise CDPError(f"navigating to {url}: {answer['errorText']}")
        await _bounded(loaded, timeout, f"{url} to load")

    async def reload(self, timeout: float = CALL_TIMEOUT) -> None:
        loaded = self.expect("Page.loadEventFired")
        await self.call("Page.reload", ignoreCache=True)
        await _bounded(loaded, timeout, "the page to load again")

    async def evaluate(self, expression: str, *, context_id: int | None = None) -> Any:
        """The value of a JavaScript expression (promises awaited), returned by value."""
        params: dict[str, Any] = {"expression": expression, "awaitPromise": True, "returnByValue": True}
        if context_id is not None:
            params["contextId"] = context_id
        answer = await self.call("Runtime.evaluate", **params)
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            raise CDPError(f"{expression!r} threw: "
                           f"{details.get('exception', {}).get('description') or details.get('text')}")
        return answer["result"].get("value")

    async def wait_for(self, expression: str, *, timeout: float = 10.0, what: str | None = None,
                       context_id: int | None = None) -> Any:
        """Poll until the expression is truthy; its value. The error shows what it was last."""
        deadline = time.monotonic() + timeout
        value: Any = None
        while True:
            try:
                value = await self.evaluate(expression, context_id=context_id)
            except CDPError as exc:  # a page in the middle of loading has no document yet
                value = exc
            if value and not isinstance(value, CDPError):
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what or expression}; last: {value!r}")
            await asyncio.sleep(0.1)

    async def type(self, selector: str, text: str) -> None:
        """Focus the field and insert text as an input method would (input events fire)."""
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        await self.call("Input.insertText", text=text)

    async def press_enter(self) -> None:
        for kind in ("keyDown", "keyUp"):
            await self.call("Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter",
                            windowsVirtualKeyCode=13, nativeVirtualKeyCode=13,
                            **({"text": "\r"} if kind == "keyDown" else {}))

    async def click(self, selector: str) -> None:
        """A real mouse click at the middle of the element (in the top document)."""
        box = await self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.scrollIntoView({block: 'center'});"
            " const r = e.getBoundingClientRect(); return {x: r.left + r.width / 2, y: r.top + r.height / 2}; })()")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            await self.call("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"], button="left",
                            clickCount=0 if kind == "mouseMoved" else 1)

    async def frame_context(self, url_part: str, timeout: float = 10.0) -> int:
        """An isolated-world execution context inside the child frame whose URL contains this (its DOM, not its
        globals)."""
        deadline = time.monotonic() + timeout
        while True:
            tree = (await self.call("Page.getFrameTree"))["frameTree"]
            for child in _frames(tree.get("childFrames", [])):
                if url_part in child["frame"].get("url", ""):
                    world = await self.call("Page.createIsolatedWorld", frameId=child["frame"]["id"], worldName="e2e")
                    return int(world["executionContextId"])
            if time.monotonic() > deadline:
                raise AssertionError(f"no frame with a URL containing {url_part!r}: {tree!r}")
            await asyncio.sleep(0.1)


def _frames(children: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for child in children:
        found.append(child)
        found.extend(_frames(child.get("childFrames", [])))
    return found


async def _bounded(future: asyncio.Future[dict[str, Any]], timeout: float, what: str) -> dict[str, Any]:
    try:
        return await asyncio.wait_for(future, timeout)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None


class Chromium:
    """A headless Chromium with its own throw-away profile; `stop()` always ends it."""

    def __init__(self, binary: str, profile: Path) -> None:
        self.binary = binary
        self.profile = profile
        self.log = profile.parent / f"{profile.name}.stderr.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.connection: Connection | None = None

    async def start(self) -> Connection:
        self.profile.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as stderr:
            self.process = subprocess.Popen(
                [self.binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-extensions", "--mute-audio", "--window-size=1280,900",
                 f"--user-data-dir={self.profile}", "--remote-debugging-address=127.0.0.1",
                 "--remote-debugging-port=0", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            match = LISTENING.search(self.log.read_text(errors="replace"))
            if match:
                break
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited {self.process.returncode}: {self.stderr()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not start within {STARTUP_TIMEOUT} s: {self.stderr()}")
            await asyncio.sleep(0.05)
        self.connection = await Connection.open(match.group(1))
        return self.connection

    async def new_page(self) -> Page:
        assert self.connection is not None, "start() first"
        target = (await self.connection.call("Target.createTarget", {"url": "about:blank"}))["targetId"]
        session = (await self.connection.call("Target.attachToTarget",
                                              {"targetId": target, "flatten": True}))["sessionId"]
        page = Page(self.connection, target, session)
        for domain in ("Page.enable", "Runtime.enable"):
            await page.call(domain)
        return page

    def stderr(self, tail: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-tail:]
        except FileNotFoundError:
            return ""

    async def stop(self) -> None:
        if self.connection is not None:
            try:
                await self.connection.call("Browser.close", timeout=3)
            except (CDPError, OSError, aiohttp.ClientError):
                pass
            await self.connection.close()
            self.connection = None
        if self.process is None:
            return
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            pass
        # The renderers and helpers are in the session we started; end any that outlived the browser.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.process.poll() is None:
            self.process.wait(10)
