"""The API's request and response shapes; handlers serialise through them and the OpenAPI document is built from them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tickets.service import CustomerView, TicketView
from tickets.staff import AgentView
from tickets.models import Agent, Call, CustomerIdentity, Deadline, DeadlineStatus, Event, Message, Ticket

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


class IdentityIn(Strict):
    kind: Literal["email", "phone"]
    address: str = Field(min_length=1, max_length=320)
    merge: bool = Field(False, description="If the address is on another card, merge that card (tickets, calls) into this one.")


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


class CallOut(BaseModel):
    id: int
    call_id: str
    direction: Literal["in", "out"]
    disposition: Literal["answered", "missed", "busy", "failed", "voicemail"]
    caller: str | None = Field(description="E.164 number, an extension, or null when withheld.")
    called: str | None
    caller_name: str | None
    customer_id: int | None = Field(description="Null for a withheld number.")
    ticket: int | None = Field(description="Number of the ticket the call landed on, if any.")
    agent_id: int | None
    extension: str | None
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    duration: int = Field(description="Seconds from start to end.")
    talk_time: int = Field(description="Seconds from answer to end.")
    notes: str | None
    recording_url: str | None
    source: Literal["api", "cdr"]


class DeadlineOut(BaseModel):
    regulation: str
    step: str
    met_by: str = Field(description="What keeps the promise: first_response (a reply or a call to the client) or resolved.")
    due_at: datetime
    status: Literal["pending", "met", "cancelled"]
    met_at: datetime | None
    late: bool = Field(description="Met after its due time, or still pending past it.")


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
    calls: list[CallOut]
    deadlines: list[DeadlineOut]


class CustomerOut(CustomerBrief):
    created_at: datetime
    tickets: list[TicketSummary]
    calls: list[CallOut] = Field(description="The client's latest calls (up to 200), newest first.")


class CallLogged(BaseModel):
    call: CallOut
    ticket: TicketSummary | None = Field(description="The ticket the call landed on; null when it went on the card only.")
    ticket_created: bool = Field(description="The call opened this ticket (a callback, or notes with no open ticket).")
    duplicate: bool = Field(description="This call_id was logged before: nothing new was stored.")


class AgentOut(BaseModel):
    id: int
    name: str
    email: str
    role: Literal["agent", "manager", "admin"]
    presence: PresenceName
    capacity: int = Field(description="Most open tickets at once; the router gives no more.")
    open_tickets: int = Field(description="Open and pending tickets assigned, across all channels.")
    load: float = Field(description="Their summed weights (channel x priority): what the router compares.")
    groups: list[str]
    skills: list[str]
    last_assigned_at: datetime | None
    last_seen_at: datetime | None = Field(description="Last API request (to the minute); idle agents go offline.")


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


def call_out(call: Call) -> CallOut:
    return CallOut(
        id=call.id,
        call_id=call.call_id,
        direction=call.direction.value,
        disposition=call.disposition.value,
        caller=call.caller,
        called=call.called,
        caller_name=call.caller_name,
        customer_id=call.customer_id,
        ticket=call.ticket_id,
        agent_id=call.agent_id,
        extension=call.extension,
        started_at=call.started_at,
        answered_at=call.answered_at,
        ended_at=call.ended_at,
        duration=call.duration,
        talk_time=call.talk_time,
        notes=call.notes,
        recording_url=call.recording_url,
        source=call.source,
    )


def _deadline_out(deadline: Deadline, now: datetime) -> DeadlineOut:
    if deadline.status == DeadlineStatus.pending:
        late = now > deadline.due_at
    else:
        late = deadline.met_at is not None and deadline.met_at > deadline.due_at
    return DeadlineOut(
        regulation=deadline.regulation,
        step=deadline.step,
        met_by=deadline.met_by,
        due_at=deadline.due_at,
        status=deadline.status.value,
        met_at=deadline.met_at,
        late=late,
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
        calls=[call_out(c) for c in view.calls],
        deadlines=[_deadline_out(d, view.as_of) for d in view.deadlines],
    )


def customer_out(view: CustomerView) -> CustomerOut:
    return CustomerOut(
        id=view.customer.id,
        name=view.customer.name,
        language=view.customer.language,
        identities=_identities(view.identities),
        created_at=view.customer.created_at,
        tickets=[ticket_summary(t) for t in view.tickets],
        calls=[call_out(c) for c in view.calls],
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
        open_tickets=view.load.open,
        load=view.load.weighted,
        groups=view.groups,
        skills=view.skills,
        last_assigned_at=agent.last_assigned_at,
        last_seen_at=agent.last_seen_at,
    )
