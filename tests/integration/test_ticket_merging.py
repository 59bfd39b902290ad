"""Linking and merging one client's tickets, through the REST API and the console: a merge moves the history,
closes the merged ticket and frees its agent's seat; a reply naming the merged ticket and its portal link lead
to the ticket it joined; tickets of different clients, a ticket and itself, or a closed target are refused."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from switchboard.bootstrap import Runtime
from tests.integration.test_console import PASSWORD, csrf_of, sign_in
from tickets.inbound import Identity, Inbound
from tickets.models import Agent, Deadline, DeadlineStatus, Message, Role, Ticket


@pytest.fixture
async def console_agent(runtime: Runtime, add_agent: Any) -> Agent:
    """Anna, who signs in to the console with `sign_in`."""
    agent, _ = await add_agent("Anna", email="anna@example.com", language="en")
    await runtime.service.set_password(agent.id, PASSWORD)
    return agent


def written(address: str, subject: str, body: str = "Help", channel: str = "webform", **extra: Any) -> Inbound:
    return Inbound(channel=channel, identities=(Identity("email", address),), subject=subject, body_text=body,
                   customer_name="Olga", language="en", **extra)


async def test_merging_moves_the_history_closes_the_ticket_and_later_replies_follow_it(
    client: TestClient[Any, Any], runtime: Runtime, add_agent: Any
) -> None:
    anna, headers = await add_agent("Anna", capacity=2)
    first = (await runtime.service.ingest(written("olga@example.com", "Printer jams"))).ticket
    second = (await runtime.service.ingest(written("olga@example.com", "Printer still jams", "Same printer",
                                                   channel="email", external_id="<m1@olga>"))).ticket
    third = (await runtime.service.ingest(written("olga@example.com", "Another printer", channel="email",
                                                  external_id="<m2@olga>"))).ticket
    assert {first.assignee_id, second.assignee_id} == {anna.id} and third.assignee_id is None  # Anna is full
    linked = await client.post(f"/api/v1/tickets/{second.id}/links", json={"ticket": third.id}, headers=headers)
    assert linked.status == 200 and (await linked.json())["linked"] == [third.id]

    merged = await client.post(f"/api/v1/tickets/{second.id}/merge", json={"into": first.id}, headers=headers)
    assert merged.status == 200, await merged.text()
    target = await merged.json()
    assert target["number"] == first.id and target["merged_from"] == [second.id]
    assert [m["body_text"] for m in target["messages"]] == ["Help", "Same printer"]
    assert target["linked"] == [third.id]  # the merged ticket's links came along
    assert {e["kind"] for e in target["events"]} >= {"merged_in"}

    source = await (await client.get(f"/api/v1/tickets/{second.id}", headers=headers)).json()
    assert source["status"] == "closed" and source["merged_into"] == first.id and source["messages"] == []
    assert source["events"][-1]["kind"] == "merged" and source["events"][-1]["reason"] == f"merged into #{first.id}"
    async with runtime.sessions() as session:
        assert not list(await session.scalars(select(Deadline).where(
            Deadline.ticket_id == second.id, Deadline.status == DeadlineStatus.pending)))
        # Anna's seat on the merged ticket went to the one that was waiting.
        assert (await session.get_one(Ticket, third.id)).assignee_id == anna.id

    # The client answers the merged ticket's mail, and writes naming its number: both land on the one it joined.
    answer = (await runtime.service.ingest(written("olga@example.com", "Re: Printer still jams", "Any news?",
                                                   channel="email", external_id="<m3@olga>",
                                                   thread_ids=("<m1@olga>",)))).ticket
    named = (await runtime.service.ingest(written("olga@example.com", f"About #{second.id}", "Hello?",
                                                  ticket_number=second.id))).ticket
    assert answer.id == first.id and named.id == first.id


async def test_only_one_clients_open_tickets_are_merged_and_linking_is_undone(
    client: TestClient[Any, Any], runtime: Runtime, add_agent: Any
) -> None:
    anna, headers = await add_agent("Anna")
    mine = (await runtime.service.ingest(written("olga@example.com", "One"))).ticket
    also = (await runtime.service.ingest(written("olga@example.com", "Two", channel="email",
                                                 external_id="<two@olga>"))).ticket
    other = (await runtime.service.ingest(written("ivan@example.com", "Ivan's"))).ticket

    refused = await client.post(f"/api/v1/tickets/{mine.id}/merge", json={"into": other.id}, headers=headers)
    assert refused.status == 409 and "another client" in (await refused.json())["error"]["message"]
    assert (await client.post(f"/api/v1/tickets/{mine.id}/links", json={"ticket": other.id},
                              headers=headers)).status == 409
    itself = await client.post(f"/api/v1/tickets/{mine.id}/merge", json={"into": mine.id}, headers=headers)
    assert itself.status == 422
    assert (await client.post(f"/api/v1/tickets/{mine.id}/merge", json={"into": "x"}, headers=headers)).status == 422

    await runtime.service.update_ticket(anna, also.id, {"status": "resolved"})
    into_resolved = await client.post(f"/api/v1/tickets/{mine.id}/merge", json={"into": also.id}, headers=headers)
    assert into_resolved.status == 409 and "reopen" in (await into_resolved.json())["error"]["message"]

    for _ in range(2):  # linking twice is not an error, and stores one link
        answer = await client.post(f"/api/v1/tickets/{also.id}/links", json={"ticket": mine.id}, headers=headers)
        assert answer.status == 200 and (await answer.json())["linked"] == [mine.id]
    shown = await (await client.get(f"/api/v1/tickets/{mine.id}", headers=headers)).json()
    assert shown["linked"] == [also.id]
    assert (await client.delete(f"/api/v1/tickets/{mine.id}/links/{also.id}", headers=headers)).status == 204
    assert (await (await client.get(f"/api/v1/tickets/{also.id}", headers=headers)).json())["linked"] == []
    kinds = [e["kind"] for e in shown["events"]]
    assert "linked" in kinds

    await runtime.service.update_ticket(anna, also.id, {"status": "open"})
    await runtime.service.merge_ticket(anna, also.id, mine.id)
    again = await client.post(f"/api/v1/tickets/{also.id}/merge", json={"into": mine.id}, headers=headers)
    assert again.status == 409  # merged already (and closed)


async def test_the_console_links_and_merges_from_the_ticket_page(
    client: TestClient[Any, Any], runtime: Runtime, console_agent: Agent
) -> None:
    old = (await runtime.service.ingest(written("olga@example.com", "Invoice"))).ticket
    new = (await runtime.service.ingest(written("olga@example.com", "Invoice again", channel="email",
                                                external_id="<inv@olga>"))).ticket
    await sign_in(client)
    html = await (await client.get(f"/desk/tickets/{new.id}")).text()
    assert re.search(rf'<option value="{old.id}">#{old.id} Invoice', html)
    linked = await client.post(f"/desk/tickets/{new.id}", allow_redirects=False, data={
        "csrf": csrf_of(html), "action": "link", "other": str(old.id)})
    assert linked.headers["Location"] == f"/desk/tickets/{new.id}?done=done_linked"
    page = await (await client.get(linked.headers["Location"])).text()
    assert "Linked." in page and re.search(rf'<ul class="linked">.*?#{old.id} Invoice', page, re.S)

    merged = await client.post(f"/desk/tickets/{new.id}", allow_redirects=False, data={
        "csrf": csrf_of(html), "action": "merge", "other": str(old.id)})
    assert merged.headers["Location"] == f"/desk/tickets/{old.id}?done=done_merged"
    target = await (await client.get(merged.headers["Location"])).text()
    assert "history is here now" in target and f'href="/desk/tickets/{new.id}">#{new.id}</a>' in target
    source = await (await client.get(f"/desk/tickets/{new.id}")).text()
    assert "This ticket was merged into" in source and 'class="link-merge"' not in source
    async with runtime.sessions() as session:
        moved = list(await session.scalars(select(Message.ticket_id).where(Message.external_id == "<inv@olga>")))
    assert moved == [old.id]

    bad = await client.post(f"/desk/tickets/{old.id}", allow_redirects=False, data={
        "csrf": csrf_of(html), "action": "merge", "other": "nope"})
    assert bad.status == 422 and "choose a ticket" in await bad.text()


async def test_the_queue_filters_by_channel_and_priority(
    client: TestClient[Any, Any], runtime: Runtime, console_agent: Agent
) -> None:
    anna = console_agent
    web = (await runtime.service.ingest(written("a@example.com", "From the form"))).ticket
    mail = (await runtime.service.ingest(written("b@example.com", "By mail", channel="email",
                                                 external_id="<b@x>"))).ticket
    await runtime.service.update_ticket(anna, mail.id, {"priority": "high"})
    await sign_in(client)

    async def shown(**params: str) -> set[int]:
        html = await (await client.get("/desk", params=params)).text()
        return {int(n) for n in re.findall(r'data-ticket="(\d+)"', html)}

    assert await shown() == {web.id, mail.id}
    assert await shown(channel="email") == {mail.id}
    assert await shown(channel="webform", priority="high") == set()
    assert await shown(priority="high") == {mail.id}
    assert await shown(priority="bogus") == {web.id, mail.id}  # an unknown filter value filters nothing
    html = await (await client.get("/desk", params={"channel": "email", "sort": "number"})).text()
    assert 'href="/desk?view=mine&amp;channel=email&amp;sort=priority"' in html  # sorting keeps the filter


async def test_the_api_lists_by_channel_priority_and_search(
    client: TestClient[Any, Any], runtime: Runtime, add_agent: Any
) -> None:
    _, headers = await add_agent("Anna", role=Role.manager)
    web = (await runtime.service.ingest(written("a@example.com", "Modem"))).ticket
    await runtime.service.ingest(written("b@example.com", "Router", channel="email", external_id="<r@x>"))
    answer = await (await client.get("/api/v1/tickets", params={"channel": "webform"}, headers=headers)).json()
    assert [t["number"] for t in answer["items"]] == [web.id]
    answer = await (await client.get("/api/v1/tickets", params={"q": "modem"}, headers=headers)).json()
    assert [t["number"] for t in answer["items"]] == [web.id]
    wrong = await client.get("/api/v1/tickets", params={"priority": "urgent"}, headers=headers)
    assert wrong.status == 422 and "priority" in (await wrong.json())["error"]["fields"]


async def test_merged_tickets_portal_link_shows_the_ticket_it_joined(
    client: TestClient[Any, Any], runtime: Runtime, add_agent: Any
) -> None:
    anna, _ = await add_agent("Anna")
    first = (await runtime.service.ingest(written("olga@example.com", "Wifi"))).ticket
    second = (await runtime.service.ingest(written("olga@example.com", "Wifi down", channel="email",
                                                   external_id="<w@olga>"))).ticket
    await runtime.service.merge_ticket(anna, second.id, first.id)
    html = await (await client.get(f"/portal/{second.portal_key}")).text()
    assert f"#{first.id}: Wifi" in html
    sent = await client.post(f"/portal/{second.portal_key}", data={"body": "Any news?"}, allow_redirects=False)
    assert sent.status == 303
    async with runtime.sessions() as session:
        landed = await session.scalar(select(Message.ticket_id).where(Message.body_text == "Any news?"))
    assert landed == first.id

