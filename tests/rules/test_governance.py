"""Tests of syncd.rules.governance: dashboard cards, links, priorities, referents, findings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from syncd.rules.governance import (
    CardFacts,
    CheckItemFacts,
    ChecklistFacts,
    DepartmentStatus,
    Evaluation,
    Finding,
    FlagCode,
    Link,
    ListFacts,
    PriorityAction,
    Rules,
    evaluate,
    normalise_name,
    parse_referents,
)

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
CONS = "board-consortium"
PROD = "board-product"

LISTS = [
    ListFacts("l-archive", CONS, "Archives 2024", closed=True, pos=0.5),
    ListFacts("l-dash", CONS, "Départements", closed=False, pos=1.0),
    ListFacts("l-suivi", CONS, "Suivi", closed=False, pos=2.0),
    ListFacts("l-somme", CONS, "Somme", closed=False, pos=3.0),
    ListFacts("p-backlog", PROD, "Backlog", closed=False, pos=0.1),
    ListFacts("p-93", PROD, "Seine-Saint-Denis", closed=False, pos=1.0),
]


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def checklist(name: str, *items: tuple[str, bool]) -> ChecklistFacts:
    return ChecklistFacts(
        id=f"cl-{name}",
        name=name,
        items=tuple(CheckItemFacts(f"it-{n}", n, done) for n, done in items),
    )


def card(
    card_id: str,
    name: str,
    *,
    list_id: str = "l-dash",
    board: str = CONS,
    labels: Sequence[str] = (),
    members: Sequence[str] = (),
    checklists: Sequence[ChecklistFacts] = (),
    custom_fields: Mapping[str, str] | None = None,
    desc: str = "",
    closed: bool = False,
    deleted: bool = False,
    active: datetime | None = None,
) -> CardFacts:
    return CardFacts(
        id=card_id,
        board_id=board,
        board_role="consortium" if board == CONS else "product",
        name=name,
        desc=desc,
        url=f"https://trello.com/c/{card_id}",
        list_id=list_id,
        labels=tuple(labels),
        members=tuple(members),
        checklists=tuple(checklists),
        custom_fields=dict(custom_fields or {}),
        closed=closed,
        deleted=deleted,
        date_last_activity=active if active is not None else ago(1),
    )


def run(cards: Sequence[CardFacts], **rules: Any) -> Evaluation:
    return evaluate(cards, LISTS, Rules(**rules), NOW)


def status(evaluation: Evaluation, code: str) -> DepartmentStatus:
    found = [d for d in evaluation.departments if d.code == code]
    assert len(found) == 1, [d.code for d in evaluation.departments]
    return found[0]


def finding_codes(evaluation: Evaluation, department: str) -> list[str]:
    return [f.code for f in evaluation.findings if f.department == department]


def reasons(evaluation: Evaluation, card_id: str) -> set[tuple[str, str]]:
    return {(lk.department, lk.reason) for lk in evaluation.links if lk.card_id == card_id}


# --------------------------------------------------------------------------- the full board


def board() -> list[CardFacts]:
    return [
        card(
            "d77",
            "CD77 - Seine-et-Marne",
            members=["Camille Martin"],
            labels=["Prioritaire"],  # the dashboard card itself is never a priority card
            checklists=[
                checklist(
                    "Actions prioritaires",
                    ("Former les agents", False),
                    ("Ouvrir les MDS", True),
                    ("Relancer la DSI", False),
                ),
                checklist("Sujets importants", ("Budget 2027", True), ("Recrutement", False)),
                checklist("Divers", ("Hors sujet", False)),
            ],
        ),
        card(
            "d80",
            "Somme",
            custom_fields={"Référent territorial": "Jean Dupont; Léa Roux et Marc Petit"},
            desc="Contexte du CD.\nRéférente territoriale : Awa Diallo\nRéférent: Jean Dupont\n",
        ),
        card(
            "d93",
            "93 - Seine-Saint-Denis",
            checklists=[
                checklist(
                    "actions PRIORITAIRES", ("A", False), ("B", False), ("C", False), ("D", True)
                ),
            ],
            active=ago(2),
        ),
        card("d93-old", "Seine-Saint-Denis", active=ago(20)),
        card("d62", "Pas-de-Calais", closed=True, members=["Archivé"]),
        card("d26", "Drôme", deleted=True, members=["Supprimé"]),
        card("d-none", "Comment lire ce tableau"),
        card("c-suivi", "Point mensuel Manche", list_id="l-suivi"),
        card("c-somme-list", "Comité de pilotage", list_id="l-somme"),
        card(
            "p-77-stale",
            "Export CD77 en CSV",
            board=PROD,
            list_id="p-backlog",
            labels=["prioritaire"],
            active=ago(45),
        ),
        card(
            "p-93-bug",
            "Bug d'affichage (93)",
            board=PROD,
            list_id="p-93",
            labels=["Prioritaire", "Seine-Saint-Denis"],
        ),
        card("p-93-list", "Relance SMS", board=PROD, list_id="p-93"),
        card(
            "p-somme",
            "Relance des agents",
            board=PROD,
            list_id="p-backlog",
            labels=["Somme", "Prioritaire"],
            active=ago(5),
        ),
        card(
            "p-somme-archived",
            "Ancien export Somme (80)",
            board=PROD,
            list_id="p-backlog",
            labels=["Prioritaire"],
            closed=True,
            active=ago(90),
        ),
        card(
            "p-77-deleted",
            "Seine-et-Marne refonte",
            board=PROD,
            list_id="p-backlog",
            labels=["Prioritaire"],
            deleted=True,
        ),
        card(
            "p-prose",
            "[Usager] la somme des RDV affichée est fausse",
            board=PROD,
            list_id="p-backlog",
            labels=["Prioritaire"],
        ),
    ]


@pytest.fixture
def evaluation() -> Evaluation:
    return run(board(), departments=("62", "77", "2a"))


def test_departments_listed_and_sorted(evaluation: Evaluation) -> None:
    assert [d.code for d in evaluation.departments] == ["2A", "62", "77", "80", "93"]
    assert status(evaluation, "77").name == "Seine-et-Marne"
    assert status(evaluation, "2A").name == "Corse-du-Sud"


def test_dashboard_cards(evaluation: Evaluation) -> None:
    assert status(evaluation, "77").dashboard_card_id == "d77"
    assert status(evaluation, "77").dashboard_card_url == "https://trello.com/c/d77"
    assert status(evaluation, "80").dashboard_card_id == "d80"
    assert status(evaluation, "93").dashboard_card_id == "d93"  # the most recently active
    assert status(evaluation, "62").dashboard_card_id is None  # archived
    assert status(evaluation, "2A").dashboard_card_id is None
    assert "26" not in {d.code for d in evaluation.departments}  # deleted


def test_priority_actions(evaluation: Evaluation) -> None:
    s77 = status(evaluation, "77")
    assert s77.priority_actions == [
        PriorityAction("Former les agents", "checklist", "d77", "https://trello.com/c/d77"),
        PriorityAction("Relancer la DSI", "checklist", "d77", "https://trello.com/c/d77"),
        PriorityAction(
            "Export CD77 en CSV", "card", "p-77-stale", "https://trello.com/c/p-77-stale"
        ),
    ]
    s80 = status(evaluation, "80")
    assert [(a.title, a.source) for a in s80.priority_actions] == [("Relance des agents", "card")]
    s93 = status(evaluation, "93")
    assert [(a.title, a.source) for a in s93.priority_actions] == [
        ("A", "checklist"),
        ("B", "checklist"),
        ("C", "checklist"),
        ("Bug d'affichage (93)", "card"),
    ]


def test_topics(evaluation: Evaluation) -> None:
    assert status(evaluation, "77").topics == ["Budget 2027", "Recrutement"]
    assert status(evaluation, "80").topics == []


def test_referents(evaluation: Evaluation) -> None:
    assert status(evaluation, "77").referents == ["Camille Martin"]
    assert status(evaluation, "80").referents == [
        "Jean Dupont",
        "Léa Roux",
        "Marc Petit",
        "Awa Diallo",
    ]
    assert status(evaluation, "93").referents == []


def test_findings(evaluation: Evaluation) -> None:
    assert finding_codes(evaluation, "77") == ["STALE_PRIORITY"]
    assert finding_codes(evaluation, "80") == []
    assert finding_codes(evaluation, "93") == ["TOO_MANY_PRIORITIES", "NO_REFERENT"]
    assert finding_codes(evaluation, "62") == ["NO_DASHBOARD"]
    assert finding_codes(evaluation, "2A") == ["NO_DASHBOARD"]
    by_key = {(f.department, f.code): f.message for f in evaluation.findings}
    assert by_key[("93", "TOO_MANY_PRIORITIES")] == "4 open priority actions (max 3)"
    assert by_key[("93", "NO_REFERENT")] == "no referent"
    assert by_key[("62", "NO_DASHBOARD")] == "no dashboard card in list Départements"
    assert (
        by_key[("77", "STALE_PRIORITY")]
        == "priority card 'Export CD77 en CSV' inactive for 45 days"
    )
    assert status(evaluation, "93").findings == [
        f for f in evaluation.findings if f.department == "93"
    ]


def test_links(evaluation: Evaluation) -> None:
    assert reasons(evaluation, "d77") == {("77", "dashboard"), ("77", "name")}
    assert reasons(evaluation, "d93-old") == {("93", "name")}
    assert reasons(evaluation, "d62") == {("62", "name")}  # archived cards still link
    assert reasons(evaluation, "d26") == set()  # deleted cards never link
    assert reasons(evaluation, "p-77-deleted") == set()
    assert reasons(evaluation, "d-none") == set()
    assert reasons(evaluation, "c-suivi") == set()  # ambiguous name in prose
    assert reasons(evaluation, "c-somme-list") == {("80", "list")}
    assert reasons(evaluation, "p-77-stale") == {("77", "name")}
    assert reasons(evaluation, "p-93-bug") == {("93", "name"), ("93", "list"), ("93", "label")}
    assert reasons(evaluation, "p-93-list") == {("93", "list")}
    assert reasons(evaluation, "p-somme") == {("80", "label")}
    assert reasons(evaluation, "p-somme-archived") == {("80", "name")}
    assert reasons(evaluation, "p-prose") == set()
    link = next(lk for lk in evaluation.links if lk.card_id == "p-93-bug" and lk.reason == "label")
    assert link == Link("p-93-bug", "product", "93", "label", "Seine-Saint-Denis")
    assert len(evaluation.links) == len(
        {(lk.card_id, lk.department, lk.reason) for lk in evaluation.links}
    )


def test_linked_cards_counts_distinct_cards(evaluation: Evaluation) -> None:
    assert status(evaluation, "93").linked_cards == {"consortium": 2, "product": 2}
    assert status(evaluation, "80").linked_cards == {"consortium": 2, "product": 2}
    assert status(evaluation, "77").linked_cards == {"consortium": 1, "product": 1}
    assert status(evaluation, "2A").linked_cards == {"consortium": 0, "product": 0}


# --------------------------------------------------------------------------- rules one by one


def test_no_dashboard_when_the_board_is_empty() -> None:
    evaluation = run([], departments=("77",))
    assert [(d.code, d.dashboard_card_id) for d in evaluation.departments] == [("77", None)]
    assert evaluation.findings == [Finding("77", FlagCode.NO_DASHBOARD, "NO_DASHBOARD_NO_LIST")]
    assert evaluation.findings[0].message == (
        "no dashboard card: the consortium board has no open list"
    )
    assert evaluation.findings[0].message_in("fr") == (
        "aucune carte tableau de bord : le tableau du consortium n'a aucune liste ouverte"
    )


def test_named_department_list_is_compared_normalised() -> None:
    cards = [card("s", "Somme", list_id="l-suivi", members=["Ana"])]
    assert run(cards).departments == []  # default list is "Départements"
    evaluation = run(cards, department_list="  SUIVI ")
    assert status(evaluation, "80").dashboard_card_id == "s"
    missing = run(cards, department_list="Tableau de bord", departments=("80",))
    assert missing.findings == [
        Finding("80", FlagCode.NO_DASHBOARD, "NO_DASHBOARD", {"list": "Tableau de bord"})
    ]


def test_dashboard_list_default_skips_closed_lists_and_other_boards() -> None:
    cards = [
        card("a", "Somme", list_id="l-archive", members=["Ana"]),
        card("b", "Aveyron", list_id="p-backlog", board=PROD, members=["Ana"]),
    ]
    evaluation = run(cards)
    assert evaluation.departments == []
    assert reasons(evaluation, "b") == {("12", "name")}


def test_dashboard_title_with_code_and_name_and_ambiguous_fallback() -> None:
    cards = [
        card("a", "CD 2A - Corse-du-Sud", members=["Ana"]),
        card("b", "[Manche] tableau de bord", members=["Ana"]),
        card("c", "Aveyron et Lozère", members=["Ana"]),  # names two: not a dashboard card
    ]
    evaluation = run(cards)
    assert [(d.code, d.dashboard_card_id) for d in evaluation.departments] == [
        ("2A", "a"),
        ("50", "b"),
    ]
    assert reasons(evaluation, "c") == {("12", "name"), ("48", "name")}


def test_completed_items_and_other_checklists_do_not_count() -> None:
    cards = [
        card(
            "d",
            "Somme",
            members=["Ana"],
            checklists=[
                checklist("Actions prioritaires", ("fait", True), ("à faire", False)),
                checklist("Actions  Prioritaires", ("deuxième liste", False)),
                checklist("Actions secondaires", ("autre", False)),
            ],
        )
    ]
    s = status(run(cards), "80")
    assert [a.title for a in s.priority_actions] == ["à faire", "deuxième liste"]


def test_too_many_priorities_boundary() -> None:
    items = [(f"item {i}", False) for i in range(3)]
    cards = [
        card("d", "Somme", members=["Ana"], checklists=[checklist("Actions prioritaires", *items)])
    ]
    assert finding_codes(run(cards), "80") == []
    assert finding_codes(run(cards, max_priority_actions=2), "80") == ["TOO_MANY_PRIORITIES"]
    assert run(cards, max_priority_actions=2).findings[0].message == (
        "3 open priority actions (max 2)"
    )


def test_priority_label_and_checklist_names_are_configurable() -> None:
    cards = [
        card("d", "Somme", members=["Ana"], checklists=[checklist("Urgences", ("x", False))]),
        card("p", "Somme (80) export", board=PROD, list_id="p-backlog", labels=["Urgent"]),
    ]
    s = status(run(cards, priority_checklist="urgences", priority_label="URGENT"), "80")
    assert [(a.title, a.source) for a in s.priority_actions] == [
        ("x", "checklist"),
        ("Somme (80) export", "card"),
    ]
    assert status(run(cards), "80").priority_actions == []


def test_stale_priority_with_fixed_now() -> None:
    cards = [
        card("d", "Somme", members=["Ana"]),
        card(
            "p30",
            "[Somme] pile 30 jours",
            board=PROD,
            list_id="p-backlog",
            labels=["Prioritaire"],
            active=ago(30),
        ),
        card(
            "p31",
            "[Somme] 31 jours",
            board=PROD,
            list_id="p-backlog",
            labels=["Prioritaire"],
            active=ago(31),
        ),
        card(
            "p40",
            "[Somme] 40 jours",
            board=PROD,
            list_id="p-backlog",
            labels=["Prioritaire"],
            active=ago(40),
        ),
        card("pnone", "[Somme] jamais", board=PROD, list_id="p-backlog", labels=["Prioritaire"]),
        card(
            "parch",
            "[Somme] archivée",
            board=PROD,
            list_id="p-backlog",
            labels=["Prioritaire"],
            active=ago(400),
            closed=True,
        ),
    ]
    cards[4] = cards[4]._replace(date_last_activity=None)  # card() defaults None to "yesterday"
    evaluation = run(cards, max_priority_actions=10)
    stale = [f for f in evaluation.findings if f.code == "STALE_PRIORITY"]
    assert [f.message for f in stale] == [
        "2 priority cards inactive for more than 30 days: "
        "'[Somme] 31 jours' (31 days), '[Somme] 40 jours' (40 days)"
    ]
    assert [f.message_in("fr") for f in stale] == [
        "2 cartes prioritaires inactives depuis plus de 30 jours : "
        "« [Somme] 31 jours » (31 jours), « [Somme] 40 jours » (40 jours)"
    ]
    assert finding_codes(run(cards, stale_after_days=60, max_priority_actions=10), "80") == []
    only_one = run(cards, stale_after_days=35, max_priority_actions=10)
    assert [f.message for f in only_one.findings] == [
        "priority card '[Somme] 40 jours' inactive for 40 days"
    ]


def test_stale_accepts_naive_now_as_utc() -> None:
    cards = [
        card("d", "Somme", members=["Ana"]),
        card(
            "p",
            "[Somme] x",
            board=PROD,
            list_id="p-backlog",
            labels=["Prioritaire"],
            active=ago(31),
        ),
    ]
    evaluation = evaluate(cards, LISTS, Rules(), NOW.replace(tzinfo=None))
    assert finding_codes(evaluation, "80") == ["STALE_PRIORITY"]


def test_two_dashboard_cards_most_recent_wins_and_ignored_when_archived() -> None:
    cards = [
        card("old", "Somme", members=["Ancien"], active=ago(10)),
        card("new", "SOMME (80)", members=["Nouveau"], active=ago(3)),
        card("newest", "Somme", members=["Archivé"], active=ago(1), closed=True),
    ]
    s = status(run(cards), "80")
    assert (s.dashboard_card_id, s.referents) == ("new", ["Nouveau"])


def test_referent_sources_dedupe_and_order() -> None:
    cards = [
        card(
            "d",
            "Somme",
            members=["Camille Martin", "jdupont"],
            custom_fields={"référent TERRITORIAL": "Jean Dupont, camille martin", "Autre": "X"},
            desc=(
                "Notes\n"
                "referent: Zoé Blanc\n"
                "  - **Référents** : Paul Noir et Lina Vert\n"
                "Le référent est Marc (phrase, pas une ligne de référent)\n"
                "REFERENTE TERRITORIALE : Inès Gris\n"
            ),
        )
    ]
    assert status(run(cards), "80").referents == [
        "Camille Martin",
        "jdupont",
        "Jean Dupont",
        "Zoé Blanc",
        "Paul Noir",
        "Lina Vert",
        "Inès Gris",
    ]


def test_empty_referent_field_and_no_members_raise_no_referent() -> None:
    cards = [card("d", "Somme", custom_fields={"Référent territorial": ""}, desc="Rien.")]
    evaluation = run(cards)
    assert status(evaluation, "80").referents == []
    assert finding_codes(evaluation, "80") == ["NO_REFERENT"]


def test_links_on_both_boards_by_label_list_and_name() -> None:
    cards = [
        card("c-label", "Comité", list_id="l-suivi", labels=["Manche"]),
        card("c-name", "Bilan Pas-de-Calais", list_id="l-suivi"),
        card("c-list", "Comité", list_id="l-somme"),
        card("p-label", "Export", board=PROD, list_id="p-backlog", labels=["CD77"]),
        card("p-name", "Export [Var]", board=PROD, list_id="p-backlog"),
        card("p-list", "Export", board=PROD, list_id="p-93"),
        card(
            "p-deleted", "Export Aveyron", board=PROD, list_id="p-93", labels=["Var"], deleted=True
        ),
        card("p-label-prose", "Export", board=PROD, list_id="p-backlog", labels=["somme des RDV"]),
    ]
    evaluation = run(cards)
    assert reasons(evaluation, "c-label") == {("50", "label")}
    assert reasons(evaluation, "c-name") == {("62", "name")}
    assert reasons(evaluation, "c-list") == {("80", "list")}
    assert reasons(evaluation, "p-label") == {("77", "label")}
    assert reasons(evaluation, "p-name") == {("83", "name")}
    assert reasons(evaluation, "p-list") == {("93", "list")}
    assert reasons(evaluation, "p-deleted") == set()
    assert reasons(evaluation, "p-label-prose") == set()
    roles = {lk.card_id: lk.board_role for lk in evaluation.links}
    assert roles["c-label"] == "consortium" and roles["p-label"] == "product"


def test_priority_card_must_be_linked_and_open() -> None:
    cards = [
        card("d", "Somme", members=["Ana"]),
        card("p-unlinked", "Export", board=PROD, list_id="p-backlog", labels=["Prioritaire"]),
        card("p-other", "Export Aveyron", board=PROD, list_id="p-backlog", labels=["Prioritaire"]),
        card(
            "p-archived",
            "[Somme] vieux",
            board=PROD,
            list_id="p-backlog",
            labels=["Prioritaire"],
            closed=True,
        ),
        card(
            "p-deleted",
            "[Somme] supprimé",
            board=PROD,
            list_id="p-backlog",
            labels=["Prioritaire"],
            deleted=True,
        ),
    ]
    assert status(run(cards), "80").priority_actions == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Référent : Camille Martin", ["Camille Martin"]),
        ("referent: A; B", ["A", "B"]),
        ("RÉFÉRENTE TERRITORIALE : Léa", ["Léa"]),
        ("Référents territoriaux : A et B, C", ["A", "B", "C"]),
        ("Un référent : pas en début de ligne", []),
        ("Référentiel : v2", []),
    ],
)
def test_parse_referents(text: str, expected: list[str]) -> None:
    assert parse_referents(text) == expected


def test_normalise_name() -> None:
    assert normalise_name("  Actions   PRIORITAIRES ") == "actions prioritaires"
    assert normalise_name("Référent territorial") == normalise_name("referent TERRITORIAL")
