"""phone calls and deadlines

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 15:16:42.461133
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tickets.models

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('deadlines',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('ticket_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('regulation', sa.String(length=32), nullable=False),
    sa.Column('step', sa.String(length=32), nullable=False),
    sa.Column('met_by', sa.String(length=32), nullable=False),
    sa.Column('due_at', tickets.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.Enum('pending', 'met', 'cancelled', name='deadline_status',
                                native_enum=False, length=16), nullable=False),
    sa.Column('met_at', tickets.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('created_at', tickets.models.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'],
                            name=op.f('fk_deadlines_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deadlines')),
    sa.UniqueConstraint('ticket_id', 'regulation', 'step', name=op.f('uq_deadlines_ticket_id_regulation_step'))
    )
    with op.batch_alter_table('deadlines', schema=None) as batch_op:
        batch_op.create_index('ix_deadlines_status_due_at', ['status', 'due_at'], unique=False)

    op.create_table('calls',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('call_id', sa.String(length=255), nullable=False),
    sa.Column('direction', sa.Enum('in', 'out', 'internal', name='call_direction',
                                   native_enum=False, length=16), nullable=False),
    sa.Column('disposition', sa.Enum('answered', 'missed', 'busy', 'failed', 'voicemail', name='call_disposition',
                                     native_enum=False, length=16), nullable=False),
    sa.Column('caller', sa.String(length=64), nullable=True),
    sa.Column('called', sa.String(length=64), nullable=True),
    sa.Column('caller_name', sa.String(length=200), nullable=True),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('ticket_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('agent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('extension', sa.String(length=16), nullable=True),
    sa.Column('started_at', tickets.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('answered_at', tickets.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('ended_at', tickets.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('duration', sa.Integer(), nullable=False),
    sa.Column('talk_time', sa.Integer(), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('recording_url', sa.String(length=1000), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('created_at', tickets.models.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_calls_agent_id_agents')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_calls_customer_id_customers')),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'],
                            name=op.f('fk_calls_message_id_messages'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'],
                            name=op.f('fk_calls_ticket_id_tickets'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calls')),
    sa.UniqueConstraint('call_id', name=op.f('uq_calls_call_id'))
    )
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.create_index('ix_calls_customer_id', ['customer_id', 'started_at'], unique=False)
        batch_op.create_index('ix_calls_ticket_id', ['ticket_id'], unique=False)

    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('extension', sa.String(length=16), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_agents_extension'), ['extension'])



def downgrade() -> None:
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_agents_extension'), type_='unique')
        batch_op.drop_column('extension')

    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_index('ix_calls_ticket_id')
        batch_op.drop_index('ix_calls_customer_id')

    op.drop_table('calls')
    with op.batch_alter_table('deadlines', schema=None) as batch_op:
        batch_op.drop_index('ix_deadlines_status_due_at')

    op.drop_table('deadlines')
