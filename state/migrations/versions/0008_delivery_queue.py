"""delivery queue: issue 15 (performance): webhook deliveries durably queued

Its reserved slot (0006) landed empty and stores were upgraded past it, so the table comes
after 0007: a store at 0007 gets it from this revision.

Revision ID: 0008
Revises: 0007

``webhook_queue``: a verified Trello delivery is answered 200 once its row is committed (the
daemon's intake commits concurrent deliveries together); the row is deleted in the transaction
that applies the delivery. Rows left by a crash are applied at start-up.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _text() -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString()


def upgrade() -> None:
    op.create_table(
        "webhook_queue",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("action_id", _text(), nullable=False),
        sa.Column("board_ref", _text(), nullable=False),
        sa.Column("board_id", _text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("queued_at", _text(), nullable=False),
        sa.Column("queued_by", _text(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index(op.f("ix_webhook_queue_action_id"), "webhook_queue", ["action_id"], unique=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_webhook_queue_action_id"), table_name="webhook_queue")
    op.drop_table("webhook_queue")
