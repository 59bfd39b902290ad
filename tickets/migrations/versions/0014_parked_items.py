"""the dead-letter table: inbound items a channel could not store after its retries, kept for an admin

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 12:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tickets.models

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UtcDateTime = tickets.models.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'parked_items',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('channel', sa.String(length=32), nullable=False),
        sa.Column('reference', sa.String(length=255), nullable=True),
        sa.Column('payload', sa.Text(), nullable=True),
        sa.Column('raw', sa.JSON(), nullable=True),
        sa.Column('error', sa.Text(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('created_at', UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_parked_items')),
    )
    op.create_index(op.f('ix_parked_items_created_at'), 'parked_items', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_parked_items_created_at'), table_name='parked_items')
    op.drop_table('parked_items')
