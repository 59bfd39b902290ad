"""an agent's own named queue views

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 15:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tickets.models

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'saved_views',
        sa.Column('id', BigId, nullable=False),
        sa.Column('agent_id', BigId, nullable=False),
        sa.Column('name', sa.String(length=60), nullable=False),
        sa.Column('query', sa.String(length=1000), nullable=False),
        sa.Column('created_at', tickets.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_saved_views_agent_id_agents'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_saved_views')),
        sa.UniqueConstraint('agent_id', 'name', name=op.f('uq_saved_views_agent_id_name')),
    )


def downgrade() -> None:
    op.drop_table('saved_views')
