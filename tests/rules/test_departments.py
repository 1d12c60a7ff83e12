"""Tests of syncd.rules.departments: the 101 départements, the title and text matchers."""

from __future__ import annotations

import csv
import itertools
import re
from pathlib import Path

import pytest

from syncd.rules.departments import (
    AMBIGUOUS_CODES,
    NAME_DECISIONS,
    Department,
    DepartmentMatch,
    _words_pattern,
    all_departments,
    by_code,
    match_departments,
    match_title_exact,
)

CSV_PATH = Path(__file__).resolve().parents[2] / "syncd" / "rules" / "data" / "departements.csv"
with CSV_PATH.open(encoding="utf-8", newline="") as handle:
    ROWS = list(csv.DictReader(handle))

ALL = [(row["DEP"], row["LIBELLE"], row["NCC"]) for row in ROWS]
AMBIGUOUS_WORDS = {code for code in AMBIGUOUS_CODES if code != "974"}


def codes(text: str) -> list[str]:
    return [m.code for m in match_departments(text)]


# --------------------------------------------------------------------------- data


def test_101_departments_sorted_and_unique() -> None:
    deps = all_departments()
    assert len(deps) == 101
    assert [d.code for d in deps] == sorted(d.code for d in deps)
    assert len({d.code for d in deps}) == 101
    assert deps[0] == Department("01", "Ain")
    assert deps[-1] == Department("976", "Mayotte")
    assert {"2A", "2B", "971", "974"} <= {d.code for d in deps}
    assert "20" not in {d.code for d in deps}


def test_package_data_is_the_shared_copy() -> None:
    raw = CSV_PATH.read_bytes()
    assert b"\r\n" in raw
    assert raw.decode("utf-8").startswith("DEP,REG,CHEFLIEU,TNCC,NCC,NCCENR,LIBELLE")


@pytest.mark.parametrize(
    "words",
    [
        [d.code.lower() for d in all_departments()],
        ["971", "972", "01", "1", "a", "ab", "b", "abc"],
        ["-", "]", "^", "\\", "a-", "a]"],
    ],
)
def test_a_words_pattern_matches_as_the_plain_alternation(words: list[str]) -> None:
    """`_words_pattern` (the codes in the matcher's patterns) matches what the plain alternation
    of the words, longest first, matches: the same words (every piece of every text of up to 4
    characters over their alphabet) and the same first try at every position, so the same tries
    in the same order when a pattern around it backtracks."""
    longest_first = sorted(words, key=lambda w: (-len(w), w))
    plain = re.compile("(?:" + "|".join(map(re.escape, longest_first)) + ")")
    short = re.compile("(?:" + _words_pattern(words) + ")")
    alphabet = sorted({char for word in words for char in word} | {"x"})
    for size in range(5):
        for text in map("".join, itertools.product(alphabet, repeat=size)):
            for start in range(size + 1):
                first = plain.match(text, start)
                again = short.match(text, start)
                assert (again and again.group()) == (first and first.group()), (text, start)
                for end in range(start, size + 1):
                    expected = bool(plain.fullmatch(text, start, end))
                    assert bool(short.fullmatch(text, start, end)) == expected, (text, start)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("77", "Seine-et-Marne"),
        (" 77 ", "Seine-et-Marne"),
        ("2a", "Corse-du-Sud"),
        ("2B", "Haute-Corse"),
        ("7", "Ardèche"),
        ("07", "Ardèche"),
        ("974", "La Réunion"),
        ("975", None),
        ("20", None),
        ("077", None),
        ("", None),
        ("Somme", None),
    ],
)
def test_by_code(given: str, expected: str | None) -> None:
    dep = by_code(given)
    assert (dep.name if dep else None) == expected


# --------------------------------------------------------------------------- every name, every code


@pytest.mark.parametrize(("code", "name", "ncc"), ALL, ids=[row[0] for row in ALL])
def test_every_name_is_an_exact_title(code: str, name: str, ncc: str) -> None:
    assert match_title_exact(name) == code
    assert match_title_exact(ncc) == code
    assert match_title_exact(name.lower()) == code
    assert match_title_exact(f"  {name} ({code}) ") == code
    assert match_title_exact(f"{code} - {name}") == code
    assert match_title_exact(f"CD{code} – {ncc}") == code
    assert match_title_exact(f"[{name}]") == code
    assert codes(name) == [code]  # a title that is the name alone counts, ambiguous or not


