"""cleanup: issue 8 (layout): dead columns removed (sync_state.last_poll_at)

Revision ID: 0003
Revises: 0002

Reserved slot in the linear chain; it changes nothing until its issue fills it.
"""

from __future__ import annotations

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
