"""Searching the ticket list: by a message's text over several pages, by the client's name or address, by number;
internal notes unsearched; with the list's filters and an agent's visibility; short and wildcard texts. On
PostgreSQL a search of three letters or more runs as a UNION over trigram indexes, and must find exactly what the
plain OR finds."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Select, select

from switchboard.bootstrap import Runtime
from tickets.access import visibility, visible_to
from tickets.inbound import Identity, Inbound
from tickets.models import Agent, Presence, Role, Ticket, TicketStatus
from tickets.queries.tickets import _Listing, _matching, _searched


def written(subject: str, body: str, *, address: str, name: str | None = None, group: str | None = None,
            channel: str = "webform") -> Inbound:
    return Inbound(channel=channel, identities=(Identity("email", address),), subject=subject, body_text=body,
                   customer_name=name, group=group)


async def pages(runtime: Runtime, viewer: Agent, search: str, *, limit: int = 3, **filters: Any) -> list[list[int]]:
    """Every page of a search, following `next_cursor` as the API and the console do."""
    found: list[list[int]] = []
    before = None
    while True:
        page = await runtime.service.list_tickets(viewer, search=search, limit=limit, before=before, **filters)
        found.append([t.id for t in page.tickets])
        if page.next_cursor is None:
            return found
        assert len(found) < 50, "pagination does not end"
        before = page.next_cursor


async def everything(runtime: Runtime, viewer: Agent, search: str, **filters: Any) -> list[int]:
    return [n for page in await pages(runtime, viewer, search, **filters) for n in page]


@pytest.fixture
async def desk(runtime: Runtime, add_agent: Any) -> dict[str, Any]:
    """Support and Sales, nobody available (tickets stay new and unassigned), and a history to search."""
    await runtime.service.add_group("Sales")
    sam, _ = await add_agent("Sam", presence=Presence.offline)
    sally, _ = await add_agent("Sally", groups=["Sales"], presence=Presence.offline)
    mia, _ = await add_agent("Mia", role=Role.manager, presence=Presence.offline)
    ingest = runtime.service.ingest
    kettles = []
    for n in range(7):
        kettles.append((await ingest(written(f"Appliance {n}", f"My KETTLE number {n} leaks",
                                             address=f"kettle.owner.{n}@home.example"))).ticket.id)
        await ingest(written(f"Other {n}", "The toaster burns", address=f"toast.{n}@home.example"))
    sales_kettle = (await ingest(written("Quote", "Price for a kettle?", address="buyer@shop.example",
                                         group="Sales"))).ticket.id
    olga = (await ingest(written("Invoice", "The VAT number is missing", address="o.s@mail.example",
                                 name="Olga Smirnova"))).ticket.id
    boris = (await ingest(written("Hello", "Please call", address="boris.unusual@tele.example",
                                  name="Boris"))).ticket.id
    noted = (await ingest(written("Lamp", "The lamp flickers", address="lamp@home.example"))).ticket.id
    await runtime.service.add_message(mia, noted, "customer mentioned a kettle too", internal=True)
    short = (await ingest(written("Qz code", "Strange", address="qz@home.example"))).ticket.id
    return {"sam": sam, "sally": sally, "mia": mia, "kettles": kettles, "sales_kettle": sales_kettle,
            "olga": olga, "boris": boris, "noted": noted, "short": short}


async def test_a_message_text_is_found_newest_first_over_several_pages(runtime: Runtime, desk: dict[str, Any]) -> None:
    every = sorted([*desk["kettles"], desk["sales_kettle"]], reverse=True)
    found = await pages(runtime, desk["mia"], "kettle")
    assert [n for page in found for n in page] == every  # not the internal note's ticket
    assert [len(page) for page in found] == [3, 3, 2]
    assert await everything(runtime, desk["mia"], "  KeTtLe ", limit=50) == every
    assert await everything(runtime, desk["mia"], "number 3 leaks") == [desk["kettles"][3]]


async def test_the_client_name_address_and_the_number_are_found(runtime: Runtime, desk: dict[str, Any]) -> None:
    mia = desk["mia"]
    assert await everything(runtime, mia, "smirnova") == [desk["olga"]]
    assert await everything(runtime, mia, "Olga Smir") == [desk["olga"]]
    assert await everything(runtime, mia, "boris.unusual@tele") == [desk["boris"]]
    assert await everything(runtime, mia, "unusual") == [desk["boris"]]
    assert await everything(runtime, mia, f"#{desk['boris']}") == [desk["boris"]]
    assert await everything(runtime, mia, str(desk["olga"])) == [desk["olga"]]
    assert await everything(runtime, mia, "vat number") == [desk["olga"]]


async def test_internal_notes_are_not_searched(runtime: Runtime, desk: dict[str, Any]) -> None:
    assert desk["noted"] not in await everything(runtime, desk["mia"], "kettle")
    assert await everything(runtime, desk["mia"], "mentioned a kettle") == []
    assert await everything(runtime, desk["mia"], "flickers") == [desk["noted"]]


async def test_a_search_keeps_the_filters_and_the_agentsvisibility(runtime: Runtime, desk: dict[str, Any]) -> None:
    mia, sam, sally = desk["mia"], desk["sam"], desk["sally"]
    kettles = desk["kettles"]
    for number in kettles[1:6:2]:
        await runtime.service.update_ticket(mia, number, {"status": "resolved"})
    resolved = sorted(kettles[1:6:2], reverse=True)
    assert await everything(runtime, mia, "kettle", status=[TicketStatus.resolved]) == resolved
    assert await everything(runtime, mia, "kettle", status=[TicketStatus.new]) == sorted(
        [n for n in [*kettles, desk["sales_kettle"]] if n not in resolved], reverse=True)
    assert await everything(runtime, sam, "kettle") == sorted(kettles, reverse=True)  # Support's only
    assert await everything(runtime, sally, "kettle") == [desk["sales_kettle"]]
    assert await everything(runtime, sally, "kettle", status=[TicketStatus.resolved]) == []
    assert await everything(runtime, sam, "kettle", group="Sales") == []
    assert await everything(runtime, mia, "kettle", group="Sales") == [desk["sales_kettle"]]
    assert await everything(runtime, mia, "kettle", assignee=None, channel="webform") == sorted(
        [*kettles, desk["sales_kettle"]], reverse=True)
    assert await everything(runtime, mia, "kettle", channel="email") == []


async def test_short_and_wildcard_texts(runtime: Runtime, desk: dict[str, Any]) -> None:
    mia = desk["mia"]
    assert await everything(runtime, mia, "qz") == [desk["short"]]
    assert await everything(runtime, mia, "Q") == await everything(runtime, mia, "q")
    assert desk["short"] in await everything(runtime, mia, "q", limit=50)
    assert await everything(runtime, mia, "ket%tle") == await everything(runtime, mia, "kettle")
    assert await everything(runtime, mia, "ket_tle") == await everything(runtime, mia, "kettle")
    assert await everything(runtime, mia, "%") == await everything(runtime, mia, "")  # every ticket
    assert await everything(runtime, mia, "zebrafish") == []


FILTERS: list[dict[str, Any]] = [{}, {"status": [TicketStatus.new]}, {"assignee": None, "channel": "webform"}]


def reference(query: Select[Any], filters: dict[str, Any]) -> Select[Any]:
    if "status" in filters:
        query = query.where(Ticket.status.in_(filters["status"]))
    if "assignee" in filters:
        query = query.where(Ticket.assignee_id.is_(None))
    if "channel" in filters:
        query = query.where(Ticket.channel == filters["channel"])
    return query.order_by(Ticket.id.desc())


@pytest.mark.parametrize("search", ["kettle", "KETTLE number", "olga", "home.example", "leaks", "#3", "12", "e",
                                    "toast", "ppl", "nothing-like-it"])
async def test_the_search_finds_what_the_plain_or_finds(runtime: Runtime, desk: dict[str, Any], search: str) -> None:
    """Whatever form the query takes on this backend, the result is the OR of every way of matching, page by page."""
    for viewer in (desk["mia"], desk["sam"], desk["sally"]):
        for filters in FILTERS:
            found = await everything(runtime, viewer, search, **filters)
            async with runtime.sessions() as session:
                query = (await visible_to(session, viewer, select(Ticket.id))).where(_matching(search))
                expected = list(await session.scalars(reference(query, filters)))
            assert found == expected, (viewer.name, filters)


@pytest.mark.postgresql_only
@pytest.mark.parametrize("search", ["#{olga}", "{boris}", "kettle", "ke", "e", "o.s@", "%", "zebrafish"])
async def test_the_union_form_matches_the_plain_or_whatever_the_text(
    runtime: Runtime, desk: dict[str, Any], search: str
) -> None:
    """Short texts and small numbers take the plain OR in the service; the UNION must be right for them all the same."""
    search = search.format(olga=desk["olga"], boris=desk["boris"])
    for viewer in (desk["mia"], desk["sam"], desk["sally"]):
        for filters in FILTERS:
            async with runtime.sessions() as session:
                visible = await visibility(session, viewer)
                plain = (select(Ticket.id) if visible is None else select(Ticket.id).where(visible)).where(
                    _matching(search))
                expected = list(await session.scalars(reference(plain, filters)))
                for rows, before in ((2, None), (50, None), (3, expected[1] if len(expected) > 1 else None)):
                    listing = _Listing(visible, filters.get("status"), filters.get("assignee", "any"), None,
                                       filters.get("channel"), None, None, before)
                    union = [t.id for t in await session.scalars(_searched(listing, search, rows))]
                    newer = [n for n in expected if before is None or n < before]
                    assert union == newer[:rows], (viewer.name, filters, rows, before)


async def test_cyrillic_and_other_scripts_are_found_whatever_their_case(runtime: Runtime, add_agent: Any) -> None:
    """SQLite's own lower() knows only ASCII letters: "Иван" found none of Иван Петров's tickets."""
    mia, _ = await add_agent("Mia", role=Role.manager, presence=Presence.offline)
    ivan = [(await runtime.service.ingest(written(f"Заказ {n}", "Где ДОСТАВКА?", address=f"ivan{n}@mail.example",
                                                  name="Иван Петров"))).ticket.id for n in range(3)]
    greek = (await runtime.service.ingest(written("Παραγγελία", "Πού είναι;", address="n@mail.example"))).ticket.id
    assert await everything(runtime, mia, "иван") == sorted(ivan, reverse=True)
    assert await everything(runtime, mia, "ИВАН ПЕТРОВ") == sorted(ivan, reverse=True)
    assert await everything(runtime, mia, "доставка") == sorted(ivan, reverse=True)
    assert await everything(runtime, mia, "ΠΑΡΑΓΓΕΛΊΑ".lower()) == [greek]
    assert await everything(runtime, mia, "παραγγελία") == [greek]
