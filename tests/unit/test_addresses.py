"""Address normalisation decides whether two messages belong to one customer card."""

from __future__ import annotations

import pytest

from channels.webform.form import FormErrors, validate
from tickets.identities import InvalidAddress, email_identity, phone_identity


def test_email_is_lowercased_and_checked() -> None:
    assert email_identity("  Ann.Lee@Example.COM ").address == "ann.lee@example.com"
    with pytest.raises(InvalidAddress):
        email_identity("ann@")


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [("+44 20 7946 0958", None, "+442079460958"), ("020 7946 0958", "GB", "+442079460958"),
     ("8 (495) 123-45-67", "RU", "+74951234567")],
)
def test_phone_numbers_become_e164(raw: str, region: str | None, expected: str) -> None:
    assert phone_identity(raw, region).address == expected


def test_phone_without_country_code_and_region_asks_for_it() -> None:
    with pytest.raises(InvalidAddress, match="country code"):
        phone_identity("020 7946 0958", None)
    with pytest.raises(InvalidAddress):
        phone_identity("12", "GB")


def test_form_needs_a_way_to_answer_and_an_empty_honeypot() -> None:
    with pytest.raises(FormErrors) as no_contact:
        validate({"message": "hi"}, None)
    assert "email address or a phone number" in " ".join(no_contact.value.fields.values())
    with pytest.raises(FormErrors) as bot:
        validate({"message": "hi", "email": "a@example.com", "website": "http://spam"}, None)
    assert bot.value.fields == {"website": "must be left empty"}
    form, identities = validate({"message": " hi ", "email": "A@Example.com", "phone": "+44 20 7946 0958"}, None)
    assert form.message == "hi"
    assert [(i.kind, i.address) for i in identities] == [("email", "a@example.com"), ("phone", "+442079460958")]


def test_form_errors_are_in_plain_words() -> None:
    with pytest.raises(FormErrors) as refused:
        validate({"message": "", "email": "a@example.com", "category": "spam", "subject": "x" * 301}, None)
    assert refused.value.fields == {
        "message": "please write your message",
        "category": "choose one of: question, request, defect, billing, feedback",
        "subject": "at most 300 characters",
    }
