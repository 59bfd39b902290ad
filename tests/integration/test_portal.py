"""The customer portal over real HTTP: the link in the acknowledgement shows the ticket's status and public
history (never internal notes), a reply joins the ticket (and reopens a resolved one), a resolved ticket is rated
once, and the scores reach the dashboard; a wrong key shows nothing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aiohttp import FormData
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from switchboard.bootstrap import Runtime
from tickets.inbound import Identity, Inbound
from tickets.models import Message, Outbox, Rating, Ticket


def form(subject: str = "Printer", body: str = "It does not print") -> Inbound:
    return Inbound(channel="webform", identities=(Identity("email", "client@example.com"),), subject=subject,
                   body_text=body, customer_name="Client", language="en")


async def portal_path(runtime: Runtime, number: int) -> str:
    """The link in the acknowledgement the client received (the worker renders it as it delivers it)."""
    async with runtime.sessions() as session:
        ack_id = await session.scalar(select(Outbox.id).where(Outbox.ticket_id == number, Outbox.kind == "ack"))
    assert ack_id is not None and runtime.deliverer is not None
    assert await runtime.deliverer.deliver(ack_id) == "sent"
    async with runtime.sessions() as session:
        ack = await session.get_one(Outbox, ack_id)
    found = re.search(r"(http://\S+/portal/[\w-]+)", ack.body_text)
    assert found, ack.body_text
    return found.group(1).removeprefix(runtime.settings.public_url)


async def test_the_acknowledgement_links_the_portal_where_the_client_reads_and_replies(
    client: TestClient[Any, Any], runtime: Runtime, add_agent: Any
) -> None:
    agent, _ = await add_agent("Anna")
    ticket = (await runtime.service.ingest(form())).ticket
    await runtime.service.add_message(agent, ticket.id, "Have you tried turning it off and on?", internal=False)
    await runtime.service.add_message(agent, ticket.id, "SECRET: customer is on the old plan", internal=True)
    path = await portal_path(runtime, ticket.id)

    html = await (await client.get(path)).text()
    assert f"#{ticket.id}: Printer" in html and "in progress" in html
    assert "It does not print" in html and "turning it off and on" in html
    assert "SECRET" not in html  # internal notes never
    assert (await client.get("/portal/not-a-key")).status == 404

    sent = await client.post(path, data={"body": "Still broken", "idempotency": "k1"}, allow_redirects=False)
    assert sent.status == 303 and sent.headers["Location"] == f"{path}?done=sent"
    again = await client.post(path, data={"body": "Still broken", "idempotency": "k1"}, allow_redirects=False)
    assert again.status == 303  # a double submit stores one message
    async with runtime.sessions() as session:
        inbound = list(await session.scalars(select(Message.body_text).where(
            Message.ticket_id == ticket.id, Message.channel == "portal")))
    assert inbound == ["Still broken"]
    empty = await client.post(path, data={"body": "  "}, allow_redirects=False)
    assert empty.status == 422 and "write something or attach a file" in await empty.text()
    # The page shows only its own refusals: a reason in the address is not echoed.
    assert "Call +1 900 scam" not in await (await client.get(f"{path}?error=Call+%2B1+900+scam")).text()


async def test_a_resolved_ticket_is_rated_once_and_the_score_reaches_the_dashboard(
    client: TestClient[Any, Any], runtime: Runtime, add_agent: Any
) -> None:
    agent, _ = await add_agent("Anna")
    ticket = (await runtime.service.ingest(form())).ticket
    path = await portal_path(runtime, ticket.id)
    early = await client.post(f"{path}/rate", data={"score": "5"}, allow_redirects=False)
    assert early.status == 422 and "once it is resolved" in await early.text()  # not before it is resolved
    await runtime.service.update_ticket(agent, ticket.id, {"status": "resolved"})
    async with runtime.sessions() as session:
        notice = await session.scalar(select(Outbox).where(Outbox.ticket_id == ticket.id, Outbox.kind == "resolved"))
    assert notice is not None and f"{runtime.settings.public_url}{path}#rate" in notice.body_text

    html = await (await client.get(path)).text()
    assert 'name="score"' in html and "How did we do?" in html
    rated = await client.post(f"{path}/rate", data={"score": "4", "comment": "<b>quick</b>"}, allow_redirects=False)
    assert rated.status == 303 and rated.headers["Location"] == f"{path}?done=rated"
    twice = await client.post(f"{path}/rate", data={"score": "1"}, allow_redirects=False)
    assert twice.status == 422 and "rated already" in await twice.text()
    bad = await client.post(f"{path}/rate", data={"score": "9"}, allow_redirects=False)
    assert bad.status == 422 and "from 1 to 5" in await bad.text()
    async with runtime.sessions() as session:
        [rating] = list(await session.scalars(select(Rating)))
    assert (rating.ticket_id, rating.score, rating.comment) == (ticket.id, 4, "<b>quick</b>")
    html = await (await client.get(path)).text()
    assert "4 / 5" in html and 'name="score"' not in html

    # A reply from the portal reopens the resolved ticket, like a mail would.
    await client.post(path, data={"body": "It broke again"}, allow_redirects=False)
    async with runtime.sessions() as session:
        assert (await session.get_one(Ticket, ticket.id)).status == "open"

    report = await runtime.service.report()
    assert report.ratings == [0, 0, 0, 1, 0] and report.satisfaction == 4.0


async def test_the_client_attaches_files_from_the_portal_and_the_agent_downloads_them(
    client: TestClient[Any, Any], runtime: Runtime, add_agent: Any
) -> None:
    import aiohttp

    agent, _ = await add_agent("Anna")
    ticket = (await runtime.service.ingest(form())).ticket
    path = await portal_path(runtime, ticket.id)
    upload = aiohttp.FormData()
    upload.add_field("idempotency", "files-1")
    upload.add_field("body", "")  # a file alone is a message too
    upload.add_field("files", b"%PDF-1.4 invoice", filename="invoice.pdf", content_type="application/pdf")
    upload.add_field("files", b"log line", filename="printer.log", content_type="text/plain")
    sent = await client.post(path, data=upload, allow_redirects=False)
    assert sent.status == 303 and sent.headers["Location"].endswith("done=sent")

    view = await runtime.service.get_ticket(agent, ticket.id)
    message = view.messages[-1]
    assert message.channel == "portal" and [a["name"] for a in message.attachments] == ["invoice.pdf", "printer.log"]
    stored = runtime.attachments.open_path(message.attachments[0]["path"])
    assert stored.read_bytes() == b"%PDF-1.4 invoice"
    assert "invoice.pdf" in await (await client.get(path)).text()

    nothing = aiohttp.FormData()
    nothing.add_field("body", " ")
    nothing.add_field("files", b"", filename="", content_type="application/octet-stream")  # no file chosen
    refused = await client.post(path, data=nothing, allow_redirects=False)
    assert refused.status == 422 and "write something or attach a file" in await refused.text()


async def test_the_client_downloads_the_agents_files_but_never_a_notes(
    client: TestClient[Any, Any], runtime: Runtime, add_agent: Any
) -> None:
    agent, _ = await add_agent("Anna")
    ticket = (await runtime.service.ingest(form())).ticket
    invoice = await runtime.attachments.save("Счёт 17.pdf", "application/pdf", b"%PDF-1.4 invoice")
    page_html = await runtime.attachments.save("page.html", "text/html", b"<script>alert(1)</script>")
    reply = await runtime.service.add_message(agent, ticket.id, "Here it is.", internal=False,
                                              attachments=(invoice, page_html))
    note = await runtime.service.add_message(agent, ticket.id, "internal", internal=True, attachments=(invoice,))
    path = await portal_path(runtime, ticket.id)
    shown = await (await client.get(path)).text()
    assert f'href="{path}/files/{reply.id}/0" download>Счёт 17.pdf</a>' in shown

    got = await client.get(f"{path}/files/{reply.id}/0")
    assert got.status == 200 and await got.read() == b"%PDF-1.4 invoice"
    assert got.headers["Content-Type"] == "application/pdf" and got.headers["Content-Disposition"].startswith(
        "attachment;")
    html = await client.get(f"{path}/files/{reply.id}/1")  # never rendered as a page of ours
    assert html.status == 200 and html.headers["Content-Type"] == "application/octet-stream"
    for wrong in (f"{path}/files/{note.id}/0", f"{path}/files/{reply.id}/2", f"{path}/files/{reply.id}/-1",
                  f"{path}/files/x/0", f"/portal/{'a' * 32}/files/{reply.id}/0"):
        assert (await client.get(wrong)).status == 404, wrong


async def test_a_refused_post_keeps_no_file(client: TestClient[Any, Any], runtime: Runtime) -> None:
    """A wrong key (any key was enough: the limit is per key) or a refused text stores nothing on disk."""
    ticket = (await runtime.service.ingest(form())).ticket
    path = await portal_path(runtime, ticket.id)

    def files_kept() -> list[Path]:
        root = runtime.settings.attachments_dir
        return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []

    before = files_kept()
    for key in ("not-a-key", "x" * 40):
        data = FormData()
        data.add_field("body", "fill the disk")
        data.add_field("files", b"\0" * 100_000, filename="junk.bin", content_type="application/octet-stream")
        response = await client.post(f"/portal/{key}", data=data, allow_redirects=False)
        assert response.status == 404
    data = FormData()
    data.add_field("body", "x" * 20_001)
    data.add_field("files", b"\0" * 100_000, filename="junk.bin", content_type="application/octet-stream")
    refused = await client.post(path, data=data, allow_redirects=False)
    assert refused.status == 422 and "at most 20000 characters" in await refused.text()
    assert files_kept() == before
