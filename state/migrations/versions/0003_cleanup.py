"""cleanup: issue 8 (layout) and issue 10 (report accuracy)

Revision ID: 0003
Revises: 0002

Issue 8: ``sync_state.last_poll_at`` was never written: the idle poll's check time lives in
memory (`Mirror.last_checked`), and readiness reads ``last_success_at``.

Issue 10: ``figma_file.tree_read_at`` (the last Tier-1 read of a file, for the minimum interval
between tree reads) and ``figma_node_check`` (Figma's answer about each node a card links to,
nested layers included).
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
    # -- issue 8: a column never written -------------------------------------------------------
    with op.batch_alter_table("sync_state", schema=None) as batch_op:
        batch_op.drop_column("last_poll_at")
    # -- issue 10: Figma nodes checked one by one, the interval between tree reads ---------
    with op.batch_alter_table("figma_file", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("tree_read_at", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
    op.create_table(
        "figma_node_check",
        sa.Column("file_key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("node_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("found", sa.Boolean(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("version", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("checked_at", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("seen_at", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.ForeignKeyConstraint(["file_key"], ["figma_file.key"]),
        sa.PrimaryKeyConstraint("file_key", "node_id"),
    )


def downgrade() -> None:
    # -- issue 10 ----------------------------------------------------------------------------
    op.drop_table("figma_node_check")
    with op.batch_alter_table("figma_file", schema=None) as batch_op:
        batch_op.drop_column("tree_read_at")
    # -- issue 8 -----------------------------------------------------------------------------
    with op.batch_alter_table("sync_state", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_poll_at", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
