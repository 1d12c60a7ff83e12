"""The mirror's row history on SQLite and PostgreSQL: written only on change, the mirror at any
past moment, flag messages and priority counts over time, and the 0004 back-fill."""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, select, text

from state import history
from state import models as m
from state.store import BoardBatch, Store
from syncd.trello.rows import snapshot_batch

BOARD = "b0000000000000000000000b"
C1, C2 = "c" * 23 + "1", "c" * 23 + "2"
T1, T2, T3, T4 = (f"2026-11-0{day}T00:00:00.000Z" for day in (1, 2, 3, 4))


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


def snapshot(cards: list[dict], items: list[tuple[str, str]], *, list_name: str = "Fait") -> dict:
    return {
        "id": BOARD,
        "shortLink": "oSmy09cz",
        "name": "lapins",
        "url": "https://trello.com/b/x",
        "dateLastActivity": "2026-11-01T00:00:00.000Z",
        "lists": [
            {"id": "L1", "name": "Départements", "pos": 1},
            {"id": "L2", "name": list_name, "pos": 2},
        ],
        "labels": [{"id": "lab1", "name": "Prioritaire", "color": "red"}],
        "members": [{"id": "m1", "fullName": "Camille Martin", "username": "cm"}],
        "customFields": [],
        "cards": cards,
        "checklists": [
            {
                "id": "k1",
                "idCard": C1,
                "name": "Actions prioritaires",
                "checkItems": [
                    {"id": item_id, "name": name, "state": state}
                    for item_id, (name, state) in enumerate(items)
                ],
            }
        ],
    }


def batch_of(snap: dict, at: str) -> BoardBatch:
    return snapshot_batch(snap, board_ref="oSmy09cz", role="consortium", observed_at=at)


def versions(store: Store) -> int:
    return store.count(m.MirrorHistory)


def test_history_is_written_only_on_change_and_gives_the_mirror_at_any_moment(
    store_url: str,
) -> None:
    store = Store(store_url)
    assert store.history_starts_at() is None
    first = snapshot([card(C1, "Somme"), card(C2, "Drôme")], [("A", "incomplete")])
    store.write_board(batch_of(first, T1))
    initial = versions(store)
    # board, 2 lists, 1 label, 1 member, 2 cards (each with its checklists and items)
    assert initial == 7
    assert store.history_starts_at() == T1

    store.write_board(batch_of(first, T2))  # the same snapshot: nothing new
    assert versions(store) == initial

    second = snapshot(
        [card(C1, "Somme", idMembers=["m1"])],  # C2 gone, C1 gets a member
        [("A", "complete"), ("B", "incomplete")],  # one item ticked, one added
        list_name="Terminé",  # a list renamed
    )
    store.write_board(batch_of(second, T3))
    # new versions: the renamed list, C2 deleted, C1 (a member, an item ticked, one added)
    assert versions(store) == initial + 3

    then = store.mirror_at(T2)
    assert {c["id"]: c["deleted_at"] for c in then.cards} == {C1: None, C2: None}
    assert [(i["name"], i["state"]) for i in then.check_items] == [("A", "incomplete")]
    assert then.card_members == []
    assert {row["name"] for row in then.lists} == {"Départements", "Fait"}

    now = store.mirror_at(T4)
    assert {c["id"]: c["deleted_at"] for c in now.cards} == {C1: None, C2: T3}
    assert sorted((i["name"], i["state"]) for i in now.check_items) == [
        ("A", "complete"),
        ("B", "incomplete"),
    ]
    assert now.card_members == [{"card_id": C1, "member_id": "m1"}]
    assert {row["name"] for row in now.lists} == {"Départements", "Terminé"}
    current = store.read_mirror()
    assert len(now.check_items) == len(current.check_items) and len(now.cards) == len(current.cards)
    store.close()


