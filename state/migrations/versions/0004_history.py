"""history: issue 12 (history): what the report needs at any past date, back-filled

Revision ID: 0004
Revises: 0003

Reserved slot in the linear chain; it changes nothing until its issue fills it.
"""

from __future__ import annotations

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
