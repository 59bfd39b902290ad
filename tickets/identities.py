"""Normalising addresses so the same client on any channel lands on one customer card."""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from tickets.inbound import Identity


class InvalidAddress(ValueError):
    pass


def email_identity(raw: str) -> Identity:
    """Lower-cased, syntax-checked email address (no DNS lookups: ingest must not wait on the network)."""
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from exc
    return Identity("email", result.normalized.lower())


def phone_identity(raw: str, default_region: str | None = None) -> Identity:
    """E.164 phone number; without a country code the default region must say which country."""
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            raise InvalidAddress("include the country code, e.g. +44 20 7946 0958") from exc
        raise InvalidAddress("not a phone number") from exc
    if not phonenumbers.is_possible_number(number) or not phonenumbers.is_valid_number(number):
        raise InvalidAddress("not a valid phone number")
    return Identity("phone", phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
