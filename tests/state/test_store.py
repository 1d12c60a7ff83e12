"""The store's writer path on SQLite and PostgreSQL: snapshots, history, deletes, flags, cursor."""

from __future__ import annotations

import json

import pytest

from state import models as m
from state.store import BoardBatch, Store
from syncd.trello.rows import action_rows, snapshot_batch

BOARD = "b0000000000000000000000b"


def card(card_id: str, name: str, list_id: str = "L1", **extra: object) -> dict:
    return {
        "id": card_id,
        "idBoard": BOARD,
        "idList": list_id,
        "name": name,
        "desc": "",
        "idLabels": [],
        "idMembers": [],
        "closed": False,
        "pos": 1,
        **extra,
    }


def snapshot(cards: list[dict], checklists: list[dict] | None = None) -> dict:
    return {
        "id": BOARD,
        "shortLink": "oSmy09cz",
        "name": "lapins",
        "url": "https://trello.com/b/x",
        "dateLastActivity": "2026-11-01T00:00:00.000Z",
        "lists": [
            {"id": "L1", "name": "Départements", "pos": 1},
            {"id": "L2", "name": "Fait", "pos": 2},
        ],
        "labels": [{"id": "lab1", "name": "Prioritaire", "color": "red"}],
        "members": [{"id": "m1", "fullName": "Camille Martin", "username": "cm"}],
        "customFields": [],
        "cards": cards,
        "checklists": checklists or [],
    }


def one_item_checklist(card_id: str) -> list[dict]:
    """The card's "Actions prioritaires" checklist ``k1`` of one incomplete item ``i1``."""
    return [
        {
            "id": "k1",
            "idCard": card_id,
            "name": "Actions prioritaires",
            "checkItems": [{"id": "i1", "name": "A", "state": "incomplete"}],
        }
    ]


def batch_of(snap: dict, at: str, actions: list[dict] | None = None) -> BoardBatch:
    batch = snapshot_batch(snap, board_ref="oSmy09cz", role="consortium", observed_at=at)
    batch.actions = action_rows(actions or [], BOARD, "poll")
    batch.cursor = max((a["id"] for a in actions or []), default=None)
    return batch


def test_snapshot_then_changes_write_history_and_keep_deleted(store_url: str) -> None:
    store = Store(store_url)
    c1, c2 = "c" * 23 + "1", "c" * 23 + "2"
    checklist = one_item_checklist(c1)
    result = store.write_board(
        batch_of(
            snapshot([card(c1, "Somme"), card(c2, "Drôme")], checklist), "2026-11-01T00:00:00.000Z"
        )
    )
    assert result.cards == 2 and result.versions == 0  # the first snapshot is no "change"
    assert store.count(m.Card) == 2 and store.count(m.CheckItem) == 1

    checklist[0]["checkItems"][0]["state"] = "complete"
    moved = card(c1, "Somme (80)", "L2", idLabels=["lab1"], idMembers=["m1"])
    result = store.write_board(batch_of(snapshot([moved], checklist), "2026-11-02T00:00:00.000Z"))
    assert result.deleted == 1
    versions = store.card_versions_since("2026-11-02T00:00:00.000Z")
    fields = {(v["card_id"], v["field"]) for v in versions}
    assert fields == {
        (c1, "name"),
        (c1, "list"),
        (c1, "labels"),
        (c1, "members"),
        (c1, "checklist"),
        (c2, "deleted"),
    }
    by_field = {v["field"]: v for v in versions}
    assert (
        json.loads(by_field["list"]["old"]) == "L1" and json.loads(by_field["list"]["new"]) == "L2"
    )
    assert json.loads(by_field["checklist"]["new"]) == {"i1": "complete"}
    rows = store.read_mirror()
    deleted = next(c for c in rows.cards if c["id"] == c2)
    assert deleted["deleted_at"] == "2026-11-02T00:00:00.000Z" and deleted["name"] == "Drôme"

    # the same snapshot again changes nothing
    result = store.write_board(batch_of(snapshot([moved], checklist), "2026-11-03T00:00:00.000Z"))
    assert result.versions == 0 and result.deleted == 0
    store.close()


