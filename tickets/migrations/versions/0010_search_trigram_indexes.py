"""trigram indexes for ticket search (PostgreSQL only: pg_trgm; SQLite keeps scanning)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 10:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ('ix_tickets_subject_trgm', 'tickets', 'subject'),
    ('ix_messages_body_text_trgm', 'messages', 'body_text'),
    ('ix_customers_name_trgm', 'customers', 'name'),
    ('ix_customer_identities_address_trgm', 'customer_identities', 'address'),
)
"""Search's `lower(column) LIKE '%text%'`, one per place a search looks (tickets.models.SEARCH_INDEXES)."""


def _postgresql() -> bool:
    return op.get_bind().dialect.name == 'postgresql'


def upgrade() -> None:
    if not _postgresql():
        return
    # A trusted extension since PostgreSQL 13: the database's owner may create it.
    op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    for name, table, column in INDEXES:
        op.create_index(name, table, [sa.text(f'lower({column}) gin_trgm_ops')], unique=False,
                        postgresql_using='gin')


def downgrade() -> None:
    # The extension stays: an operator's own indexes or queries may use it too.
    if not _postgresql():
        return
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table, postgresql_using='gin')
