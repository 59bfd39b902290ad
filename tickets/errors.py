"""Domain errors: services raise these, and only desk/ and the channels turn them into protocol answers."""

from __future__ import annotations


class DomainError(Exception):
    """Base of everything the ticket services refuse on purpose."""


class NotFound(DomainError):
    pass


class Forbidden(DomainError):
    pass


class Conflict(DomainError):
    pass


class InvalidInput(DomainError):
    """Input that breaks a rule; `fields` maps each offending field to why."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


class NotStored(DomainError):
    """A message deliberately not stored (an auto-reply or bounce about nothing we know); the sender may forget it."""


class StoreUnavailable(DomainError):
    """The database could not be reached; the caller should ask the sender to retry later."""
