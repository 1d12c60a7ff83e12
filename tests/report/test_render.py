"""Tests of syncd.report.render: table, JSON, Markdown and HTML renderings (escaping too)."""

from __future__ import annotations

import copy
import html
import json
import re
import string
from typing import Any

import pytest

from syncd.report import render as r
from syncd.report import strings

XSS_TITLE = "<script>alert(1)</script>"
MD_TITLE = "a | b *c* [x](javascript:alert(1))"


def sample_report() -> dict[str, Any]:
    """A realistic report: one département over the limit, one without referent, one without
    dashboard card, a hostile priority-action title, changes since a date and a Figma file."""
    return {
        "generated_at": "2026-11-30T08:00:00Z",
        "since": "2026-11-01T00:00:00Z",
        "lang": "fr",
        "max_priority_actions": 3,
        "boards": [
            {
                "id": "b-cons",
                "name": "lapins-consortium-départements",
                "role": "consortium",
                "url": "https://trello.com/b/oSmy09cz",
                "last_synced_at": "2026-11-30T07:55:00Z",
                "cards": 42,
            },
            {
                "id": "b-prod",
                "name": "product-lapin",
                "role": "product",
                "url": "javascript:alert(2)",
                "last_synced_at": "2026-11-30T07:56:00Z",
                "cards": 130,
            },
        ],
        "departments": [
            {
                "code": "26",
                "name": "Drôme",
                "dashboard_card": {"id": "c26", "url": "https://trello.com/c/aaa26/drome"},
                "referents": ["Léa Dubois"],
                "priority_actions": [
                    {
                        "title": "Former les agents de Valence",
                        "source": "checklist",
                        "card_id": "c26",
                        "url": "https://trello.com/c/aaa26/drome",
                    },
                ],
                "topics": ["Déploiement PMI"],
                "linked_cards": {"consortium": 3, "product": 1},
                "flags": [],
            },
            {
                "code": "62",
                "name": "Pas-de-Calais",
                "dashboard_card": {"id": "c62", "url": "https://trello.com/c/aaa62/pas-de-calais"},
                "referents": [],
                "priority_actions": [
                    {
                        "title": MD_TITLE,
                        "source": "checklist",
                        "card_id": "c62",
                        "url": "javascript:alert(1)",
                    },
                ],
                "topics": [],
                "linked_cards": {"consortium": 2},
                "flags": ["NO_REFERENT"],
            },
            {
                "code": "77",
                "name": "Seine-et-Marne",
                "dashboard_card": {"id": "c77", "url": "https://trello.com/c/aaa77/seine-et-marne"},
                "referents": ["Camille Martin", "Jean Petit"],
                "priority_actions": [
                    {
                        "title": XSS_TITLE,
                        "source": "checklist",
                        "card_id": "c77",
                        "url": "https://trello.com/c/aaa77/seine-et-marne",
                    },
                    {
                        "title": "Relancer le CCAS de Meaux",
                        "source": "checklist",
                        "card_id": "c77",
                        "url": "https://trello.com/c/aaa77/seine-et-marne",
                    },
                    {
                        "title": "Paramétrer les motifs PMI",
                        "source": "card",
                        "card_id": "p1",
                        "url": "https://trello.com/c/ppp1/motifs",
                    },
                    {
                        "title": "Webinaire secrétaires",
                        "source": "card",
                        "card_id": "p2",
                        "url": "https://trello.com/c/ppp2/webinaire",
                    },
                ],
                "topics": ["Agenda partagé", "Import des usagers"],
                "linked_cards": {"consortium": 5, "product": 2},
                "flags": ["TOO_MANY_PRIORITIES"],
            },
            {
                "code": "93",
                "name": "Seine-Saint-Denis",
                "dashboard_card": None,
                "referents": [],
                "priority_actions": [],
                "topics": [],
                "linked_cards": {},
                "flags": ["NO_DASHBOARD", "NO_REFERENT"],
            },
        ],
        "flags": [
            {
                "department": "77",
                "code": "TOO_MANY_PRIORITIES",
                "message": "4 open priority actions (max 3)",
                "since": "2026-11-20T09:30:00Z",
                "resolved_at": None,
            },
            {
                "department": "62",
                "code": "NO_REFERENT",
                "message": "no referent",
                "since": "2026-11-10T10:00:00Z",
                "resolved_at": None,
            },
            {
                "department": "93",
                "code": "NO_DASHBOARD",
                "message": "no dashboard card in list Départements",
                "since": "2026-11-02T08:00:00Z",
                "resolved_at": None,
            },
            {
                "department": "93",
                "code": "NO_REFERENT",
                "message": "no referent",
                "since": "2026-11-02T08:00:00Z",
                "resolved_at": None,
            },
            {
                "department": "26",
                "code": "STALE_PRIORITY",
                "message": "priority card 'Former les agents de Valence' inactive for 45 days",
                "since": "2026-10-01T08:00:00Z",
                "resolved_at": "2026-11-15T12:00:00Z",
            },
        ],
        "changes": [
            {
                "at": "2026-11-20T09:30:00Z",
                "board": "b-cons",
                "card_id": "c77",
                "kind": "priority_added",
                "summary": "77 : action prioritaire ajoutée « Webinaire secrétaires »",
            },
            {
                "at": "2026-11-15T12:00:00Z",
                "board": "b-prod",
                "card_id": "p9",
                "kind": "moved",
                "summary": "« Export CSV des RDV » déplacée : En cours → Fait",
            },
        ],
        "figma": {
            "files": [
                {
                    "key": "JhZCwwrmaw2NYrITCj8QAK",
                    "name": "RDV-Solidarités — maquettes",
                    "last_modified": "2026-11-29T16:00:00Z",
                    "version": "4711",
                    "linked_cards": 3,
                    "broken_links": [
                        {
                            "card_id": "p3",
                            "card_title": "Écran de prise de RDV",
                            "node_id": "12:34",
                            "reason": "missing",
                        }
                    ],
                    "newer_designs": [
                        {
                            "card_id": "p1",
                            "card_title": "Paramétrer les motifs PMI",
                            "card_url": "https://trello.com/c/ppp1/motifs",
                            "version_created_at": "2026-11-28T10:00:00Z",
                            "card_last_activity": "2026-11-01T10:00:00Z",
                        }
                    ],
                    "open_comments": [
                        {
                            "node_id": "1:2",
                            "author": "Nina",
                            "message": "Le bouton <b>Valider</b> est trop petit",
                            "created_at": "2026-11-27T14:00:00Z",
                        }
                    ],
                    "rate_limited_until": None,
                },
            ]
        },
    }