@pytest.mark.parametrize(("code", "name", "ncc"), ALL, ids=[row[0] for row in ALL])
def test_every_name_in_a_sentence_with_a_cue(code: str, name: str, ncc: str) -> None:
    assert codes(f"Point d'étape {name} ({code}) : relance des agents") == [code]
    assert codes(f"Point d'étape {ncc} ({code}) : relance des agents") == [code]
    assert codes(f"Déploiement [{name}] semaine prochaine") == [code]
    assert codes(f"Bilan conseil départemental {name} 2026") == [code]
    assert codes(f"Ouverture {code} - {name} à prévoir") == [code]


@pytest.mark.parametrize(("code", "name", "ncc"), ALL, ids=[row[0] for row in ALL])
def test_names_in_prose_only_when_not_ambiguous(code: str, name: str, ncc: str) -> None:
    expected = [] if code in AMBIGUOUS_WORDS else [code]
    assert codes(f"Relance des agents : {name} cette semaine") == expected
    assert codes(f"relance des agents : {ncc} cette semaine") == expected


@pytest.mark.parametrize("code", [row[0] for row in ALL])
def test_every_code_in_explicit_forms(code: str) -> None:
    for text in (
        f"Relance ({code})",
        f"Relance [{code}]",
        f"Relance ( {code} ) des agents",
        f"CD{code} relance",
        f"CD {code} relance",
        f"CD-{code} relance",
        f"cd{code.lower()} relance",
        f"{code} - relance des agents",
        f"{code} – relance des agents",
        f"Relance du département {code}",
        f"Relance dep {code}",
        f"Relance dép. {code}",
    ):
        assert codes(text) == [code], text
        assert match_departments(text)[0].reason == "code"


@pytest.mark.parametrize("code", [row[0] for row in ALL])
def test_bare_codes_in_prose_are_no_department(code: str) -> None:
    for text in (
        f"Relance {code} agents",
        f"Corriger #{code}",
        f"Version {code}.1",
        f"Payer {code} €",
        f"Passer à {code} créneaux",
        f"Taux {code}%",
        f"Sprint {code} : rétrospective",
    ):
        assert codes(text) == [], text


