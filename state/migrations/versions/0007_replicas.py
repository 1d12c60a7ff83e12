"""replicas: issue 14 (replicas): duties and leases on PostgreSQL

Revision ID: 0007
Revises: 0006

Reserved slot in the linear chain; it changes nothing until its issue fills it.
"""

from __future__ import annotations

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
