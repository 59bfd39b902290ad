"""One place builds everything a process needs, at start-up: engine, services, job queue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from notifier.alerts import StaffAlerts
from notifier.assignments import AssignmentNotices
from notifier.compose import CompositeNotifications, EmailNotifications
from notifier.delivery import Deliverer, TextSender
from notifier.jobs import ArqJobQueue
from notifier.live import RedisChangeFeed
from notifier.quiet import quiet_window
from notifier.receipts import SMS_STATUS_PATH
from notifier.reminders import Reminders
from notifier.render import NoticeRenderer
from notifier.senders import EmailSender, RelaySender, SinkSender
from notifier.sms import CHANNEL as SMS_CHANNEL
from notifier.sms import LOG_FILE as SMS_LOG
from notifier.sms import GatewaySender, LogSender
from notifier.telegram import TelegramNotifications
from notifier.webchat import WebchatNotifications, WebchatSender
from routing.router import LeastLoadedRouter
from sla.engine import RegulationEngine
from sla.firing import Escalations
from sla.jobs import ArqTimers
from switchboard.settings import Settings
from tickets.attachments import AttachmentStore
from tickets.clock import Clock, SystemClock
from tickets.db import create_engine, create_session_factory
from tickets.ports import ChangeFeed, JobQueue, Notifications, Timers
from tickets.service import TicketService
from tickets.uow import Store

if TYPE_CHECKING:
    from aiogram import Bot

    from channels.chat.telegram.updates import TelegramUpdates
    from switchboard.dispatcher import DispatchLoop


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    service: TicketService
    attachments: AttachmentStore
    redis: ArqRedis
    redis_url: str
    clock: Clock
    deliverer: Deliverer | None = None
    """Sends outbox rows; the worker's delivery jobs use it."""
    escalations: Escalations | None = None
    """Fires due regulation steps; the worker's timer jobs and sweeper use it."""
    telegram_bot: Bot | None = None
    """The Telegram bot (set only when a token is configured): receives updates and sends replies."""
    dispatcher: DispatchLoop | None = None
    """The dispatcher loop running in this process, if one does (deliveries in the same loop give way to it)."""
    reminders: Reminders | None = None
    """Words and queues a planned contact's reminder; the timer worker's reminder jobs use it."""

    @property
    def store(self) -> Store:
        """The units of work every command, query and direct read of this process goes through."""
        return self.service.store

    async def close(self) -> None:
        if self.telegram_bot is not None:
            await self.telegram_bot.session.close()
        if self.deliverer is not None:
            await self.deliverer.close()
        await self.redis.aclose()
        await self.engine.dispose()

    def telegram_updates(self) -> TelegramUpdates:
        """The Telegram channel adapter on this runtime's service; only when a bot is configured."""
        from channels.chat.telegram.updates import TelegramUpdates

        if self.telegram_bot is None:
            raise ValueError("no Telegram bot configured (SWITCHBOARD_TELEGRAM_TOKEN)")
        window = timedelta(hours=self.settings.telegram.thread_hours)
        return TelegramUpdates(
            self.service, self.attachments, self.telegram_bot, thread_window=window, redis=self.redis
        )


def redis_settings(url: str) -> RedisSettings:
    # A few quick retries: a role started beside its Redis should wait for it, not hang for long.
    settings = RedisSettings.from_dsn(url)
    settings.conn_retries = 5
    settings.conn_retry_delay = 1
    return settings


def build_engine(settings: Settings) -> AsyncEngine:
    if settings.uses_embedded_database:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return create_engine(
        settings.database_url,
        pool_size=settings.database.pool_size,
        sqlite_busy_timeout_ms=settings.database.sqlite_busy_timeout_ms,
    )


def build_sender(settings: Settings) -> EmailSender:
    """The configured relay, or the mail-sink directory when there is none (the zero-config default)."""
    if settings.smtp.relay_url:
        return RelaySender(settings.smtp.relay_url)
    return SinkSender(settings.data_dir / "mail-sink")


def build_sms_sender(settings: Settings) -> TextSender:
    """The configured SMS gateway, or the SMS log file when there is none (the zero-config default)."""
    sms = settings.sms
    if sms.gateway_url:
        return GatewaySender(sms.profile_spec(), callback_url=f"{settings.public_url}{SMS_STATUS_PATH}",
                             timeout=sms.timeout_seconds, region=settings.phone_region)
    return LogSender(settings.data_dir / SMS_LOG, region=settings.phone_region)


