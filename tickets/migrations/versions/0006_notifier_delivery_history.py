"""notifier: delivery history per outbox row, provider ids looked up by receipts, agents' language and Telegram

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 15:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tickets.models

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
UtcDateTime = tickets.models.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('outbox_attempts',
    sa.Column('id', BigId, nullable=False),
    sa.Column('outbox_id', BigId, nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('started_at', UtcDateTime, nullable=True),
    sa.Column('at', UtcDateTime, nullable=False),
    sa.Column('error', sa.String(length=1000), nullable=True),
    sa.Column('provider_id', sa.String(length=255), nullable=True),
    sa.ForeignKeyConstraint(['outbox_id'], ['outbox.id'],
                            name=op.f('fk_outbox_attempts_outbox_id_outbox'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_attempts'))
    )
    with op.batch_alter_table('outbox_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_attempts_outbox_id', ['outbox_id', 'id'], unique=False)
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_provider_id'), ['provider_id'], unique=False)
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('telegram_chat_id', sa.String(length=32), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_agents_telegram_chat_id'), ['telegram_chat_id'])


def downgrade() -> None:
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_agents_telegram_chat_id'), type_='unique')
        batch_op.drop_column('telegram_chat_id')
        batch_op.drop_column('language')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_provider_id'))
    with op.batch_alter_table('outbox_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_attempts_outbox_id')
    op.drop_table('outbox_attempts')
