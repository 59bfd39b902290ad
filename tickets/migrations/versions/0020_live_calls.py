"""calls as they happen (CTI events) and the installation's CTI token

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 17:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tickets.models

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'live_calls',
        sa.Column('id', BigId, nullable=False),
        sa.Column('call_id', sa.String(length=255), nullable=False),
        sa.Column('direction', sa.Enum('in', 'out', 'internal', name='live_call_direction', native_enum=False,
                                       length=16), nullable=False),
        sa.Column('state', sa.Enum('ringing', 'answered', 'ended', name='live_call_state', native_enum=False,
                                   length=16), nullable=False),
        sa.Column('caller', sa.String(length=64), nullable=True),
        sa.Column('called', sa.String(length=64), nullable=True),
        sa.Column('client_number', sa.String(length=64), nullable=True),
        sa.Column('queue', sa.String(length=100), nullable=True),
        sa.Column('ringing', sa.JSON(), nullable=False),
        sa.Column('agent_id', BigId, nullable=True),
        sa.Column('customer_id', BigId, nullable=True),
        sa.Column('ticket_id', BigId, nullable=True),
        sa.Column('cause', sa.String(length=32), nullable=True),
        sa.Column('logged_call_id', BigId, nullable=True),
        sa.Column('started_at', tickets.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column('answered_at', tickets.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column('ended_at', tickets.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column('updated_at', tickets.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_live_calls_agent_id_agents'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_live_calls_customer_id_customers'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_live_calls_ticket_id_tickets'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['logged_call_id'], ['calls.id'], name=op.f('fk_live_calls_logged_call_id_calls'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_live_calls')),
        sa.UniqueConstraint('call_id', name=op.f('uq_live_calls_call_id')),
    )
    op.create_index('ix_live_calls_state', 'live_calls', ['state', 'started_at'], unique=False)
    op.create_table(
        'install_secrets',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', tickets.models.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_install_secrets')),
    )


def downgrade() -> None:
    op.drop_table('install_secrets')
    op.drop_index('ix_live_calls_state', table_name='live_calls')
    op.drop_table('live_calls')