def empty_report() -> dict[str, Any]:
    return {
        "generated_at": "2026-11-30T08:00:00Z",
        "boards": [],
        "departments": [],
        "flags": [],
        "changes": [],
        "figma": {"files": []},
    }


# ----------------------------------------------------------------------------- helpers


def test_format_date_is_readable() -> None:
    assert r.format_date("2026-11-30T08:00:00Z") == "30/11/2026 08:00 UTC"
    assert r.format_date("2026-11-30T09:00:00+01:00", "fr") == "30/11/2026 08:00 UTC"
    assert r.format_date("2026-11-30T08:00:00Z", "en") == "2026-11-30 08:00 UTC"
    assert r.format_date(None) == "—"
    assert r.format_date("not a date") == "not a date"


def test_safe_url_only_accepts_http() -> None:
    assert r.safe_url("https://trello.com/c/x") == "https://trello.com/c/x"
    assert r.safe_url("http://example.org/a?b=1") == "http://example.org/a?b=1"
    for bad in (
        "javascript:alert(1)",
        " JavaScript:alert(1)",
        "data:text/html,x",
        "//evil",
        "https://x\n.org",
        'https://x.org/"onmouseover=',
        None,
        3,
        "ftp://x.org",
    ):
        assert r.safe_url(bad) is None, bad


def test_md_escape_neutralises_markup() -> None:
    escaped = r.md_escape(MD_TITLE + "\nnext <b> `code` _u_")
    assert "\n" not in escaped
    assert "<" not in escaped and ">" not in escaped
    assert re.search(r"(?<!\\)[|*_\[\]`]", escaped) is None
    assert r.md_link("x", "javascript:alert(1)") == "x"
    assert r.md_link("a]b", "https://t.org/c") == "[a\\]b](https://t.org/c)"


def test_unknown_format_and_language() -> None:
    with pytest.raises(ValueError):
        r.render(sample_report(), "pdf")
    with pytest.raises(ValueError):
        r.render(sample_report(), "html", lang="de")


def test_render_does_not_mutate_report() -> None:
    report = sample_report()
    before = copy.deepcopy(report)
    for fmt in r.FORMATS:
        r.render(report, fmt)
    assert report == before


# ----------------------------------------------------------------------------- table


