"""delivery queue: issue 15 (performance): webhook deliveries durably queued

Revision ID: 0006
Revises: 0005

Reserved slot in the linear chain; it changes nothing until its issue fills it.
"""

from __future__ import annotations

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