def test_flags_at_a_moment_show_the_message_they_had_then(store_url: str) -> None:
    store = Store(store_url)
    store.record_evaluation(
        [("77", "TOO_MANY_PRIORITIES", "4 open")], {"77": ([], list("abcd"))}, [], T1
    )
    store.record_evaluation(
        [("77", "TOO_MANY_PRIORITIES", "5 open")], {"77": ([], list("abcde"))}, [], T2
    )
    store.record_evaluation([], {"77": ([], ["a"])}, [], T3)

    (at1,) = store.flags_at(T1)
    assert (at1["message"], at1["resolved_at"]) == ("4 open", None)
    (at2,) = store.flags_at(T2)
    assert (at2["message"], at2["resolved_at"]) == ("5 open", None)
    assert store.flags_at(T3) == []
    (resolved,) = store.flags_at(T4, resolved_since=T2)
    assert resolved["resolved_at"] == T3 and resolved["since"] == T1

    counts = store.priority_counts(T1, T4)
    assert [(row["at"], row["count"]) for row in counts] == [(T1, 4), (T2, 5), (T3, 1)]
    store.record_evaluation([], {"77": ([], ["a"])}, [], T4)  # unchanged: no new row
    assert store.count(m.PriorityCount) == 3
    assert [(r["since"], r["resolved_at"]) for r in store.flag_spans(T2, T4)] == [(T1, T3)]
    store.close()


def _config(connection) -> Config:  # type: ignore[no-untyped-def]
    config = Config()
    config.set_main_option("script_location", str(files("state") / "migrations"))
    config.attributes["connection"] = connection
    return config


def test_upgrade_to_0004_back_fills_history_from_the_current_state(store_url: str) -> None:
    engine = create_engine(store_url)
    with engine.begin() as connection:  # a store synced before 0004
        command.upgrade(_config(connection), "0003")
        for statement in (
            'INSERT INTO board (id, short_link, name, "desc", url, closed, role)'
            f" VALUES ('{BOARD}', 'oSmy09cz', 'lapins', '', 'u', false, 'consortium')",
            f"INSERT INTO board_list (id, board_id, name, closed, pos)"
            f" VALUES ('L1', '{BOARD}', 'Départements', false, 1.0)",
            'INSERT INTO card (id, board_id, list_id, name, "desc", closed, due_complete, url,'
            " short_link, id_short, pos, first_seen_at, updated_at, deleted_at)"
            f" VALUES ('{C1}', '{BOARD}', 'L1', 'Somme', 'Référent : Léa', false, false, 'u', 's',"
            f" 1, 1.0, '{T1}', '{T1}', NULL),"
            f" ('{C2}', '{BOARD}', 'L1', 'Drôme', '', false, false, 'u', 't', 2, 2.0, '{T1}',"
            f" '{T2}', '{T2}')",
            "INSERT INTO flag (department, code, message, since, last_seen_at)"
            f" VALUES ('26', 'NO_REFERENT', 'no referent', '{T1}', '{T1}')",
            "INSERT INTO governance_snapshot (department, referents, priority_actions, updated_at)"
            f" VALUES ('80', '[\"Léa\"]', '[\"A\", \"B\"]', '{T1}')",
            "INSERT INTO sync_state (board_ref, board_id, role, last_success_at)"
            f" VALUES ('oSmy09cz', '{BOARD}', 'consortium', '{T2}')",
        ):
            connection.execute(text(statement))
    engine.dispose()

    store = Store(store_url)  # upgrades 0003 -> head: creates and back-fills
    start = store.history_starts_at()
    assert start is not None and start >= T2
    with store.reader.begin() as connection:
        opened = history.rows_at(connection, None)
        for table_name, columns in history.TRACKED_TABLES.items():
            table = m.SQLModel.metadata.tables[table_name]
            current = connection.execute(select(*(table.c[c] for c in columns))).all()
            kept = [tuple(row[c] for c in columns) for row in opened.get(table_name, [])]
            assert sorted(map(repr, kept)) == sorted(map(repr, map(tuple, current))), table_name
    assert sorted(card["id"] for card in opened["card"]) == [C1, C2]
    then = store.mirror_at(start)
    assert {c["id"]: c["deleted_at"] for c in then.cards} == {C1: None, C2: T2}
    (flag,) = store.flags_at(start)
    assert (flag["department"], flag["message"]) == ("26", "no referent")
    assert [(r["department"], r["count"]) for r in store.priority_counts(T1, start)] == [("80", 2)]
    store.close()
