"""the receipt and the dispatch: what a ticket still owes the dispatcher, agents' load counters, outbox rows rendered
at delivery

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dispatch_owed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('dispatch_reason', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('route_owed', sa.Boolean(), server_default='0', nullable=False))
        batch_op.create_index('ix_tickets_dispatch_owed', ['id'], unique=False,
                              postgresql_where=sa.text('dispatch_owed_at IS NOT NULL'),
                              sqlite_where=sa.text('dispatch_owed_at IS NOT NULL'))
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('load_open', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('load_weight', sa.Integer(), server_default='0', nullable=False))
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('template', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('params', sa.JSON(), nullable=True))
    # The counters start true with unit weights; every process recounts them with its configured weights at start.
    op.execute("UPDATE agents SET load_open = (SELECT count(*) FROM tickets WHERE tickets.assignee_id = agents.id "
               "AND tickets.status IN ('open', 'pending'))")
    op.execute("UPDATE agents SET load_weight = 1000 * load_open")


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('params')
        batch_op.drop_column('template')
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_column('load_weight')
        batch_op.drop_column('load_open')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_dispatch_owed')
        batch_op.drop_column('route_owed')
        batch_op.drop_column('dispatch_reason')
        batch_op.drop_column('dispatch_owed_at')
