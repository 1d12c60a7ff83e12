"""Tests of syncd.report.strings: one table per language, flag messages in every language."""

from __future__ import annotations

from typing import Any

import pytest

from syncd.report import strings
from syncd.rules.governance import Finding, FlagCode


def _shape(table: Any) -> Any:
    if isinstance(table, dict):
        return {key: _shape(value) for key, value in table.items()}
    return type(table).__name__


def test_every_language_has_the_same_keys() -> None:
    assert _shape(strings.FR) == _shape(strings.EN)
    assert strings.LANGS == ("fr", "en") and strings.DEFAULT_LANG == "fr"


def test_every_flag_code_has_a_label_an_explanation_and_a_message() -> None:
    for lang in strings.LANGS:
        table = strings.strings_for(lang)
        for code in FlagCode:
            assert table["flag_labels"][code.value]
            assert table["flag_explanations"][code.value]
            assert code.value in table["flag_messages"]


def test_unknown_language_is_one_line() -> None:
    with pytest.raises(ValueError, match=r"^unknown language 'de' \(expected one of fr, en\)$"):
        strings.strings_for("de")


# Messages as the rules write them for realistic départements and titles.
FINDINGS = [
    Finding("77", FlagCode.TOO_MANY_PRIORITIES, "TOO_MANY_PRIORITIES", {"count": 4, "max": 3}),
    Finding("55", FlagCode.NO_REFERENT, "NO_REFERENT"),
    Finding(
        "95", FlagCode.NO_DASHBOARD, "NO_DASHBOARD", {"list": "Départements (tableau de bord)"}
    ),
    Finding("95", FlagCode.NO_DASHBOARD, "NO_DASHBOARD_NO_LIST"),
    Finding(
        "12",
        FlagCode.STALE_PRIORITY,
        "STALE_PRIORITY",
        {"title": "Aveyron – déployer l'agenda partagé (Rodez, Millau)", "days": 75},
    ),
    Finding(
        "62",
        FlagCode.STALE_PRIORITY,
        "STALE_PRIORITY_MANY",
        {
            "count": 3,
            "days": 30,
            "cards": (
                ("Relancer le CCAS d'Arras, puis Lens", 45),
                ("'Prise de RDV' – retours des secrétaires (3 days)", 31),
                ("Webinaire « motifs PMI »", 120),
            ),
        },
    ),
]


@pytest.mark.parametrize("finding", FINDINGS, ids=lambda f: f.template)
def test_a_stored_english_message_reads_back_in_french(finding: Finding) -> None:
    stored = finding.message  # what the store keeps and the JSON `message` carries
    assert strings.localised_flag_message(finding.code, stored, "fr") == finding.message_in("fr")
    assert strings.localised_flag_message(finding.code, stored, "en") == stored


def test_french_messages_read_as_french() -> None:
    by_template = {f.template: f.message_in("fr") for f in FINDINGS}
    assert by_template["TOO_MANY_PRIORITIES"] == "4 actions prioritaires ouvertes (max 3)"
    assert by_template["STALE_PRIORITY"] == (
        "carte prioritaire « Aveyron – déployer l'agenda partagé (Rodez, Millau) » "
        "inactive depuis 75 jours"
    )
    assert by_template["STALE_PRIORITY_MANY"] == (
        "3 cartes prioritaires inactives depuis plus de 30 jours : "
        "« Relancer le CCAS d'Arras, puis Lens » (45 jours), "
        "« 'Prise de RDV' – retours des secrétaires (3 days) » (31 jours), "
        "« Webinaire « motifs PMI » » (120 jours)"
    )


def test_a_message_of_no_known_shape_falls_back_to_the_french_label() -> None:
    assert (
        strings.localised_flag_message("NO_REFERENT", "nobody on the card", "fr")
        == "Aucun référent"
    )
    assert (
        strings.localised_flag_message("STALE_PRIORITY", "3 priority cards are idle", "fr")
        == "Action prioritaire inactive"
    )
    # a message of another code's shape is not borrowed
    assert (
        strings.localised_flag_message("NO_REFERENT", "4 open priority actions (max 3)", "fr")
        == "Aucun référent"
    )
