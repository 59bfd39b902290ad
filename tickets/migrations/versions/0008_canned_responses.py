"""canned responses agents insert into replies

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 16:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tickets.models

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
UtcDateTime = tickets.models.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('canned_responses',
    sa.Column('id', BigId, nullable=False),
    sa.Column('title', sa.String(length=100), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', UtcDateTime, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_canned_responses')),
    sa.UniqueConstraint('title', name=op.f('uq_canned_responses_title'))
    )


def downgrade() -> None:
    op.drop_table('canned_responses')
