"""The durable webhook queue: verified deliveries kept from their 200 until they are applied.

Owns the statements on ``webhook_queue`` and the settling of ``webhook_delivery`` rows, each a
function over a connection the `Store` opened (its write transaction or a read):

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
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from state import models as m

Row = dict[str, Any]
_CHUNK = 500

QUEUE = m.WebhookQueue.__table__  # type: ignore[attr-defined]
DELIVERY = m.WebhookDelivery.__table__  # type: ignore[attr-defined]


def _insert(connection: Connection) -> Any:
    return sqlite_insert if connection.dialect.name == "sqlite" else pg_insert


def delivered(connection: Connection, action_ids: Iterable[str]) -> set[str]:
    """The action ids among these that already have a ``webhook_delivery`` row."""
    ids = sorted(set(action_ids))
    found: set[str] = set()
    for start in range(0, len(ids), _CHUNK):
        found.update(
            connection.execute(
                select(DELIVERY.c.action_id).where(
                    DELIVERY.c.action_id.in_(ids[start : start + _CHUNK])
                )
            ).scalars()
        )
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
    queued: dict[str, int] = {}
    fresh = list(unique.values())
    for start in range(0, len(fresh), _CHUNK):
        statement = (
            _insert(connection)(QUEUE)
            .values(fresh[start : start + _CHUNK])
            .on_conflict_do_nothing(index_elements=["action_id"])
            .returning(QUEUE.c.action_id, QUEUE.c.seq)
        )
        queued.update({action_id: seq for action_id, seq in connection.execute(statement)})
    return queued


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


def settle(connection: Connection, outcomes: Sequence[Row], seqs: Iterable[int]) -> None:
    """Record deliveries (action_id, board_id, received_at, applied_at, outcome; an action id
    recorded before keeps its row) and delete the queue rows `seqs`, in the caller's
    transaction. Rows go in action id order, so two replicas settling never deadlock."""
    unique = sorted({row["action_id"]: row for row in outcomes}.values(), key=_by_action)
    for start in range(0, len(unique), _CHUNK):
        connection.execute(
            _insert(connection)(DELIVERY)
            .values(unique[start : start + _CHUNK])
            .on_conflict_do_nothing(index_elements=["action_id"])
        )
    done = sorted(set(seqs))
    for start in range(0, len(done), _CHUNK):
        connection.execute(delete(QUEUE).where(QUEUE.c.seq.in_(done[start : start + _CHUNK])))


def _by_action(row: Row) -> str:
    return str(row["action_id"])
