"""The durable webhook queue: verified deliveries kept from their 200 until they are applied.

Owns `DeliveryQueue` (the intake's own writer of queue rows) and the statements on
``webhook_queue`` and the settling of ``webhook_delivery`` rows, each a function over a
connection (the `Store`'s write transaction or read, or the `DeliveryQueue`'s):

- `enqueue`: a group of deliveries (the intake's group commit) in one ``INSERT … ON CONFLICT
  DO NOTHING RETURNING``, leaving out the action ids already delivered or already queued (a
  Trello retry); returns the (action id → seq) of the rows queued now;
- `pending`: queued rows in queue order (all of them at start-up; those older than a moment
  for rows a dead replica left);
- `delivered`: which action ids already have their ``webhook_delivery`` row (a replay);
- `settle`: a run's ``webhook_delivery`` rows (with their outcome) inserted and its queue rows
  deleted, in the caller's transaction, which also holds the rows the run applied.

The guarantee built on it: a delivery answered 200 is in ``webhook_queue`` (committed) or
already has its ``webhook_delivery`` row, so a ``kill -9`` at any moment loses none; the rows a
delivery changed, its ``webhook_delivery`` row and the deletion of its queue row commit together,
so it is applied exactly once whatever crash or replay happens. A leaf: imports nothing of
``syncd``.

**The second exception to the single-writer rule** (after the lease heartbeat,
`state.coordination.LeaseTable`): `DeliveryQueue.enqueue` commits on an engine of its own
(`Store.delivery_queue`, set up like the writer's: ``BEGIN IMMEDIATE`` and the busy timeout on
SQLite), not through the writer thread, so a webhook's 200 waits for its own commit and never
for the mirror writes queued before it. Queue rows are not mirror data: they hold what is to be
applied, and only the writer (`settle`, in the transaction of the applied rows) removes them.
On SQLite the two writers take the database lock in turn (a queue commit is one short
``INSERT``), through the store's in-process lock rather than SQLite's sleeping busy handler;
on PostgreSQL they do not meet (different rows).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from functools import cache
from typing import Any

from sqlalchemy import Connection, Engine, Executable, bindparam, delete, select

from state import models as m
from state.bulk import conflict_insert

Row = dict[str, Any]
_CHUNK = 500

QUEUE = m.WebhookQueue.__table__  # type: ignore[attr-defined]
DELIVERY = m.WebhookDelivery.__table__  # type: ignore[attr-defined]


# Built once: compiled once per dialect (SQLAlchemy's cache), however many rows are given.
_DELIVERED = select(DELIVERY.c.action_id).where(
    DELIVERY.c.action_id.in_(bindparam("ids", expanding=True))
)


@cache
def _enqueue(dialect: str) -> Executable:
    return (
        conflict_insert(dialect)(QUEUE)
        .on_conflict_do_nothing(index_elements=["action_id"])
        .returning(QUEUE.c.action_id, QUEUE.c.seq)
    )


def delivered(connection: Connection, action_ids: Iterable[str]) -> set[str]:
    """The action ids among these that already have a ``webhook_delivery`` row."""
    ids = sorted(set(action_ids))
    found: set[str] = set()
    for start in range(0, len(ids), _CHUNK):
        found.update(connection.execute(_DELIVERED, {"ids": ids[start : start + _CHUNK]}).scalars())
    return found


def enqueue(connection: Connection, rows: Sequence[Row]) -> dict[str, int]:
    """Queue deliveries (action_id, board_ref, board_id, action JSON, queued_at, queued_by) in
    their order; one already delivered or already queued is left out. Returns the action id →
    seq of the rows queued now."""
    if not rows:
        return {}
    done = delivered(connection, (row["action_id"] for row in rows))
    unique: dict[str, Row] = {}
    for row in rows:
        if row["action_id"] not in done:
            unique.setdefault(row["action_id"], row)
    if not unique:
        return {}
    # one INSERT … RETURNING (SQLAlchemy's "insertmanyvalues" batches the rows)
    result = connection.execute(_enqueue(connection.dialect.name), list(unique.values()))
    return {action_id: seq for action_id, seq in result}


def pending(
    connection: Connection, limit: int, *, after: int = 0, older_than: str | None = None
) -> list[Row]:
    """Up to `limit` queued rows after seq `after`, in queue order; with `older_than`, only
    those queued before that moment."""
    statement = select(QUEUE).where(QUEUE.c.seq > after)
    if older_than is not None:
        statement = statement.where(QUEUE.c.queued_at < older_than)
    rows = connection.execute(statement.order_by(QUEUE.c.seq).limit(limit)).mappings()
    return [dict(row) for row in rows]


@cache
def _record(dialect: str) -> Executable:
    return conflict_insert(dialect)(DELIVERY).on_conflict_do_nothing(index_elements=["action_id"])


_DEQUEUE = delete(QUEUE).where(QUEUE.c.seq.in_(bindparam("seqs", expanding=True)))


def settle(connection: Connection, outcomes: Sequence[Row], seqs: Iterable[int]) -> None:
    """Record deliveries (action_id, board_id, received_at, applied_at, outcome; an action id
    recorded before keeps its row) and delete the queue rows `seqs`, in the caller's
    transaction. Rows go in action id order, so two replicas settling never deadlock."""
    unique = sorted({row["action_id"]: row for row in outcomes}.values(), key=_by_action)
    if unique:
        connection.execute(_record(connection.dialect.name), unique)
    done = sorted(set(seqs))
    for start in range(0, len(done), _CHUNK):
        connection.execute(_DEQUEUE, {"seqs": done[start : start + _CHUNK]})


class DeliveryQueue:
    """The intake's writer of ``webhook_queue`` rows, on its own engine (see the module
    docstring). Thread-safe: each `enqueue` is one transaction on a connection of the pool."""

    def __init__(self, engine: Engine, *, lock: threading.RLock | None = None) -> None:
        self.engine = engine
        self.lock = lock  # SQLite: the store's write lock (one write transaction at a time)

    def enqueue(self, rows: Sequence[Row]) -> dict[str, int]:
        """Queue deliveries in ONE transaction (a group commit; see `enqueue`): the action id
        → seq of those queued now. Returns after the commit."""
        if not rows:
            return {}
        with self.lock or nullcontext(), self.engine.begin() as connection:
            return enqueue(connection, rows)

    def warm(self) -> None:
        """Open this engine's connection and compile the replay check, writing nothing: the
        first delivery after start-up then pays only for its own commit (on PostgreSQL, a
        connection opened on demand cost it tens of milliseconds)."""
        with self.lock or nullcontext(), self.engine.begin() as connection:
            delivered(connection, ["(warm-up)"])

    def close(self) -> None:
        self.engine.dispose()


def _by_action(row: Row) -> str:
    return str(row["action_id"])
