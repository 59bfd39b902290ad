"""The API's request and response shapes; handlers serialise through them and the OpenAPI document is built from
them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tickets.models import (
    Activity,
    Agent,
    CustomerIdentity,
    Deadline,
    DeadlineStatus,
    Message,
    Skill,
    skill_set,
)
from tickets.numbers import MAX_ID
from tickets.queries.customers import CustomerView
from tickets.queries.staff import AgentView, GroupView, RuleView
from tickets.queries.tickets import TicketView
from web.schemas import CallOut, FromRow, PriorityName, Status, TicketSummary, call_out, ticket_summary

PresenceName = Literal["available", "away", "offline"]
RoleName = Literal["agent", "manager", "admin"]
ChannelName = Literal["email", "webform", "webchat", "telegram", "phone"]
MAX_CAPACITY = 1000
SkillName = Annotated[str, Field(min_length=1, max_length=64)]
TagName = Annotated[str, Field(min_length=1, max_length=40)]
GroupName = Annotated[str, Field(min_length=1, max_length=100)]


Id = Annotated[int, Field(ge=1, le=MAX_ID)]
"""A ticket number or an id as a client may send one: what the store's 64-bit keys can hold."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- requests ------------------------------------------------------------------------------


class MessageIn(Strict):
    body: str = Field(min_length=1, max_length=100_000, description="Text of the reply or note.")
    internal: bool = Field(False, description="An internal note is seen only by agents.")


class MergeIn(Strict):
    into: Id = Field(description="The client's ticket this one joins; this one is closed, its history moves there.")


class LinkIn(Strict):
    ticket: Id = Field(description="Another ticket of the same client.")


class TicketPatch(Strict):
    status: Literal["open", "pending", "resolved", "closed"] | None = None
    priority: PriorityName | None = None
    category: str | None = Field(None, max_length=64)
    assignee: Id | None = Field(None, description="Agent id; null returns the ticket to its group queue.")
    group: GroupName | None = Field(
        None, description="Managers: move the ticket to this group's queue (its agent lets go) and route it again."
    )
    skills: list[SkillName] | None = Field(
        None, max_length=20,
        description="The skills its agent must have (the whole list; [] clears it); a waiting ticket is routed again.",
    )
    tags: list[TagName] | None = Field(
        None, max_length=20, description="Its tags (the whole list; [] clears it): lower-cased, spaces become -.")
    outcome: str | None = Field(None, max_length=40, description=(
        "How it ended (solved, refused, duplicate, no-answer, … as the admin keeps them): with status resolved or "
        "closed, or on a ticket that is; null clears it."))
    outcome_reason: str | None = Field(None, max_length=60, description="A refusal's reason (price, competitor, …).")


class IdentityIn(Strict):
    kind: Literal["email", "phone"]
    address: str = Field(min_length=1, max_length=320)
    merge: bool = Field(
        False, description="If the address is on another card, merge that card (tickets, calls) into this one."
    )


class CustomerPatch(Strict):
    tier: str | None = Field(
        description="Service level (gold, basic; null: none). Regulations may match on it; the client's open tickets "
                    "are planned again.",
        max_length=32, pattern=r"^[\w.-]+$",
    )


class AgentPatch(Strict):
    """Fields left out stay as they are."""

    presence: PresenceName | None = None
    remind_by: Literal["email", "telegram", "sms", "console", "auto"] | None = Field(
        None, description="How your planned contacts remind you besides the console notice; `auto`: Telegram when "
                          "linked, else email.")

    @model_validator(mode="after")
    def _something(self) -> AgentPatch:
        if self.presence is None and self.remind_by is None:
            raise ValueError("send presence, remind_by or both")
        return self


class AgentChangesIn(Strict):
    """Fields left out stay as they are; a manager may send only `presence`."""

    presence: PresenceName | None = Field(None, description="offline hands the router's untouched tickets back.")
    capacity: int | None = Field(None, ge=1, le=MAX_CAPACITY, description="Admins: most open tickets at once.")
    skills: list[SkillName] | None = Field(None, max_length=50, description="Admins: the whole list of skills.")
    groups: list[GroupName] | None = Field(
        None, min_length=1, max_length=50, description="Admins: the whole list of groups (at least one)."
    )


class AgentIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=1, max_length=320)
    phone: str | None = Field(None, max_length=40, description="With country code, unless the server has a region.")
    extension: str | None = Field(None, max_length=16, description="PBX extension (2–5 digits); call logs name it.")
    role: RoleName = "agent"
    groups: list[GroupName] = Field(default_factory=list, max_length=50, description="Empty: the default group.")
    skills: list[SkillName] = Field(default_factory=list, max_length=50)
    capacity: int = Field(10, ge=1, le=MAX_CAPACITY, description="Most open tickets at once.")
    language: Literal["en", "ru"] | None = Field(None, description="Language of their alerts and notices.")


class GroupIn(Strict):
    name: GroupName
    head_email: str | None = Field(None, max_length=320, description="Head of department: alerted on escalations.")
    acknowledge: bool = Field(True, description="Send new email tickets an acknowledgement with their number.")


class GroupPatch(Strict):
    head_email: str | None = Field(None, max_length=320, description="Head of department; null: none.")
    acknowledge: bool = Field(True, description="Send new email tickets an acknowledgement with their number.")


class SkillIn(Strict):
    name: SkillName = Field(description="Short, lower-case: letters, digits and _ . + - (ru, billing, product-x).")
    description: str | None = Field(None, max_length=300)


class RuleIn(Strict):
    """At least one condition (channel, category, language, from_group) and one effect (group, skills, priority,
    tags)."""

    channel: ChannelName | None = None
    category: str | None = Field(None, min_length=1, max_length=64)
    language: str | None = Field(None, min_length=2, max_length=8, description="The client's language, e.g. ru.")
    from_group: GroupName | None = Field(None, description="Matches tickets their channel address put in this group.")
    group: GroupName | None = Field(None, description="Where the ticket goes (the first matching rule naming one).")
    skills: list[SkillName] = Field(default_factory=list, max_length=20, description="Added to the ticket's skills.")
    priority: PriorityName | None = Field(None, description="The ticket's priority (the first matching rule's).")
    tags: list[TagName] = Field(default_factory=list, max_length=20, description="Added to the ticket's tags.")
    position: int | None = Field(None, ge=0, le=1_000_000, description="Rules run in this order (default: last).")


# --- responses -----------------------------------------------------------------------------


class IdentityOut(FromRow):
    kind: str
    address: str


class AgentRef(FromRow):
    id: int
    name: str
    email: str


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


class MessageOut(FromRow):
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


class EventOut(FromRow):
    id: int
    kind: str
    actor: str
    reason: str | None
    data: dict[str, Any]
    created_at: datetime


class DeadlineOut(BaseModel):
    regulation: str
    step: str
    position: int = Field(description="Its place in the regulation's ladder.")
    kind: Literal["step", "warning", "target"]
    met_by: str = Field(description="What keeps the promise: processed (first response or take-over), resolved, "
                                    "replied (to the client's latest message), or first_response (a callback).")
    due_at: datetime = Field(description="When it acts if not met; while paused, where the clock stood.")
    counts_from: datetime | None = Field(description="Creation, the step before, or the client's message.")
    status: Literal["pending", "paused", "met", "fired", "cancelled"]
    outcome: Literal["pending", "paused", "met", "met late", "fired", "breached", "cancelled"]
    met_at: datetime | None
    fired_at: datetime | None
    came_due_unmet: bool = Field(
        description="It came due before it was met: met after its due time, fired, or still pending past it (a "
                    "step fired on time is one too: it fires because it came due unmet).")
    breached: bool = Field(description="It broke the regulation: fired with a breach, or met late.")
    version: str | None = Field(description="The regulation version that planned it (see `clock`).")


class ForecastItem(BaseModel):
    number: int
    subject: str
    status: Status
    priority: PriorityName
    assignee_id: int | None
    regulation: str
    step: str
    due_at: datetime
    late: bool = Field(description="Already past due (the timer or the sweeper fires it within a minute).")
    breach: bool = Field(description="Firing it breaches the regulation.")


class Forecast(BaseModel):
    hours: float
    items: list[ForecastItem]


class ClockEventOut(FromRow):
    kind: Literal["started", "paused", "resumed", "stopped", "replanned"]
    reason: str
    regulation: str | None
    version: str | None
    calendar: str | None = Field(description="The calendar the steps count in, or 'clock time'.")
    at: datetime = Field(validation_alias="created_at")


class CustomerBrief(BaseModel):
    id: int
    name: str | None
    language: str | None
    tier: str | None = Field(description="The service level regulations may match on.")
    identities: list[IdentityOut]


