"""The processes `switchboard` runs, assembled from roles: web (the API, console, forms and webhooks), worker
(deliveries, regulation timers, the dispatcher), smtp, Telegram polling, and pbx (the Asterisk AMI session);
`serve` is all of them on the embedded database and Redis. Each role's parts start in order and stop in reverse on
SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any

from aiohttp import web

from switchboard.errors import CliError
from switchboard.settings import Settings

log = logging.getLogger("switchboard")


async def prepared_engine(settings: Settings) -> Any:
    """An engine on a schema that is up to date: the embedded database migrates itself, a server one must be
    migrated."""
    from sqlalchemy.exc import DBAPIError

    from switchboard.bootstrap import build_engine
    from tickets import migrate

    engine = build_engine(settings)
    try:
        if settings.uses_embedded_database:
            await migrate.upgrade(engine)
        elif await migrate.current_revision(engine) != migrate.head_revision():
            raise CliError("the database schema is not up to date: run `switchboard migrate` first")
    except DBAPIError as exc:
        await engine.dispose()
        raise CliError(f"cannot use the database {engine.url.render_as_string()}: {exc.orig}") from exc
    except BaseException:
        await engine.dispose()
        raise
    return engine


def stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _start_smtp(rt: Any, stack: AsyncExitStack) -> None:
    from channels.email.smtp import InboundMailHandler, MailboxConfig, start_smtp_server
    from web.ratelimit import RateLimiter

    smtp = rt.settings.smtp
    max_bytes = smtp.max_message_mb * 1024 * 1024
    limiter = RateLimiter(rt.redis, smtp.sender_rate_limit, prefix="ratelimit:mail", window_seconds=3600)
    handler = InboundMailHandler(rt.service, rt.attachments, MailboxConfig(smtp.addresses, max_bytes), limiter)
    try:
        server = await start_smtp_server(handler, smtp.host, smtp.port, max_bytes=max_bytes)
    except OSError as exc:
        raise CliError(f"cannot listen for SMTP on {smtp.host}:{smtp.port}: {exc.strerror}") from exc

    async def close() -> None:
        server.close()
        await server.wait_closed()

    stack.push_async_callback(close)
    accepted = ", ".join(smtp.addresses) or "any recipient"
    print(f"SMTP listening on {smtp.host}:{smtp.port} for {accepted}.", file=sys.stderr, flush=True)


def _as_task(stack: AsyncExitStack, run: Callable[[asyncio.Event], Coroutine[Any, Any, None]], *, grace: float) -> None:
    """A part that runs as a task of this process until told to stop at exit, given `grace` seconds to finish (the
    AMI session applies what the PBX already said); then it is cancelled."""
    stopping = asyncio.Event()
    task = asyncio.create_task(run(stopping))

    async def stop() -> None:
        stopping.set()
        try:
            await asyncio.wait_for(task, grace)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()

    stack.push_async_callback(stop)


async def _start_polling(rt: Any, stack: AsyncExitStack) -> None:
    """Telegram long polling as a task of this process; it stops (and its offset stays committed) on exit."""
    from channels.chat.telegram.polling import TelegramPoller

    poller = TelegramPoller(rt.telegram_bot, rt.telegram_updates())
    # A long poll in flight when the grace ends is cancelled: the update it may bring is not acknowledged, so not lost.
    _as_task(stack, poller.run, grace=5)
    print("Telegram bot polling for updates.", file=sys.stderr, flush=True)


async def _start_pbx(rt: Any, stack: AsyncExitStack) -> None:
    """The Asterisk AMI session as a task of this process; on exit it applies what the PBX already said, then
    stops."""
    from channels.phone.ami import AmiBridge, parse_ami_url

    target = parse_ami_url(rt.settings.ami_url)
    _as_task(stack, AmiBridge(rt, target).run, grace=15)
    print(f"Following calls on the Asterisk manager {target}.", file=sys.stderr, flush=True)


async def _start_dispatching(rt: Any, stack: AsyncExitStack, *, receives: bool, worker: bool) -> None:
    """Who completes this process's receipts (SWITCHBOARD_DISPATCH_BY): with `worker`, the worker's loop, woken
    through Redis (a process with both roles, `serve`, wakes its own); with `receiver`, each receiving process's own
    loop, the worker re-driving only what a dead one left."""
    from switchboard.dispatcher import DispatchLoop, RedisWake

    by_worker = rt.settings.dispatch.by == "worker"
    if worker or not by_worker:
        loop = DispatchLoop(rt.service, sweep_seconds=rt.settings.dispatch.sweep_seconds,
                            batch=rt.settings.dispatch.batch, orphans_only=not receives and not by_worker,
                            wakes=rt.redis if by_worker else None)
        await loop.start()
        stack.push_async_callback(loop.stop)
        rt.dispatcher = loop
    elif receives:
        rt.service.wake_dispatcher = RedisWake(rt.redis)


async def run_roles(settings: Settings, *, web_role: bool, worker_role: bool, embedded_redis: bool,
                     smtp_role: bool = False, telegram_role: bool = False, pbx_role: bool = False) -> int:
    from switchboard.bootstrap import build
    from switchboard.worker import build_workers

    stop = stop_event()
    async with AsyncExitStack() as stack:
        redis_url = settings.redis.url
        if embedded_redis and not redis_url:
            from switchboard.embedded_redis import EmbeddedRedis

            embedded = EmbeddedRedis(settings.data_dir / "redis")
            redis_url = await embedded.start()
            stack.push_async_callback(embedded.stop)
            log.info("embedded Redis started at %s", redis_url)
        if not redis_url:
            raise CliError("set SWITCHBOARD_REDIS_URL for this role, or run everything with `switchboard serve`")
        engine = await prepared_engine(settings)
        await engine.dispose()
        rt = await build(settings, redis_url=redis_url)
        stack.push_async_callback(rt.close)
        receives = web_role or smtp_role or telegram_role or pbx_role
        await _start_dispatching(rt, stack, receives=receives, worker=worker_role)
        if worker_role:
            for worker in build_workers(rt):
                worker_task = asyncio.create_task(worker.async_run())
                stack.push_async_callback(_stop_worker, worker, worker_task)
                worker_task.add_done_callback(
                    lambda task: None if task.cancelled() or task.exception() is None else stop.set())
        if smtp_role:
            await _start_smtp(rt, stack)
        if telegram_role:
            await _start_polling(rt, stack)
        if pbx_role:
            await _start_pbx(rt, stack)
        if web_role:
            from switchboard.webapp import create_app

            runner = web.AppRunner(create_app(rt), access_log=None, handle_signals=False)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            site = web.TCPSite(runner, settings.http.host, settings.http.port)
            try:
                await site.start()
            except OSError as exc:
                raise CliError(f"cannot listen on {settings.http.host}:{settings.http.port}: {exc.strerror}") from exc
            print(f"Switchboard is running at http://{settings.http.host}:{settings.http.port}/ "
                  f"(contact form /contact, chat /chat, API /api/v1, health /healthz). Ctrl-C stops it.",
                  file=sys.stderr, flush=True)
        # Everything built so far (modules, the ORM's mappers, compiled statements, templates) lives as long as the
        # process: frozen out of the collector, a full collection no longer walks it — those took 100–140 ms of a
        # web process every ~27 console pages (bench/queue_listing.py, issue 10).
        gc.freeze()
        await stop.wait()
        log.info("shutting down")
    return 0


async def _stop_worker(worker: Any, task: asyncio.Task[None]) -> None:
    try:
        await worker.close()  # re-raises CancelledError when it stops a job mid-way (arq re-queues that job)
    except asyncio.CancelledError:
        log.info("stopped a job mid-way; it runs again on the next start")
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
