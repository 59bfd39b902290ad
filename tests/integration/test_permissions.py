"""README's permission table, endpoint by endpoint, for an agent of the ticket's group (not its assignee), an agent
of another group, a manager and an admin. Each cell runs on a ticket of its own, held by a colleague in Support."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from switchboard.bootstrap import Runtime
from tests.integration.test_api import get_ticket, submit
from tickets.models import Presence, Role

ROLES = ("group_agent", "other_agent", "manager", "admin")
Cell = Callable[[dict[str, Any]], Awaitable[Any]]

# method, path template, body template, expected status per role; {t}: the ticket, {c}: its customer card,
# {g}: its group, {holder}: the colleague who holds it, {u}: a word unique to the cell.
TABLE: list[tuple[str, str, Any, tuple[int, int, int, int]]] = [
    ("GET", "/api/v1/tickets/{t}", None, (200, 403, 200, 200)),
    ("POST", "/api/v1/tickets/{t}/messages", {"body": "a note", "internal": True}, (201, 403, 201, 201)),
    ("PATCH", "/api/v1/tickets/{t}", {"priority": "high"}, (200, 403, 200, 200)),
    ("PATCH", "/api/v1/tickets/{t}", {"assignee": "{me}"}, (403, 403, 200, 200)),
    ("PATCH", "/api/v1/tickets/{t}", {"assignee": None}, (403, 403, 200, 200)),
    ("PATCH", "/api/v1/tickets/{t}", {"group": "Sales"}, (403, 403, 200, 200)),
    ("GET", "/api/v1/tickets/{t}/notifications", None, (403, 403, 200, 200)),
    ("GET", "/api/v1/customers/{c}", None, (200, 404, 200, 200)),
    ("POST", "/api/v1/customers/{c}/identities", {"kind": "email", "address": "{u}@example.org"},
     (200, 404, 200, 200)),
    ("PATCH", "/api/v1/customers/{c}", {"tier": "gold"}, (403, 403, 200, 200)),
    ("GET", "/api/v1/regulations/forecast", None, (403, 403, 200, 200)),
    ("GET", "/api/v1/notifications", None, (403, 403, 200, 200)),
    ("GET", "/api/v1/agents", None, (200, 200, 200, 200)),
    ("PATCH", "/api/v1/agents/{holder}", {"presence": "available"}, (403, 403, 200, 200)),
    ("PATCH", "/api/v1/agents/{holder}", {"capacity": 7}, (403, 403, 403, 200)),
    ("POST", "/api/v1/agents", {"name": "New {u}", "email": "{u}@staff.example"}, (403, 403, 403, 201)),
    ("GET", "/api/v1/groups", None, (200, 200, 200, 200)),
    ("POST", "/api/v1/groups", {"name": "Group {u}"}, (403, 403, 403, 201)),
    ("PATCH", "/api/v1/groups/{g}", {"head_email": "head@example.com"}, (403, 403, 403, 200)),
    ("GET", "/api/v1/skills", None, (200, 200, 200, 200)),
    ("POST", "/api/v1/skills", {"name": "skill-{u}"}, (403, 403, 403, 201)),
    ("GET", "/api/v1/routing/rules", None, (403, 403, 200, 200)),
    ("POST", "/api/v1/routing/rules", {"channel": "email", "priority": "high"}, (403, 403, 403, 201)),
]


def fill(template: Any, values: dict[str, Any]) -> Any:
    if isinstance(template, str):
        if template in ("{me}", "{holder}"):
            return values[template[1:-1]]
        return template.format(**values)
    if isinstance(template, dict):
        return {k: fill(v, values) for k, v in template.items()}
    return template


@pytest.fixture
async def staff(runtime: Runtime, add_agent: Any) -> dict[str, tuple[Any, dict[str, str]]]:
    await runtime.service.add_group("Sales")
    people = {
        "holder": await add_agent("Holder", groups=["Support"], capacity=100),
        "group_agent": await add_agent("Gina", groups=["Support"], presence=Presence.away),
        "other_agent": await add_agent("Oleg", groups=["Sales"], presence=Presence.away),
        "manager": await add_agent("Max", role=Role.manager, presence=Presence.away),
        "admin": await add_agent("Ada", role=Role.admin, presence=Presence.away),
    }
    return people


@pytest.mark.parametrize(("method", "path", "body", "expected"), TABLE,
                         ids=[f"{m} {p} {b}" for m, p, b, _ in TABLE])
async def test_the_permission_table(client: TestClient[Any, Any], staff: dict[str, tuple[Any, dict[str, str]]],
                                    method: str, path: str, body: Any, expected: tuple[int, int, int, int]) -> None:
    holder, holder_headers = staff["holder"]
    _, manager_headers = staff["manager"]
    for n, (role, status) in enumerate(zip(ROLES, expected, strict=True)):
        number = await submit(client, f"cell {n}", email=f"client{n}@example.com")
        ticket = await get_ticket(client, number, manager_headers)
        assert ticket["assignee_id"] == holder.id  # the only available agent of Support
        me, headers = staff[role]
        values = {"t": number, "c": ticket["customer_id"], "g": ticket["group_id"], "holder": holder.id, "me": me.id,
                  "u": f"{role}{n}"}
        response = await client.request(method, fill(path, values), json=fill(body, values), headers=headers)
        assert response.status == status, f"{role}: {method} {path} {body} -> {await response.text()}"
