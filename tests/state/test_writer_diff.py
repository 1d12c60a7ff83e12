"""The bulk writer (a diff of the stored rows against the batch, written in bulk) against the
writer it replaced (delete and re-insert every child row of every card in scope, compare every
card's view and history document): random sequences of full and incremental batches over a few
cards whose children come, go and move between cards leave the same rows in every table, the
same card versions and the same history, on SQLite (hypothesis) and PostgreSQL (seeded cases).
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, delete, select, update
from sqlalchemy.exc import IntegrityError

from state import history
from state import models as m
from state.store import (
    _CARD_CHILDREN,
    _CHUNK,
    _VIEW_FIELDS,
    BoardBatch,
    Row,
    Store,
    StoreError,
    WriteResult,
    _history_json,
    _table,
    _views_from_batch,
)
from syncd.trello.rows import snapshot_batch


def reference_write_board(self: Store, connection: Connection, batch: BoardBatch) -> WriteResult:
    """The writer before the diff (delete and re-insert every child, compare every card)."""
    state = (
        connection.execute(
            select(_table(m.SyncState)).where(_table(m.SyncState).c.board_ref == batch.board_ref)
        )
        .mappings()
        .first()
    )
    board_id = (batch.board or {}).get("id") or (state["board_id"] if state else None)
    if board_id is None:
        raise StoreError(f"board {batch.board_ref} has never been snapshotted")
    initial = state is None or state["last_full_at"] is None

    if batch.board is not None:
        self._upsert(connection, m.Board, [batch.board], ["id"])
    self._upsert(connection, m.BoardList, batch.lists, ["id"])
    self._upsert(connection, m.Label, batch.labels, ["id"])
    self._upsert(connection, m.Member, batch.members, ["id"])
    if batch.full and batch.members:
        board_member = _table(m.BoardMember)
        connection.execute(delete(board_member).where(board_member.c.board_id == board_id))
        self._upsert(
            connection,
            m.BoardMember,
            [{"board_id": board_id, "member_id": row["id"]} for row in batch.members],
            ["board_id", "member_id"],
        )
    self._upsert(connection, m.CustomField, batch.custom_fields, ["id"])

    card_ids = [card["id"] for card in batch.cards]
    old_views = reference_card_views(connection, board_id if batch.full else None, card_ids)
    for card in batch.cards:
        card.setdefault("first_seen_at", batch.observed_at)
        card["updated_at"] = batch.observed_at
        card["deleted_at"] = None
    self._upsert(connection, m.Card, batch.cards, ["id"], keep=("first_seen_at",))

    scope = list(old_views) if batch.full else card_ids
    scope = sorted(set(scope) | set(card_ids))
    for _name, table in _CARD_CHILDREN:  # children first: check items before checklists
        for start in range(0, len(scope), _CHUNK):
            chunk = scope[start : start + _CHUNK]
            connection.execute(delete(table).where(table.c.card_id.in_(chunk)))
    for name, table in reversed(_CARD_CHILDREN):  # parents first
        rows = getattr(batch, name)
        if rows:
            for start in range(0, len(rows), _CHUNK):
                connection.execute(table.insert(), rows[start : start + _CHUNK])

    present = set(card_ids)
    gone = set(batch.gone_card_ids)
    if batch.full:
        gone |= {card_id for card_id, view in old_views.items() if card_id not in present}
    gone = {card_id for card_id in gone if card_id not in present}
    # Only a stored, live card can go: a card never stored (created and deleted before a
    # sync saw it) has no history, and a deletion is recorded once.
    gone_names = self._live_names(connection, gone)
    newly_gone = sorted(gone_names)
    card_table = _table(m.Card)
    for start in range(0, len(newly_gone), _CHUNK):
        connection.execute(
            update(card_table)
            .where(card_table.c.id.in_(newly_gone[start : start + _CHUNK]))
            .values(deleted_at=batch.observed_at, updated_at=batch.observed_at)
        )

    new_views = _views_from_batch(batch)
    versions: list[Row] = []

    def version(card_id: str, name: str, old: Any, new: Any) -> None:
        versions.append(
            {
                "card_id": card_id,
                "board_id": board_id,
                "observed_at": batch.observed_at,
                "field": name,
                "old": None if old is None else _history_json(old),
                "new": None if new is None else _history_json(new),
                "source": batch.source,
                "action_id": batch.action_id,
            }
        )

    for card_id, new in new_views.items():
        old = old_views.get(card_id)
        if old is None:
            if not initial:
                version(card_id, "created", None, {"name": new["name"], "list": new["list"]})
            continue
        if old.get("deleted"):
            version(card_id, "restored", None, new["name"])
        for name in _VIEW_FIELDS:
            if old[name] != new[name]:
                version(card_id, name, old[name], new[name])
        changed_items = {
            item: [new["checklist"].get(item), old["checklist"].get(item)]
            for item in set(old["checklist"]) | set(new["checklist"])
            if old["checklist"].get(item) != new["checklist"].get(item)
        }
        if changed_items:
            version(
                card_id,
                "checklist",
                {item: states[1] for item, states in changed_items.items()},
                {item: states[0] for item, states in changed_items.items()},
            )
        for field_id in set(old["custom_fields"]) | set(new["custom_fields"]):
            before = old["custom_fields"].get(field_id)
            after = new["custom_fields"].get(field_id)
            if before != after:
                version(card_id, "custom_field", {field_id: before}, {field_id: after})
    for card_id in newly_gone:
        version(card_id, "deleted", gone_names[card_id], None)
    if versions:
        connection.execute(_table(m.CardVersion).insert(), versions)
    history.record_write(connection, batch, scope=scope, newly_gone=newly_gone)

    actions_before = len(batch.actions)
    self._upsert(connection, m.Action, batch.actions, ["id"], do_nothing=True)

    self._move_state(connection, batch, board_id, state)
    return WriteResult(len(batch.cards), len(versions), len(newly_gone), actions_before)


def reference_card_views(
    connection: Connection, board_id: str | None, card_ids: Sequence[str]
) -> dict[str, Row]:
    """The stored view of cards: the board's live cards (full) or the given ones."""
    card = _table(m.Card)
    if board_id is not None:
        condition = [card.c.board_id == board_id, card.c.deleted_at.is_(None)]
        chunks: list[Any] = [condition]
    else:
        chunks = [
            [card.c.id.in_(card_ids[start : start + _CHUNK])]
            for start in range(0, len(card_ids), _CHUNK)
        ]
    views: dict[str, Row] = {}
    for where in chunks:
        for row in connection.execute(select(card).where(*where)).mappings():
            views[row["id"]] = {
                "name": row["name"],
                "list": row["list_id"],
                "closed": bool(row["closed"]),
                "due": row["due"],
                "desc": row["desc"],
                "labels": [],
                "members": [],
                "checklist": {},
                "custom_fields": {},
                "deleted": row["deleted_at"] is not None,
            }
    ids = list(views)
    children = (
        (m.CardLabel, "label_id", "labels"),
        (m.CardMember, "member_id", "members"),
    )
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        for model, column, key in children:
            table = _table(model)
            for row in connection.execute(
                select(table.c.card_id, table.c[column]).where(table.c.card_id.in_(chunk))
            ):
                views[row[0]][key].append(row[1])
        items = _table(m.CheckItem)
        for row in connection.execute(
            select(items.c.card_id, items.c.id, items.c.state).where(items.c.card_id.in_(chunk))
        ):
            views[row[0]]["checklist"][row[1]] = row[2]
        values = _table(m.CustomFieldItem)
        for row in connection.execute(
            select(values.c.card_id, values.c.custom_field_id, values.c.value).where(
                values.c.card_id.in_(chunk)
            )
        ):
            views[row[0]]["custom_fields"][row[1]] = row[2]
    for view in views.values():
        view["labels"].sort()
        view["members"].sort()
    return views


