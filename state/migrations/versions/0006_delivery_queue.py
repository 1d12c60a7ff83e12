"""delivery queue: issue 15 (performance): webhook deliveries durably queued

Revision ID: 0006
Revises: 0005

A reserved slot of the linear chain that landed empty: stores were upgraded past it before
the durable delivery queue was built, so that table comes in 0008.
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
