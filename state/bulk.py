"""Bulk INSERT / UPDATE / DELETE of many rows, and plain reads of many, on the DBAPI connection
of an open transaction.

The writer path (`state.store`, `state.history`) diffs in memory and hands here only the rows
that change, as tuples in a given column order. Each call runs inside the caller's SQLAlchemy
transaction (the same DBAPI connection), so a write stays one transaction, whatever the size.

- **SQLite**: ``executemany`` of one prepared statement (in process: no round trip to save).
- **PostgreSQL**: up to `_SMALL` rows, ``executemany`` (psycopg 3 pipelines it); beyond,
  ``COPY`` — straight into the table for an insert, into a temporary table (no constraints,
  dropped at commit) joined by the update or delete. One round trip per statement instead of
  one per row: on the 10,000-card board, the difference between seconds and tenths.

`fetch` reads rows as the driver gives them (plain tuples; SQLite: booleans as 0/1), without
SQLAlchemy's result rows, which cost more than the query itself for the writer's reads of a
10,000-card board.

The caller promises what the SQL cannot check in bulk: inserted keys are new (the board's
advisory lock, `state.coordination.xact_lock`, keeps another writer out meanwhile).

`conflict_insert` is the dialect's ``INSERT … ON CONFLICT`` construct, for the upserts written
through SQLAlchemy (`state.store`, `state.queue`): SQLAlchemy's PostgreSQL dialect is imported
only for a PostgreSQL store (~30 ms of a cold `syncd sync` on SQLite otherwise).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.dialects.sqlite import Insert

_SMALL = 64
_temp_names = itertools.count()


def conflict_insert(dialect: str) -> Callable[[Table], Insert]:
    """``insert(table)`` of this dialect (``sqlite`` or ``postgresql``): ``on_conflict_do_*``."""
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert
    return insert  # type: ignore[return-value]  # both dialects' Insert offer the same upserts


def _q(name: str) -> str:
    return f'"{name}"'


def _columns(names: Sequence[str]) -> str:
    return ", ".join(_q(name) for name in names)


def _mark(connection: Connection) -> str:
    return "?" if connection.dialect.name == "sqlite" else "%s"


def marks(connection: Connection, count: int) -> str:
    """`count` parameter marks, comma-separated, in the driver's style (for `fetch`)."""
    return ", ".join([_mark(connection)] * count)


def fetch(connection: Connection, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """The rows of one query (`sql` in the driver's parameter style) as plain tuples: both
    drivers' cursors give tuples already (no row factory is set), so they are not copied."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql, tuple(params))
        return cursor.fetchall()  # type: ignore[no-any-return]
    finally:
        cursor.close()


def _big_pg(connection: Connection, rows: Sequence[Sequence[Any]]) -> bool:
    return connection.dialect.name == "postgresql" and len(rows) > _SMALL


def _copy(connection: Connection, table: str, columns: Sequence[str], rows: Sequence[Any]) -> None:
    cursor = connection.connection.cursor()
    try:
        with cursor.copy(f"COPY {_q(table)} ({_columns(columns)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for row in rows:
                copy.write_row(row)
    finally:
        cursor.close()


def _staged(connection: Connection, table: str, columns: Sequence[str], rows: Sequence[Any]) -> str:
    """A temporary copy of `rows` (PostgreSQL), typed like `table`'s columns; its name."""
    name = f"_bulk_{table}_{next(_temp_names)}"
    connection.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {_q(name)} ON COMMIT DROP AS "
        f"SELECT {_columns(columns)} FROM {_q(table)} WITH NO DATA"
    )
    _copy(connection, name, columns, rows)
    return name


def insert(
    connection: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert `rows` (values in `columns` order); their keys are not in `table` yet."""
    if not rows:
        return
    if _big_pg(connection, rows):
        _copy(connection, table, columns, rows)
        return
    marks = ", ".join(_mark(connection) for _ in columns)
    connection.exec_driver_sql(
        f"INSERT INTO {_q(table)} ({_columns(columns)}) VALUES ({marks})", list(rows)
    )


def update(
    connection: Connection,
    table: str,
    columns: Sequence[str],
    keys: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """Set `columns` of the rows found by `keys`; each row is its `columns` values then its
    `keys` values."""
    if not rows:
        return
    if _big_pg(connection, rows):
        staged = _staged(connection, table, [*columns, *keys], rows)
        sets = ", ".join(f"{_q(c)} = s.{_q(c)}" for c in columns)
        where = " AND ".join(f"t.{_q(k)} = s.{_q(k)}" for k in keys)
        connection.exec_driver_sql(
            f"UPDATE {_q(table)} AS t SET {sets} FROM {_q(staged)} AS s WHERE {where}"
        )
        return
    mark = _mark(connection)
    sets = ", ".join(f"{_q(c)} = {mark}" for c in columns)
    where = " AND ".join(f"{_q(k)} = {mark}" for k in keys)
    connection.exec_driver_sql(f"UPDATE {_q(table)} SET {sets} WHERE {where}", list(rows))


def delete(
    connection: Connection, table: str, keys: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Delete the rows whose `keys` have these values."""
    if not rows:
        return
    if _big_pg(connection, rows):
        staged = _staged(connection, table, keys, rows)
        where = " AND ".join(f"t.{_q(k)} = s.{_q(k)}" for k in keys)
        connection.exec_driver_sql(
            f"DELETE FROM {_q(table)} AS t USING {_q(staged)} AS s WHERE {where}"
        )
        return
    mark = _mark(connection)
    where = " AND ".join(f"{_q(k)} = {mark}" for k in keys)
    connection.exec_driver_sql(f"DELETE FROM {_q(table)} WHERE {where}", list(rows))
