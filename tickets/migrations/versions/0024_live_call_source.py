"""which live-call source reported a call (the CTI endpoint or the Asterisk AMI session), for its log entry

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 21:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0024'
down_revision: str | None = '0023'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('live_calls') as batch:
        batch.add_column(sa.Column('source', sa.String(length=8), nullable=False, server_default='cti'))


def downgrade() -> None:
    with op.batch_alter_table('live_calls') as batch:
        batch.drop_column('source')
