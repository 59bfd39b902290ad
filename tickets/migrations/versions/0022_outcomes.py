"""how requests end: outcomes and refusal reasons the admin keeps, and the ticket's outcome

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 18:10:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import tickets.models

revision: str = '0022'
down_revision: str | None = '0021'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
OUTCOMES = (("solved", False), ("refused", True), ("duplicate", False), ("no-answer", False))
REASONS = ("price", "benefits-unclear", "competitor", "timing", "other")


def upgrade() -> None:
    outcomes = op.create_table(
        'outcomes',
        sa.Column('id', BigId, nullable=False),
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('needs_reason', sa.Boolean(), nullable=False),
        sa.Column('created_at', tickets.models.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_outcomes')),
        sa.UniqueConstraint('name', name=op.f('uq_outcomes_name')),
    )
    reasons = op.create_table(
        'outcome_reasons',
        sa.Column('id', BigId, nullable=False),
        sa.Column('name', sa.String(length=60), nullable=False),
        sa.Column('created_at', tickets.models.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_outcome_reasons')),
        sa.UniqueConstraint('name', name=op.f('uq_outcome_reasons_name')),
    )
    now = datetime.now(UTC)
    op.bulk_insert(outcomes, [{"name": name, "needs_reason": needs, "created_at": now} for name, needs in OUTCOMES])
    op.bulk_insert(reasons, [{"name": name, "created_at": now} for name in REASONS])
    with op.batch_alter_table('tickets') as batch:
        batch.add_column(sa.Column('outcome', sa.String(length=40), nullable=True))
        batch.add_column(sa.Column('outcome_reason', sa.String(length=60), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tickets') as batch:
        batch.drop_column('outcome_reason')
        batch.drop_column('outcome')
    op.drop_table('outcome_reasons')
    op.drop_table('outcomes')
