"""The OpenAPI 3.1 document, generated from the route table and the pydantic schemas the handlers use."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from web.endpoints import Endpoint
from web.errors import ErrorOut
from web.params import openapi_parameters

_ERROR_TEXT = {
    400: "Bad request", 401: "Missing or invalid token", 403: "Not allowed for your role", 404: "Not found",
    409: "Conflicts with what exists (a duplicate, a ticket's state, an agent's capacity)", 413: "Too large",
    422: "Invalid fields (see error.fields)",
    429: "Too many requests (see Retry-After)", 503: "Ticket store unavailable (see Retry-After)",
}


def build_openapi(endpoints: list[Endpoint], version: str) -> dict[str, Any]:
    models: set[type[BaseModel]] = {ErrorOut}
    for endpoint in endpoints:
        models.update(m for m in (endpoint.body, endpoint.response, endpoint.query) if m is not None)
    queries = {endpoint.query for endpoint in endpoints if endpoint.query is not None}
    query_models = {model.__name__ for model in queries}  # listed as parameters, not as schemas
    ordered = sorted(models, key=lambda m: m.__name__)
    _, definitions = models_json_schema(
        [(m, "validation" if m in queries else "serialization") for m in ordered],
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    schemas = definitions.get("$defs", {})
    for endpoint in endpoints:
        if endpoint.in_openapi:
            paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Switchboard API",
            "version": version,
            "description": "Agent REST API and public intake endpoints of the Switchboard helpdesk.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": {name: schema for name, schema in schemas.items() if name not in query_models},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation(endpoint: Endpoint, schemas: dict[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": endpoint.summary,
        "operationId": endpoint.handler.__name__,
        "tags": [endpoint.tag],
    }
    if endpoint.auth:
        operation["security"] = [{"bearer": []}]
    parameters = [
        {"name": p.name, "in": p.where, "description": p.description, "required": p.required, "schema": p.schema}
        for p in endpoint.params
    ]
    if endpoint.query is not None:
        parameters += openapi_parameters(endpoint.query, schemas)
    if parameters:
        operation["parameters"] = parameters
    if endpoint.body is not None:
        operation["requestBody"] = {"required": True, "content": {endpoint.body_media: {"schema": _ref(endpoint.body)}}}
    success: dict[str, Any] = {"description": "Success"}
    if endpoint.response is not None:
        success["content"] = {endpoint.response_media: {"schema": _ref(endpoint.response)}}
    responses: dict[str, Any] = {str(endpoint.status): success}
    for status in endpoint.errors:
        responses[str(status)] = {
            "description": _ERROR_TEXT.get(status, "Error"),
            "content": {"application/json": {"schema": _ref(ErrorOut)}},
        }
    operation["responses"] = responses
    return operation


def openapi_handler(document: dict[str, Any]) -> Any:
    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(document)

    return openapi