class TicketDetail(TicketSummary):
    group: str
    assignee: AgentRef | None
    customer: CustomerBrief
    messages: list[MessageOut]
    events: list[EventOut]
    calls: list[CallOut]
    regulation: str | None = Field(description="The regulation the ticket is under (null: none applies).")
    processed_at: datetime | None = Field(description="First response or take-over.")
    deadlines: list[DeadlineOut]
    clock: list[ClockEventOut] = Field(description="Why each deadline is where it is: the regulation clock's timeline.")
    linked: list[int] = Field(description="The client's tickets linked to this one.")
    merged_from: list[int] = Field(description="Tickets merged into this one; their messages are listed here now.")
    tags: list[str] = Field(description="Its tags, sorted.")
    outcome: str | None = Field(description="How it ended, once resolved.")
    outcome_reason: str | None = Field(description="A refusal's reason.")


class ActivityBrief(BaseModel):
    """A contact recorded with a client, with its type's name."""

    id: int
    customer_id: int
    type: str
    outcome: str | None
    note: str | None
    agent_id: int | None
    ticket_id: int | None
    call_id: str | None
    created_at: datetime


class ContactOut(BaseModel):
    """One contact in a client's history."""

    at: datetime
    kind: Literal["message", "call", "activity"]
    type: str = Field(description="What `?type=` names: a message's channel, `call`, or a recorded contact's type.")
    channel: str = Field(description="A message's channel, `phone` for a call, empty for a recorded contact.")
    direction: str = Field(description="`in` or `out`; empty for a recorded contact.")
    text: str = Field(description="A message's first words, a call's disposition, a recorded contact's outcome "
                                  "and note.")
    ticket_id: int | None
    agent_id: int | None


class ContactPage(BaseModel):
    items: list[ContactOut]
    next_before: datetime | None = Field(description="Pass as `before` for the older contacts; null on the last page.")


class CustomerOut(CustomerBrief):
    created_at: datetime
    tickets: list[TicketSummary]
    calls: list[CallOut] = Field(description="The client's latest calls (up to 200), newest first.")
    activities: list[ActivityBrief] = Field(
        description="The contacts agents recorded with the client (up to 200), newest first, each with its type.")


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
    remind_by: str = Field("auto", description="How planned contacts remind them besides the console: email, telegram, "
                                               "sms, console (the notice alone) or auto (Telegram when linked, else "
                                               "email).")


class AgentList(BaseModel):
    items: list[AgentOut]


class AgentCreated(AgentOut):
    token: str = Field(description="The agent's API token: shown this once, stored only hashed.")


class GroupOut(BaseModel):
    id: int
    name: str
    head_email: str | None
    acknowledge: bool
    agents: int = Field(description="Agents who work in the group.")
    waiting: int = Field(description="Tickets in its queue (new, nobody assigned).")


class GroupList(BaseModel):
    items: list[GroupOut]


class SkillOut(BaseModel):
    id: int
    name: str
    description: str | None
    agents: int = Field(description="Agents who have the skill.")


class SkillList(BaseModel):
    items: list[SkillOut]


class RuleOut(BaseModel):
    id: int
    position: int
    channel: str | None
    category: str | None
    language: str | None
    from_group: str | None
    group: str | None
    skills: list[str]
    priority: PriorityName | None
    tags: list[str]


class RuleList(BaseModel):
    items: list[RuleOut] = Field(description="In the order they are checked.")


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    database: str
    redis: str


# --- conversions ---------------------------------------------------------------------------


def _identities(rows: list[CustomerIdentity]) -> list[IdentityOut]:
    return [IdentityOut.model_validate(i) for i in rows]


def message_out(message: Message) -> MessageOut:
    return MessageOut.model_validate(message)


def _deadline_out(deadline: Deadline, now: datetime) -> DeadlineOut:
    met_late = deadline.met_at is not None and deadline.met_at > deadline.due_at
    if deadline.status == DeadlineStatus.pending:
        late = now > deadline.due_at
    else:
        late = met_late or deadline.status == DeadlineStatus.fired
    outcome = ("breached" if deadline.breach else "fired") if deadline.status == DeadlineStatus.fired else (
        "met late" if deadline.status == DeadlineStatus.met and met_late else deadline.status.value)
    return DeadlineOut(
        regulation=deadline.regulation,
        step=deadline.step,
        position=deadline.position or 0,
        kind=deadline.kind or "step",
        met_by=deadline.met_by,
        due_at=deadline.due_at,
        counts_from=deadline.reference_at,
        status=deadline.status.value,
        outcome=outcome,
        met_at=deadline.met_at,
        fired_at=deadline.fired_at,
        came_due_unmet=late,
        breached=deadline.breached,
        version=deadline.version,
    )


