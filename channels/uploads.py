"""Reading a browser's multipart post (the contact form, the customer portal) without holding more than the
upload budget: files are counted as they stream in and refused the moment they pass it."""

from __future__ import annotations

from aiohttp import BodyPartReader, web

from channels.webform.form import FormErrors

MAX_FILES = 10


async def read_multipart(request: web.Request, budget: int, fields: dict[str, str]) -> list[tuple[str, str, bytes]]:
    """Files of a multipart post, streamed so an oversized upload is refused before it is held.

    Text fields go into `fields` as they arrive, so a refused post can still show the client what they typed.
    """
    files: list[tuple[str, str, bytes]] = []
    reader = await request.multipart()
    used = 0
    async for part in reader:
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        if part.filename is not None:
            data = bytearray()
            while chunk := await part.read_chunk(64 * 1024):
                used += len(chunk)
                if used > budget:
                    raise FormErrors({"attachments": f"the files are larger than {budget // (1024 * 1024)} MB together"})
                data.extend(chunk)
            if part.filename and data:
                if len(files) >= MAX_FILES:
                    raise FormErrors({"attachments": f"at most {MAX_FILES} files"})
                files.append((part.filename, part.headers.get("Content-Type", ""), bytes(data)))
        else:
            text = await part.text()
            used += len(text)
            if used > budget:
                raise FormErrors({"message": "the form is too large"})
            fields[part.name] = text
    return files
