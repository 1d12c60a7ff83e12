"""card fillfactor: issue 15 (performance): room on each page for a card's next version

Revision ID: 0009
Revises: 0008

Every full snapshot of a board moves ``updated_at`` of each of its cards, changed or not
(`Store.write_board`). On PostgreSQL an update writes a new version of the row; with the pages
packed full (the default fillfactor, 100) it lands on another page, with a new entry in every
index of ``card``, and the table grows until a vacuum. With 30 % of each page kept free
(fillfactor 70) the new version stays on its page and no index changes (a HOT update: no
indexed column moves), and the page's dead versions are pruned as it fills again. Measured on a
10,000-card board (`bench/bench_writer.py`, `bench/README.md` Writer): snapshots that change
nothing, one after the other, 16,200–19,100 → 22,900–28,000 cards/s, and the table after seven
snapshots 30.2 → 13.6 MB.

PostgreSQL only (SQLite has no such setting). A new store gets it before its first row; an
existing store's pages take it as they are rewritten (``VACUUM FULL card`` rewrites them at
once, under an exclusive lock).
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

FILLFACTOR = 70


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE card SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE card RESET (fillfactor)")
