"""What every browser test stands on: `switchboard serve` in its own folder, on its embedded SQLite and Redis."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, unavailable
from tests.e2e.browser import find_chromium
from tests.integration.test_serve import Serve

AXE_VERSION = "4.11"
AXE_DIR = REPO / "tests" / "artifacts" / "axe"


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    (tmp_path / "serve").mkdir()
    server = Serve(tmp_path / "serve")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Debian's Chromium, headless, driven by Playwright."""
    binary = find_chromium()
    if binary is None:
        unavailable("Chromium (apt-get install -y chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=binary, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core, from the npm registry (kept under tests/artifacts after the first run), for the test to put into
    each page it checks."""
    script = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
    AXE_DIR.mkdir(parents=True, exist_ok=True)
    with open(AXE_DIR / ".lock", "w") as lock:  # the suite's workers fetch it once between them
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not script.is_file():
            npm = shutil.which("npm")
            if npm is None:
                unavailable("npm (to fetch axe-core from the npm registry)")
            done = subprocess.run([npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(AXE_DIR),
                                   f"axe-core@{AXE_VERSION}"], capture_output=True, text=True, timeout=300)
            if done.returncode != 0 or not script.is_file():
                unavailable(f"axe-core from the npm registry ({done.stderr.strip()[-300:]})")
    return script.read_text()
