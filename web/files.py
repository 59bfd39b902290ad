"""A stored file of a message, sent back as a download: the one way any page (console, portal) hands out a file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from tickets.attachments import AttachmentStore, safe_filename
from tickets.numbers import whole_number

SHOWN_INLINE_SAFE = ("image/", "application/pdf", "text/plain")
"""Types a browser may show itself; anything else (HTML, SVG) could run script on our origin, so it is a download."""


def attachment_response(store: AttachmentStore, files: Sequence[Mapping[str, Any]] | None, index: str
                        ) -> web.FileResponse:
    """File number `index` (as the path gave it) of a message's files; 404 for an index or file that is not there."""
    position = whole_number(index, maximum=len(files or []) - 1) if files else None
    if files is None or position is None:
        raise web.HTTPNotFound(text="no such attachment")
    ref = files[position]
    try:
        path = store.open_path(str(ref.get("path", "")))
    except ValueError:
        raise web.HTTPNotFound(text="no such attachment") from None
    if not path.is_file():
        raise web.HTTPNotFound(text="the file is missing from the attachment store")
    kind = str(ref.get("content_type") or "application/octet-stream")
    if not kind.startswith(SHOWN_INLINE_SAFE) or kind == "image/svg+xml":
        kind = "application/octet-stream"
    name = safe_filename(str(ref.get("name") or "attachment"))
    return web.FileResponse(path, headers={"Content-Type": kind, "X-Content-Type-Options": "nosniff",
                                           "Content-Disposition": f'attachment; filename="{name}"',
                                           "Content-Security-Policy": "default-src 'none'; sandbox"})