class ReferenceStore(Store):
    """A store whose writer path is the one before the bulk writer."""

    def _write_board(self, connection: Connection, batch: BoardBatch) -> WriteResult:
        return reference_write_board(self, connection, batch)


# -- random boards -------------------------------------------------------------------------

BOARD = "b0000000000000000000000b"
CARDS = [f"c{n:023d}" for n in range(6)]
CHECKLISTS = [f"k{n}" for n in range(4)]
ITEMS = [f"i{n}" for n in range(6)]
ATTACHMENTS = [f"a{n}" for n in range(4)]
FIGMA = "https://www.figma.com/design/JhZCwwrmaw2NYrITCj8QAK/Maquette?node-id=1-{}"


def random_step(rng: random.Random, at: str) -> BoardBatch:
    """One batch: a full snapshot of a random subset of the cards, or an incremental batch of
    a few of them with some reported deleted. Children are drawn from shared pools, so a
    checklist, check item or attachment moves from card to card between batches."""
    present = sorted(rng.sample(CARDS, rng.randint(0, len(CARDS))))
    cards = []
    for card_id in present:
        desc = rng.choice(["", "Texte", f"Voir {FIGMA.format(rng.randint(1, 2))}"])
        cards.append(
            {
                "id": card_id,
                "idBoard": BOARD,
                "idList": rng.choice(["L1", "L2"]),
                "name": rng.choice(["Somme", "Aisne", "Oise"]),
                "desc": desc,
                "closed": rng.random() < 0.2,
                "due": rng.choice([None, "2026-12-24T10:00:00.000Z"]),
                "pos": rng.choice([1, 2.5]),
                "idLabels": rng.sample(["lab1", "lab2", "lab3"], rng.randint(0, 2)),
                "idMembers": rng.sample(["m1", "m2"], rng.randint(0, 2)),
                "customFieldItems": [
                    {"idCustomField": "cf1", "value": {"text": rng.choice(["Léa", "Max"])}}
                ]
                if rng.random() < 0.6
                else [],
                "attachments": [],
            }
        )
    checklists = []
    if cards:
        for attachment_id in rng.sample(ATTACHMENTS, rng.randint(0, len(ATTACHMENTS))):
            url = rng.choice(["https://example.org/a.pdf", FIGMA.format(rng.randint(1, 3))])
            rng.choice(cards)["attachments"].append(
                {"id": attachment_id, "name": rng.choice(["a", "b"]), "url": url, "date": None}
            )
        owners = {k: rng.choice(cards)["id"] for k in rng.sample(CHECKLISTS, rng.randint(0, 4))}
        items: dict[str, list[dict[str, Any]]] = {k: [] for k in owners}
        for item_id in ITEMS:
            if owners and rng.random() < 0.7:
                items[rng.choice(sorted(owners))].append(
                    {
                        "id": item_id,
                        "name": rng.choice(["Étape 1", "Étape 2"]),
                        "state": rng.choice(["complete", "incomplete"]),
                        "pos": rng.choice([1, 2]),
                    }
                )
        checklists = [
            {
                "id": k,
                "idCard": card_id,
                "name": rng.choice(["Actions prioritaires", "Sujets importants"]),
                "pos": 1,
                "checkItems": items[k],
            }
            for k, card_id in owners.items()
        ]
    snapshot = {
        "id": BOARD,
        "shortLink": "oSmy09cz",
        "name": rng.choice(["lapins", "lapins 2"]),
        "url": "https://trello.com/b/x",
        "lists": [{"id": "L1", "name": "Départements", "pos": 1}, {"id": "L2", "name": "Fait"}],
        "labels": [{"id": f"lab{n}", "name": f"Étiquette {n}", "color": "red"} for n in (1, 2, 3)],
        "members": [
            {"id": "m1", "fullName": "Camille Martin", "username": "cm"},
            {"id": "m2", "fullName": "Léa Petit", "username": "lp"},
        ],
        "customFields": [{"id": "cf1", "name": "Référent territorial", "type": "text"}],
        "cards": cards,
        "checklists": checklists,
    }
    batch = snapshot_batch(snapshot, board_ref="oSmy09cz", role="consortium", observed_at=at)
    if rng.random() < 0.3:  # incremental: these cards only, some others reported deleted
        batch.full = False
        batch.source = "incremental"
        batch.board = None
        batch.gone_card_ids = rng.sample(CARDS, rng.randint(0, 2))
    return batch