# --------------------------------------------------------------------------- variants


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Seine-Saint-Denis", "93"),
        ("seine st denis", "93"),
        ("Seine St. Denis", "93"),
        ("Seine-St-Denis", "93"),
        ("SEINE SAINT DENIS", "93"),
        ("seine_saint_denis", "93"),
        ("93 - Seine-Saint-Denis", "93"),
        ("CD93 - Seine-Saint-Denis", "93"),
        ("Corse-du-Sud (2A)", "2A"),
        ("Corse du Sud", "2A"),
        ("Haute-Corse (2b)", "2B"),
        ("La Réunion", "974"),
        ("la reunion", "974"),
        ("Réunion", "974"),
        ("LA RÉUNION", "974"),
        ("Île de La Réunion", "974"),
        ("Côtes d'Armor", "22"),
        ("Côtes d’Armor", "22"),
        ("cotes-darmor", "22"),
        ("Cotes-d-Armor", "22"),
        ("Val d'Oise", "95"),
        ("Val-d’Oise (95)", "95"),
        ("Drôme", "26"),
        ("drome", "26"),
        ("Somme", "80"),
        ("La Somme", "80"),
        ("Le Nord", "59"),
        ("L'Ain", "01"),
        ("Les Landes", "40"),
        ("Département du Nord", "59"),
        ("Somme 🚀", "80"),
        ("Territoire-de-Belfort", "90"),
        ("77", "77"),
        ("(77)", "77"),
        ("CD77", "77"),
    ],
)
def test_title_variants(text: str, code: str) -> None:
    assert match_title_exact(text) == code


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "#77",
        "26/11",
        "v2.0",
        "2.6.1",
        "77 €",
        "95%",
        "14h",
        "12 RDV",
        "Seine",
        "Corse",
        "Rhin",
        "Savoie et Haute-Savoie",
        "77 - Seine-Saint-Denis",  # code and name disagree
        "Somme des RDV",
        "Réunion du 26/11",
        "Nord-Est",
        "Maintenance",
        "975",
        "20",
    ],
)
def test_not_an_exact_title(text: str) -> None:
    assert match_title_exact(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bilan Seine-Saint-Denis et seine st denis", ["93"]),
        ("Formation des agents de Seine St Denis", ["93"]),
        ("Retour d'expérience Pas-de-Calais / Aveyron", ["62", "12"]),
        ("Calvados, Côtes-d'Armor et Yvelines : relances", ["14", "22", "78"]),
        ("Hauts-de-Seine : export", ["92"]),
        ("Val-d'Oise : export", ["95"]),
        ("Pyrénées-Atlantiques et Hautes-Pyrénées", ["64", "65"]),
        ("Pyrénées-Orientales", ["66"]),
        ("Deploy 62 Pas-de-Calais", ["62"]),
        ("Déploiement à La Réunion", ["974"]),
        ("Point CD 77 / CD-93 / CD2A", ["77", "93", "2A"]),
        ("Relance département n°62", ["62"]),
        ("Accès agents de l'Aveyron", ["12"]),
        ("Corse-du-Sud (2A) et Haute-Corse (2B)", ["2A", "2B"]),
        ("Guadeloupe (971), Martinique, Guyane et Mayotte", ["971", "972", "973", "976"]),
    ],
)
def test_names_and_codes_in_sentences(text: str, expected: list[str]) -> None:
    assert codes(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Haute-Loire", ["43"]),
        ("Loire-Atlantique", ["44"]),
        ("Indre-et-Loire", ["37"]),
        ("Maine-et-Loire", ["49"]),
        ("Saône-et-Loire", ["71"]),
        ("Haute-Saône", ["70"]),
        ("Loir-et-Cher", ["41"]),
        ("Eure-et-Loir", ["28"]),
        ("Lot-et-Garonne", ["47"]),
        ("Tarn-et-Garonne", ["82"]),
        ("Seine-et-Marne", ["77"]),
        ("Val-de-Marne", ["94"]),
        ("Haute-Marne", ["52"]),
        ("Seine-Maritime", ["76"]),
        ("Charente-Maritime", ["17"]),
        ("Haute-Vienne", ["87"]),
        ("Haute-Savoie", ["74"]),
        ("Meurthe-et-Moselle", ["54"]),
        ("Bas-Rhin et Haut-Rhin", ["67", "68"]),
        ("Bouches-du-Rhône", ["13"]),
        ("Alpes-de-Haute-Provence et Hautes-Alpes", ["04", "05"]),
        ("Savoie et Haute-Savoie", ["73", "74"]),
        ("Haute-Vienne et Vienne (86)", ["87", "86"]),
        ("Seine-et-Marne et département de la Marne", ["77", "51"]),
    ],
)
def test_longest_name_wins(text: str, expected: list[str]) -> None:
    assert codes(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Point Auvergne-Rhône-Alpes",
        "Réseau Nord-Pas-de-Calais",
        "Pays de la Loire : bilan",
        "Centre-Val de Loire",
    ],
)
def test_region_names_are_not_departments(text: str) -> None:
    assert codes(text) == []


# --------------------------------------------------------------------------- ambiguous words


