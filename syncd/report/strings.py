"""Every text a person reads, one table per language (`FR`, `EN`), and the few functions over it.

Owns the UI strings of the renderings (table, Markdown, HTML) and of the login pages, the change
sentences of the report's ``changes``, the flag labels, explanations and messages, and the words
for board roles, sources and broken-link reasons. French is the default: team leads read
French; codes, JSON keys, logs and the CLI stay English. Write-back comments and the digest take
their sentences from here too, so a report is in one language from end to end.

Flag messages are written once per language as templates with named fields (`flag_message`).
The store keeps the English message of a flag (the JSON ``message``, for scripts); its text in
another language is rebuilt from it by reading the English template backwards
(`localised_flag_message`), so no second copy of the rule is needed. A message that does not
match any template (hand-edited row, older wording) falls back to the flag's label: never a
sentence in the wrong language.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from functools import cache
from typing import Any

__all__ = [
    "DEFAULT_LANG",
    "EN",
    "FR",
    "LANGS",
    "STRINGS",
    "flag_label",
    "flag_message",
    "localised_flag_message",
    "strings_for",
]

DEFAULT_LANG = "fr"

FR: dict[str, Any] = {
    # -- the report page ---------------------------------------------------------------
    "title": "Rapport de dérive",
    "generated_at": "Généré le",
    "departments": "Départements",
    "department": "Département",
    "flagged_departments": "Départements signalés",
    "open_flags": "Signalements ouverts",
    "flags": "Signalements",
    "flag": "Signalement",
    "no_flags": "Aucun signalement",
    "code": "Code",
    "name": "Nom",
    "priority_actions": "Actions prioritaires ouvertes",
    "priority_actions_short": "Actions prio.",
    "max_priority": "maximum {max} actions prioritaires par département",
    "referents": "Référents",
    "no_referent": "aucun",
    "topics": "Sujets importants",
    "topics_count": "{n} sujet(s)",
    "summary_label": "Synthèse",
    "flagged_legend": "Les départements signalés sont surlignés et listés en premier.",
    "footer": "Rapport produit par syncd à partir des tableaux Trello et des fichiers Figma.",
    "linked_cards": "Cartes liées",
    "dashboard": "Carte tableau de bord",
    "no_dashboard": "pas de carte",
    "since": "depuis le",
    "since_col": "Depuis le",
    "resolved_at": "Résolu le",
    "open": "ouvert",
    "resolved": "résolu",
    "changes": "Changements",
    "changes_since": "Changements depuis le {since}",
    "no_changes": "Aucun changement",
    "degraded": (
        "Lecture partielle : {count} carte(s) ont une valeur enregistrée illisible ; elles sont "
        "affichées avec des valeurs neutres jusqu'à la prochaine synchronisation complète."
    ),
    "at": "Date",
    "board": "Tableau",
    "kind": "Type",
    "summary": "Résumé",
    "card": "Carte",
    "boards": "Tableaux",
    "last_synced": "dernière synchro",
    "cards": "cartes",
    "never": "jamais",
    "no_departments": "Aucun département",
    "chart_title": "Actions prioritaires ouvertes par département",
    "chart_desc": "Barres horizontales : actions prioritaires ouvertes de chaque département ; "
    "la ligne verticale marque le maximum ({max}), les barres au-delà sont en rouge.",
    "legend_ok": "dans la limite",
    "legend_over": "au-delà du maximum",
    "legend_max": "maximum",
    "figma": "Figma",
    "figma_files": "Fichiers Figma",
    "no_figma": "Aucun fichier Figma suivi",
    "version": "version",
    "last_modified": "modifié le",
    "broken_links": "Liens cassés",
    "newer_designs": "Maquettes plus récentes que la carte",
    "open_comments": "Commentaires ouverts",
    "node": "Nœud",
    "reason": "Raison",
    "author": "Auteur",
    "message": "Message",
    "version_created_at": "Version du",
    "card_last_activity": "Dernière activité de la carte",
    "rate_limited_until": "Quota Figma atteint jusqu'au {until}",
    "date_format": "{d:%d/%m/%Y %H:%M} UTC",
    "none": "—",
    "colon": " : ",
    # -- words for values the report carries as codes ------------------------------------
    "roles": {"consortium": "consortium", "product": "produit"},
    "source": {"checklist": "checklist", "card": "carte", "label": "carte"},
    "reasons": {
        "missing": "nœud introuvable dans le fichier",
        "deleted": "nœud supprimé du fichier",
    },
    # -- flags -------------------------------------------------------------------------
    "flag_labels": {
        "TOO_MANY_PRIORITIES": "Trop d'actions prioritaires",
        "NO_REFERENT": "Aucun référent",
        "NO_DASHBOARD": "Pas de carte tableau de bord",
        "STALE_PRIORITY": "Action prioritaire inactive",
    },
    "flag_explanations": {
        "TOO_MANY_PRIORITIES": "Le département a plus d'actions prioritaires ouvertes que le "
        "maximum fixé : éléments non cochés de la checklist des actions prioritaires de sa "
        "carte tableau de bord et cartes ouvertes portant l'étiquette prioritaire.",
        "NO_REFERENT": "Personne n'est désigné comme référent : aucun membre sur la carte "
        "tableau de bord, champ référent vide et aucune ligne « Référent : » dans sa "
        "description.",
        "NO_DASHBOARD": "Le département est attendu dans le consortium mais n'a pas de carte "
        "dans la liste des départements.",
        "STALE_PRIORITY": "Une carte prioritaire liée au département n'a connu aucune activité "
        "depuis plus longtemps que le délai fixé.",
    },
    "flag_messages": {
        "TOO_MANY_PRIORITIES": "{count} actions prioritaires ouvertes (max {max})",
        "NO_REFERENT": "ni membre, ni champ référent, ni ligne « Référent : » sur la carte",
        "NO_DASHBOARD": "aucune carte tableau de bord dans la liste {list}",
        "NO_DASHBOARD_NO_LIST": "aucune carte tableau de bord : le tableau du consortium n'a "
        "aucune liste ouverte",
        "STALE_PRIORITY": "carte prioritaire « {title} » inactive depuis {days} jours",
        "STALE_PRIORITY_MANY": "{count} cartes prioritaires inactives depuis plus de "
        "{days} jours : {cards}",
        "STALE_PRIORITY_ITEM": "« {title} » ({days} jours)",
    },
    # -- changes -----------------------------------------------------------------------
    "kinds": {
        "flag_opened": "signalement ouvert",
        "flag_resolved": "signalement résolu",
        "priority_added": "action prioritaire ajoutée",
        "priority_completed": "action prioritaire terminée",
        "priority_removed": "action prioritaire retirée",
        "referents_changed": "référents modifiés",
        "created": "carte créée",
        "moved": "carte déplacée",
        "archived": "carte archivée",
        "unarchived": "carte désarchivée",
        "deleted": "carte supprimée",
        "restored": "carte réapparue",
        "renamed": "carte renommée",
        "labels": "étiquettes",
        "members": "membres",
        "checklist": "checklist",
        "custom_field": "champ personnalisé",
        "desc": "description",
        "due": "échéance",
    },
    "changes_text": {
        "created": "Carte créée « {card} » dans {list}",
        "moved": "« {card} » déplacée : {old} → {new}",
        "renamed": "Carte renommée : « {old} » → « {new} »",
        "archived": "« {card} » archivée",
        "unarchived": "« {card} » désarchivée",
        "deleted": "« {card} » supprimée",
        "restored": "« {card} » réapparue",
        "labels": "« {card} » : étiquettes {old} → {new}",
        "members": "« {card} » : membres {old} → {new}",
        "checklist": "« {card} » : {count} élément(s) de checklist modifié(s)",
        "custom_field": "« {card} » : champ « {field} » {old} → {new}",
        "desc": "« {card} » : description modifiée",
        "due": "« {card} » : échéance {old} → {new}",
        "flag_opened": "{department} : signalement « {label} » ouvert ({message})",
        "flag_resolved": "{department} : signalement « {label} » résolu",
        "priority_added": "{department} : action prioritaire ajoutée « {summary} »",
        "priority_completed": "{department} : action prioritaire terminée « {summary} »",
        "priority_removed": "{department} : action prioritaire retirée « {summary} »",
        "referents_changed": "{department} : référents {summary}",
    },
    # -- time travel, trends and the weekly digest (syncd.history, syncd.digest) -------------
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
    # -- the login pages and the logged-in reader (syncd.web.auth) ---------------------------
    "session": {
        "signed_in_as": "Connecté en tant que",
        "logout": "Se déconnecter",
        "login": "Se connecter",
        "login_again": "Se reconnecter",
        "refused_title": "Connexion refusée",
        "not_allowed": "L'adresse {email} n'est pas autorisée à consulter ce tableau de bord.",
        "failed": "La connexion n'a pas pu être vérifiée. Veuillez réessayer.",
        "unavailable_title": "Connexion indisponible",
        "unavailable": "Le service de connexion ne répond pas pour le moment. "
        "Veuillez réessayer plus tard.",
        "not_configured": "Aucune connexion n'est configurée pour ce tableau de bord.",
        "logged_out_title": "Déconnexion",
        "logged_out": "Vous êtes déconnecté du tableau de bord.",
        "detail": "Détail technique",
    },
    # -- write-back: the comments on the dashboard cards (syncd.writeback.text) -------------
    "writeback": {
        "opened_title": "⚠️ **Signalement syncd : {label}**",
        "resolved_title": "✅ **Signalement syncd levé : {label}**",
        "where_opened": "{department} · depuis le {since}",
        "where_resolved": "{department} · ouvert le {since}, levé le {resolved}",
        "too_many": "{count} actions prioritaires ouvertes (maximum {max}) :",
        "too_many_now": "Actions prioritaires ouvertes : {count} (maximum {max}).",
        "no_referent": "Cette carte n'indique aucun référent : ni membre de la carte, ni champ "
        "« {field} », ni ligne « Référent : NOM » dans la description.",
        "referents_now": "Référent(s) : {names}.",
        "stale": "Carte(s) prioritaire(s) sans activité depuis plus de {days} jours :",
        "stale_item": "{title} ({idle} jours)",
        "stale_now": "Plus aucune carte prioritaire inactive depuis plus de {days} jours.",
        "more": "… et {count} autre(s)",
        "gone": "Ce signalement s'est ouvert puis levé avant que syncd puisse le publier.",
        "dashboard": "Tableau de bord : {url}",
        "footer": "_Commentaire automatique de syncd, une seule fois par signalement ({marker})._",
    },
}

EN: dict[str, Any] = {
    # -- the report page ---------------------------------------------------------------
    "title": "Drift report",
    "generated_at": "Generated on",
    "departments": "Departments",
    "department": "Department",
    "flagged_departments": "Flagged departments",
    "open_flags": "Open flags",
    "flags": "Flags",
    "flag": "Flag",
    "no_flags": "No flags",
    "code": "Code",
    "name": "Name",
    "priority_actions": "Open priority actions",
    "priority_actions_short": "Priority",
    "max_priority": "at most {max} priority actions per department",
    "referents": "Referents",
    "no_referent": "none",
    "topics": "Important topics",
    "topics_count": "{n} topic(s)",
    "summary_label": "Summary",
    "flagged_legend": "Flagged departments are highlighted and listed first.",
    "footer": "Report produced by syncd from the Trello boards and Figma files.",
    "linked_cards": "Linked cards",
    "dashboard": "Dashboard card",
    "no_dashboard": "no card",
    "since": "since",
    "since_col": "Since",
    "resolved_at": "Resolved on",
    "open": "open",
    "resolved": "resolved",
    "changes": "Changes",
    "changes_since": "Changes since {since}",
    "no_changes": "No changes",
    "degraded": (
        "Partial reading: {count} card(s) have a stored value that cannot be read; they are "
        "shown with neutral values until the next full sync."
    ),
    "at": "Date",
    "board": "Board",
    "kind": "Kind",
    "summary": "Summary",
    "card": "Card",
    "boards": "Boards",
    "last_synced": "last synced",
    "cards": "cards",
    "never": "never",
    "no_departments": "No departments",
    "chart_title": "Open priority actions per department",
    "chart_desc": "Horizontal bars: open priority actions of each department; the vertical "
    "line marks the maximum ({max}), bars beyond it are red.",
    "legend_ok": "within the limit",
    "legend_over": "over the maximum",
    "legend_max": "maximum",
    "figma": "Figma",
    "figma_files": "Figma files",
    "no_figma": "No Figma file tracked",
    "version": "version",
    "last_modified": "modified on",
    "broken_links": "Broken links",
    "newer_designs": "Designs newer than their card",
    "open_comments": "Open comments",
    "node": "Node",
    "reason": "Reason",
    "author": "Author",
    "message": "Message",
    "version_created_at": "Version of",
    "card_last_activity": "Card last activity",
    "rate_limited_until": "Figma rate limit reached until {until}",
    "date_format": "{d:%Y-%m-%d %H:%M} UTC",
    "none": "—",
    "colon": ": ",
    # -- words for values the report carries as codes ------------------------------------
    "roles": {"consortium": "consortium", "product": "product"},
    "source": {"checklist": "checklist", "card": "card", "label": "card"},
    "reasons": {"missing": "node not found in the file", "deleted": "node deleted from the file"},
    # -- flags -------------------------------------------------------------------------
    "flag_labels": {
        "TOO_MANY_PRIORITIES": "Too many priority actions",
        "NO_REFERENT": "No referent",
        "NO_DASHBOARD": "No dashboard card",
        "STALE_PRIORITY": "Stale priority action",
    },
    "flag_explanations": {
        "TOO_MANY_PRIORITIES": "The department has more open priority actions than the "
        "maximum: unchecked items of the priority checklist on its dashboard card and open "
        "cards carrying the priority label.",
        "NO_REFERENT": "Nobody is named referent: no member on the dashboard card, an empty "
        "referent field and no “Référent :” line in its description.",
        "NO_DASHBOARD": "The department is expected in the consortium but has no card in the "
        "departments list.",
        "STALE_PRIORITY": "A priority card linked to the department has had no activity for "
        "longer than the configured delay.",
    },
    # The English messages are the JSON `message` of each flag, stored as they are written
    # here: change a wording only together with a way to read the old one.
    "flag_messages": {
        "TOO_MANY_PRIORITIES": "{count} open priority actions (max {max})",
        "NO_REFERENT": "no referent",
        "NO_DASHBOARD": "no dashboard card in list {list}",
        "NO_DASHBOARD_NO_LIST": "no dashboard card: the consortium board has no open list",
        "STALE_PRIORITY": "priority card '{title}' inactive for {days} days",
        "STALE_PRIORITY_MANY": "{count} priority cards inactive for more than {days} days: {cards}",
        "STALE_PRIORITY_ITEM": "'{title}' ({days} days)",
    },
    # -- changes -----------------------------------------------------------------------
    "kinds": {
        "flag_opened": "flag opened",
        "flag_resolved": "flag resolved",
        "priority_added": "priority action added",
        "priority_completed": "priority action completed",
        "priority_removed": "priority action removed",
        "referents_changed": "referents changed",
        "created": "card created",
        "moved": "card moved",
        "archived": "card archived",
        "unarchived": "card unarchived",
        "deleted": "card deleted",
        "restored": "card reappeared",
        "renamed": "card renamed",
        "labels": "labels",
        "members": "members",
        "checklist": "checklist",
        "custom_field": "custom field",
        "desc": "description",
        "due": "due date",
    },
    "changes_text": {
        "created": "Card created “{card}” in {list}",
        "moved": "“{card}” moved: {old} → {new}",
        "renamed": "Card renamed: “{old}” → “{new}”",
        "archived": "“{card}” archived",
        "unarchived": "“{card}” unarchived",
        "deleted": "“{card}” deleted",
        "restored": "“{card}” reappeared",
        "labels": "“{card}”: labels {old} → {new}",
        "members": "“{card}”: members {old} → {new}",
        "checklist": "“{card}”: {count} checklist item(s) changed",
        "custom_field": "“{card}”: field “{field}” {old} → {new}",
        "desc": "“{card}”: description changed",
        "due": "“{card}”: due date {old} → {new}",
        "flag_opened": "{department}: flag “{label}” opened ({message})",
        "flag_resolved": "{department}: flag “{label}” resolved",
        "priority_added": "{department}: priority action added “{summary}”",
        "priority_completed": "{department}: priority action completed “{summary}”",
        "priority_removed": "{department}: priority action removed “{summary}”",
        "referents_changed": "{department}: referents {summary}",
    },
    # -- time travel, trends and the weekly digest (syncd.history, syncd.digest) -------------
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
    # -- the login pages and the logged-in reader (syncd.web.auth) ---------------------------
    "session": {
        "signed_in_as": "Signed in as",
        "logout": "Sign out",
        "login": "Sign in",
        "login_again": "Sign in again",
        "refused_title": "Sign-in refused",
        "not_allowed": "{email} is not allowed to read this dashboard.",
        "failed": "The sign-in could not be verified. Please try again.",
        "unavailable_title": "Sign-in unavailable",
        "unavailable": "The sign-in service does not answer right now. Please try again later.",
        "not_configured": "No sign-in is configured for this dashboard.",
        "logged_out_title": "Signed out",
        "logged_out": "You are signed out of the dashboard.",
        "detail": "Technical detail",
    },
    # -- write-back: the comments on the dashboard cards (syncd.writeback.text) -------------
    "writeback": {
        "opened_title": "⚠️ **syncd flag: {label}**",
        "resolved_title": "✅ **syncd flag resolved: {label}**",
        "where_opened": "{department} · since {since}",
        "where_resolved": "{department} · opened {since}, resolved {resolved}",
        "too_many": "{count} open priority actions (max {max}):",
        "too_many_now": "Open priority actions: {count} (max {max}).",
        "no_referent": "This card names no referent: no card member, no “{field}” field, no "
        "“Référent : NAME” line in the description.",
        "referents_now": "Referent(s): {names}.",
        "stale": "Priority card(s) without activity for more than {days} days:",
        "stale_item": "{title} ({idle} days)",
        "stale_now": "No priority card inactive for more than {days} days any more.",
        "more": "… and {count} more",
        "gone": "This flag opened and resolved before syncd could post it.",
        "dashboard": "Dashboard: {url}",
        "footer": "_Automatic comment by syncd, once per flag ({marker})._",
    },
}

STRINGS: dict[str, dict[str, Any]] = {"fr": FR, "en": EN}
LANGS = tuple(STRINGS)

_LIST_SEPARATOR = ", "  # between the cards of STALE_PRIORITY_MANY, in every language
_NUMBER_FIELDS = frozenset({"count", "max", "days"})
_ITEM = "_ITEM"  # a template for one element of a list, never a whole message


def strings_for(lang: str) -> Mapping[str, Any]:
    """The table of `lang`; `ValueError` (one line) for a language syncd does not speak."""
    try:
        return STRINGS[lang]
    except KeyError:
        raise ValueError(
            f"unknown language {lang!r} (expected one of {', '.join(LANGS)})"
        ) from None


def flag_label(code: str, lang: str) -> str:
    """The short name of a flag (``Aucun référent``); the code itself when unknown."""
    return str(strings_for(lang)["flag_labels"].get(code, code))


def flag_message(template: str, params: Mapping[str, Any], lang: str) -> str:
    """The message `template` (a key of ``flag_messages``) filled with `params` in `lang`.

    ``STALE_PRIORITY_MANY`` takes ``cards`` as a sequence of ``(title, days)`` pairs.
    """
    messages = strings_for(lang)["flag_messages"]
    values = dict(params)
    if "cards" in values and not isinstance(values["cards"], str):
        values["cards"] = _LIST_SEPARATOR.join(
            messages["STALE_PRIORITY" + _ITEM].format(title=title, days=days)
            for title, days in values["cards"]
        )
    return str(messages[template].format(**values))


def localised_flag_message(code: str, message: str, lang: str) -> str:
    """A stored (English) flag message in `lang`; the flag's label when it cannot be read."""
    if lang == "en":
        return message
    parsed = _read_english(code, message)
    if parsed is None:
        return flag_label(code, lang)
    template, params = parsed
    return flag_message(template, params, lang)


