"""The one place a refusal becomes an HTTP answer: domain errors to JSON with their status, a database outage to
503 with Retry-After (never a 500), and the error body's schema for the OpenAPI document."""

from __future__ import annotations

import logging

from aiohttp import web
from pydantic import BaseModel

from tickets.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound, StoreUnavailable
from web.http import Handler, error_response

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5


class ErrorBody(BaseModel):
    code: str
    message: str
    fields: dict[str, str] | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


def is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/") or request.path in ("/healthz",)


@web.middleware
async def domain_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn domain errors into HTTP answers; a database outage becomes 503 with Retry-After, never a 500."""
    try:
        return await handler(request)
    except StoreUnavailable as exc:
        log.warning("database unavailable while serving %s %s: %s", request.method, request.path, exc)
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        return error_response(503, "unavailable", "the ticket store is unavailable; retry shortly", headers=headers)
    except InvalidInput as exc:
        return error_response(422, "invalid", "the request has invalid fields", exc.fields)
    except NotFound as exc:
        return error_response(404, "not_found", str(exc))
    except Forbidden as exc:
        return error_response(403, "forbidden", str(exc))
    except Conflict as exc:
        return error_response(409, "conflict", str(exc))
    except DomainError as exc:  # pragma: no cover - every subclass is mapped above
        return error_response(400, "rejected", str(exc))
    except web.HTTPException as exc:
        if not is_api(request) or exc.content_type == "application/json" or exc.status < 400:
            raise
        # Keep headers such as Allow, but not the plain-text Content-Type/Length the JSON body replaces.
        headers = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
        return error_response(exc.status, exc.reason.lower().replace(" ", "_"), exc.text or exc.reason, headers=headers)


