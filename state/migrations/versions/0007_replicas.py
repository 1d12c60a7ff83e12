"""replicas: issue 14 (replicas): duties and leases on PostgreSQL

Revision ID: 0007
Revises: 0006

``replica`` (who is alive, by heartbeat) and ``duty_lease`` (who holds which duty, until when,
by the database clock) coordinate several `syncd run` on one PostgreSQL store; they stay empty
on SQLite. ``uq_flag_open``: at most one open flag per (département, code); duplicates left by
an older version are resolved first (the oldest stays open).
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replica",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("host", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "duty_lease",
        sa.Column("duty", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("holder", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("duty"),
    )
    flag = sa.table(
        "flag",
        sa.column("id", sa.Integer()),
        sa.column("department", sa.String()),
        sa.column("code", sa.String()),
        sa.column("resolved_at", sa.String()),
        sa.column("last_seen_at", sa.String()),
    )
    keep = (
        sa.select(sa.func.min(flag.c.id))
        .where(flag.c.resolved_at.is_(None))
        .group_by(flag.c.department, flag.c.code)
    )
    op.execute(
        flag.update()
        .where(flag.c.resolved_at.is_(None), flag.c.id.not_in(keep))
        .values(resolved_at=flag.c.last_seen_at)
    )
    with op.batch_alter_table("flag", schema=None) as batch_op:
        batch_op.create_index(
            "uq_flag_open",
            ["department", "code"],
            unique=True,
            postgresql_where=sa.text("resolved_at IS NULL"),
            sqlite_where=sa.text("resolved_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("flag", schema=None) as batch_op:
        batch_op.drop_index("uq_flag_open")
    op.drop_table("duty_lease")
    op.drop_table("replica")