def _read_english(code: str, message: str) -> tuple[str, dict[str, Any]] | None:
    """(template key, params) of an English flag message of `code`, or None."""
    for template, pattern in _english_patterns().items():
        if template.endswith(_ITEM) or (template != code and not template.startswith(code + "_")):
            continue
        match = pattern.fullmatch(message)
        if match is None:
            continue
        params: dict[str, Any] = match.groupdict()
        if "cards" in params:
            cards = _read_cards(params["cards"])
            if cards is None:
                continue
            params["cards"] = cards
        return template, params
    return None


def _read_cards(text: str) -> list[tuple[str, str]] | None:
    """The ``(title, days)`` pairs of a STALE_PRIORITY_MANY list, or None when it is not one."""
    item = _english_patterns()["STALE_PRIORITY" + _ITEM]
    one = re.compile(item.pattern + f"(?:{re.escape(_LIST_SEPARATOR)}|$)", re.DOTALL)
    cards: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = one.match(text, position)
        if match is None or match.end() == position:
            return None
        cards.append((match["title"], match["days"]))
        position = match.end()
    return cards or None


@cache
def _english_patterns() -> dict[str, re.Pattern[str]]:
    """Each English flag template as a regular expression with one named group per field."""
    patterns: dict[str, re.Pattern[str]] = {}
    for template, text in EN["flag_messages"].items():
        parts: list[str] = []
        for literal, field, _spec, _conversion in string.Formatter().parse(text):
            parts.append(re.escape(literal))
            if field is not None:
                value = r"\d+" if field in _NUMBER_FIELDS else ".+?"
                parts.append(f"(?P<{field}>{value})")
        patterns[template] = re.compile("".join(parts), re.DOTALL)
    return patterns
