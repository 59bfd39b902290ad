"""regulations engine: deadline ladders, clock timeline, processed tickets, customer tiers

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 12:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tickets.models

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
UtcDateTime = tickets.models.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('sla_clock_events',
    sa.Column('id', BigId, nullable=False),
    sa.Column('ticket_id', BigId, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('regulation', sa.String(length=32), nullable=True),
    sa.Column('version', sa.String(length=12), nullable=True),
    sa.Column('calendar', sa.String(length=64), nullable=True),
    sa.Column('created_at', UtcDateTime, nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'],
                            name=op.f('fk_sla_clock_events_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_clock_events'))
    )
    with op.batch_alter_table('sla_clock_events', schema=None) as batch_op:
        batch_op.create_index('ix_sla_clock_events_ticket_id', ['ticket_id', 'id'], unique=False)

    with op.batch_alter_table('deadlines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('position', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('kind', sa.String(length=8), server_default='step', nullable=False))
        batch_op.add_column(sa.Column('plan', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('reference_at', UtcDateTime, nullable=True))
        batch_op.add_column(sa.Column('fired_at', UtcDateTime, nullable=True))
        batch_op.add_column(sa.Column('breach', sa.Boolean(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('version', sa.String(length=12), nullable=True))

    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('processed_at', UtcDateTime, nullable=True))
        batch_op.add_column(sa.Column('regulation', sa.String(length=32), nullable=True))

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tier', sa.String(length=32), nullable=True))

    # Tickets answered before this version were processed when first answered; finished ones need no plan.
    op.execute("UPDATE tickets SET processed_at = first_response_at WHERE first_response_at IS NOT NULL")
    op.execute("UPDATE tickets SET regulation = '' WHERE status IN ('resolved', 'closed')")
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index('ix_tickets_unplanned', ['id'], unique=False,
                              postgresql_where=sa.text('regulation IS NULL'),
                              sqlite_where=sa.text('regulation IS NULL'))


def downgrade() -> None:
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('tier')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_unplanned')
        batch_op.drop_column('regulation')
        batch_op.drop_column('processed_at')
    with op.batch_alter_table('deadlines', schema=None) as batch_op:
        for column in ('version', 'breach', 'fired_at', 'reference_at', 'plan', 'kind', 'position'):
            batch_op.drop_column(column)
    with op.batch_alter_table('sla_clock_events', schema=None) as batch_op:
        batch_op.drop_index('ix_sla_clock_events_ticket_id')
    op.drop_table('sla_clock_events')
