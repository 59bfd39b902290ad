"""Outbound notifications: outbox rows composed in the ticket transaction, delivered by the worker with retries."""
