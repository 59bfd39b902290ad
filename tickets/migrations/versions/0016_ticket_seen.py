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
        sa.Column('agent_id', BigId, nullable=False),
        sa.Column('ticket_id', BigId, nullable=False),
        sa.Column('seen_at', tickets.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_ticket_seen_agent_id_agents'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_seen_ticket_id_tickets'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('agent_id', 'ticket_id', name=op.f('pk_ticket_seen')),
    )


def downgrade() -> None:
    op.drop_table('ticket_seen')
