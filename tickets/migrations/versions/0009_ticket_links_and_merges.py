"""links between tickets of one client, and a merged ticket's pointer to the one it joined

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 18:21:06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tickets.models

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
UtcDateTime = tickets.models.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('ticket_links',
    sa.Column('ticket_id', BigId, nullable=False),
    sa.Column('linked_id', BigId, nullable=False),
    sa.Column('actor_id', BigId, nullable=True),
    sa.Column('created_at', UtcDateTime, nullable=False),
    sa.CheckConstraint('ticket_id < linked_id', name=op.f('ck_ticket_links_ordered')),
    sa.ForeignKeyConstraint(['actor_id'], ['agents.id'], name=op.f('fk_ticket_links_actor_id_agents')),
    sa.ForeignKeyConstraint(['linked_id'], ['tickets.id'],
                            name=op.f('fk_ticket_links_linked_id_tickets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'],
                            name=op.f('fk_ticket_links_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('ticket_id', 'linked_id', name=op.f('pk_ticket_links'))
    )
    with op.batch_alter_table('ticket_links', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_links_linked_id', ['linked_id'], unique=False)
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merged_into_id', BigId, nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_tickets_merged_into_id_tickets'), 'tickets',
                                    ['merged_into_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_tickets_merged_into_id_tickets'), type_='foreignkey')
        batch_op.drop_column('merged_into_id')
    with op.batch_alter_table('ticket_links', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_links_linked_id')
    op.drop_table('ticket_links')
