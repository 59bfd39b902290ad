"""What every browser test stands on: `switchboard serve` in its own folder, on its embedded SQLite and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_serve import Serve


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    (tmp_path / "serve").mkdir()
    server = Serve(tmp_path / "serve")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
