"""Reading a browser's form posts: text fields, and multipart uploads (the contact form, the customer portal)
without holding more than the upload budget: files are counted as they stream in and refused the moment they
pass it."""

from __future__ import annotations

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from tickets.text import clean_text
from web.runtime import runtime

MAX_FILES = 10


class FormErrors(Exception):
    """What is wrong with each field of a form, in words its sender understands."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(fields)
        self.fields = fields


async def form_fields(request: web.Request, *, as_sent: bool = False) -> dict[str, str]:
    """The text fields of a urlencoded or multipart post (the last value of a name sent twice), without what the
    store cannot keep (`tickets.text`) unless `as_sent` (a client's message: the receipt cleans it and notes it
    among the message's problems). A body that is neither (a multipart without its boundary, bytes that are not
    UTF-8) is the sender's mistake, answered 400, never a 500."""
    return {name: values[-1] for name, values in (await form_values(request, as_sent=as_sent)).items()}


async def form_values(request: web.Request, *, as_sent: bool = False) -> dict[str, list[str]]:
    """Every value of each text field, in the order sent (`user[]=a&user[]=b`), cleaned as `form_fields` says."""
    try:
        sent = [(k, v) for k, v in (await request.post()).items() if isinstance(v, str)]
    except (ValueError, AssertionError, LookupError) as exc:  # UnicodeDecodeError is a ValueError; LookupError: a
        # charset Python does not know
        raise web.HTTPBadRequest(text=f"the form could not be read: {exc}") from None
    values: dict[str, list[str]] = {}
    for name, value in sent:
        values.setdefault(name, []).append(value if as_sent else clean_text(value)[0])
    return values


async def read_form(request: web.Request, fields: dict[str, str]) -> list[tuple[str, str, bytes]]:
    """The files of a post (none for a urlencoded one); a multipart post is streamed so an upload past
    SWITCHBOARD_HTTP_MAX_UPLOAD_MB is refused before it is held.

    Text fields go into `fields` as they arrive, so a refused post can still show the client what they typed;
    they are a client's message, so they come as sent (see `form_fields`).
    """
    if not request.content_type.startswith("multipart/"):
        fields.update(await form_fields(request, as_sent=True))
        return []
    try:
        return await _read_multipart(request, fields)
    except (HttpProcessingError, ValueError, AssertionError, LookupError) as exc:  # a part aiohttp cannot read (no
        # headers, a bad boundary, truncated) or in a charset Python does not know
        raise FormErrors({"form": f"the form could not be read: {getattr(exc, 'message', None) or exc}"}) from None


async def _read_multipart(request: web.Request, fields: dict[str, str]) -> list[tuple[str, str, bytes]]:
    budget = runtime(request).settings.http.max_upload_mb * 1024 * 1024
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
                    megabytes = budget // (1024 * 1024)
                    raise FormErrors({"attachments": f"the files are larger than {megabytes} MB together"})
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
