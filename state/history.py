"""The mirror's history: every version of what the report reads, and the mirror at any moment T.

`mirror_history` holds one version per change, valid from ``valid_from`` until ``valid_to``
(null while current), of:

- each board-level row (kinds ``board``, ``list``, ``label``, ``member``, ``custom_field``): its
  `TRACKED` columns;
- each card as one **card document** (kind ``card``): its tracked columns and everything the
  writer stores with it that a report reads (labels, members, checklists, check items,
  custom-field values, Figma links), in a canonical order. The writer writes a card and its
  children as a whole, so one version per card and change is the natural unit (and 6 times
  fewer rows than one per child).

The invariant: **the open versions are exactly the mirror's current rows** (their tracked
columns). So the versions valid at T are the mirror as the store held it at T, and the drift
report rebuilt from them equals the report taken at T.

The writer (`state.store.Store.write_board`) calls `record_write` in its own transaction with
the batch it just wrote; it mirrors exactly what the writer did to the tables (board rows
upserted, cards upserted with their children replaced, cards marked deleted), compares the new
versions with the open ones by their canonical JSON text in memory, and writes only the
differences: one ``UPDATE … WHERE id IN`` closing the old versions, one bulk ``INSERT`` of the
new. A write that changes nothing adds nothing.

Columns that change on every write without changing what the report says (``updated_at``,
``first_seen_at``, a board's ``date_last_activity``) are not tracked.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from functools import cache
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, column, func, or_, select, table

from state import bulk

if TYPE_CHECKING:
    from state.store import BoardBatch

Row = dict[str, Any]
_CHUNK = 500
_READ_CHUNK = 5000  # keys per IN when reading open versions

# Board-level kinds: kind -> (mirrored table, tracked columns, BoardBatch field); "id" is the key.
ROW_KINDS: dict[str, tuple[str, tuple[str, ...], str | None]] = {
    "board": ("board", ("id", "short_link", "name", "url", "closed", "role"), None),
    "list": ("board_list", ("id", "board_id", "name", "closed", "pos"), "lists"),
    "label": ("label", ("id", "board_id", "name", "color"), "labels"),
    "member": ("member", ("id", "full_name", "username", "initials"), "members"),
    "custom_field": ("custom_field", ("id", "board_id", "name", "type"), "custom_fields"),
}
CARD_COLUMNS = (
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
)
# A card's children as stored in its document: table -> (columns, BoardBatch field); the card
# id is implied. Sorted by these columns in the document.
CARD_CHILDREN: dict[str, tuple[tuple[str, ...], str]] = {
    "card_label": (("label_id",), "card_labels"),
    "card_member": (("member_id",), "card_members"),
    "checklist": (("id", "board_id", "name", "pos"), "checklists"),
    "check_item": (("id", "checklist_id", "name", "state", "pos"), "check_items"),
    "custom_field_item": (("custom_field_id", "value"), "custom_field_items"),
    "card_figma_link": (("file_key", "node_id", "url", "source"), "figma_links"),
}
_BOOLEAN = frozenset({"closed"})
_FLOAT = frozenset({"pos"})
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode

_VERSION_COLUMNS = ("kind", "key", "valid_from", "valid_to", "data")
_history = table(
    "mirror_history",
    column("id"),
    column("kind"),
    column("key"),
    column("valid_from"),
    column("valid_to"),
    column("data"),
)


@cache
def _reader(columns: tuple[str, ...]) -> Callable[[Mapping[str, Any]], list[Any]]:
    """A row's `columns` as a list, normalised (booleans as bool: SQLite gives 0/1; floats as
    float, None as 0.0; a column the row leaves out as None): one function per column tuple,
    made once, called once per row (a card's document calls it for each of its children)."""
    booleans = tuple(i for i, name in enumerate(columns) if name in _BOOLEAN)
    floats = tuple(i for i, name in enumerate(columns) if name in _FLOAT)
    many = itemgetter(*columns)  # one column: the value itself, else a tuple
    single = len(columns) == 1

    def read(row: Mapping[str, Any]) -> list[Any]:
        try:
            values = [many(row)] if single else list(many(row))
        except KeyError:
            values = [row.get(name) for name in columns]
        for i in booleans:
            values[i] = bool(values[i])
        for i in floats:
            values[i] = float(values[i] or 0.0)
        return values

    return read


def encode_row(kind: str, row: Mapping[str, Any]) -> str:
    """A board-level row's tracked columns as canonical JSON text."""
    return _encode(_reader(ROW_KINDS[kind][1])(row))


def encode_card(
    card: Mapping[str, Any], children: Mapping[str, Iterable[Mapping[str, Any]]]
) -> str:
    """A card document: its tracked columns, then each kind of child in canonical order."""
    document: list[Any] = [_read_card(card)]
    for name, read in _CHILD_READERS:
        rows = children.get(name)
        document.append(sorted(map(read, rows)) if rows else [])
    return _encode(document)


_read_card = _reader(CARD_COLUMNS)
_CHILD_READERS = tuple((name, _reader(columns)) for name, (columns, _f) in CARD_CHILDREN.items())


def decode_card(text: str) -> tuple[Row, dict[str, list[Row]]]:
    """A card document back into its card row and its children's rows (by table)."""
    values, *groups = json.loads(text)
    card = dict(zip(CARD_COLUMNS, values, strict=True))
    children: dict[str, list[Row]] = {}
    for (name, (columns, _field)), rows in zip(CARD_CHILDREN.items(), groups, strict=True):
        children[name] = [
            {"card_id": card["id"], **dict(zip(columns, r, strict=True))} for r in rows
        ]
    return card, children


def _by_card(
    children: Mapping[str, Iterable[Mapping[str, Any]]],
) -> dict[str, dict[str, list[Mapping[str, Any]]]]:
    """Child rows by kind, then by card id."""
    grouped: dict[str, dict[str, list[Mapping[str, Any]]]] = {}
    for name, rows in children.items():
        by_card: dict[str, list[Mapping[str, Any]]] = {}
        for row in rows:
            card_id = row["card_id"]
            if card_id in by_card:
                by_card[card_id].append(row)
            else:
                by_card[card_id] = [row]
        grouped[name] = by_card
    return grouped


def _version(kind: str, key: str, data: str, at: str) -> Row:
    return {"kind": kind, "key": key, "valid_from": at, "valid_to": None, "data": data}


# -- writing ------------------------------------------------------------------------------


def record_write(
    connection: Connection,
    batch: BoardBatch,
    *,
    scope: Sequence[str],
    newly_gone: Sequence[str],
    cards: Collection[str] | None = None,
    stored: Collection[str] | None = None,
) -> int:
    """Record what one `write_board` changed (same transaction); returns the versions added.

    `scope` are the cards whose children the writer replaced (with the batch's); `newly_gone`
    the cards it marked deleted. Board-level rows are upserts. `cards`, when given, are the
    batch's cards whose row or children the writer changed: the others' open versions are
    their current rows already (the invariant), so they are neither read nor compared.
    `stored`, when given, are the cards the store held before the write: a card it did not
    hold has no open version (the invariant again), so is not looked for (a board's first
    write reads no history).
    """
    at = batch.observed_at
    wanted: dict[tuple[str, str], str] = {}
    rows: dict[str, list[Mapping[str, Any]]] = {
        kind: list(getattr(batch, field)) if field else []
        for kind, (_t, _c, field) in ROW_KINDS.items()
    }
    if batch.board is not None:
        rows["board"] = [batch.board]
    for kind, kind_rows in rows.items():
        for row in kind_rows:
            wanted[(kind, str(row["id"]))] = encode_row(kind, row)

    written = {str(card["id"]) for card in batch.cards}
    compared = written if cards is None else written & {str(card_id) for card_id in cards}
    children = _by_card(
        {
            # a child is looked up by its card's id as text: one whose card id is not text
            # would not be found, kept or not
            name: [row for row in getattr(batch, field) if row["card_id"] in compared]
            for name, (_c, field) in CARD_CHILDREN.items()
        }
    )
    for card in batch.cards:
        card_id = str(card["id"])
        if card_id not in compared:
            continue
        wanted[("card", card_id)] = encode_card(
            card, {name: rows.get(card_id, ()) for name, rows in children.items()}
        )

    keys_by_kind: dict[str, set[str]] = defaultdict(set)
    for kind, key in wanted:
        keys_by_kind[kind].add(key)
    if stored is not None:
        keys_by_kind["card"] = {key for key in keys_by_kind["card"] if key in stored}
    keys_by_kind["card"] |= set(newly_gone)
    current = _open(connection, keys_by_kind)

    in_scope = set(scope)
    for card_id in newly_gone:
        old = current.get(("card", card_id))
        if old is None or card_id in written:
            continue
        card, kept = decode_card(old[1])
        if card["deleted_at"] is None:
            card["deleted_at"] = at
        wanted[("card", card_id)] = encode_card(card, {} if card_id in in_scope else kept)

    closes: list[tuple[str, int]] = []
    inserts: list[tuple[str, str, str, None, str]] = []
    for (kind, key), data in wanted.items():
        old = current.get((kind, key))
        if old is None or old[1] != data:
            if old is not None:
                closes.append((at, old[0]))
            inserts.append((kind, key, at, None, data))
    bulk.update(connection, "mirror_history", ("valid_to",), ("id",), closes)
    bulk.insert(connection, "mirror_history", _VERSION_COLUMNS, inserts)
    return len(inserts)


def _open(
    connection: Connection, keys_by_kind: Mapping[str, set[str]]
) -> dict[tuple[str, str], tuple[int, str]]:
    """The open versions of these keys: (kind, key) -> (version id, data)."""
    found: dict[tuple[str, str], tuple[int, str]] = {}
    for kind, keys in keys_by_kind.items():
        ordered = sorted(keys)
        for start in range(0, len(ordered), _READ_CHUNK):
            statement = select(_history.c.id, _history.c.key, _history.c.data).where(
                _history.c.kind == kind,
                _history.c.key.in_(ordered[start : start + _READ_CHUNK]),
                _history.c.valid_to.is_(None),
            )
            for version_id, key, data in connection.execute(statement):
                found[(kind, key)] = (version_id, data)
    return found


def backfill(
    connection: Connection, tables: Mapping[str, Iterable[Mapping[str, Any]]], at: str
) -> int:
    """Open one version valid from `at` for every current row (rows by table name)."""
    inserts: list[Row] = []
    for kind, (table_name, _columns, _field) in ROW_KINDS.items():
        inserts += [
            _version(kind, str(row["id"]), encode_row(kind, row), at)
            for row in tables.get(table_name, ())
        ]
    children = _by_card({name: tables.get(name, ()) for name in CARD_CHILDREN})
    for card in tables.get("card", ()):
        card_id = str(card["id"])
        mine = {name: rows.get(card_id, ()) for name, rows in children.items()}
        inserts.append(_version("card", card_id, encode_card(card, mine), at))
    for start in range(0, len(inserts), _CHUNK):
        connection.execute(_history.insert(), inserts[start : start + _CHUNK])
    return len(inserts)


# -- reading ------------------------------------------------------------------------------


def rows_at(connection: Connection, at: str | None) -> dict[str, list[Row]]:
    """Every mirrored row as it was at `at` (None: the open versions), by table name."""
    if at is None:
        condition = _history.c.valid_to.is_(None)
    else:
        condition = (_history.c.valid_from <= at) & or_(
            _history.c.valid_to.is_(None), _history.c.valid_to > at
        )
    names = {kind: (table_name, columns) for kind, (table_name, columns, _f) in ROW_KINDS.items()}
    rows: dict[str, list[Row]] = defaultdict(list)
    for kind, data in connection.execute(select(_history.c.kind, _history.c.data).where(condition)):
        if kind == "card":
            card, children = decode_card(data)
            rows["card"].append(card)
            for name, child_rows in children.items():
                rows[name].extend(child_rows)
        else:
            table_name, columns = names[kind]
            rows[table_name].append(dict(zip(columns, json.loads(data), strict=True)))
    return rows


def known_since(connection: Connection) -> str | None:
    """The moment the history starts: the first version of a board."""
    return connection.execute(
        select(func.min(_history.c.valid_from)).where(_history.c.kind == "board")
    ).scalar_one_or_none()


TRACKED_TABLES: dict[str, tuple[str, ...]] = {
    **{table_name: columns for table_name, columns, _f in ROW_KINDS.values()},
    "card": CARD_COLUMNS,
    **{name: ("card_id", *columns) for name, (columns, _f) in CARD_CHILDREN.items()},
}
"""Every mirrored table the history keeps, with the columns it keeps (tests check the invariant)."""


__all__ = [
    "CARD_CHILDREN",
    "CARD_COLUMNS",
    "ROW_KINDS",
    "TRACKED_TABLES",
    "backfill",
    "decode_card",
    "encode_card",
    "encode_row",
    "known_since",
    "record_write",
    "rows_at",
]
