"""The mirror's history: every version of every row the report reads, and the mirror at any T.

`mirror_history` holds, per mirrored row (a board, list, label, member, custom field, card,
card label, card member, checklist, check item or custom-field value), one version per change
with the moment it became true (``valid_from``) and the moment it stopped being true
(``valid_to``, null while current). The invariant: **the open versions are exactly the mirror's
current rows** (their `TRACKED` columns). So the versions valid at T are the mirror as the store
held it at T, and the drift report rebuilt from them equals the report taken at T.

The writer (`state.store.Store.write_board`) calls `record_write` in its own transaction with
the batch it just wrote; it mirrors exactly what the writer did to the tables (upserted board
rows, cards, card children replaced for the cards in scope, cards marked deleted), diffs the
new rows against the open versions in memory (by their canonical JSON text) and writes only
the differences: a set of closed versions (one ``UPDATE … WHERE id IN``) and a set of new ones
(one bulk ``INSERT``). A write that changes nothing adds nothing.

Columns that change on every write without changing the report (``updated_at``,
``first_seen_at``, a board's ``date_last_activity``) are not tracked.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, column, func, or_, select, table, update

if TYPE_CHECKING:
    from state.store import BoardBatch

Row = dict[str, Any]
_CHUNK = 500

# kind -> (mirrored table, tracked columns); the key columns come first.
TRACKED: dict[str, tuple[str, tuple[str, ...]]] = {
    "board": ("board", ("id", "short_link", "name", "url", "closed", "role")),
    "list": ("board_list", ("id", "board_id", "name", "closed", "pos")),
    "label": ("label", ("id", "board_id", "name", "color")),
    "member": ("member", ("id", "full_name", "username", "initials")),
    "custom_field": ("custom_field", ("id", "board_id", "name", "type")),
    "card": (
        "card",
        (
            "id",
            "board_id",
            "list_id",
            "name",
            "desc",
            "closed",
            "due",
            "url",
            "short_link",
            "pos",
            "date_last_activity",
            "deleted_at",
        ),
    ),
    "card_label": ("card_label", ("card_id", "label_id")),
    "card_member": ("card_member", ("card_id", "member_id")),
    "checklist": ("checklist", ("id", "card_id", "board_id", "name", "pos")),
    "check_item": ("check_item", ("id", "checklist_id", "card_id", "name", "state", "pos")),
    "custom_field_item": ("custom_field_item", ("card_id", "custom_field_id", "value")),
}
KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "card_label": ("card_id", "label_id"),
    "card_member": ("card_id", "member_id"),
    "custom_field_item": ("card_id", "custom_field_id"),
}
# Rows of a card, replaced as a whole for the cards a write covers: kind -> BoardBatch field.
CARD_CHILDREN: dict[str, str] = {
    "card_label": "card_labels",
    "card_member": "card_members",
    "checklist": "checklists",
    "check_item": "check_items",
    "custom_field_item": "custom_field_items",
}
# Rows upserted by a write and never removed by it: kind -> BoardBatch field.
BOARD_LEVEL: dict[str, str] = {
    "list": "lists",
    "label": "labels",
    "member": "members",
    "custom_field": "custom_fields",
}
_BOOLEAN = frozenset({"closed"})
_FLOAT = frozenset({"pos"})

_history = table(
    "mirror_history",
    column("id"),
    column("kind"),
    column("key"),
    column("card_id"),
    column("valid_from"),
    column("valid_to"),
    column("data"),
)


def row_key(kind: str, row: Mapping[str, Any]) -> str:
    """The primary key of a mirrored row as one string."""
    return "|".join(str(row[name]) for name in KEY_COLUMNS.get(kind, ("id",)))


def encode(kind: str, row: Mapping[str, Any]) -> str:
    """The tracked columns of a row as canonical JSON text (compared to detect a change)."""
    values: dict[str, Any] = {}
    for name in TRACKED[kind][1]:
        value = row.get(name)
        if name in _BOOLEAN:
            value = bool(value)
        elif name in _FLOAT:
            value = float(value or 0.0)
        values[name] = value
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"))


def _card_of(kind: str, row: Mapping[str, Any]) -> str | None:
    if kind == "card":
        return str(row["id"])
    if kind in CARD_CHILDREN:
        return str(row["card_id"])
    return None


def _version(kind: str, row: Mapping[str, Any], text: str, at: str) -> Row:
    return {
        "kind": kind,
        "key": row_key(kind, row),
        "card_id": _card_of(kind, row),
        "valid_from": at,
        "valid_to": None,
        "data": text,
    }


# -- writing ------------------------------------------------------------------------------


def record_write(
    connection: Connection,
    batch: BoardBatch,
    *,
    scope: Sequence[str],
    newly_gone: Sequence[str],
) -> int:
    """Record what one `write_board` changed (same transaction); returns the versions added.

    `scope` are the cards whose children the writer replaced; `newly_gone` the cards it marked
    deleted. Everything else a batch carries is an upsert.
    """
    at = batch.observed_at
    closes: list[int] = []
    inserts: list[Row] = []

    upserted: dict[str, list[Row]] = {
        kind: getattr(batch, name) for kind, name in BOARD_LEVEL.items()
    }
    if batch.board is not None:
        upserted["board"] = [batch.board]
    for kind, rows in upserted.items():
        if not rows:
            continue
        current = _open_by_key(connection, kind, [row_key(kind, row) for row in rows])
        for row in rows:
            text = encode(kind, row)
            old = current.get(row_key(kind, row))
            if old is None or old[1] != text:
                if old is not None:
                    closes.append(old[0])
                inserts.append(_version(kind, row, text, at))

    in_scope = set(scope)
    cards = {str(card["id"]): card for card in batch.cards}
    current_cards = _open_by_card(connection, sorted(in_scope | set(cards) | set(newly_gone)))
    for card_id, card in cards.items():
        text = encode("card", card)
        old = current_cards.get(("card", card_id))
        if old is None or old[1] != text:
            if old is not None:
                closes.append(old[0])
            inserts.append(_version("card", card, text, at))
    for card_id in newly_gone:
        old = current_cards.get(("card", card_id))
        if old is None:
            continue
        row = json.loads(old[1])
        if row.get("deleted_at") is None:
            row["deleted_at"] = at
            closes.append(old[0])
            inserts.append(_version("card", row, encode("card", row), at))

    fresh: dict[tuple[str, str], tuple[Row, str]] = {}
    for kind, name in CARD_CHILDREN.items():
        for row in getattr(batch, name):
            fresh[(kind, row_key(kind, row))] = (row, encode(kind, row))
    for (kind, key), (version_id, text, card_id) in current_cards.items():
        if kind == "card" or card_id not in in_scope:
            continue
        new = fresh.get((kind, key))
        if new is None or new[1] != text:
            closes.append(version_id)
    for (kind, key), (row, text) in fresh.items():
        old = current_cards.get((kind, key))
        if old is None or old[1] != text:
            inserts.append(_version(kind, row, text, at))

    for start in range(0, len(closes), _CHUNK):
        connection.execute(
            update(_history)
            .where(_history.c.id.in_(closes[start : start + _CHUNK]))
            .values(valid_to=at)
        )
    for start in range(0, len(inserts), _CHUNK):
        connection.execute(_history.insert(), inserts[start : start + _CHUNK])
    return len(inserts)


def _open_by_key(
    connection: Connection, kind: str, keys: Sequence[str]
) -> dict[str, tuple[int, str]]:
    found: dict[str, tuple[int, str]] = {}
    unique = sorted(set(keys))
    for start in range(0, len(unique), _CHUNK):
        statement = select(_history.c.id, _history.c.key, _history.c.data).where(
            _history.c.kind == kind,
            _history.c.key.in_(unique[start : start + _CHUNK]),
            _history.c.valid_to.is_(None),
        )
        for version_id, key, data in connection.execute(statement):
            found[key] = (version_id, data)
    return found


def _open_by_card(
    connection: Connection, card_ids: Sequence[str]
) -> dict[tuple[str, str], tuple[int, str, str]]:
    """The open versions of these cards and their children: (kind, key) -> (id, data, card)."""
    found: dict[tuple[str, str], tuple[int, str, str]] = {}
    for start in range(0, len(card_ids), _CHUNK):
        statement = select(
            _history.c.id, _history.c.kind, _history.c.key, _history.c.data, _history.c.card_id
        ).where(
            _history.c.card_id.in_(card_ids[start : start + _CHUNK]),
            _history.c.valid_to.is_(None),
        )
        for version_id, kind, key, data, card_id in connection.execute(statement):
            found[(kind, key)] = (version_id, data, card_id)
    return found


def backfill(
    connection: Connection, tables: Mapping[str, Iterable[Mapping[str, Any]]], at: str
) -> int:
    """Open one version valid from `at` for each given current row (kind -> rows)."""
    inserts = [
        _version(kind, row, encode(kind, row), at) for kind, rows in tables.items() for row in rows
    ]
    for start in range(0, len(inserts), _CHUNK):
        connection.execute(_history.insert(), inserts[start : start + _CHUNK])
    return len(inserts)


# -- reading ------------------------------------------------------------------------------


def rows_at(connection: Connection, at: str) -> dict[str, list[Row]]:
    """Every mirrored row as it was at `at`, by kind (the versions valid then)."""
    statement = select(_history.c.kind, _history.c.data).where(
        _history.c.valid_from <= at,
        or_(_history.c.valid_to.is_(None), _history.c.valid_to > at),
    )
    rows: dict[str, list[Row]] = defaultdict(list)
    for kind, data in connection.execute(statement):
        rows[kind].append(json.loads(data))
    return rows


def known_since(connection: Connection) -> str | None:
    """The moment the history starts: the first version of a board."""
    return connection.execute(
        select(func.min(_history.c.valid_from)).where(_history.c.kind == "board")
    ).scalar_one_or_none()


def open_versions(connection: Connection) -> dict[str, dict[str, str]]:
    """The open versions by kind and key (tests check the invariant against the tables)."""
    found: dict[str, dict[str, str]] = defaultdict(dict)
    for kind, key, data in connection.execute(
        select(_history.c.kind, _history.c.key, _history.c.data).where(
            _history.c.valid_to.is_(None)
        )
    ):
        found[kind][key] = data
    return found


__all__ = [
    "BOARD_LEVEL",
    "CARD_CHILDREN",
    "KEY_COLUMNS",
    "TRACKED",
    "backfill",
    "encode",
    "known_since",
    "open_versions",
    "record_write",
    "row_key",
    "rows_at",
]