def _agent_ref(agent: Agent | None) -> AgentRef | None:
    return AgentRef.model_validate(agent) if agent else None


def ticket_detail(view: TicketView) -> TicketDetail:
    return TicketDetail(
        **ticket_summary(view.ticket).model_dump(),
        group=view.group.name,
        assignee=_agent_ref(view.assignee),
        customer=CustomerBrief(
            id=view.customer.id,
            name=view.customer.name,
            language=view.customer.language,
            tier=view.customer.tier,
            identities=_identities(view.identities),
        ),
        messages=[message_out(m) for m in view.messages],
        events=[EventOut.model_validate(e) for e in view.events],
        calls=[call_out(c) for c in view.calls],
        regulation=view.ticket.regulation or None,
        processed_at=view.ticket.processed_at,
        deadlines=[_deadline_out(d, view.as_of) for d in view.deadlines],
        clock=[ClockEventOut.model_validate(e) for e in view.clock],
        linked=[t.id for t in view.links],
        merged_from=view.merged_from,
        tags=view.tags,
        outcome=view.ticket.outcome,
        outcome_reason=view.ticket.outcome_reason,
    )


def activity_out(activity: Activity, type_name: str) -> ActivityBrief:
    return ActivityBrief(type=type_name, **{name: getattr(activity, name)
                                            for name in ActivityBrief.model_fields if name != "type"})


def customer_out(view: CustomerView) -> CustomerOut:
    return CustomerOut(
        id=view.customer.id,
        name=view.customer.name,
        language=view.customer.language,
        tier=view.customer.tier,
        identities=_identities(view.identities),
        created_at=view.customer.created_at,
        tickets=[ticket_summary(t) for t in view.tickets],
        calls=[call_out(c) for c in view.calls],
        activities=[activity_out(a, name) for a, name in view.activities],
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
        remind_by=agent.remind_by or "auto",
    )


def group_out(view: GroupView) -> GroupOut:
    group = view.group
    return GroupOut(
        id=group.id, name=group.name, head_email=group.head_email, acknowledge=group.acknowledge,
        agents=view.agents, waiting=view.waiting,
    )


def skill_out(skill: Skill, agents: int = 0) -> SkillOut:
    return SkillOut(id=skill.id, name=skill.name, description=skill.description, agents=agents)


def rule_out(view: RuleView) -> RuleOut:
    rule = view.rule
    return RuleOut(
        id=rule.id,
        position=rule.position,
        channel=rule.channel,
        category=rule.category,
        language=rule.language,
        from_group=view.from_group,
        group=view.group,
        skills=sorted(skill_set(rule.skills)),
        priority=rule.priority.value if rule.priority is not None else None,
        tags=[tag for tag in rule.tags.split(",") if tag],
    )


class DeliveryAttemptOut(FromRow):
    attempt: int = Field(description="The notification's attempt count when this happened (receipts keep the last).")
    outcome: str = Field(description="sent, retry, failed, abandoned (the worker died), unconfirmed, cancelled, or a "
                                     "delivery receipt's status (delivered, undelivered, sent…).")
    started_at: datetime | None
    at: datetime
    error: str | None
    provider_id: str | None


class NotificationOut(BaseModel):
    id: int
    ticket: int | None
    kind: str = Field(description="ack, reply, resolved, chat_fallback, sla_alert…")
    channel: str = Field(description="email, sms, telegram, webchat")
    recipient: str
    subject: str | None
    text: str
    status: str = Field(description="queued, sending, sent, delivered, failed, cancelled")
    attempts: int
    last_error: str | None
    provider_id: str | None = Field(description="The relay's queue id, the SMS gateway's message id, the sink file.")
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    history: list[DeliveryAttemptOut]


class NotificationList(BaseModel):
    items: list[NotificationOut]


class TelegramLink(BaseModel):
    command: str = Field(description="Send this to the bot from your Telegram account.")
    expires_at: datetime


class ReceiptOut(BaseModel):
    id: int = Field(description="The notification the receipt was about.")
    status: str


def notification_out(row: Any, attempts: list[Any]) -> NotificationOut:
    return NotificationOut(
        id=row.id, ticket=row.ticket_id, kind=row.kind, channel=row.channel, recipient=row.recipient,
        subject=row.subject, text=row.body_text or "", status=str(row.status), attempts=row.attempts,
        last_error=row.last_error, provider_id=row.provider_id, created_at=row.created_at,
        next_attempt_at=row.next_attempt_at, sent_at=row.sent_at,
        history=[DeliveryAttemptOut.model_validate(a) for a in attempts],
    )
