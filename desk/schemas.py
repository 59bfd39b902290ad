"""The API's request and response shapes; handlers serialise through them and the OpenAPI document is built from them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tickets.service import AgentView, CustomerView, TicketView
from tickets.models import Agent, CustomerIdentity, Event, Message, Ticket

Status = Literal["new", "open", "pending", "resolved", "closed"]
PriorityName = Literal["low", "normal", "high", "critical"]
PresenceName = Literal["available", "away", "offline"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- requests ------------------------------------------------------------------------------


class MessageIn(Strict):
    body: str = Field(min_length=1, max_length=100_000, description="Text of the reply or note.")
    internal: bool = Field(False, description="An internal note is seen only by agents.")


class TicketPatch(Strict):
    status: Literal["open", "pending", "resolved", "closed"] | None = None
    priority: PriorityName | None = None
    category: str | None = Field(None, max_length=64)
    assignee: int | None = Field(None, description="Agent id; null returns the ticket to its group queue.")


class AgentPatch(Strict):
    presence: PresenceName


# --- responses -----------------------------------------------------------------------------


class IdentityOut(BaseModel):
    kind: str
    address: str


class AgentRef(BaseModel):
    id: int
    name: str
    email: str


class TicketSummary(BaseModel):
    number: int
    subject: str
    status: Status
    priority: PriorityName
    category: str | None
    channel: str
    customer_id: int
    group_id: int
    assignee_id: int | None
    follows_up: int | None
    created_at: datetime
    updated_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None


class TicketList(BaseModel):
    items: list[TicketSummary]
    next_cursor: int | None = Field(description="Pass as `cursor` for the next (older) page; null on the last page.")


class AttachmentOut(BaseModel):
    name: str
    content_type: str
    size: int
    sha256: str
    content_id: str | None = Field(None, description="Set for an inline image the HTML body shows as cid:…")
    inline: bool = False


class MessageOut(BaseModel):
    id: int
    direction: Literal["in", "out", "internal"]
    channel: str
    author_id: int | None
    customer_id: int | None
    body_text: str
    body_html: str | None
    attachments: list[AttachmentOut]
    delivery_status: Literal["queued", "sent", "delivered", "failed"] | None = Field(
        description="For replies: queued, sent (handed to the channel), delivered (shown to the client), failed."
    )
    thread_reason: str | None
    created_at: datetime


class EventOut(BaseModel):
    id: int
    kind: str
    actor: str
    reason: str | None
    data: dict[str, Any]
    created_at: datetime


class CustomerBrief(BaseModel):
    id: int
    name: str | None
    language: str | None
    identities: list[IdentityOut]


class TicketDetail(TicketSummary):
    group: str
    assignee: AgentRef | None
    customer: CustomerBrief
    messages: list[MessageOut]
    events: list[EventOut]


class CustomerOut(CustomerBrief):
    created_at: datetime
    tickets: list[TicketSummary]


class AgentOut(BaseModel):
    id: int
    name: str
    email: str
    role: Literal["agent", "manager", "admin"]
    presence: PresenceName
    capacity: int
    load: int = Field(description="Open and pending tickets assigned, across all channels.")
    groups: list[str]
    last_assigned_at: datetime | None


class AgentList(BaseModel):
    items: list[AgentOut]


class ErrorBody(BaseModel):
    code: str
    message: str
    fields: dict[str, str] | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    database: str
    redis: str


# --- conversions ---------------------------------------------------------------------------


def ticket_summary(ticket: Ticket) -> TicketSummary:
    return TicketSummary(
        number=ticket.id,
        subject=ticket.subject,
        status=ticket.status.value,
        priority=ticket.priority.value,
        category=ticket.category,
        channel=ticket.channel,
        customer_id=ticket.customer_id,
        group_id=ticket.group_id,
        assignee_id=ticket.assignee_id,
        follows_up=ticket.follows_up_id,
        created_at=ticket.created_at,
        updated_at=ticket.updated_at,
        first_response_at=ticket.first_response_at,
        resolved_at=ticket.resolved_at,
        closed_at=ticket.closed_at,
    )


def _identities(rows: list[CustomerIdentity]) -> list[IdentityOut]:
    return [IdentityOut(kind=i.kind, address=i.address) for i in rows]


def message_out(message: Message) -> MessageOut:
    return MessageOut(
        id=message.id,
        direction=message.direction.value,
        channel=message.channel,
        author_id=message.author_id,
        customer_id=message.customer_id,
        body_text=message.body_text,
        body_html=message.body_html,
        attachments=[AttachmentOut.model_validate(a) for a in message.attachments],
        delivery_status=message.delivery_status.value if message.delivery_status else None,
        thread_reason=message.thread_reason,
        created_at=message.created_at,
    )


def _event_out(event: Event) -> EventOut:
    return EventOut(
        id=event.id, kind=event.kind, actor=event.actor, reason=event.reason, data=event.data, created_at=event.created_at
    )


def _agent_ref(agent: Agent | None) -> AgentRef | None:
    return AgentRef(id=agent.id, name=agent.name, email=agent.email) if agent else None


def ticket_detail(view: TicketView) -> TicketDetail:
    return TicketDetail(
        **ticket_summary(view.ticket).model_dump(),
        group=view.group.name,
        assignee=_agent_ref(view.assignee),
        customer=CustomerBrief(
            id=view.customer.id,
            name=view.customer.name,
            language=view.customer.language,
            identities=_identities(view.identities),
        ),
        messages=[message_out(m) for m in view.messages],
        events=[_event_out(e) for e in view.events],
    )


def customer_out(view: CustomerView) -> CustomerOut:
    return CustomerOut(
        id=view.customer.id,
        name=view.customer.name,
        language=view.customer.language,
        identities=_identities(view.identities),
        created_at=view.customer.created_at,
        tickets=[ticket_summary(t) for t in view.tickets],
    )


def agent_out(view: AgentView) -> AgentOut:
    agent = view.agent
    return AgentOut(
        id=agent.id,
        name=agent.name,
        email=agent.email,
        role=agent.role.value,
        presence=agent.presence.value,
        capacity=agent.capacity,
        load=view.load,
        groups=view.groups,
        last_assigned_at=agent.last_assigned_at,
    )
