"""How requests end: resolving with an outcome (and a refusal's reason) from the lists the admin keeps, through the
API; the dashboard's chart of outcomes and of the contacts recorded, and their CSV."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from switchboard.bootstrap import Runtime
from tests.integration.test_api import get_ticket, submit
from tests.integration.test_console import PASSWORD, sign_in
from tickets.models import Role

Client = TestClient[Any, Any]


async def test_a_ticket_is_resolved_with_an_outcome_and_the_dashboard_counts_them(
    client: Client, runtime: Runtime, add_agent: Any
) -> None:
    mia, headers = await add_agent("Mia", email="mia@example.com", role=Role.manager, language="en")
    await runtime.service.set_password(mia.id, PASSWORD)
    numbers = [await submit(client, f"question {n}", email=f"c{n}@example.com") for n in range(4)]

    async def patch(number: int, answer: int, **changes: Any) -> dict[str, Any]:
        response = await client.patch(f"/api/v1/tickets/{number}", json=changes, headers=headers)
        assert response.status == answer, await response.text()
        return await response.json()

    refused = await patch(numbers[0], 422, status="resolved", outcome="refused")
    assert set(refused["error"]["fields"]) == {"outcome_reason"}
    assert set((await patch(numbers[0], 422, outcome="solved"))["error"]["fields"]) == {"outcome"}  # still open
    unknown = await patch(numbers[0], 422, status="resolved", outcome="teleported")
    assert "switchboard outcome add" in unknown["error"]["fields"]["outcome"]
    detail = await patch(numbers[0], 200, status="resolved", outcome="refused", outcome_reason="price")
    assert (detail["outcome"], detail["outcome_reason"]) == ("refused", "price")
    await patch(numbers[1], 200, status="resolved", outcome="refused", outcome_reason="benefits-unclear")
    await patch(numbers[2], 200, status="resolved", outcome="solved", outcome_reason="price")  # needs none: dropped
    assert (await get_ticket(client, numbers[2], headers))["outcome_reason"] is None
    customer = (await get_ticket(client, numbers[3], headers))["customer"]["id"]
    recorded = await client.post(f"/api/v1/customers/{customer}/activities", json={"type": "demonstration"},
                                 headers=headers)
    assert recorded.status == 201

    listed = await (await client.get("/api/v1/outcomes", headers=headers)).json()
    assert [(o["name"], o["needs_reason"]) for o in listed["outcomes"]] == [
        ("solved", False), ("refused", True), ("duplicate", False), ("no-answer", False)]
    assert listed["reasons"] == ["price", "benefits-unclear", "competitor", "timing", "other"]
    await sign_in(client, email="mia@example.com")
    page = await (await client.get("/desk/dashboard")).text()
    assert "How requests ended" in page and "refused: price" in page and "refused: benefits not understood" in page
    assert "Contacts recorded" in page and "demonstration" in page
    csv = await (await client.get("/desk/dashboard/outcomes.csv")).text()
    assert csv.splitlines()[0] == "\ufeffOutcome,Reason,Tickets"
    assert sorted(csv.splitlines()[1:]) == ["refused,benefits not understood,1", "refused,price,1", "solved,,1"]