def test_table_content_and_order() -> None:
    out = r.render(sample_report(), "table")
    assert "Rapport de dérive" in out and "30/11/2026 08:00 UTC" in out
    for text in (
        "TOO_MANY_PRIORITIES",
        "NO_REFERENT",
        "NO_DASHBOARD",
        "4/3",
        "1/3",
        "Référents",
        "Signalements",
        "depuis le 20/11/2026 09:30 UTC",
        "Trop d'actions prioritaires",
        "Changements depuis le 01/11/2026",
        "Figma",
        "Camille Martin",
    ):
        assert text in out, text
    rows = [line for line in out.splitlines() if re.match(r"(26|62|77|93)\s{2}", line)]
    assert [row[:2] for row in rows] == ["62", "77", "93", "26"]
    assert "\x1b[" not in out
    assert all(len(line) <= 100 for line in out.splitlines())


def test_table_width_and_color() -> None:
    report = sample_report()
    report["departments"][2]["priority_actions"][1]["title"] = "Très long titre " * 20
    out = r.render_table(report, width=60)
    assert all(len(line) <= 60 for line in out.splitlines())
    assert "…" in out
    colored = r.render(report, "table", color=True)
    assert "\x1b[" in colored


def test_table_strips_terminal_escapes() -> None:
    report = sample_report()
    report["departments"][0]["priority_actions"][0]["title"] = "evil\x1b[2Jtitle\nnext"
    out = r.render_table(report)
    assert "\x1b" not in out
    assert "evil [2Jtitle next" in out


# ----------------------------------------------------------------------------- json


def test_json_round_trips() -> None:
    report = sample_report()
    out = r.render(report, "json")
    assert out.endswith("\n")
    assert json.loads(out) == report
    assert "Drôme" in out  # ensure_ascii=False


# ----------------------------------------------------------------------------- markdown


def _table_rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("|")]


def test_markdown_content_order_and_escaping() -> None:
    out = r.render(sample_report(), "markdown")
    assert out.startswith("# Rapport de dérive — 30/11/2026 08:00 UTC\n")
    for text in (
        "TOO_MANY_PRIORITIES",
        "NO_DASHBOARD",
        "**4/3**",
        "## Signalements",
        "## Changements depuis le 01/11/2026 00:00 UTC",
        "## Figma",
        "Référents",
        "[Seine-et-Marne](https://trello.com/c/aaa77/seine-et-marne)",
        "Trop d'actions prioritaires",
        "20/11/2026 09:30 UTC",
        "15/11/2026 12:00 UTC",
        "Maquettes plus récentes que la carte",
        "Liens cassés",
        "Commentaires ouverts",
    ):
        assert text in out, text
    # flagged départements first, then the others, in the département table
    dept_rows = [row for row in _table_rows(out) if re.match(r"\| (\*\*)?\d", row)][:4]
    codes = [re.match(r"\| (?:\*\*)?(\w+)", row).group(1) for row in dept_rows]
    assert codes == ["62", "77", "93", "26"]
    # every table row keeps its column count: a '|' in a title cannot add a cell
    for row in _table_rows(out):
        cells = re.split(r"(?<!\\)\|", row)
        assert len(cells) in (6, 7), row  # 4 or 5 columns
    header_cells = {
        len(re.split(r"(?<!\\)\|", row)) for row in _table_rows(out) if row.startswith("| Code")
    }
    assert header_cells == {7}
    assert "a \\| b \\*c\\* \\[x\\](javascript:alert(1))" in out
    assert re.search(r"(?<!\\)\]\(javascript:", out) is None
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "<b>" not in out


def _english_phrases() -> set[str]:
    """Every English phrase of the string table (template fields cut out) that French lacks."""
    french = " ".join(_leaves(strings.FR))
    phrases = set()
    for text in _leaves(strings.EN):
        for literal, *_ in string.Formatter().parse(text):
            for chunk in re.split(r"[:;,.()“”'’]", literal):
                chunk = chunk.strip()
                if len(chunk) >= 8 and " " in chunk and chunk not in french:
                    phrases.add(chunk)
    return phrases


def _leaves(table: Any) -> list[str]:
    if isinstance(table, dict):
        return [leaf for value in table.values() for leaf in _leaves(value)]
    return [table] if isinstance(table, str) else []


