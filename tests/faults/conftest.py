"""The fault suite runs its own PostgreSQL and Redis (see services.py), so it runs once per session: in the
PostgreSQL pass (`SWITCHBOARD_TEST_DATABASES` naming postgresql), not again on the embedded default."""

from __future__ import annotations

import pytest

from tests.conftest import BACKENDS


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "postgresql" in BACKENDS:
        return
    skip = pytest.mark.skip(reason="the fault suite runs in the PostgreSQL pass (SWITCHBOARD_TEST_DATABASES)")
    for item in items:
        if "tests/faults/" in item.nodeid:
            item.add_marker(skip)