# -- comparing stores ----------------------------------------------------------------------

_SURROGATE = {"card_version", "mirror_history"}  # their ids are a sequence's, not data


def _canonical(table: str, row: Row) -> tuple[Any, ...]:
    values = dict(row)
    if table in _SURROGATE:
        values.pop("id")
    if table == "card_version":  # a checklist change's keys come in no particular order
        for name in ("old", "new"):
            if values[name] is not None:
                values[name] = json.dumps(json.loads(values[name]), sort_keys=True)
    return tuple(sorted((key, repr(value)) for key, value in values.items()))


def dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every mirrored table, order-free."""
    tables = (
        m.Board,
        m.BoardList,
        m.Label,
        m.Member,
        m.BoardMember,
        m.CustomField,
        m.Card,
        m.CardLabel,
        m.CardMember,
        m.Checklist,
        m.CheckItem,
        m.CustomFieldItem,
        m.Attachment,
        m.CardFigmaLink,
        m.CardVersion,
        m.SyncState,
        m.MirrorHistory,
    )
    out: dict[str, list[tuple[Any, ...]]] = {}
    with store.engine.connect() as connection:
        for model in tables:
            table = _table(model)
            rows = connection.execute(select(table)).mappings()
            out[table.name] = sorted(_canonical(table.name, row) for row in rows)
    return out


def run_both(bulk: Store, reference: Store, steps: Sequence[BoardBatch]) -> None:
    """Write each batch with both writers; their results and every table must agree."""
    for batch in steps:
        twin = BoardBatch(**{k: _copy(v) for k, v in vars(batch).items()})
        got, expected = _outcome(bulk, batch), _outcome(reference, twin)
        assert got == expected
        assert dump(bulk) == dump(reference)


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return [dict(row) if isinstance(row, dict) else row for row in value]
    return dict(value) if isinstance(value, dict) else value


def _outcome(store: Store, batch: BoardBatch) -> WriteResult | str:
    """What a write returns, or the kind of error that refused it (a checklist moving to a
    card an incremental batch does not hold breaks a unique key for both writers)."""
    try:
        return store.write_board(batch)
    except StoreError as exc:
        return f"StoreError: {exc}"
    except IntegrityError:
        return "IntegrityError"


def stamps(count: int) -> list[str]:
    return [f"2026-11-{day + 1:02d}T08:00:00.000Z" for day in range(count)]


def migrated_copy(factory: pytest.TempPathFactory, path: Path) -> str:
    """A fresh SQLite store at `path`: a copy of one migrated once per session."""
    template = factory.getbasetemp() / "writer-diff-template.db"
    if not template.exists():
        Store(f"sqlite:///{template}").close()
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 2**32 - 1), count=st.integers(1, 5))
def test_bulk_writer_leaves_the_rows_the_previous_writer_left_sqlite(
    tmp_path_factory: pytest.TempPathFactory, seed: int, count: int
) -> None:
    folder = tmp_path_factory.mktemp("diff")
    bulk = Store(migrated_copy(tmp_path_factory, folder / "bulk.db"), migrate=False)
    reference = ReferenceStore(
        migrated_copy(tmp_path_factory, folder / "reference.db"), migrate=False
    )
    rng = random.Random(seed)
    try:
        run_both(bulk, reference, [random_step(rng, at) for at in stamps(count)])
    finally:
        bulk.close()
        reference.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bulk_writer_leaves_the_rows_the_previous_writer_left(
    store_url: str, tmp_path_factory: pytest.TempPathFactory, seed: int
) -> None:
    """Both backends (PostgreSQL: the reference on SQLite beside it), 8 batches per seed."""
    folder = tmp_path_factory.mktemp("reference")
    bulk = Store(store_url)
    reference = ReferenceStore(f"sqlite:///{folder}/reference.db")
    rng = random.Random(seed)
    try:
        run_both(bulk, reference, [random_step(rng, at) for at in stamps(8)])
    finally:
        bulk.close()
        reference.close()


def test_a_rewrite_of_many_cards_in_bulk_matches_the_previous_writer(
    store_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Past the PostgreSQL bulk threshold (COPY and temporary tables): 150 cards, then the
    same cards with a third changed, a third gone and their children moved."""
    folder_rng = random.Random(7)
    folder = tmp_path_factory.mktemp("reference")
    reference = ReferenceStore(f"sqlite:///{folder}/reference.db")
    bulk = Store(store_url)
    try:
        steps = []
        for step, at in enumerate(stamps(2)):
            batch = random_step(folder_rng, at)
            batch.full, batch.source, batch.gone_card_ids = True, "snapshot", []
            extra = many_cards(150 - 50 * step, step)
            for name in ("cards", "card_labels", "check_items", "checklists", "attachments"):
                getattr(batch, name).extend(getattr(extra, name))
            if batch.board is None:
                batch.board = extra.board
            steps.append(batch)
        run_both(bulk, reference, steps)
    finally:
        bulk.close()
        reference.close()


def many_cards(count: int, step: int) -> BoardBatch:
    cards = [
        {
            "id": f"d{n:023d}",
            "idBoard": BOARD,
            "idList": "L1" if (n + step) % 3 else "L2",
            "name": f"Carte {n}" if n % 3 or not step else f"Carte {n} renommée",
            "idLabels": ["lab1"] if (n + step) % 2 else [],
            "attachments": [{"id": f"e{n}", "name": "x", "url": "https://example.org/x"}],
        }
        for n in range(count)
    ]
    checklists = [
        {
            "id": f"q{n}",
            "idCard": cards[(n + step) % count]["id"],
            "name": "Actions prioritaires",
            "checkItems": [{"id": f"r{n}", "name": "Étape", "state": "complete" if step else ""}],
        }
        for n in range(0, count, 2)
    ]
    snapshot = {"id": BOARD, "shortLink": "oSmy09cz", "name": "lapins", "cards": cards}
    snapshot["checklists"] = checklists
    return snapshot_batch(snapshot, board_ref="oSmy09cz", role="consortium", observed_at="x")
