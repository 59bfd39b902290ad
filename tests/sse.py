"""Reading a console event stream (server-sent events) as the page's EventSource does."""

from __future__ import annotations

import json
from typing import Any


async def next_event(stream: Any, kind: str) -> dict[str, Any]:
    """The data (JSON) of the next event of this kind on the open stream; others are skipped."""
    event = None
    while True:
        line = (await stream.content.readline()).decode().strip()
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event == kind:
            return dict(json.loads(line.removeprefix("data: ")))
