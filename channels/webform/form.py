"""The contact form's fields and rules, shared by the HTML form and the JSON endpoint."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tickets.identities import InvalidAddress, email_identity, phone_identity
from tickets.inbound import AttachmentRef, Identity, Inbound
from web.forms import FormErrors

CHANNEL = "webform"
CATEGORIES: dict[str, str] = {
    "question": "Question",
    "request": "Request",
    "defect": "Something is broken",
    "billing": "Billing",
    "feedback": "Feedback",
}
HONEYPOT = "website"


class ContactForm(BaseModel):
    """What a client submits; `website` is a honeypot that people never see and bots fill in."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field("", max_length=200)
    email: str = Field("", max_length=320)
    phone: str = Field("", max_length=40)
    subject: str = Field("", max_length=300)
    message: str = Field(min_length=1, max_length=20_000)
    category: Literal["question", "request", "defect", "billing", "feedback"] = "question"
    website: str = Field("", description="Leave empty.")

    @field_validator("website")
    @classmethod
    def _honeypot_empty(cls, value: str) -> str:
        if value:
            raise ValueError("must be left empty")
        return value

    @model_validator(mode="after")
    def _reachable(self) -> ContactForm:
        if not self.email and not self.phone:
            raise ValueError("give an email address or a phone number so we can answer")
        return self


def _plain_message(name: str, error: Any) -> str:
    """Words a client understands instead of pydantic's ("String should have at least 1 character")."""
    kind = error["type"]
    if kind in ("missing", "string_too_short") and name == "message":
        return "please write your message"
    if kind == "string_too_long":
        return f"at most {error['ctx']['max_length']} characters"
    if kind == "literal_error":
        return f"choose one of: {', '.join(CATEGORIES)}"
    if kind == "extra_forbidden":
        return "not a field of this form"
    if kind == "string_type":
        return "must be text"
    return str(error["msg"]).removeprefix("Value error, ")


def validate(data: dict[str, object], phone_region: str | None) -> tuple[ContactForm, tuple[Identity, ...]]:
    """Check the form and normalise its addresses; FormErrors says what is wrong with each field."""
    fields: dict[str, str] = {}
    form: ContactForm | None = None
    try:
        form = ContactForm.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "email"
            fields.setdefault(name, _plain_message(name, error))
    # The address formats are checked even when other fields failed, so one answer names every bad field.
    email = form.email if form is not None else _text(data.get("email"))
    phone = form.phone if form is not None else _text(data.get("phone"))
    identities: list[Identity] = []
    if email and "email" not in fields:
        try:
            identities.append(email_identity(email))
        except InvalidAddress as exc:
            fields["email"] = str(exc)
    if phone and "phone" not in fields:
        try:
            identities.append(phone_identity(phone, phone_region))
        except InvalidAddress as exc:
            fields["phone"] = str(exc)
    if fields or form is None:
        raise FormErrors(fields)
    return form, tuple(identities)


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def to_inbound(
    form: ContactForm,
    identities: tuple[Identity, ...],
    *,
    idempotency_key: str | None,
    attachments: tuple[AttachmentRef, ...] = (),
    language: str | None = None,
) -> Inbound:
    return Inbound(
        channel=CHANNEL,
        identities=identities,
        body_text=form.message,
        subject=form.subject,
        external_id=idempotency_key,
        customer_name=form.name or None,
        language=language,
        attachments=attachments,
        category=form.category,
    )
