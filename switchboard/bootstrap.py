"""One place builds everything a process needs, at start-up: engine, services, job queue."""

from __future__ import annotations

from dataclasses import dataclass

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from routing.router import LeastLoadedRouter
from switchboard.settings import Settings
from tickets.attachments import AttachmentStore
from tickets.clock import Clock, SystemClock
from tickets.db import create_engine, create_session_factory
from tickets.service import TicketService


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

    async def close(self) -> None:
        await self.redis.aclose()
        await self.engine.dispose()


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


def build_service(settings: Settings, engine: AsyncEngine, clock: Clock) -> TicketService:
    return TicketService(create_session_factory(engine), LeastLoadedRouter(), clock, settings.default_group)


async def build(settings: Settings, *, redis_url: str | None = None, clock: Clock | None = None) -> Runtime:
    """Everything a web or worker role needs; `redis_url` overrides settings (the embedded server's URL)."""
    url = redis_url or settings.redis.url
    if not url:
        raise ValueError("no Redis configured: set SWITCHBOARD_REDIS_URL, or use `switchboard serve`")
    clock = clock or SystemClock()
    engine = build_engine(settings)
    service = build_service(settings, engine, clock)
    try:
        redis = await create_pool(redis_settings(url))
    except BaseException:
        await engine.dispose()
        raise
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=create_session_factory(engine),
        service=service,
        attachments=AttachmentStore(settings.attachments_dir),
        redis=redis,
        redis_url=url,
        clock=clock,
    )
