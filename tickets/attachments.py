"""Attachment files under the data directory, content-addressed so a retried upload stores one copy."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from pathlib import Path

from tickets.inbound import AttachmentRef

# Control characters and what file systems or download headers treat specially; everything else is kept.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]+')


def safe_filename(name: str) -> str:
    """A display name without directories or control characters (the stored path never uses it)."""
    base = os.path.basename(name.replace("\\", "/")).strip()
    cleaned = _UNSAFE.sub("_", base).strip(" .")
    return cleaned[:200] or "attachment"


class AttachmentStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    async def save(self, name: str, content_type: str, data: bytes) -> AttachmentRef:
        digest = hashlib.sha256(data).hexdigest()
        relative = Path(digest[:2]) / digest[2:4] / digest
        await asyncio.to_thread(self._write, relative, data)
        return AttachmentRef(
            name=safe_filename(name),
            content_type=content_type or "application/octet-stream",
            size=len(data),
            path=relative.as_posix(),
            sha256=digest,
        )

    def _write(self, relative: Path, data: bytes) -> None:
        target = self.root / relative
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        # A temporary name of its own: the same file uploaded twice at once (two threads, two processes) must not
        # write into, or move away, the other's temporary file. The last rename wins; both hold the same bytes.
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name[:16]}.", suffix=".tmp",
                                         delete=False) as handle:
            try:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            except BaseException:
                Path(handle.name).unlink(missing_ok=True)
                raise
        try:
            os.replace(handle.name, target)
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise

    def open_path(self, ref_path: str) -> Path:
        path = (self.root / ref_path).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError("attachment path escapes the store")
        return path