@pytest.mark.parametrize(
    "text",
    [
        "la somme des RDV",
        "Somme des créneaux ouverts",
        "un lot de tests",
        "Lot 2 : migration",
        "en manche courte",
        "le var est null",
        "Nord-Est: pas de données",
        "au nord de la ville",
        "cher usager",
        "Cher usager, votre RDV",
        "ain't broken",
        "Allier les deux écrans",
        "à l'aube du lancement",
        "Claude et Aude valident",
        "semaine creuse",
        "il faut que tout vienne du back",
        "Marne-la-Vallée : test de charge",
        "Réunion du 26/11",
        "la réunion de lancement",
        "Réunion de lancement avec les référents",
        "les landes du produit",
        "Aude a validé la maquette",
        "Une bannière orne la page d'accueil",
    ],
)
def test_ambiguous_words_in_prose_are_no_department(text: str) -> None:
    assert codes(text) == []


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("[Somme] relance des agents", "80"),
        ("(Somme) relance", "80"),
        ("Somme (80) : relance", "80"),
        ("Somme [80]", "80"),
        ("80 - Somme", "80"),
        ("Somme - 80 : relance", "80"),
        ("Déploiement dans le département de la Somme", "80"),
        ("Déploiement département du Nord", "59"),
        ("CD de la Manche : bilan", "50"),
        ("Conseil départemental de la Vienne", "86"),
        ("conseil général du Cher", "18"),
        ("département de l'Ain", "01"),
        ("Département des Landes", "40"),
        ("Réunion (974) : bilan", "974"),
        ("Bilan île de la Réunion", "974"),
        ("CD Manche", "50"),
        ("[VAR] bug export", "83"),
    ],
)
def test_ambiguous_words_with_a_cue(text: str, code: str) -> None:
    assert codes(text) == [code]


def test_ambiguous_code_must_be_its_own() -> None:
    assert codes("Somme (62)") == ["62"]  # (62) names 62; Somme is not cued by another code


def test_ambiguous_list_is_explicit() -> None:
    names = {by_code(code).name for code in AMBIGUOUS_CODES}  # type: ignore[union-attr]
    assert names == {
        "Ain",
        "Allier",
        "Aube",
        "Aude",
        "Cher",
        "Creuse",
        "Landes",
        "Lot",
        "Manche",
        "Nord",
        "Orne",
        "Somme",
        "Var",
        "Vienne",
        "La Réunion",
    }


def test_every_one_word_name_was_decided_with_a_reason() -> None:
    one_word = {row[0] for row in ALL if re.fullmatch(r"[^\s'\-]+", row[1])}
    assert set(NAME_DECISIONS) == one_word
    for code, (_needs_cue, why) in NAME_DECISIONS.items():
        assert why.startswith(by_code(code).name + ": ")  # type: ignore[union-attr]


# --------------------------------------------------------------------------- rivers: proper nouns


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Loire – bilan du trimestre", ["42"]),
        ("Tarn : comité de suivi", ["81"]),
        ("Oise et Aisne : réunion commune", ["60", "02"]),
        ("Meuse et Oise : on verra", ["55", "60"]),
        ("Point d'étape Doubs / Jura", ["25", "39"]),
        ("Relance du CCAS de l'Eure", ["27"]),
        ("Gard – formation des secrétaires de PMI", ["30"]),
        ("GERS : ouverture du service aux usagers", ["32"]),
        ("Indre — convention signée", ["36"]),
        ("Comité de pilotage Marne, 3e trimestre", ["51"]),
        ("la Loire : retours des agents d'accueil", ["42"]),
        ("Bilan Tarn et Gers", ["81", "32"]),
        ("Visio Isère, Drôme et Ardèche", ["38", "26", "07"]),
        ("Eure-et-Loir et Eure : mutualiser la formation", ["28", "27"]),
        ("Haute-Loire puis Loire : même prestataire", ["43", "42"]),
        ("Démo à l'équipe de la Meuse", ["55"]),
    ],
)
def test_rivers_are_proper_nouns_and_link_in_prose(text: str, expected: list[str]) -> None:
    assert codes(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Déploiement à Nogent-sur-Marne",
        "Auvers-sur-Oise : retour terrain",
        "CCAS de Saint-Cyr-sur-Loire : formation",
        "Loire-sur-Rhône : atelier usagers",
        "Marne-la-Vallée : test de charge",
        "Verdun-sur-Meuse, permanence du mardi",
        "Champigny-sur-Marne et Nogent-sur-Marne",
    ],
)
def test_a_river_in_a_town_name_is_the_town(text: str) -> None:
    assert codes(text) == []