def build_deliverer(settings: Settings, store: Store, clock: Clock,
                    sender: EmailSender, chat_senders: dict[str, TextSender]) -> Deliverer:
    retry = settings.notifier
    renderer = NoticeRenderer(EmailNotifications(settings).templates, settings.public_url)
    return Deliverer(store, clock, sender, chat_senders=chat_senders, renderer=renderer,
                     attachments=AttachmentStore(settings.attachments_dir),
                     max_attempts=retry.max_attempts,
                     first_retry=timedelta(seconds=retry.first_retry_seconds),
                     max_retry=timedelta(seconds=retry.max_retry_seconds),
                     stale_after=timedelta(seconds=retry.stale_after_seconds))


def build_service(
    settings: Settings,
    engine: AsyncEngine,
    clock: Clock,
    *,
    notifications: Notifications | None = None,
    jobs: JobQueue | None = None,
    timers: Timers | None = None,
    regulations: RegulationEngine | None = None,
    changes: ChangeFeed | None = None,
) -> TicketService:
    """Notifications are always written to the outbox; without `jobs` (CLI, no Redis) the worker's sweeper sends
    them, without `timers` the deadline sweeper fires what comes due, and without `changes` consoles see changes
    on their next refresh."""
    router = build_router(settings)
    return TicketService(
        create_session_factory(engine, router.weights.milli),
        router,
        clock,
        settings.default_group,
        notifications=notifications or default_notifications(settings),
        jobs=jobs,
        timers=timers,
        regulations=regulations or RegulationEngine(settings.regulation_book()),
        changes=changes,
    )


def build_router(settings: Settings) -> LeastLoadedRouter:
    return LeastLoadedRouter(settings.routing.weights(), return_on_offline=settings.routing.return_on_offline)


def build_escalations(settings: Settings, store: Store, engine: RegulationEngine, clock: Clock) -> Escalations:
    """Firings write in the service's units of work: their notices, timers and live updates publish as any
    command's do."""
    sms = settings.sms
    alerts = StaffAlerts(EmailNotifications(settings), settings.smtp.reply_from, settings.public_url,
                         max_segments=sms.max_segments, timezone=settings.calendar.timezone,
                         quiet_hours=quiet_window(sms.quiet_hours) if sms.quiet_hours else None)
    return Escalations(store, engine, build_router(settings), alerts, clock)


def default_notifications(settings: Settings) -> Notifications:
    """Every channel's notifications; each writes rows only for its own tickets."""
    email = EmailNotifications(settings)
    minutes = settings.webchat.email_after_minutes
    webchat = WebchatNotifications(
        email, settings.smtp.reply_from, settings.public_url, timedelta(minutes=minutes) if minutes > 0 else None
    )
    reactions = [AssignmentNotices(settings.smtp.reply_from)] \
        if settings.notifier.assignment_emails else []
    return CompositeNotifications(email, TelegramNotifications(), webchat, reactions=reactions)


async def build(settings: Settings, *, redis_url: str | None = None, clock: Clock | None = None) -> Runtime:
    """Everything a web or worker role needs; `redis_url` overrides settings (the embedded server's URL)."""
    url = redis_url or settings.redis.url
    if not url:
        raise ValueError("no Redis configured: set SWITCHBOARD_REDIS_URL, or use `switchboard serve`")
    clock = clock or SystemClock()
    sender = build_sender(settings)
    engine = build_engine(settings)
    try:
        redis = await create_pool(redis_settings(url))
    except BaseException:
        await engine.dispose()
        raise
    sessions = create_session_factory(engine, build_router(settings).weights.milli)
    jobs, timers, regulations = ArqJobQueue(redis), ArqTimers(redis), RegulationEngine(settings.regulation_book())
    bot = build_telegram_bot(settings)
    chat_senders: dict[str, TextSender] = {"webchat": WebchatSender(redis), SMS_CHANNEL: build_sms_sender(settings)}
    if bot is not None:
        from notifier.telegram_sender import TelegramSender

        chat_senders["telegram"] = TelegramSender(bot)
    service = build_service(settings, engine, clock, jobs=jobs, timers=timers, regulations=regulations,
                            changes=RedisChangeFeed(redis))
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=sessions,
        service=service,
        attachments=AttachmentStore(settings.attachments_dir),
        redis=redis,
        redis_url=url,
        clock=clock,
        deliverer=build_deliverer(settings, service.store, clock, sender, chat_senders),
        escalations=build_escalations(settings, service.store, regulations, clock),
        telegram_bot=bot,
        reminders=Reminders(EmailNotifications(settings), settings.smtp.reply_from, settings.public_url),
    )


def build_telegram_bot(settings: Settings) -> Bot | None:
    """The aiogram Bot on the configured API server, or None when no token is set (the channel is off)."""
    if not settings.telegram.token:
        return None
    from channels.chat.telegram.bot import create_bot

    return create_bot(settings.telegram)
