"""The texts of time travel, trends and the weekly digest, one table per language.

Kept in one place until they join the report's string table (`syncd/report/strings.py`); the
renderings merge them with the report's own strings. French is the default.
"""

from __future__ import annotations

from typing import Any

FR: dict[str, Any] = {
    # -- time travel and trends (report and dashboard) ---------------------------------
    "at_banner": "État au {at} (reconstitué depuis l'historique)",
    "at_title": "État au",
    "at_label": "Voir le rapport à une date (UTC)",
    "at_submit": "Afficher",
    "at_now": "Revenir à aujourd'hui",
    "trend": "Tendance (12 semaines)",
    "trend_title": "{code} {name} : actions prioritaires {priorities} ; signalements {flags}",
    "trend_legend_priorities": "actions prioritaires ouvertes",
    "trend_legend_flags": "signalements ouverts",
    "flags_over_time": "Signalements ouverts, semaine par semaine",
    "flags_over_time_desc": "Nombre de signalements ouverts à la fin de chacune des 12 "
    "dernières semaines ISO (la semaine en cours : maintenant).",
    "unknown": "inconnu",
    "week": "semaine {week}",
    # -- the weekly digest ---------------------------------------------------------------
    "digest_title": "syncd — synthèse de la semaine, du {start} au {end}",
    "digest_period": "Du {start} au {end} (heure de {zone}).",
    "digest_opened": "Signalements ouverts",
    "digest_resolved": "Signalements résolus",
    "digest_still_open": "Signalements toujours ouverts",
    "digest_open_since": "ouvert depuis le {since}",
    "digest_added": "Actions prioritaires ajoutées",
    "digest_completed": "Actions prioritaires terminées",
    "digest_referents": "Référents modifiés",
    "digest_nothing": "Rien de nouveau cette semaine.",
    "digest_none": "aucun",
    "digest_link": "Tableau de bord : {url}",
}

EN: dict[str, Any] = {
    "at_banner": "As of {at} (rebuilt from history)",
    "at_title": "As of",
    "at_label": "See the report at a date (UTC)",
    "at_submit": "Show",
    "at_now": "Back to now",
    "trend": "Trend (12 weeks)",
    "trend_title": "{code} {name}: priority actions {priorities}; flags {flags}",
    "trend_legend_priorities": "open priority actions",
    "trend_legend_flags": "open flags",
    "flags_over_time": "Open flags, week by week",
    "flags_over_time_desc": "Number of open flags at the end of each of the last 12 ISO weeks "
    "(the current week: now).",
    "unknown": "unknown",
    "week": "week {week}",
    "digest_title": "syncd — weekly digest, {start} to {end}",
    "digest_period": "From {start} to {end} ({zone} time).",
    "digest_opened": "Flags opened",
    "digest_resolved": "Flags resolved",
    "digest_still_open": "Flags still open",
    "digest_open_since": "open since {since}",
    "digest_added": "Priority actions added",
    "digest_completed": "Priority actions completed",
    "digest_referents": "Referents changed",
    "digest_nothing": "Nothing new this week.",
    "digest_none": "none",
    "digest_link": "Dashboard: {url}",
}

TEXTS: dict[str, dict[str, Any]] = {"fr": FR, "en": EN}


def texts_for(lang: str) -> dict[str, Any]:
    """The texts of `lang` (French when unknown)."""
    return TEXTS.get(lang, FR)
