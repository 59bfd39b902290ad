"""free tags on tickets

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 15:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'ticket_tags',
        sa.Column('ticket_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('tag', sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_tags_ticket_id_tickets'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('ticket_id', 'tag', name=op.f('pk_ticket_tags')),
    )
    op.create_index('ix_ticket_tags_tag', 'ticket_tags', ['tag'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_ticket_tags_tag', table_name='ticket_tags')
    op.drop_table('ticket_tags')
