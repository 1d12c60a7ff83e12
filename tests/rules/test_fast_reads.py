"""What makes a report fast changes nothing it says (issue 15): the lean read of the mirror gives
the facts of the whole one, on both backends; a remembered title match is the match; the
collector pause always ends as it began."""

from __future__ import annotations

import gc
import threading

import pytest

from state.store import (
    CARD_TABLES,
    CONSORTIUM_CARD_COLUMNS,
    CONSORTIUM_CARD_TABLES,
    RULES_COLUMNS,
    RulesMirror,
    Store,
)
from syncd.rules.departments import (
    MEMO_SIZE,
    departments_named,
    match_departments,
    match_title_exact,
)
from syncd.rules.facts import collection_paused, facts_from_rows, stored_facts
from syncd.trello.rows import snapshot_batch

FIGMA = "https://www.figma.com/file/FigmaKey00Tests/x?node-id=1-2"


def _snapshot(board_id: str = "b" * 24, prefix: str = "") -> dict:
    """A consortium-like board; `prefix` makes every id its own (another board's copy)."""

    def own(value: str) -> str:
        return prefix + value

    cards = [
        {
            "id": own(f"c{n:023d}"),
            "idList": own("l2" if n % 3 else "l1"),
            "name": ("Somme", "CD62 relance", "la somme des RDV", "Drôme (26)", "Var")[n % 5],
            "desc": f"Référent : Agent {n}\n{FIGMA}" if n % 4 == 0 else "",
            "pos": 100 - n,
            "closed": n % 7 == 0,
            "idLabels": [own("lp")] if n % 2 else [own("lp"), own("l93")],
            "idMembers": [own("m1")] if n % 3 == 0 else [],
            "customFieldItems": [{"idCustomField": own("f1"), "value": {"text": f"Réf {n}"}}],
            "dateLastActivity": f"2026-11-{1 + n % 28:02d}T08:00:00.000Z",
        }
        for n in range(30)
    ]
    checklists = [
        {
            "id": own(f"k{n:023d}"),
            "idCard": own(f"c{n:023d}"),
            "name": "Actions prioritaires",
            "pos": 2 - n % 2,
            "checkItems": [
                {
                    "id": own(f"i{n:021d}{i:02d}"),
                    "name": f"Action {i}",
                    "state": "complete",
                    "pos": i,
                }
                for i in range(3)
            ],
        }
        for n in range(0, 30, 2)
    ]
    return {
        "id": board_id,
        "shortLink": "oSmy09cz",
        "name": "consortium",
        "lists": [
            {"id": own("l1"), "name": "Départements", "pos": 1},
            {"id": own("l2"), "name": "Seine-Saint-Denis", "pos": 2},
        ],
        "labels": [{"id": own("lp"), "name": "Prioritaire"}, {"id": own("l93"), "name": "93"}],
        "members": [{"id": own("m1"), "fullName": "Camille Martin", "username": "cm"}],
        "customFields": [{"id": own("f1"), "name": "Référent territorial", "type": "text"}],
        "cards": cards,
        "checklists": checklists,
    }


def test_the_lean_read_gives_the_facts_of_the_whole_mirror(store_url: str) -> None:
    store = Store(store_url)
    try:
        snapshot = _snapshot()
        store.write_board(
            snapshot_batch(
                snapshot,
                board_ref="oSmy09cz",
                role="consortium",
                observed_at="2026-11-30T08:00:00.000Z",
            )
        )
        del snapshot["cards"][3:6]  # gone from Trello: kept, marked deleted
        store.write_board(
            snapshot_batch(
                snapshot,
                board_ref="oSmy09cz",
                role="consortium",
                observed_at="2026-12-01T08:00:00.000Z",
            )
        )
        product = _snapshot(board_id="p" * 24, prefix="p")  # the same cards on a product board
        store.write_board(
            snapshot_batch(
                product,
                board_ref="BiT8tx09",
                role="product",
                observed_at="2026-12-01T08:00:00.000Z",
            )
        )
        whole = store.read_mirror()
        consortium_cards = {row["id"] for row in whole.cards if row["board_id"] == "b" * 24}
        with store.rules_mirror() as lean:
            tables = {name: list(getattr(lean, name)) for name in RULES_COLUMNS}
        for name, (_model, columns) in RULES_COLUMNS.items():
            rows, every = tables[name], getattr(whole, name)
            if name in CONSORTIUM_CARD_TABLES:  # a product card's: read by no rule
                assert any(row["card_id"] not in consortium_cards for row in every), name
                every = [row for row in every if row["card_id"] in consortium_cards]
            if name == "cards":  # nor its description
                blank = dict.fromkeys(CONSORTIUM_CARD_COLUMNS)
                every = [row if row["id"] in consortium_cards else row | blank for row in every]
            assert len(rows) == len(every) > 0, name
            if name in CARD_TABLES:  # tuples in RULES_COLUMNS order, streamed
                expected = sorted(tuple(row[c] for c in columns) for row in every)
                assert sorted(rows) == expected, name
            else:
                assert all(tuple(row) == columns for row in rows), name
        facts, reference = stored_facts(store), facts_from_rows(RulesMirror.from_rows(whole))
        assert sorted(facts.cards) == sorted(reference.cards)  # in no particular order
        assert (facts.lists, facts.degraded) == (reference.lists, reference.degraded)
        assert sum(card.deleted for card in facts.cards) == 3
        assert any(card.checklists and card.custom_fields for card in facts.cards)
        product_facts = [card for card in facts.cards if card.board_role == "product"]
        assert len(product_facts) == 30 and any(card.labels for card in product_facts)
        assert not any(card.checklists or card.members or card.desc for card in product_facts)
    finally:
        store.close()


TEXTS = (
    "Seine-Saint-Denis",
    "93 - Seine-Saint-Denis",
    "la somme des RDV",
    "[Somme] export",
    "Nogent-sur-Marne : accueil",
    "Déploiement à La Réunion",
    "CD62 paramétrage",
    "Réunion du 12/11",
    "",
)


def test_a_remembered_match_is_the_match() -> None:
    for text in TEXTS * 2:
        assert departments_named(text) == departments_named.__wrapped__(text)
        assert match_departments(text) == list(departments_named.__wrapped__(text))
    first = match_departments("Drôme (26) et Isère")
    first.append(first[0])  # a caller's list is its own: the remembered answer is untouched
    assert len(match_departments("Drôme (26) et Isère")) == 2
    assert match_title_exact("Somme") == "80" and match_title_exact("la somme des RDV") is None
    assert departments_named.cache_info().maxsize == MEMO_SIZE >= 100_000


def test_the_collector_pause_ends_as_it_began() -> None:
    assert gc.isenabled()
    with collection_paused():
        assert not gc.isenabled()
        with collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer step still runs
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collection_paused():
        raise RuntimeError("a report that fails")
    assert gc.isenabled()
    gc.disable()
    try:
        with collection_paused():
            pass
        assert not gc.isenabled()  # off before, off after
    finally:
        gc.enable()


def test_concurrent_pauses_share_one() -> None:
    inside, release = threading.Barrier(3), threading.Event()

    def step() -> None:
        with collection_paused():
            inside.wait()
            release.wait()

    threads = [threading.Thread(target=step) for _ in range(2)]
    for thread in threads:
        thread.start()
    inside.wait()
    assert not gc.isenabled()
    release.set()
    for thread in threads:
        thread.join()
    assert gc.isenabled()
