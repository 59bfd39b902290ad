"""typed contacts with clients (activities), their types, and the next contacts agents plan

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import tickets.models

revision: str = '0021'
down_revision: str | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
DEFAULT_TYPES = ("call", "meeting", "demonstration", "email", "visit")


def upgrade() -> None:
    types = op.create_table(
        'activity_types',
        sa.Column('id', BigId, nullable=False),
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('created_at', tickets.models.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_activity_types')),
        sa.UniqueConstraint('name', name=op.f('uq_activity_types_name')),
    )
    now = datetime.now(UTC)
    op.bulk_insert(types, [{"name": name, "created_at": now} for name in DEFAULT_TYPES])
    op.create_table(
        'activities',
        sa.Column('id', BigId, nullable=False),
        sa.Column('customer_id', BigId, nullable=False),
        sa.Column('ticket_id', BigId, nullable=True),
        sa.Column('agent_id', BigId, nullable=True),
        sa.Column('type_id', BigId, nullable=False),
        sa.Column('outcome', sa.String(length=200), nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('call_id', sa.String(length=255), nullable=True),
        sa.Column('created_at', tickets.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_activities_customer_id_customers'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_activities_ticket_id_tickets'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_activities_agent_id_agents'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['type_id'], ['activity_types.id'], name=op.f('fk_activities_type_id_activity_types')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_activities')),
    )
    op.create_index('ix_activities_customer_id', 'activities', ['customer_id', 'created_at'], unique=False)
    op.create_table(
        'planned_contacts',
        sa.Column('id', BigId, nullable=False),
        sa.Column('customer_id', BigId, nullable=False),
        sa.Column('agent_id', BigId, nullable=False),
        sa.Column('ticket_id', BigId, nullable=True),
        sa.Column('activity_id', BigId, nullable=True),
        sa.Column('due_at', tickets.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column('what', sa.String(length=300), nullable=False),
        sa.Column('status', sa.Enum('pending', 'done', name='plan_status', native_enum=False, length=16),
                  nullable=False),
        sa.Column('reminded_at', tickets.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column('done_at', tickets.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column('created_at', tickets.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                                name=op.f('fk_planned_contacts_customer_id_customers'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_planned_contacts_agent_id_agents'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_planned_contacts_ticket_id_tickets'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['activity_id'], ['activities.id'],
                                name=op.f('fk_planned_contacts_activity_id_activities'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_planned_contacts')),
    )
    op.create_index('ix_planned_contacts_status_due_at', 'planned_contacts', ['status', 'due_at'], unique=False)
    op.create_index('ix_planned_contacts_agent_id', 'planned_contacts', ['agent_id', 'status', 'due_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_planned_contacts_agent_id', table_name='planned_contacts')
    op.drop_index('ix_planned_contacts_status_due_at', table_name='planned_contacts')
    op.drop_table('planned_contacts')
    op.drop_index('ix_activities_customer_id', table_name='activities')
    op.drop_table('activities')
    op.drop_table('activity_types')