def test_actions_are_idempotent_and_the_cursor_never_moves_back(store_url: str) -> None:
    store = Store(store_url)
    actions = [
        {
            "id": f"{i:024x}",
            "type": "commentCard",
            "date": "2026-11-01T00:00:00.000Z",
            "data": {"card": {"id": "x"}},
        }
        for i in range(1, 4)
    ]
    store.write_board(batch_of(snapshot([]), "2026-11-01T00:00:00.000Z", actions))
    store.write_board(batch_of(snapshot([]), "2026-11-01T00:00:00.000Z", actions[:1]))
    assert store.count(m.Action) == 3
    state = store.sync_state("oSmy09cz")
    assert state is not None and state["action_cursor"] == f"{3:024x}"
    assert store.known_actions([f"{1:024x}", "nope"]) == {f"{1:024x}"}


def test_a_failed_write_leaves_the_previous_state(store_url: str) -> None:
    store = Store(store_url)
    c1 = "c" * 23 + "1"
    store.write_board(batch_of(snapshot([card(c1, "Somme")]), "2026-11-01T00:00:00.000Z"))
    broken = batch_of(snapshot([card(c1, "Renamed")]), "2026-11-02T00:00:00.000Z")
    broken.check_items.append(
        {
            "id": "orphan",
            "checklist_id": "missing",
            "card_id": c1,
            "name": "x",
            "state": "incomplete",
            "pos": 0,
        }
    )
    with pytest.raises(Exception):  # noqa: B017 - the FK violation differs per driver
        store.write_board(broken)
    rows = store.read_mirror()
    assert [c["name"] for c in rows.cards] == ["Somme"]
    assert store.card_versions_since("2026-01-01T00:00:00.000Z") == []


def test_flags_open_once_and_resolve_with_times(store_url: str) -> None:
    store = Store(store_url)
    assert store.record_evaluation(
        [("77", "TOO_MANY_PRIORITIES", "4 open")], {}, [], "2026-11-01T00:00:00.000Z"
    ) == (1, 0)
    assert store.record_evaluation(
        [("77", "TOO_MANY_PRIORITIES", "4 open")], {}, [], "2026-11-02T00:00:00.000Z"
    ) == (0, 0)
    assert store.record_evaluation([], {}, [], "2026-11-03T00:00:00.000Z") == (0, 1)
    assert store.flags() == []
    resolved = store.flags(resolved_since="2026-11-03T00:00:00.000Z")
    assert len(resolved) == 1
    assert resolved[0]["since"] == "2026-11-01T00:00:00.000Z"
    assert resolved[0]["resolved_at"] == "2026-11-03T00:00:00.000Z"
    store.record_evaluation(
        [("77", "TOO_MANY_PRIORITIES", "5 open")], {}, [], "2026-11-04T00:00:00.000Z"
    )
    open_flags = store.flags()
    assert len(open_flags) == 1 and open_flags[0]["since"] == "2026-11-04T00:00:00.000Z"


def test_figma_frames_removed_are_marked_deleted(store_url: str) -> None:
    store = Store(store_url)
    file_row = {"key": "JhZCwwrmaw2NYrITCj8QAK", "name": "Maquettes", "version": "1"}
    nodes = [
        {"file_key": file_row["key"], "node_id": n, "name": n, "type": "FRAME"}
        for n in ("5:95", "6:1")
    ]
    store.write_figma_file(
        dict(file_row),
        nodes=nodes,
        versions=[],
        comments=[],
        observed_at="2026-11-01T00:00:00.000Z",
    )
    store.write_figma_file(
        dict(file_row),
        nodes=nodes[:1],
        versions=[],
        comments=[],
        observed_at="2026-11-02T00:00:00.000Z",
    )
    rows = {n["node_id"]: n for n in store.figma_rows()["nodes"]}
    assert rows["5:95"]["deleted_at"] is None
    assert rows["6:1"]["deleted_at"] == "2026-11-02T00:00:00.000Z"


def test_single_instance_lock_on_sqlite_none_on_postgresql(store_url: str) -> None:
    from syncd.daemon.locks import instance_lock
    from syncd.errors import SyncFailed

    if store_url.startswith("postgresql"):  # replicas share a PostgreSQL store
        assert instance_lock(store_url) is None
        return
    first, second = instance_lock(store_url), instance_lock(store_url)
    assert first is not None and second is not None
    first.acquire()
    try:
        with pytest.raises(SyncFailed, match="another syncd run"):
            second.acquire()
    finally:
        first.release()
    second.acquire()  # free again once released
    second.release()


