"""cleanup: issue 8 (layout): dead columns removed (sync_state.last_poll_at)

Revision ID: 0003
Revises: 0002

``sync_state.last_poll_at`` was never written: the idle poll's check time lives in memory
(`Mirror.last_checked`), and readiness reads ``last_success_at``.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sync_state", schema=None) as batch_op:
        batch_op.drop_column("last_poll_at")


def downgrade() -> None:
    with op.batch_alter_table("sync_state", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_poll_at", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
