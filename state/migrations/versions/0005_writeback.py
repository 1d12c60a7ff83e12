"""writeback: issue 13 (write-back): owed and posted comments

Revision ID: 0005
Revises: 0004

``writeback_comment``: one row per flag event write-back comments on (owed, in flight, posted);
``writeback_state``: since when write-back is enabled.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _text() -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString()


def upgrade() -> None:
    op.create_table(
        "writeback_comment",
        sa.Column("id", _text(), nullable=False),
        sa.Column("flag_id", sa.Integer(), nullable=False),
        sa.Column("event", _text(), nullable=False),
        sa.Column("event_at", _text(), nullable=False),
        sa.Column("department", _text(), nullable=False),
        sa.Column("code", _text(), nullable=False),
        sa.Column("card_id", _text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", _text(), nullable=False),
        sa.Column("attempt", _text(), nullable=True),
        sa.Column("attempted_at", _text(), nullable=True),
        sa.Column("activity_before", _text(), nullable=True),
        sa.Column("comment_id", _text(), nullable=True),
        sa.Column("author_id", _text(), nullable=True),
        sa.Column("posted_at", _text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("flag_id", "event", name="uq_writeback_comment_event"),
    )
    op.create_index(
        op.f("ix_writeback_comment_card_id"), "writeback_comment", ["card_id"], unique=False
    )
    op.create_index(
        op.f("ix_writeback_comment_comment_id"), "writeback_comment", ["comment_id"], unique=False
    )
    op.create_index(
        op.f("ix_writeback_comment_flag_id"), "writeback_comment", ["flag_id"], unique=False
    )
    op.create_table(
        "writeback_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enabled_since", _text(), nullable=True),
        sa.Column("member_id", _text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("writeback_state")
    op.drop_index(op.f("ix_writeback_comment_flag_id"), table_name="writeback_comment")
    op.drop_index(op.f("ix_writeback_comment_comment_id"), table_name="writeback_comment")
    op.drop_index(op.f("ix_writeback_comment_card_id"), table_name="writeback_comment")
    op.drop_table("writeback_comment")
