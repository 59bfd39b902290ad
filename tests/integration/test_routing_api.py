"""Routing over the REST API: agents, groups, skills and rules set up by admins, and tickets routed by hand."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from switchboard.bootstrap import Runtime
from tests.integration.test_api import agents_by_id, assert_error, get_ticket, patch, submit
from tickets.inbound import Identity, Inbound
from tickets.models import Presence, Priority, Role

Client = TestClient[Any, Any]


# --- helpers -------------------------------------------------------------------------------------


async def patch_agent(client: Client, agent_id: int | str, headers: dict[str, str], **changes: Any) -> Any:
    return await client.patch(f"/api/v1/agents/{agent_id}", json=changes, headers=headers)


async def items(client: Client, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await client.get(path, headers=headers)
    assert response.status == 200, await response.text()
    return list((await response.json())["items"])


async def queue(client: Client, headers: dict[str, str]) -> list[int]:
    response = await client.get("/api/v1/tickets", params={"assignee": "none", "limit": "200"}, headers=headers)
    assert response.status == 200
    return sorted(t["number"] for t in (await response.json())["items"])


async def invalid_fields(response: Any) -> set[str]:
    return set((await assert_error(response, 422, "invalid"))["fields"])


async def sales_ticket(runtime: Runtime, email: str = "buyer@example.com") -> Any:
    """A ticket the channel address put in Sales (the web form always files into the default group)."""
    inbound = Inbound(channel="webform", identities=(Identity("email", email),), body_text="quote?", group="Sales")
    return (await runtime.service.ingest(inbound)).ticket


def kinds(ticket: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in ticket["events"]]


async def staff(add_agent: Any) -> tuple[dict[str, str], dict[str, str]]:
    """An admin and a manager who take no tickets themselves (offline), so routing goes to the agents."""
    _, admin = await add_agent("Ada Admin", role=Role.admin, presence=Presence.offline)
    _, manager = await add_agent("Max Manager", role=Role.manager, presence=Presence.offline)
    return admin, manager


# --- skills ----------------------------------------------------------------------------------------


async def test_a_ticket_given_a_skill_goes_only_to_an_agent_who_has_it(client: Client, add_agent: Any) -> None:
    admin, manager = await staff(add_agent)
    anna, anna_headers = await add_agent("Anna", presence=Presence.away)
    boris, boris_headers = await add_agent("Boris", presence=Presence.away)

    response = await client.post("/api/v1/skills", json={"name": "ru", "description": "Speaks Russian"}, headers=admin)
    assert response.status == 201, await response.text()
    created = await response.json()
    assert created == {"id": created["id"], "name": "ru", "description": "Speaks Russian", "agents": 0}

    response = await patch_agent(client, boris.id, admin, skills=["ru"])
    assert response.status == 200, await response.text()
    assert (await response.json())["skills"] == ["ru"]
    listed = await agents_by_id(client, manager)
    assert (listed[boris.id]["skills"], listed[anna.id]["skills"]) == (["ru"], [])

    # Nobody is available: the ticket waits; a manager says it needs Russian.
    number = await submit(client, "Здравствуйте")
    response = await patch(client, number, manager, skills=["ru"])
    assert response.status == 200, await response.text()
    ticket = await response.json()
    assert ticket["skills"] == ["ru"] and ticket["status"] == "new" and ticket["assignee_id"] is None
    changed = [e for e in ticket["events"] if e["kind"] == "skills_changed"]
    assert [e["data"] for e in changed] == [{"old": "", "new": "ru"}]
    summary = next(t for t in (await (await client.get("/api/v1/tickets", headers=manager)).json())["items"]
                   if t["number"] == number)
    assert summary["skills"] == ["ru"]

    # Anna becomes available with nothing to do, yet the ticket is not hers: she lacks the skill.
    assert (await client.patch("/api/v1/agents/me", json={"presence": "available"}, headers=anna_headers)).status == 200
    assert await queue(client, manager) == [number]
    assert (await agents_by_id(client, manager))[anna.id]["open_tickets"] == 0

    # Boris, who has it, takes it as soon as he is available.
    assert (await client.patch("/api/v1/agents/me", json={"presence": "available"},
                               headers=boris_headers)).status == 200
    ticket = await get_ticket(client, number, manager)
    assert (ticket["assignee_id"], ticket["status"]) == (boris.id, "open")
    assert kinds(ticket)[-1] == "assigned"
    assert await queue(client, manager) == []

    # Skills a ticket names must exist; null is not a list; [] clears them.
    assert await invalid_fields(await patch(client, number, manager, skills=["klingon"])) == {"skills"}
    assert await invalid_fields(await patch(client, number, manager, skills=None)) == {"skills"}
    assert await invalid_fields(await patch(client, number, manager, skills="ru")) == {"skills"}
    assert (await get_ticket(client, number, manager))["skills"] == ["ru"]
    response = await patch(client, number, manager, skills=[])
    assert response.status == 200
    assert (await response.json())["skills"] == []
    assert (await get_ticket(client, number, boris_headers))["assignee_id"] == boris.id, "an open ticket stays put"


async def test_skill_catalogue(client: Client, add_agent: Any) -> None:
    admin, manager = await staff(add_agent)
    alice, agent = await add_agent("Alice")

    response = await client.post("/api/v1/skills", json={"name": " Billing "}, headers=admin)
    assert response.status == 201, await response.text()
    assert (await response.json())["name"] == "billing"
    assert (await response.json())["description"] is None
    await assert_error(await client.post("/api/v1/skills", json={"name": "billing"}, headers=admin), 409, "conflict")
    await assert_error(await client.post("/api/v1/skills", json={"name": "BILLING"}, headers=admin), 409, "conflict")
    for body, field in [({"name": "two words"}, "name"), ({"name": ""}, "name"), ({}, "name"),
                        ({"name": "x" * 65}, "name"), ({"name": "ok", "colour": "red"}, "colour"),
                        ({"name": "ok", "description": "d" * 301}, "description")]:
        assert await invalid_fields(await client.post("/api/v1/skills", json=body, headers=admin)) == {field}, body
    for headers in (manager, agent):
        await assert_error(await client.post("/api/v1/skills", json={"name": "de"}, headers=headers), 403, "forbidden")
    # Refused requests stored nothing: the admin may still add "de"; "billing" is there to be given.
    assert (await client.post("/api/v1/skills", json={"name": "de"}, headers=admin)).status == 201
    response = await patch_agent(client, alice.id, admin, skills=["billing", "de"])
    assert (await response.json())["skills"] == ["billing", "de"]


# --- groups and moving tickets between them ----------------------------------------------------------


async def test_a_manager_moves_a_ticket_to_another_group(client: Client, add_agent: Any) -> None:
    admin, manager = await staff(add_agent)
    response = await client.post("/api/v1/groups", json={"name": "Sales", "head_email": "Head.Of@Example.COM"},
                                 headers=admin)
    assert response.status == 201, await response.text()
    sales = await response.json()
    assert sales == {"id": sales["id"], "name": "Sales", "head_email": "head.of@example.com", "acknowledge": True,
                     "agents": 0, "waiting": 0}
    sam, sam_headers = await add_agent("Sam Support")
    sally, _ = await add_agent("Sally Sales", groups=["Sales"])
    number = await submit(client, "I want to buy 100 licences")
    assert (await get_ticket(client, number, manager))["assignee_id"] == sam.id

    # An agent may not move it.
    await assert_error(await patch(client, number, sam_headers, group="Sales"), 403, "forbidden")
    ticket = await get_ticket(client, number, manager)
    assert (ticket["group"], ticket["assignee_id"]) == ("Support", sam.id)

    response = await patch(client, number, manager, group="Sales")
    assert response.status == 200, await response.text()
    ticket = await response.json()
    assert (ticket["group"], ticket["group_id"], ticket["assignee_id"], ticket["status"]) == (
        "Sales", sales["id"], sally.id, "open")
    assert kinds(ticket)[-3:] == ["group_changed", "unassigned", "assigned"]
    loads = await agents_by_id(client, manager)
    assert (loads[sam.id]["open_tickets"], loads[sally.id]["open_tickets"]) == (0, 1)
    assert await queue(client, manager) == []
    # Sam no longer sees it: it left his group.
    await assert_error(await client.get(f"/api/v1/tickets/{number}", headers=sam_headers), 403, "forbidden")

    for changes, field in [({"group": "Nowhere"}, "group"), ({"group": None}, "group"), ({"group": ""}, "group"),
                           ({"group": ["Sales"]}, "group")]:
        assert await invalid_fields(await patch(client, number, manager, **changes)) == {field}, changes
    assert (await get_ticket(client, number, manager))["group"] == "Sales"


async def test_group_catalogue(client: Client, add_agent: Any) -> None:
    admin, manager = await staff(add_agent)
    alice, agent = await add_agent("Alice")

    response = await client.post("/api/v1/groups", json={"name": "Billing", "acknowledge": False}, headers=admin)
    assert response.status == 201, await response.text()
    assert (await response.json())["head_email"] is None
    await assert_error(await client.post("/api/v1/groups", json={"name": "Billing"}, headers=admin), 409, "conflict")
    await assert_error(await client.post("/api/v1/groups", json={"name": "Support"}, headers=admin), 409, "conflict")
    for body, field in [({"name": ""}, "name"), ({"name": "   "}, "name"), ({}, "name"), ({"name": "x" * 101}, "name"),
                        ({"name": "Legal", "head_email": "not an address"}, "head_email"),
                        ({"name": "Legal", "acknowledge": "sometimes"}, "acknowledge")]:
        assert await invalid_fields(await client.post("/api/v1/groups", json=body, headers=admin)) == {field}, body
    for headers in (manager, agent):
        await assert_error(await client.post("/api/v1/groups", json={"name": "Legal"}, headers=headers),
                           403, "forbidden")
    # The new group is real (an agent can be put in it); the refused one was never made.
    response = await patch_agent(client, alice.id, admin, groups=["Billing"])
    assert (await response.json())["groups"] == ["Billing"]
    assert (await client.post("/api/v1/groups", json={"name": "Legal"}, headers=admin)).status == 201


# --- agents --------------------------------------------------------------------------------------


async def test_raising_capacity_drains_the_queue(client: Client, add_agent: Any) -> None:
    admin, manager = await staff(add_agent)
    alice, alice_headers = await add_agent("Alice", capacity=1)
    tickets = [await submit(client, f"ticket {i}", email=f"c{i}@example.com") for i in range(3)]
    assert await queue(client, manager) == tickets[1:]

    # A manager may not change capacity; an agent may not change anyone.
    await assert_error(await patch_agent(client, alice.id, manager, capacity=5), 403, "forbidden")
    await assert_error(await patch_agent(client, alice.id, manager, presence="away", capacity=5), 403, "forbidden")
    await assert_error(await patch_agent(client, alice.id, alice_headers, capacity=5), 403, "forbidden")
    await assert_error(await patch_agent(client, alice.id, alice_headers, presence="away"), 403, "forbidden")
    assert (await agents_by_id(client, manager))[alice.id]["capacity"] == 1
    assert await queue(client, manager) == tickets[1:]

    response = await patch_agent(client, alice.id, admin, capacity=3)
    assert response.status == 200, await response.text()
    me = await response.json()
    assert (me["id"], me["capacity"], me["open_tickets"], me["load"]) == (alice.id, 3, 3, 3)
    assert await queue(client, manager) == []
    assert [(await get_ticket(client, n, alice_headers))["assignee_id"] for n in tickets] == [alice.id] * 3


async def test_admin_changes_groups_and_skills_of_an_agent(client: Client, add_agent: Any, runtime: Runtime) -> None:
    admin, manager = await staff(add_agent)
    await runtime.service.add_group("Sales")
    await runtime.service.add_skill("ru")
    await runtime.service.add_skill("de")
    alice, _ = await add_agent("Alice")
    # A Sales ticket waits: Sales has nobody.
    sale = await sales_ticket(runtime)
    assert await queue(client, manager) == [sale.id]

    response = await patch_agent(client, alice.id, admin, groups=["Support", "Sales"], skills=["ru", "de"])
    assert response.status == 200, await response.text()
    body = await response.json()
    assert (body["groups"], body["skills"], body["open_tickets"]) == (["Sales", "Support"], ["de", "ru"], 1)
    assert (await get_ticket(client, sale.id, manager))["assignee_id"] == alice.id
    assert await queue(client, manager) == []

    # Lists replace what was there.
    response = await patch_agent(client, alice.id, admin, groups=["Sales"], skills=["de"])
    assert response.status == 200
    listed = (await agents_by_id(client, manager))[alice.id]
    assert (listed["groups"], listed["skills"]) == (["Sales"], ["de"])

    before = (await agents_by_id(client, manager))[alice.id]
    for changes, field in [
        ({"capacity": 0}, "capacity"), ({"capacity": "many"}, "capacity"), ({"capacity": 10**9}, "capacity"),
        ({"capacity": None}, "capacity"), ({"presence": "busy"}, "presence"), ({"presence": None}, "presence"),
        ({"skills": ["klingon"]}, "skills"), ({"skills": "ru"}, "skills"), ({"groups": ["Nowhere"]}, "groups"),
        ({"groups": []}, "groups"), ({"groups": None}, "groups"), ({"role": "admin"}, "role"), ({}, "body"),
    ]:
        assert await invalid_fields(await patch_agent(client, alice.id, admin, **changes)) == {field}, changes
    assert (await agents_by_id(client, manager))[alice.id] == before, "refused changes changed nothing"

    await assert_error(await patch_agent(client, 999_999, admin, presence="away"), 404, "not_found")
    await assert_error(await patch_agent(client, 999_999, manager, presence="away"), 404, "not_found")
    await assert_error(await patch_agent(client, "someone", admin, presence="away"), 404, "not_found")


async def test_a_manager_sets_someone_offline_and_their_untouched_tickets_return(
    client: Client, add_agent: Any
) -> None:
    _, manager = await staff(add_agent)
    alice, alice_headers = await add_agent("Alice")
    bob, bob_headers = await add_agent("Bob", presence=Presence.away)
    worked, untouched = await submit(client, "one"), await submit(client, "two", email="two@example.com")
    assert {(await get_ticket(client, n, manager))["assignee_id"] for n in (worked, untouched)} == {alice.id}
    response = await client.post(f"/api/v1/tickets/{worked}/messages", json={"body": "On it."}, headers=alice_headers)
    assert response.status == 201

    response = await patch_agent(client, alice.id, manager, presence="offline")
    assert response.status == 200, await response.text()
    body = await response.json()
    assert (body["presence"], body["open_tickets"]) == ("offline", 1)
    assert (await get_ticket(client, worked, manager))["assignee_id"] == alice.id, "she answered it: it stays hers"
    returned = await get_ticket(client, untouched, manager)
    assert (returned["status"], returned["assignee_id"]) == ("new", None)
    event = returned["events"][-1]
    assert event["kind"] == "returned" and event["data"]["agent_id"] == alice.id
    assert "Alice went offline" in event["reason"] and "Max Manager" in event["reason"]
    assert await queue(client, manager) == [untouched]

    # Bob comes back and takes what Alice left.
    assert (await client.patch("/api/v1/agents/me", json={"presence": "available"}, headers=bob_headers)).status == 200
    assert (await get_ticket(client, untouched, manager))["assignee_id"] == bob.id
    # A manager may also bring Alice back.
    response = await patch_agent(client, alice.id, manager, presence="available")
    assert response.status == 200
    assert (await agents_by_id(client, bob_headers))[alice.id]["presence"] == "available"


async def test_admin_adds_an_agent_and_gets_their_token_once(
    client: Client, add_agent: Any, runtime: Runtime
) -> None:
    admin, manager = await staff(add_agent)
    await runtime.service.add_group("Sales")
    await runtime.service.add_skill("ru")
    waiting = await sales_ticket(runtime)
    assert waiting.assignee_id is None

    payload = {"name": "Nina New", "email": "Nina.New@Example.COM", "phone": "+44 20 7946 0958", "extension": "201",
               "role": "agent", "groups": ["Sales"], "skills": ["ru"], "capacity": 5}
    response = await client.post("/api/v1/agents", json=payload, headers=admin)
    assert response.status == 201, await response.text()
    nina = await response.json()
    token = nina.pop("token")
    assert len(token) >= 32
    assert nina | {"id": 0, "last_assigned_at": None} == {
        "id": 0, "name": "Nina New", "email": "nina.new@example.com", "role": "agent", "presence": "available",
        "capacity": 5, "open_tickets": 1, "load": 1, "groups": ["Sales"], "skills": ["ru"], "last_assigned_at": None,
        "last_seen_at": None, "remind_by": "auto",
    }
    # Joining Sales gave her the waiting ticket at once, and her token works.
    nina_headers = {"Authorization": f"Bearer {token}"}
    assert (await get_ticket(client, waiting.id, nina_headers))["assignee_id"] == nina["id"]
    listed = await agents_by_id(client, nina_headers)
    assert "token" not in listed[nina["id"]]
    assert (await runtime.service.find_agent(str(nina["id"]))).extension == "201"
    assert (await runtime.service.find_agent(str(nina["id"]))).phone == "+442079460958"

    # Defaults: role agent, the default group, capacity 10, no skills.
    response = await client.post("/api/v1/agents", json={"name": "Dan", "email": "dan@example.com", "role": "manager"},
                                 headers=admin)
    assert response.status == 201, await response.text()
    dan = await response.json()
    assert (dan["role"], dan["groups"], dan["capacity"], dan["skills"]) == ("manager", ["Support"], 10, [])

    count = len(await agents_by_id(client, admin))
    await assert_error(await client.post("/api/v1/agents", json={**payload, "extension": None}, headers=admin),
                       409, "conflict")
    response = await client.post("/api/v1/agents", json={**payload, "email": "other@example.com"}, headers=admin)
    await assert_error(response, 409, "conflict")
    for changes, field in [
        ({"email": "not-an-address"}, "email"), ({"email": ""}, "email"), ({"phone": "12"}, "phone"),
        ({"extension": "front desk"}, "extension"), ({"role": "boss"}, "role"), ({"capacity": 0}, "capacity"),
        ({"groups": ["Nowhere"]}, "groups"), ({"skills": ["klingon"]}, "skills"), ({"name": "   "}, "name"),
        ({"name": None}, "name"), ({"token": "mine"}, "token"),
    ]:
        body = {**payload, "email": "fresh@example.com", "extension": None, **changes}
        assert await invalid_fields(await client.post("/api/v1/agents", json=body, headers=admin)) == {field}, changes
    response = await client.post("/api/v1/agents", json={"name": "Eve"}, headers=admin)
    assert await invalid_fields(response) == {"email"}
    for headers in (manager, nina_headers):
        await assert_error(await client.post("/api/v1/agents", json={**payload, "email": "x@example.com"},
                                             headers=headers), 403, "forbidden")
    assert len(await agents_by_id(client, admin)) == count


# --- routing rules ---------------------------------------------------------------------------------


async def test_routing_rules_place_new_tickets(client: Client, add_agent: Any, runtime: Runtime) -> None:
    admin, manager = await staff(add_agent)
    await runtime.service.add_group("Sales")
    await runtime.service.add_skill("ru")
    sam, _ = await add_agent("Sam Support")
    sally, _ = await add_agent("Sally Sales", groups=["Sales"], presence=Presence.away)
    ivan, _ = await add_agent("Ivan Sales", groups=["Sales"], skills=["ru"], capacity=5)
    # Ivan gets a Sales ticket while Sally is away; back, she is the least loaded: only a skill can pass her over.
    await sales_ticket(runtime)
    assert (await patch_agent(client, sally.id, admin, presence="available")).status == 200
    loads = await agents_by_id(client, manager)
    assert (loads[sally.id]["open_tickets"], loads[ivan.id]["open_tickets"]) == (0, 1)

    response = await client.post("/api/v1/routing/rules", headers=admin,
                                 json={"channel": "webform", "from_group": "Support", "priority": "low"})
    assert response.status == 201, await response.text()
    low = await response.json()
    assert low == {"id": low["id"], "position": 10, "channel": "webform", "category": None, "language": None,
                   "from_group": "Support", "group": None, "skills": [], "priority": "low", "tags": []}
    response = await client.post("/api/v1/routing/rules", headers=admin, json={
        "category": "Billing", "group": "Sales", "skills": ["ru"], "priority": "high", "position": 5})
    assert response.status == 201, await response.text()
    billing = await response.json()
    assert (billing["position"], billing["category"], billing["group"], billing["skills"], billing["priority"]) == (
        5, "billing", "Sales", ["ru"], "high")

    # A billing form goes to Sales with high priority (checked first, that rule decides), and to Ivan: Sally lacks
    # Russian though she is less loaded.
    number = await submit(client, "my invoice", email="payer@example.com", category="billing")
    ticket = await get_ticket(client, number, manager)
    assert (ticket["group"], ticket["skills"], ticket["priority"], ticket["assignee_id"]) == (
        "Sales", ["ru"], "high", ivan.id)
    assert f"routing rules #{billing['id']}, #{low['id']}" in ticket["events"][0]["reason"]
    # Any other form stays in Support, at low priority.
    other = await get_ticket(client, await submit(client, "hello", email="hi@example.com"), manager)
    assert (other["group"], other["priority"], other["skills"], other["assignee_id"]) == ("Support", "low", [], sam.id)

    # Only an admin changes rules; an agent may not even read them.
    _, agent = await add_agent("Alice", presence=Presence.away)
    await assert_error(await client.get("/api/v1/routing/rules", headers=agent), 403, "forbidden")
    for headers in (manager, agent):
        await assert_error(await client.post("/api/v1/routing/rules", json={"channel": "email", "group": "Sales"},
                                             headers=headers), 403, "forbidden")
        await assert_error(await client.delete(f"/api/v1/routing/rules/{billing['id']}", headers=headers),
                           403, "forbidden")

    response = await client.delete(f"/api/v1/routing/rules/{billing['id']}", headers=admin)
    assert response.status == 204
    await assert_error(await client.delete(f"/api/v1/routing/rules/{billing['id']}", headers=admin), 404, "not_found")
    await assert_error(await client.delete("/api/v1/routing/rules/first", headers=admin), 404, "not_found")
    after = await get_ticket(client, await submit(client, "invoice 2", email="p2@example.com", category="billing"),
                             manager)
    assert (after["group"], after["skills"], after["priority"]) == ("Support", [], "low")


async def test_a_rule_tags_the_tickets_it_places_on_every_path(
    client: Client, add_agent: Any, runtime: Runtime
) -> None:
    """A tagging rule sends the receipt the ORM way (the fast paths store no tags): every channel gets the tags."""
    admin, manager = await staff(add_agent)
    await add_agent("Sam Support")
    response = await client.post("/api/v1/routing/rules", headers=admin,
                                 json={"category": "billing", "tags": ["Refund", "Счёт", "refund"]})
    assert response.status == 201, await response.text()
    rule = await response.json()
    assert (rule["tags"], rule["group"], rule["priority"]) == (["refund", "счёт"], None, None)
    assert (await client.post("/api/v1/routing/rules", headers=admin,
                              json={"channel": "phone", "tags": ["call"]})).status == 201

    billing = await get_ticket(client, await submit(client, "my invoice", email="payer@example.com",
                                                    category="billing"), manager)
    other = await get_ticket(client, await submit(client, "hello", email="hi@example.com"), manager)
    assert (billing["tags"], other["tags"]) == (["refund", "счёт"], [])
    tagged = [e for e in billing["events"] if e["kind"] == "tags_changed"]
    assert [(e["actor"], e["data"]["new"], e["reason"]) for e in tagged] == [
        ("router", "refund, счёт", f"routing rules #{rule['id']}")]
    listed = await client.get("/api/v1/tickets?tag=счёт", headers=manager)
    assert [t["number"] for t in (await listed.json())["items"]] == [billing["number"]]

    started = runtime.clock.now() - timedelta(minutes=5)
    call = await client.post("/api/v1/calls", headers=admin, json={
        "call_id": "tagged-1", "direction": "in", "caller": "+442079460958", "called": "+442079460000",
        "disposition": "missed", "started_at": started.isoformat(),
        "ended_at": (started + timedelta(seconds=20)).isoformat()})
    assert call.status == 201, await call.text()
    callback = await get_ticket(client, (await call.json())["ticket"]["number"], manager)
    assert (callback["category"], callback["tags"]) == ("callback", ["call"])


async def test_routing_rules_refuse_bad_input(client: Client, add_agent: Any, runtime: Runtime) -> None:
    admin, manager = await staff(add_agent)
    await runtime.service.add_group("Sales")
    for body, field in [
        ({"group": "Sales"}, "rule"),  # no condition
        ({"channel": "email"}, "rule"),  # no effect
        ({"channel": "fax", "group": "Sales"}, "channel"),
        ({"category": "billing", "priority": "urgent"}, "priority"),
        ({"category": "billing", "skills": ["klingon"]}, "skills"),
        ({"category": "billing", "skills": "ru"}, "skills"),
        ({"category": "billing", "group": "Sales", "position": -1}, "position"),
        ({"category": "billing", "group": "Sales", "language": "x" * 9}, "language"),
        ({"category": "billing", "group": "Sales", "owner": "me"}, "owner"),
        ({"category": "billing", "tags": ["no/slash"]}, "tags"),
        ({"category": "billing", "tags": ["x" * 41]}, "tags.0"),
    ]:
        response = await client.post("/api/v1/routing/rules", json=body, headers=admin)
        assert await invalid_fields(response) == {field}, body
    # None was stored: the first rule that is accepted goes first.
    response = await client.post("/api/v1/routing/rules", json={"category": "billing", "group": "Sales"}, headers=admin)
    assert response.status == 201, await response.text()
    assert (await response.json())["position"] == 10


async def test_a_rule_naming_an_unknown_group_says_which_field(client: Client, add_agent: Any) -> None:
    admin, manager = await staff(add_agent)
    for body, field in [({"category": "billing", "group": "Nowhere"}, "group"),
                        ({"from_group": "Nowhere", "priority": "high"}, "from_group")]:
        response = await client.post("/api/v1/routing/rules", json=body, headers=admin)
        assert await invalid_fields(response) == {field}, body


# --- authentication and the document -------------------------------------------------------------------


NEW_ENDPOINTS = [
    ("PATCH", "/api/v1/agents/{id}", {"presence": "away"}),
    ("POST", "/api/v1/agents", {"name": "X", "email": "x@example.com"}),
    ("GET", "/api/v1/groups", None),
    ("POST", "/api/v1/groups", {"name": "Legal"}),
    ("GET", "/api/v1/skills", None),
    ("POST", "/api/v1/skills", {"name": "de"}),
    ("GET", "/api/v1/routing/rules", None),
    ("POST", "/api/v1/routing/rules", {"channel": "email", "priority": "high"}),
    ("DELETE", "/api/v1/routing/rules/{id}", None),
]


async def test_new_endpoints_need_a_token_and_the_right_role(client: Client, add_agent: Any, runtime: Runtime) -> None:
    alice, agent = await add_agent("Alice")
    rule = await runtime.service.add_rule(category="defect", priority=Priority.critical)
    for method, path, body in NEW_ENDPOINTS:
        url = path.replace("{id}", str(rule.rule.id if "rules" in path else alice.id))
        response = await client.request(method, url, json=body)
        await assert_error(response, 401, "unauthorized")
        if method != "GET" or "rules" in path:  # the catalogues (GET groups, skills) are for every agent
            await assert_error(await client.request(method, url, json=body, headers=agent), 403, "forbidden")
    # Nothing the refused requests asked for happened.
    assert (await agents_by_id(client, agent))[alice.id]["presence"] == "available"
    assert len(await agents_by_id(client, agent)) == 1
    _, admin = await add_agent("Ada Admin", role=Role.admin)
    for path, body in [("/api/v1/agents", {"name": "X", "email": "x@example.com"}),
                       ("/api/v1/groups", {"name": "Legal"}), ("/api/v1/skills", {"name": "de"})]:
        assert (await client.post(path, json=body, headers=admin)).status == 201, path
    response = await client.post("/api/v1/routing/rules", json={"channel": "email", "priority": "high"}, headers=admin)
    assert (await response.json())["position"] == rule.rule.position + 10, "the agent's rule was not stored"
    assert (await client.delete(f"/api/v1/routing/rules/{rule.rule.id}", headers=admin)).status == 204


async def test_catalogues_list_groups_skills_and_rules(client: Client, add_agent: Any, runtime: Runtime) -> None:
    admin, manager = await staff(add_agent)
    await runtime.service.add_group("Sales", "head@example.com", acknowledge=False)
    await runtime.service.add_skill("ru", "Speaks Russian")
    await runtime.service.add_skill("de")
    _, agent = await add_agent("Alice", skills=["ru"], presence=Presence.away)
    await add_agent("Ivan", groups=["Sales"], skills=["ru"], presence=Presence.away)
    await submit(client, "waiting")
    late = await runtime.service.add_rule(category="billing", group="Sales", skills=["ru"], priority=Priority.high)
    early = await runtime.service.add_rule(channel="email", from_group="Support", priority=Priority.low, position=1)

    groups = await items(client, "/api/v1/groups", agent)
    assert [g["name"] for g in groups] == ["Sales", "Support"]
    sales, support = groups
    assert sales | {"id": 0} == {"id": 0, "name": "Sales", "head_email": "head@example.com", "acknowledge": False,
                                 "agents": 1, "waiting": 0}
    assert (support["agents"], support["waiting"], support["acknowledge"]) == (3, 1, True)

    skills = await items(client, "/api/v1/skills", agent)
    assert [(s["name"], s["description"], s["agents"]) for s in skills] == [
        ("de", None, 0), ("ru", "Speaks Russian", 2)
    ]

    await assert_error(await client.get("/api/v1/routing/rules", headers=agent), 403, "forbidden")
    for headers in (manager, admin):
        rules = await items(client, "/api/v1/routing/rules", headers)
        assert [r["id"] for r in rules] == [early.rule.id, late.rule.id]
        assert rules[0] | {"id": 0} == {"id": 0, "position": 1, "channel": "email", "category": None, "language": None,
                                        "from_group": "Support", "group": None, "skills": [], "priority": "low",
                                        "tags": []}
        assert (rules[1]["group"], rules[1]["skills"], rules[1]["priority"]) == ("Sales", ["ru"], "high")


async def test_openapi_lists_the_routing_endpoints(client: Client) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    paths = doc["paths"]
    for method, path, _ in NEW_ENDPOINTS:
        operation = paths[path][method.lower()]
        assert operation["security"] == [{"bearer": []}], path
        assert "401" in operation["responses"], path
    assert set(paths["/api/v1/agents"]) == {"get", "post"}
    assert set(paths["/api/v1/agents/me"]) == {"patch"}
    assert paths["/api/v1/routing/rules/{id}"]["delete"]["responses"]["204"]
    assert paths["/api/v1/agents"]["post"]["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AgentCreated"}
    schemas = doc["components"]["schemas"]
    assert "token" in schemas["AgentCreated"]["properties"]
    assert {"group", "skills"} <= set(schemas["TicketPatch"]["properties"])
    assert "skills" in schemas["TicketSummary"]["properties"] and "skills" in schemas["TicketDetail"]["properties"]
    assert {"presence", "capacity", "skills", "groups"} == set(schemas["AgentChangesIn"]["properties"])
    assert {"id", "position", "channel", "category", "language", "from_group", "group", "skills", "priority",
            "tags"} == set(schemas["RuleOut"]["properties"])
    assert {"id", "name", "head_email", "acknowledge", "agents", "waiting"} == set(schemas["GroupOut"]["properties"])
    assert {"id", "name", "description", "agents"} == set(schemas["SkillOut"]["properties"])
