"""What an HTTP handler reaches through its request: the process's runtime, as the handlers see it.

`switchboard.bootstrap.Runtime` assembles it above every package; this protocol names what the handlers use, so
neither the channels nor the desk import the assembly to type their app key."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncEngine

    from sla.firing import Escalations
    from tickets.attachments import AttachmentStore
    from tickets.clock import Clock
    from tickets.service import TicketService
    from tickets.uow import Store


class Runtime(Protocol):
    @property
    def settings(self) -> Any:
        """`switchboard.settings.Settings`: it is built from every package's configuration, so it sits above
        them all and is typed here by use."""

    @property
    def service(self) -> TicketService: ...

    @property
    def attachments(self) -> AttachmentStore: ...

    @property
    def redis(self) -> Redis: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def store(self) -> Store: ...

    @property
    def engine(self) -> AsyncEngine: ...

    @property
    def escalations(self) -> Escalations | None: ...


RUNTIME: web.AppKey[Runtime] = web.AppKey("runtime")


def runtime(request: web.Request) -> Runtime:
    return request.app[RUNTIME]
