"""when each agent last opened a ticket: the queue marks a client's message after it as unread

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tickets.models

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'ticket_seen',
        sa.Column('agent_id', BigId, sa.ForeignKey('agents.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('ticket_id', BigId, sa.ForeignKey('tickets.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('seen_at', tickets.models.UtcDateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('ticket_seen')
