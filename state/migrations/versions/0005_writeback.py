"""writeback: issue 13 (write-back): owed and posted comments

Revision ID: 0005
Revises: 0004

Reserved slot in the linear chain; it changes nothing until its issue fills it.
"""

from __future__ import annotations

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