def test_figma_comments_gone_from_a_read_are_marked_deleted(store_url: str) -> None:
    store = Store(store_url)
    file_row = {"key": "JhZCwwrmaw2NYrITCj8QAK", "name": "Maquettes"}
    comment = {"file_key": file_row["key"], "author": "Léa", "message": "m", "created_at": "x"}
    both = [{**comment, "id": "c1"}, {**comment, "id": "c2"}]
    store.write_figma_file(
        dict(file_row),
        nodes=None,
        versions=[],
        comments=both,
        observed_at="2026-11-01T00:00:00.000Z",
    )
    store.write_figma_file(  # comments not read this time: nothing changes
        dict(file_row),
        nodes=None,
        versions=[],
        comments=None,
        observed_at="2026-11-02T00:00:00.000Z",
    )
    assert all(c["deleted_at"] is None for c in store.figma_rows()["comments"])
    store.write_figma_file(
        dict(file_row),
        nodes=None,
        versions=[],
        comments=both[:1],
        observed_at="2026-11-03T00:00:00.000Z",
    )
    rows = {c["id"]: c for c in store.figma_rows()["comments"]}
    assert rows["c1"]["deleted_at"] is None
    assert rows["c2"]["deleted_at"] == "2026-11-03T00:00:00.000Z"


def test_a_card_never_stored_has_no_history_and_a_deletion_is_recorded_once(
    store_url: str,
) -> None:
    """Phantom deletions: a card created and deleted before any sync saw it, reported gone by
    every later delivery about it, writes nothing; a stored card's deletion is written once,
    with its name."""
    store = Store(store_url)
    kept, doomed = "c" * 23 + "1", "c" * 23 + "2"
    store.write_board(
        batch_of(snapshot([card(kept, "Somme"), card(doomed, "Meuse")]), "2026-11-01T00:00:00.000Z")
    )
    never = "f" * 24
    for at in ("2026-11-02T00:00:00.000Z", "2026-11-03T00:00:00.000Z"):
        gone = BoardBatch(
            board_ref="oSmy09cz",
            role="consortium",
            observed_at=at,
            source="webhook",
            gone_card_ids=[never, doomed],
        )
        result = store.write_board(gone)
        assert result.deleted == (1 if at.startswith("2026-11-02") else 0)
    versions = store.card_versions_since("2026-11-01T00:00:00.000Z")
    assert [(v["card_id"], v["field"], json.loads(v["old"])) for v in versions] == [
        (doomed, "deleted", "Meuse")
    ]
    assert store.count(m.Card, m.Card.id == never) == 0  # type: ignore[arg-type]
    # A full snapshot without the deleted card does not record it again either.
    result = store.write_board(
        batch_of(snapshot([card(kept, "Somme")]), "2026-11-04T00:00:00.000Z")
    )
    assert (result.deleted, result.versions) == (0, 0)
    store.close()


def test_an_integer_in_a_text_column_is_stored_as_text_and_rewrites_nothing(
    store_url: str,
) -> None:
    """The writer compares a batch with the stored rows in their stored form: 7 in a text
    column is stored as "7", and the same batch written again changes no row and adds no
    version (a first write and a rewrite of a card and of its children)."""
    store = Store(store_url)
    c1, c2 = "c" * 23 + "1", "c" * 23 + "2"
    checklist = one_item_checklist(c1)

    def batch(at: str) -> BoardBatch:
        out = batch_of(snapshot([card(c1, "Somme"), card(c2, "Drôme")], checklist), at)
        out.cards[0]["name"] = 7
        out.check_items[0]["name"] = 5
        return out

    store.write_board(batch("2026-11-01T00:00:00.000Z"))
    rows = store.read_mirror()
    assert {c["id"]: c["name"] for c in rows.cards} == {c1: "7", c2: "Drôme"}
    assert [i["name"] for i in rows.check_items] == ["5"]
    history_rows = store.count(m.MirrorHistory)

    result = store.write_board(batch("2026-11-02T00:00:00.000Z"))
    assert result.versions == 0 and result.deleted == 0
    assert store.count(m.MirrorHistory) == history_rows
    rows = store.read_mirror()
    assert {c["id"]: c["name"] for c in rows.cards} == {c1: "7", c2: "Drôme"}
    assert [i["name"] for i in rows.check_items] == ["5"]
    store.close()
