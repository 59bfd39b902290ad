"""a ticket escalated to the head of its department shows as such: when, and to which agent

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 12:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tickets.models

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UtcDateTime = tickets.models.UtcDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('escalated_at', UtcDateTime, nullable=True))
        batch_op.add_column(sa.Column('escalated_to_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                                      nullable=True))
        batch_op.create_foreign_key('fk_tickets_escalated_to_id_agents', 'agents', ['escalated_to_id'], ['id'],
                                    ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_constraint('fk_tickets_escalated_to_id_agents', type_='foreignkey')
        batch_op.drop_column('escalated_to_id')
        batch_op.drop_column('escalated_at')
