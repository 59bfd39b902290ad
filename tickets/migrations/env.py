"""Alembic environment: runs on the connection `switchboard migrate` hands in (SQLite or PostgreSQL)."""

from __future__ import annotations

from alembic import context

from tickets.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `switchboard migrate`, which supplies the connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
