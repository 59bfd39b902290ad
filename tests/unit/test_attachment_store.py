"""The attachment store on the real file system: the same file saved many times at once is stored once, and every
save succeeds (they shared one temporary name: a concurrent save found it moved away, and the post answered 500)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tickets.attachments import AttachmentStore


async def test_the_same_file_saved_at_once_from_many_requests_is_stored_once(tmp_path: Path) -> None:
    store = AttachmentStore(tmp_path)
    data = b"%PDF-1.4 " + b"x" * 300_000
    refs = await asyncio.gather(*(store.save(f"invoice-{n}.pdf", "application/pdf", data) for n in range(64)))
    assert {ref.path for ref in refs} == {refs[0].path}
    assert store.open_path(refs[0].path).read_bytes() == data
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [refs[0].sha256]  # no temporary file left
