"""The schema revision the code expects, and the one a store holds, read without Alembic.

`HEAD_REVISION` is the newest migration in ``state/migrations/versions/`` (a linear chain);
`tests/state/test_schema_version.py` checks it against Alembic's own head, so a new migration
fails the tests until this constant names it. `stored_revisions` reads ``alembic_version`` with
plain SQL: a store already at head is opened without importing Alembic (the Store imports it
only to upgrade), which keeps it out of every short command's start-up.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

HEAD_REVISION = "0009"


def stored_revisions(connection: Connection) -> tuple[str, ...]:
    """The revisions recorded in the store's ``alembic_version`` table (sorted).

    Raises the driver's error when the table is missing (a new store): the caller decides.
    """
    rows = connection.execute(text("SELECT version_num FROM alembic_version"))
    return tuple(sorted(str(row[0]) for row in rows))


def at_head(revisions: tuple[str, ...]) -> bool:
    """Whether these stored revisions are exactly the head this code expects."""
    return revisions == (HEAD_REVISION,)
