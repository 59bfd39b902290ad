"""`TicketService`: one object that desk/, the channels and the CLI hold, each method one command or query.

The work is in `tickets.actions` (commands) and `tickets.queries` (reads), functions that take their dependencies
(`tickets.deps.Deps`) and run in one unit of work (`tickets.uow.Store`); this façade only binds them to one set of
dependencies, so the callers keep one handle while they move to the functions themselves."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tickets.actions import chat as chat_actions
from tickets.actions import customers as customer_actions
from tickets.actions import live_calls as live_call_actions
from tickets.actions import logins, merging, parking, receipts, staff, views
from tickets.actions import outcomes as outcome_actions
from tickets.actions import plans as plan_actions
from tickets.actions import portal as portal_actions
from tickets.actions import tickets as ticket_actions
from tickets.actions.live_calls import CallChange, CallEvent
from tickets.actions.logins import Login
from tickets.actions.outcomes import Outcomes
from tickets.actions.plans import NextContact, Notify, Recorded, Reminded
from tickets.actions.staff import AgentChanges
from tickets.calls import CallResult
from tickets.clock import Clock
from tickets.deps import Deps
from tickets.dispatch import BATCH, Dispatched
from tickets.inbound import AttachmentRef, Identity, Inbound
from tickets.ingest import IngestResult
from tickets.models import (
    ActivityType,
    Agent,
    CannedResponse,
    Group,
    LiveCall,
    Message,
    Outcome,
    OutcomeReason,
    Parked,
    Presence,
    Priority,
    Rating,
    Role,
    SavedView,
    Skill,
    Ticket,
    TicketStatus,
)
from tickets.ports import Assigner, ChangeFeed, JobQueue, Notifications, Regulations, Timers
from tickets.queries import chat, customers, live_calls, plans, portal, reports
from tickets.queries import parking as parking_queries
from tickets.queries import staff as staff_queries
from tickets.queries import tickets as ticket_queries
from tickets.queries.chat import ChatHistory
from tickets.queries.customers import CustomerView, HistoryPage
from tickets.queries.live_calls import CallerLog, CallPop
from tickets.queries.plans import PlanLine
from tickets.queries.portal import PortalView
from tickets.queries.reports import AgentIndicators, Report, Scope
from tickets.queries.staff import AgentView, GroupView, RuleView, SkillView
from tickets.queries.tickets import QueueContext, QueueLine, TicketPage, TicketView
from tickets.uow import Store


class TicketService:
    """The store, the router, the clock and the regulation engine, bound once; the only way desk/ and channels
    change tickets."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        router: Assigner,
        clock: Clock,
        default_group: str,
        *,
        notifications: Notifications | None = None,
        jobs: JobQueue | None = None,
        timers: Timers | None = None,
        regulations: Regulations | None = None,
        changes: ChangeFeed | None = None,
    ) -> None:
        store = Store(sessions, clock, notifications=notifications, jobs=jobs, timers=timers, changes=changes)
        self.deps = Deps(store, router, clock, default_group, regulations=regulations, notifications=notifications)

    @property
    def store(self) -> Store:
        return self.deps.store

    @property
    def wake_dispatcher(self) -> Callable[[], None] | None:
        return self.deps.wake_dispatcher

    @wake_dispatcher.setter
    def wake_dispatcher(self, wake: Callable[[], None] | None) -> None:
        self.deps.wake_dispatcher = wake

    def now(self) -> datetime:
        """The service's clock (tests move it), for adapters that check a time-limited code."""
        return self.deps.clock.now()

    # --- actions.receipts ----------------------------------------
    async def ingest(self, inbound: Inbound) -> IngestResult:
        return await receipts.ingest(self.deps, inbound)

    async def dispatch_owed(
        self, *, limit: int = BATCH, numbers: Sequence[int] | None = None, owed_for: timedelta | None = None
    ) -> Dispatched:
        return await receipts.dispatch_owed(self.deps, limit=limit, numbers=numbers, owed_for=owed_for)

    async def recount_loads(self) -> int:
        return await receipts.recount_loads(self.deps)

    async def log_calls(self, inbounds: Sequence[Inbound]) -> list[CallResult]:
        return await receipts.log_calls(self.deps, inbounds)

    async def refresh_call_statistics(self) -> None:
        return await receipts.refresh_call_statistics(self.deps)

    # --- actions.live_calls ----------------------------------------
    async def rotate_cti_token(self) -> str:
        return await live_call_actions.rotate_cti_token(self.deps)

    async def cti_token_valid(self, token: str) -> bool:
        return await live_call_actions.cti_token_valid(self.deps, token)

    async def record_call_event(self, event: CallEvent) -> CallChange:
        return await live_call_actions.record_call_event(self.deps, event)

    async def unlogged_calls(self, ended_before: datetime) -> list[CallChange]:
        return await live_call_actions.unlogged_calls(self.deps, ended_before)

    async def mark_call_logged(self, call_id: str, logged_call_id: int) -> None:
        return await live_call_actions.mark_logged(self.deps, call_id, logged_call_id)

    async def put_call_on_ticket(self, viewer: Agent, call_id: str, number: int) -> None:
        await live_call_actions.put_call_on_ticket(self.deps, viewer, call_id, number)

    async def open_ticket_for_call(self, viewer: Agent, call_id: str) -> int:
        return await live_call_actions.open_ticket_for_call(self.deps, viewer, call_id, self.deps.default_group)

    async def card_for_call(self, viewer: Agent, call_id: str, *, name: str | None = None,
                            customer_id: int | None = None) -> int:
        return await live_call_actions.card_for_call(self.deps, viewer, call_id, name=name, customer_id=customer_id)

    # --- queries.live_calls ----------------------------------------
    async def call_pop(self, viewer: Agent, call_id: str) -> CallPop:
        return await live_calls.call_pop(self.deps, viewer, call_id)

    async def calls_in_progress(self, source: str) -> list[LiveCall]:
        return await live_calls.calls_in_progress(self.deps, source)

    async def caller_log(self, since: datetime) -> CallerLog:
        return await live_calls.caller_log(self.deps, since)

    async def current_call(self, viewer: Agent) -> str | None:
        return await live_calls.current_call(self.deps, viewer)

    # --- actions.plans ----------------------------------------
    async def record_activity(self, viewer: Agent, customer_id: int, type_name: str, *, outcome: str | None = None,
                              note: str | None = None, ticket: int | None = None, call_id: str | None = None,
                              next_contact: NextContact | None = None) -> Recorded:
        return await plan_actions.record_activity(self.deps, viewer, customer_id, type_name, outcome=outcome,
                                                  note=note, ticket=ticket, call_id=call_id,
                                                  next_contact=next_contact)

    async def remind(self, planned_id: int, notify: Notify | None = None) -> Reminded | None:
        return await plan_actions.remind(self.deps, planned_id, notify)

    async def due_reminders(self) -> list[int]:
        return await plan_actions.due_reminders(self.deps)

    async def add_activity_type(self, name: str) -> ActivityType:
        return await plan_actions.add_activity_type(self.deps, name)

    async def indicators(self, days: int, scope: Scope, stale: timedelta) -> list[AgentIndicators]:
        return await reports.indicators(self.deps, days, scope, stale)

    # --- actions.outcomes ----------------------------------------
    async def outcomes(self) -> Outcomes:
        return await outcome_actions.outcomes(self.deps)

    async def add_outcome(self, name: str, *, needs_reason: bool = False) -> Outcome:
        return await outcome_actions.add_outcome(self.deps, name, needs_reason=needs_reason)

    async def add_outcome_reason(self, name: str) -> OutcomeReason:
        return await outcome_actions.add_reason(self.deps, name)

    # --- queries.plans ----------------------------------------
    async def plan_of(self, viewer: Agent, until: datetime | None = None, *,
                      customer_id: int | None = None) -> list[PlanLine]:
        return await plans.plan_of(self.deps, viewer, until, customer_id=customer_id)

    async def todays_plan(self, viewer: Agent) -> list[PlanLine]:
        return await plans.todays_plan(self.deps, viewer)

    async def overdue_plans(self, agent_ids: Collection[int], limit: int = 50) -> list[PlanLine]:
        return await plans.overdue_plans(self.deps, agent_ids, limit)

    async def activity_types(self) -> list[ActivityType]:
        return await plans.activity_types(self.deps)

    # --- actions.chat ----------------------------------------
    async def mark_seen(self, channel: str, sender_prefix: str, message_ids: list[int]) -> int:
        return await chat_actions.mark_seen(self.deps, channel, sender_prefix, message_ids)

    # --- queries.chat ----------------------------------------
    async def chat_history(self, channel: str, sender_prefix: str, limit: int = 200) -> ChatHistory:
        return await chat.chat_history(self.deps, channel, sender_prefix, limit)

    # --- actions.customers ----------------------------------------
    async def set_customer_tier(self, viewer: Agent, customer_id: int, tier: str | None) -> CustomerView:
        return await customer_actions.set_customer_tier(self.deps, viewer, customer_id, tier)

    async def add_identity(
        self, viewer: Agent, customer_id: int, identity: Identity, *, merge: bool = False
    ) -> CustomerView:
        return await customer_actions.add_identity(self.deps, viewer, customer_id, identity, merge=merge)

    # --- queries.customers ----------------------------------------
    async def get_customer(self, viewer: Agent, customer_id: int) -> CustomerView:
        return await customers.get_customer(self.deps, viewer, customer_id)

    async def customer_history(self, viewer: Agent, customer_id: int, types: Collection[str] = (),
                               limit: int = customers.HISTORY_PAGE, before: datetime | None = None) -> HistoryPage:
        return await customers.customer_history(self.deps, viewer, customer_id, types, limit, before)

    async def customer_tickets_by_identity(self, kind: str, address: str, limit: int = 20) -> list[Ticket]:
        return await customers.customer_tickets_by_identity(self.deps, kind, address, limit)

    # --- actions.tickets ----------------------------------------
    async def add_message(self, viewer: Agent, number: int, body: str, *, internal: bool,
                          attachments: Sequence[AttachmentRef] = ()) -> Message:
        return await ticket_actions.add_message(self.deps, viewer, number, body, internal=internal,
                                                attachments=attachments)

    async def update_ticket(self, viewer: Agent, number: int, changes: dict[str, Any]) -> TicketView:
        return await ticket_actions.update_ticket(self.deps, viewer, number, changes)

    # --- queries.tickets ----------------------------------------
    async def list_tickets(
        self,
        viewer: Agent,
        *,
        status: list[TicketStatus] | None = None,
        assignee: int | None | str = 'any',
        group: str | None = None,
        overdue: bool = False,
        limit: int = 50,
        before: int | None = None,
        search: str | None = None,
        channel: str | None = None,
        priority: list[Priority] | None = None,
        escalated: bool = False,
        tag: str | None = None,
    ) -> TicketPage:
        return await ticket_queries.list_tickets(
            self.deps, viewer, status=status, assignee=assignee, group=group, overdue=overdue, limit=limit,
            before=before, search=search, channel=channel, priority=priority, escalated=escalated, tag=tag
        )

    async def queue_lines(
        self,
        viewer: Agent,
        *,
        status: list[TicketStatus] | None = None,
        assignee: int | None | str = 'any',
        overdue: bool = False,
        limit: int = 200,
        search: str | None = None,
        channel: str | None = None,
        priority: list[Priority] | None = None,
        escalated: bool = False,
        group: str | None = None,
        created_since: datetime | None = None,
        created_before: datetime | None = None,
        tag: str | None = None,
        before: int | None = None,
    ) -> list[QueueLine]:
        return await ticket_queries.queue_lines(
            self.deps, viewer, status=status, assignee=assignee, overdue=overdue, limit=limit, search=search,
            channel=channel, priority=priority, escalated=escalated, group=group, created_since=created_since,
            created_before=created_before, tag=tag, before=before
        )

    async def queue_context(self, viewer: Agent, *, with_agents: bool) -> QueueContext:
        return await ticket_queries.queue_context(self.deps, viewer, with_agents=with_agents)

    async def all_tags(self) -> list[str]:
        return await ticket_queries.all_tags(self.deps)

    async def get_ticket(self, viewer: Agent, number: int) -> TicketView:
        return await ticket_queries.get_ticket(self.deps, viewer, number)

    async def mark_opened(self, viewer: Agent, number: int) -> None:
        return await ticket_actions.mark_opened(self.deps, viewer, number)

    # --- actions.views -----------------------------------------
    async def save_view(self, viewer: Agent, name: str, query: str) -> SavedView:
        return await views.save_view(self.deps, viewer, name, query)

    async def remove_view(self, viewer: Agent, view_id: int) -> None:
        return await views.remove_view(self.deps, viewer, view_id)

    # --- actions.merging ----------------------------------------
    async def link_tickets(self, viewer: Agent, number: int, other: int) -> None:
        return await merging.link_tickets(self.deps, viewer, number, other)

    async def unlink_tickets(self, viewer: Agent, number: int, other: int) -> None:
        return await merging.unlink_tickets(self.deps, viewer, number, other)

    async def merge_ticket(self, viewer: Agent, number: int, into: int) -> int:
        return await merging.merge_ticket(self.deps, viewer, number, into)

    # --- actions.staff ----------------------------------------
    async def add_agent(
        self,
        name: str,
        email: str,
        *,
        phone: str | None = None,
        extension: str | None = None,
        role: Role = Role.agent,
        groups: list[str] | None = None,
        skills: list[str] | None = None,
        capacity: int = 10,
        presence: Presence = Presence.available,
        language: str | None = None,
    ) -> tuple[Agent, str]:
        return await staff.add_agent(
            self.deps, name, email, phone=phone, extension=extension, role=role, groups=groups, skills=skills,
            capacity=capacity, presence=presence, language=language
        )

    async def authenticate(self, token: str) -> Agent | None:
        return await staff.authenticate(self.deps, token)

    async def link_telegram(self, agent_id: int, chat_id: str) -> Agent | None:
        return await staff.link_telegram(self.deps, agent_id, chat_id)

    async def set_presence(self, agent_id: int, presence: Presence, *, reason: str | None = None) -> AgentView:
        return await staff.set_presence(self.deps, agent_id, presence, reason=reason)

    async def set_remind_by(self, agent_id: int, medium: str | None) -> Agent:
        return await staff.set_remind_by(self.deps, agent_id, medium)

    async def update_agent(self, agent_id: int, changes: AgentChanges, *, reason: str | None = None) -> AgentView:
        return await staff.update_agent(self.deps, agent_id, changes, reason=reason)

    async def sweep_idle_agents(self, idle: timedelta) -> list[int]:
        return await staff.sweep_idle_agents(self.deps, idle)

    async def drain_queues(self) -> int:
        return await staff.drain_queues(self.deps)

    async def add_group(self, name: str, head_email: str | None = None, *, acknowledge: bool = True) -> Group:
        return await staff.add_group(self.deps, name, head_email, acknowledge=acknowledge)

    async def add_canned(self, title: str, body: str) -> CannedResponse:
        return await staff.add_canned(self.deps, title, body)

    async def remove_canned(self, canned_id: int) -> None:
        return await staff.remove_canned(self.deps, canned_id)

    async def add_skill(self, name: str, description: str | None = None) -> Skill:
        return await staff.add_skill(self.deps, name, description)

    async def add_rule(
        self,
        *,
        channel: str | None = None,
        category: str | None = None,
        language: str | None = None,
        from_group: str | None = None,
        group: str | None = None,
        skills: Sequence[str] = (),
        priority: Priority | None = None,
        tags: Sequence[str] = (),
        position: int | None = None,
    ) -> RuleView:
        return await staff.add_rule(
            self.deps, channel=channel, category=category, language=language, from_group=from_group, group=group,
            skills=skills, priority=priority, tags=tags, position=position
        )

    async def remove_rule(self, rule_id: int) -> None:
        return await staff.remove_rule(self.deps, rule_id)

    # --- queries.staff ----------------------------------------
    async def find_agent(self, reference: str) -> Agent:
        return await staff_queries.find_agent(self.deps, reference)

    async def list_agents(self) -> list[AgentView]:
        return await staff_queries.list_agents(self.deps)

    async def all_agents(self) -> list[Agent]:
        return await staff_queries.all_agents(self.deps)

    async def list_groups(self) -> list[GroupView]:
        return await staff_queries.list_groups(self.deps)

    async def list_canned(self) -> list[CannedResponse]:
        return await staff_queries.list_canned(self.deps)

    async def list_skills(self) -> list[SkillView]:
        return await staff_queries.list_skills(self.deps)

    async def list_rules(self) -> list[RuleView]:
        return await staff_queries.list_rules(self.deps)

    # --- actions.logins ----------------------------------------
    async def set_password(self, agent_id: int, password: str) -> None:
        return await logins.set_password(self.deps, agent_id, password)

    async def log_in(self, email: str, password: str) -> Login | None:
        return await logins.log_in(self.deps, email, password)

    async def session_of(self, token: str) -> tuple[Agent, str] | None:
        return await logins.session_of(self.deps, token)

    async def log_out(self, token: str) -> None:
        return await logins.log_out(self.deps, token)

    # --- actions.portal ----------------------------------------
    async def portal_reply(
        self, key: str, text: str, idempotency_key: str | None = None, attachments: tuple[AttachmentRef, ...] = ()
    ) -> int:
        return await portal_actions.portal_reply(self.deps, key, text, idempotency_key, attachments)

    async def rate(self, key: str, score: int, comment: str | None) -> Rating:
        return await portal_actions.rate(self.deps, key, score, comment)

    # --- queries.portal ----------------------------------------
    async def portal_view(self, key: str) -> PortalView:
        return await portal.portal_view(self.deps, key)

    # --- queries.reports ----------------------------------------
    async def report(self, days: int = 14, scope: Scope | None = None) -> Report:
        return await reports.report(self.deps, days, scope)

    # --- actions.parking, queries.parking ----------------------------------------
    async def park(
        self, channel: str, reference: str | None, error: str, *, payload: str | None = None,
        raw: AttachmentRef | None = None, attempts: int = 1,
    ) -> int:
        return await parking.park(self.deps, channel, reference, error, payload=payload, raw=raw, attempts=attempts)

    async def parked(self, limit: int = 100, channel: str | None = None) -> list[Parked]:
        return await parking_queries.parked(self.deps, limit, channel)

    async def parked_item(self, number: int) -> Parked:
        return await parking_queries.parked_item(self.deps, number)

    async def portal_number(self, key: str) -> int:
        return await portal.portal_number(self.deps, key)

    async def update_group(self, reference: str, changes: dict[str, Any]) -> Group:
        return await staff.update_group(self.deps, reference, changes)