def test_a_town_beside_its_departement_keeps_the_departement() -> None:
    assert codes("Val-de-Marne : Champigny-sur-Marne et Nogent-sur-Marne") == ["94"]
    assert codes("Déploiement sur Loire-Atlantique") == ["44"]  # "sur" without hyphen: no town


# --------------------------------------------------------------------------- no department at all

PRODUCT_TITLES = [
    "[Agent] Export des RDV en CSV",
    "[Usager] la somme des RDV affichée est fausse",
    "Maintenance base de données",
    "Corriger #77 : crash à l'ouverture",
    "Release v2.0.1",
    "Réunion du 26/11",
    "Passer à 12 créneaux par jour",
    "un lot de tests e2e",
    "Nord-Est: pas de données",
    "Mettre à jour Rails 7.1 et Ruby 3.3",
    "Notifications SMS : 95% de délivrabilité",
    "Payer la facture de 77 €",
    "Atelier du 2026-11-26 à 14h",
    "Atelier du 26/11/2026 à 14h30",
    "3 agents ne reçoivent pas les mails",
    "Afficher 12 RDV par page",
    "[Bug] le var est null dans le formulaire",
    "Cher usager : revoir le modèle de mail",
    "Manche courte : refonte du header",
    "Variable d'environnement manquante",
    "Claude : accès admin",
    "Ajouter un champ « motif » au plan de RDV",
    "Version 2.6.1 : notes de version",
    "Réunion de lancement avec les référents",
    "la réunion des partenaires du 12/01",
    "Allier les deux écrans de réservation",
    "Semaine creuse : planifier la migration",
    "À l'aube du lancement : checklist",
    "Tri par nom de l'usager (A→Z)",
    "Webhook Trello : vérifier la signature HMAC",
    "Sprint 46 : rétrospective",
    "Lot 2 : migration des comptes",
    "Rendez-vous annulés non notifiés",
    "Export PDF du planning hebdomadaire",
    "Améliorer l'accessibilité RGAA (niveau AA)",
    "Passer la limite d'upload à 10 Mo",
    "Traduction des SMS en anglais",
    "Recherche : ignorer les accents",
    "Mot de passe oublié : lien expiré après 24h",
    "Phase 2A : migration des données",
    "Pourquoi 971 RDV en attente ?",
    "Dashboard : somme des créneaux ouverts",
    "Nord-Ouest / Sud-Est : carte des permanences",
    "Taux d'honoration 77%",
    "Mise en production le 13/12 à 18h",
    "Logs : 404 sur /api/v1/rdvs",
    "Supprimer les comptes inactifs depuis 24 mois",
    "ain't broken, don't fix it",
    "Réunion hebdo produit",
    "Gestion du cache (TTL 60 s)",
    "Seine : aucun lien",
]


@pytest.mark.parametrize("title", PRODUCT_TITLES)
def test_product_titles_name_no_department(title: str) -> None:
    assert match_departments(title) == []
    assert match_title_exact(title) is None


def test_corpus_is_large_enough() -> None:
    assert len(PRODUCT_TITLES) >= 40


# --------------------------------------------------------------------------- result shape


def test_match_keeps_original_text_and_order() -> None:
    assert match_departments("ﬁche Drôme puis CD 77") == [
        DepartmentMatch("26", "name", "Drôme"),
        DepartmentMatch("77", "code", "CD 77"),
    ]
    assert match_departments("Seine-et-Marne (77), puis 77 encore") == [
        DepartmentMatch("77", "name", "Seine-et-Marne"),
    ]
    assert match_departments("(93) Seine-Saint-Denis")[0] == DepartmentMatch("93", "code", "(93)")


def test_ten_thousand_titles() -> None:
    """Correct over a large mixed set (the time it takes is bench/bench_report.py's business)."""
    titles = [f"{title} {i}" for i in range(200) for title in PRODUCT_TITLES][:9000]
    titles += [f"CD{row[0]} - {row[1]} : relance {i}" for i in range(10) for row in ALL][:1000]
    assert len(titles) == 10_000
    found = sum(len(match_departments(title)) for title in titles)
    assert found == 1000