@pytest.mark.parametrize("fmt", ["table", "markdown", "html"])
def test_french_report_has_no_english_sentence(fmt: str) -> None:
    report = sample_report()
    out = html.unescape(r.render(report, fmt, width=400))
    phrases = _english_phrases()
    assert "open priority actions" in phrases and "inactive for" in phrases  # the test can fail
    assert [phrase for phrase in phrases if phrase in out] == []
    for french in (
        "4 actions prioritaires ouvertes (max 3)",
        "carte prioritaire « Former les agents de Valence » inactive depuis 45 jours",
        "aucune carte tableau de bord dans la liste Départements",
        "nœud introuvable dans le fichier",
    ):
        assert french in out, french
    if fmt != "table":  # the table does not list the boards
        assert "(produit, 130 cartes" in out


def test_markdown_english() -> None:
    out = r.render(sample_report(), "markdown", lang="en")
    assert out.startswith("# Drift report — 2026-11-30 08:00 UTC")
    for text in ("## Flags", "Too many priority actions", "Referents", "## Changes since"):
        assert text in out, text
    assert "Rapport de dérive" not in out


def test_markdown_without_since_has_no_changes_section() -> None:
    report = sample_report()
    report.pop("since")
    report["changes"] = []
    assert "Changements" not in r.render_markdown(report)


# ----------------------------------------------------------------------------- html


def test_html_content_and_structure() -> None:
    out = r.render(sample_report(), "html")
    assert out.startswith("<!DOCTYPE html>")
    assert '<html lang="fr">' in out
    for text in (
        "Rapport de dérive",
        "Départements signalés",
        "Actions prioritaires ouvertes",
        "Référents",
        "TOO_MANY_PRIORITIES",
        "NO_REFERENT",
        "NO_DASHBOARD",
        "4/3",
        "Trop d'actions prioritaires",
        "Changements depuis le 01/11/2026 00:00 UTC",
        "<details>",
        "<svg",
        "RDV-Solidarités — maquettes",
        "Liens cassés",
    ):
        assert text in html.unescape(out), text
    flagged = re.findall(r'<tr class="flagged" data-code="(\w+)"', out)
    assert flagged == ["62", "77", "93"]
    assert 'data-code="26"' in out
    assert re.search(r'<tr class="flagged" data-code="26"', out) is None
    # the bar of 77 (4 > 3) is red, the max marker is drawn
    assert re.search(r'<g class="row flagged over" data-code="77">', out)
    assert 'class="max"' in out


def test_html_explains_each_flag_in_the_reports_language() -> None:
    out = html.unescape(r.render(sample_report(), "html"))
    assert "title=\"Personne n'est désigné comme référent" in out
    english = html.unescape(r.render(sample_report(), "html", lang="en"))
    assert 'title="Nobody is named referent' in english
    assert "4 open priority actions (max 3)" in english


def test_html_escapes_user_text_and_links() -> None:
    out = r.render(sample_report(), "html")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "<script" not in out.lower()
    assert "&lt;b&gt;Valider&lt;/b&gt;" in out
    assert 'href="javascript' not in out.lower()
    assert "javascript:alert(1)" not in re.findall(r'href="([^"]*)"', out)
    hrefs = re.findall(r'href="([^"]*)"', out)
    assert hrefs and all(h.startswith(("https://", "http://")) for h in hrefs)
    # self-contained: the only remote URLs are link targets
    for match in re.finditer(r"https?://", out):
        assert out[max(0, match.start() - 6) : match.start()] == 'href="', match
    assert "@import" not in out and "<link" not in out and "url(" not in out


def test_html_english() -> None:
    out = r.render_html(sample_report(), lang="en")
    assert '<html lang="en">' in out
    assert "Drift report" in out and "Flagged departments" in out
    assert "Rapport de dérive" not in out


def test_report_lang_key_is_the_default() -> None:
    report = sample_report()
    report["lang"] = "en"
    assert "Drift report" in r.render(report, "html")
    assert "Rapport de dérive" in r.render(report, "html", lang="fr")


# ----------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("fmt", r.FORMATS)
def test_empty_report_renders(fmt: str) -> None:
    out = r.render(empty_report(), fmt)
    assert out.strip()
    if fmt == "json":
        assert json.loads(out) == empty_report()
    elif fmt != "table":
        assert "Aucun signalement" in out


@pytest.mark.parametrize("fmt", r.FORMATS)
def test_minimal_report_tolerates_missing_keys(fmt: str) -> None:
    report = {
        "generated_at": "2026-11-30T08:00:00Z",
        "departments": [{"code": "2A", "name": "Corse-du-Sud", "flags": ["NO_REFERENT"]}],
    }
    out = r.render(report, fmt)
    assert "2A" in out
