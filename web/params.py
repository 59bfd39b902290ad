"""Query parameters declared once, as a pydantic model: the handler validates `request.query` with it and the
OpenAPI document lists its fields (`Endpoint(query=…)`), so the two cannot drift apart."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tickets.errors import InvalidInput
from tickets.numbers import MAX_ID
from tickets.text import clean_text

Q = TypeVar("Q", bound="QueryParams")


def split_commas(value: Any) -> Any:
    """`open,pending` (and `open, pending`) as a list, for a field typed
    `Annotated[list[X], BeforeValidator(split_commas)]`; an empty value is no filter."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


Id = Annotated[int, Field(ge=1, le=MAX_ID)]
"""A number a client may send for one of our ids: what the store's 64-bit keys can hold."""


class QueryParams(BaseModel):
    """A handler's query string. Unknown parameters are ignored, as browsers and proxies add their own; an empty
    value is the parameter left out."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def query(request: web.Request, model: type[Q]) -> Q:
    """The request's query string as `model`; each field's problem is answered 422 under the parameter's name."""
    given = {name: clean_text(value)[0] for name, value in request.query.items() if value.strip()}
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        fields: dict[str, str] = {}
        for error in exc.errors():
            fields.setdefault(str(error["loc"][0]) if error["loc"] else "query", error["msg"])
        raise InvalidInput(fields) from None


def openapi_parameters(model: type[QueryParams], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    """The model's fields as OpenAPI query parameters; `schemas` is the document's components (the model's own
    schema among them, its enums referenced from there)."""
    properties = schemas[model.__name__].get("properties", {})
    parameters = []
    for name, info in model.model_fields.items():
        schema = _not_null({k: v for k, v in properties[name].items() if k not in ("title", "description")})
        parameter: dict[str, Any] = {"name": name, "in": "query", "description": info.description or "",
                                     "required": info.is_required(), "schema": schema}
        if schema.get("type") == "array":
            parameter.update(style="form", explode=False)  # comma-separated, as `split_commas` reads it
        parameters.append(parameter)
    return parameters


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional parameter is left out, never sent as null: drop `null` from its choices."""
    choices = [c for c in schema.get("anyOf", []) if c != {"type": "null"}]
    if "anyOf" not in schema or len(choices) == len(schema["anyOf"]):
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf" and not (k == "default" and v is None)}
    return {**choices[0], **rest} if len(choices) == 1 else {"anyOf": choices, **rest}
