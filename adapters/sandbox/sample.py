"""Deterministic sample data for the sandbox: the two RDV-Solidarités boards and a large
benchmark board.

Owns ``build_sample_world`` (board ``lapins-consortium-départements`` / ``oSmy09cz`` and board
``product-lapin`` / ``BiT8tx09``, with a dated action history) and ``build_large_world``. The
sample is built by replaying a timeline of ordinary world mutations, so every card, check item
and action has an id dated like Trello's and the history reads like a real board's.

Governance drift planted in the consortium board (with the default rules):

- ``62`` Pas-de-Calais: 4 incomplete "Actions prioritaires" items -> TOO_MANY_PRIORITIES
- ``77`` Seine-et-Marne: 3 incomplete items + 1 open "Prioritaire" card -> TOO_MANY_PRIORITIES
- ``55`` Meuse: no member, no "Référent territorial" value, no ``Référent :`` line -> NO_REFERENT
- ``95`` Val-d'Oise: linked cards but no dashboard card -> NO_DASHBOARD (when configured)
- ``12`` Aveyron: its "Prioritaire" card has had no activity for 75 days -> STALE_PRIORITY
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from .trello_world import TrelloWorld

__all__ = [
    "CONSORTIUM_SHORT_LINK",
    "FIGMA_BROKEN_URL",
    "FIGMA_FILE_KEY",
    "FIGMA_URLS",
    "LARGE_SHORT_LINK",
    "PRODUCT_SHORT_LINK",
    "build_large_world",
    "build_sample_world",
]

CONSORTIUM_SHORT_LINK = "oSmy09cz"
PRODUCT_SHORT_LINK = "BiT8tx09"
LARGE_SHORT_LINK = "LARGEb01"
FIGMA_FILE_KEY = "JhZCwwrmaw2NYrITCj8QAK"
_FIGMA_DESIGN = f"https://www.figma.com/design/{FIGMA_FILE_KEY}/RDV-Solidarites"
FIGMA_URLS = {
    "planning": f"{_FIGMA_DESIGN}?node-id=5-95",
    "parcours": f"https://www.figma.com/proto/{FIGMA_FILE_KEY}/RDV?node-id=148-129",
    "confirmation": f"https://www.figma.com/file/{FIGMA_FILE_KEY}/RDV-Solidarites?node-id=148%3A129",
    "plages": f"{_FIGMA_DESIGN}?node-id=5-95&t=Xq3zPz1bW0a1-0",
    "file": _FIGMA_DESIGN,
}
FIGMA_BROKEN_URL = f"{_FIGMA_DESIGN}?node-id=999-1"

_SEED = 20241130

_PEOPLE = [
    ("Camille Martin", "camillemartin"),
    ("Julien Moreau", "julienmoreau"),
    ("Sophie Lefèvre", "sophielefevre"),
    ("Thomas Girard", "thomasgirard"),
    ("Nathalie Bernard", "nathaliebernard"),
    ("Léa Dubois", "leadubois"),
    ("Antoine Rousseau", "antoinerousseau"),
    ("Mathilde Fournier", "mathildefournier"),
    ("Karim Benali", "karimbenali"),
]

_TOPICS = [
    "Prise de RDV en ligne pour les bénéficiaires du RSA",
    "Interconnexion avec le SI départemental",
    "Rappels SMS et réduction des lapins",
    "Formation des secrétariats des MDS",
    "Statistiques mensuelles de fréquentation",
    "Orientation et accompagnement socio-professionnel",
    "Convocations par courrier et par email",
    "Gestion des lieux de permanence",
    "Visioconférence pour les RDV à distance",
    "Accessibilité du parcours usager",
    "Protection des données (RGPD) et durées de conservation",
    "Harmonisation des motifs entre territoires",
]

# (code, dashboard title, priority items [(text, done)], referent spec, statut)
# referent spec keys: field (custom field text), members (full names), desc (description)
_DASHBOARDS: list[tuple[str, str, list[tuple[str, bool]], dict[str, Any], str]] = [
    (
        "12",
        "Aveyron (12)",
        [
            ("Finaliser la convention avec la MSA", False),
            ("Ouvrir les créneaux du CMS de Rodez", True),
        ],
        {"field": "Hélène Garnier"},
        "En déploiement",
    ),
    (
        "14",
        "14 - Calvados",
        [
            ("Former les secrétariats des CMS", True),
            ("Paramétrer les motifs RSA", False),
            ("Valider le modèle de SMS de rappel", True),
        ],
        {"members": ["Julien Moreau"]},
        "Déployé",
    ),
    (
        "22",
        "CD22 Côtes-d'Armor",
        [
            ("Recenser les lieux de permanence", False),
            ("Importer les agents depuis l'annuaire", False),
        ],
        {"desc": "Département pilote pour les permanences mobiles.\n\nRéférent : Sophie Lefèvre"},
        "En déploiement",
    ),
    (
        "26",
        "Drôme",
        [("Organiser le comité de suivi", True), ("Activer la prise de RDV en ligne", False)],
        {"field": "Thomas Girard", "members": ["Thomas Girard"]},
        "Déployé",
    ),
    (
        "55",
        "Meuse (55)",
        [("Nommer un référent territorial", False), ("Planifier la formation des agents", False)],
        {"desc": "Département rural, déploiement progressif sur deux maisons des solidarités."},
        "À lancer",
    ),
    (
        "62",
        "Pas-de-Calais",
        [
            ("Paramétrer les motifs d'orientation RSA", False),
            ("Connecter le SI insertion", False),
            ("Former les 12 maisons du département solidarité", False),
            ("Ouvrir les créneaux en ligne", False),
            ("Signer la convention", True),
        ],
        {"field": "Léa Dubois", "members": ["Léa Dubois"]},
        "En déploiement",
    ),
    (
        "64",
        "Pyrénées-Atlantiques (64)",
        [("Déployer sur le territoire Béarn", False), ("Déployer sur le Pays basque", True)],
        {"desc": "Deux territoires, deux calendriers.\nReferent : Antoine Rousseau"},
        "En déploiement",
    ),
    (
        "77",
        "77 – Seine-et-Marne",
        [
            ("Harmoniser les motifs entre MDS", False),
            ("Relancer les CCAS partenaires", False),
            ("Mettre en place les rappels SMS", False),
            ("Former les référents RSA", True),
        ],
        {"field": "Camille Martin", "members": ["Camille Martin"]},
        "En déploiement",
    ),
    (
        "78",
        "Yvelines",
        [("Ouvrir le service aux usagers", True), ("Bilan à 6 mois", False)],
        {"desc": "référent : Nathalie Bernard\nContact DSI : dsi-rdv@example.org"},
        "Déployé",
    ),
    (
        "80",
        "Somme",
        [
            ("Former les agents des UTAS", False),
            ("Configurer les lieux", True),
            ("Valider les plages d'ouverture", False),
        ],
        {"members": ["Mathilde Fournier"]},
        "En déploiement",
    ),
    (
        "92",
        "Hauts-de-Seine (92)",
        [("Connecter l'agenda des PMI", False), ("Paramétrer les notifications", True)],
        {"field": "Karim Benali"},
        "En pause",
    ),
]


class _Timeline:
    """Events scheduled at ``anchor - days_ago`` and replayed in date order."""

    def __init__(self, world: TrelloWorld, anchor: datetime) -> None:
        self.world = world
        self.anchor = anchor
        self._events: list[tuple[datetime, int, Callable[[], Any]]] = []

    def at(self, days_ago: float, fn: Callable[[], Any]) -> None:
        when = self.anchor - timedelta(days=days_ago)
        self._events.append((when, len(self._events), fn))

    def run(self) -> None:
        for when, _, fn in sorted(self._events, key=lambda e: (e[0], e[1])):
            self.world.now = when
            fn()


def build_sample_world(now: datetime | None = None) -> TrelloWorld:
    """The two RDV-Solidarités boards with ~9 months of history ending just before ``now``.

    Deterministic for a given ``now``. With ``now`` the world clock stays frozen at ``now``;
    without it the history ends at the real current time and the clock is the real one.
    """
    anchor = (now or datetime.now(UTC)).astimezone(UTC)
    rng = random.Random(_SEED)
    w = TrelloWorld(seed=_SEED)
    w.now = min(datetime(2022, 9, 5, 8, 30, tzinfo=UTC), anchor - timedelta(days=400))

    people = {name: w.create_member(name, username=user) for name, user in _PEOPLE}
    w.me_id = people["Camille Martin"]
    camille = people["Camille Martin"]

    # ---------------------------------------------------------------- consortium board
    cons = w.create_board(
        "lapins-consortium-départements",
        short_link=CONSORTIUM_SHORT_LINK,
        desc="Suivi du déploiement de RDV-Solidarités dans les départements du consortium.",
        id_organization=w.new_id(),
        by=camille,
    )
    for name, mid in people.items():
        w.add_board_member(cons, mid, member_type="admin" if name == "Camille Martin" else "normal")
    lst = {
        name: w.create_list(cons, name, by=camille)
        for name in (
            "Départements",
            "Actions en cours",
            "Sujets transverses",
            "Fait",
            "Archives 2023",
        )
    }
    lab = {
        "Prioritaire": w.create_label(cons, "Prioritaire", "red"),
        "Seine-et-Marne": w.create_label(cons, "Seine-et-Marne", "blue"),
        "Pas-de-Calais": w.create_label(cons, "Pas-de-Calais", "green"),
        "Somme": w.create_label(cons, "Somme", "yellow"),
        "Transverse": w.create_label(cons, "Transverse", "purple"),
    }
    referent_field = w.create_custom_field(cons, "Référent territorial", type="text")
    statut_field = w.create_custom_field(
        cons, "Statut", type="list", options=("À lancer", "En déploiement", "Déployé", "En pause")
    )

    tl = _Timeline(w, anchor)
    refs: dict[str, str] = {}

    def new_card(
        key: str,
        days_ago: float,
        board: str,
        list_id: str,
        name: str,
        desc: str = "",
        labels: tuple[str, ...] = (),
        members: tuple[str, ...] = (),
        by: str | None = None,
    ) -> None:
        def run() -> None:
            action = w.create_card(board, list_id, name, desc, labels, members, by=by)
            refs[key] = action["data"]["card"]["id"]

        tl.at(days_ago, run)

    def later(key: str, days_ago: float, op: Callable[[str], Any]) -> None:
        tl.at(days_ago, lambda: op(refs[key]))

    def tick(key: str, days_ago: float, item: str, by: str | None = None) -> None:
        later(
            key,
            days_ago,
            lambda cid: w.set_check_item(cid, w.find_check_item(cid, item), True, by=by),
        )

    # Pinned explanation card at the top of the first list (names no département).
    new_card(
        "howto",
        300,
        cons,
        lst["Départements"],
        "Mode d'emploi : une carte par département",
        "Une carte par département du consortium. Checklists « Actions prioritaires » et "
        "« Sujets importants », champ « Référent territorial ».",
        by=camille,
    )

    # Dashboard cards: created 280..250 days ago, touched within the last 25 days.
    for i, (code, title, priorities, referent, statut) in enumerate(_DASHBOARDS):
        key = f"dash{code}"
        created = 280 - 3 * i
        member_ids = tuple(people[n] for n in referent.get("members", ()))
        author = people[_PEOPLE[i % len(_PEOPLE)][0]]
        new_card(
            key,
            created,
            cons,
            lst["Départements"],
            title,
            referent.get("desc", ""),
            members=member_ids,
            by=author,
        )
        later(
            key,
            created - 0.01,
            lambda cid, p=priorities: w.add_checklist(
                cid, "Actions prioritaires", [text for text, _ in p], by=camille
            ),
        )
        topics = rng.sample(_TOPICS, 3 + i % 4)
        later(
            key,
            created - 0.02,
            lambda cid, t=topics: w.add_checklist(cid, "Sujets importants", t, by=camille),
        )
        if "field" in referent:
            later(
                key,
                created - 0.03,
                lambda cid, v=referent["field"]: w.set_custom_field(cid, referent_field, v),
            )
        later(key, created - 0.04, lambda cid, s=statut: w.set_custom_field(cid, statut_field, s))
        for j, (text, done) in enumerate(priorities):
            if done:
                tick(key, created - 30 - 20 * j, text, by=author)
        later(
            key,
            5 + (i * 7) % 20,
            lambda cid, c=code: w.comment(
                cid, f"Point d'étape avec le département {c} : RAS, prochaine réunion dans un mois."
            ),
        )

    # Open cards in "Actions en cours".
    new_card(
        "prio77",
        40,
        cons,
        lst["Actions en cours"],
        "[Seine-et-Marne] Ouverture des créneaux du samedi",
        "Demande des MDS de Meaux et Melun.\nAgenda agent : " + FIGMA_URLS["parcours"],
        labels=(lab["Prioritaire"], lab["Seine-et-Marne"]),
        members=(people["Camille Martin"],),
    )
    later("prio77", 6, lambda cid: w.comment(cid, "Validation DRH attendue pour fin de mois."))
    new_card(
        "stale12",
        130,
        cons,
        lst["Actions en cours"],
        "[Aveyron] Signature de la convention MSA",
        labels=(lab["Prioritaire"],),
        by=people["Julien Moreau"],
    )
    later(
        "stale12",
        75,
        lambda cid: w.comment(
            cid, "Relance envoyée au service juridique.", by=people["Julien Moreau"]
        ),
    )
    new_card(
        "cd62",
        55,
        cons,
        lst["Actions en cours"],
        "Déploiement CD62 : paramétrage des motifs",
        labels=(lab["Pas-de-Calais"],),
        members=(people["Léa Dubois"],),
    )
    later(
        "cd62",
        54,
        lambda cid: w.add_checklist(
            cid, "Étapes", ["Lister les motifs existants", "Valider avec les MDS", "Saisir"]
        ),
    )
    tick("cd62", 20, "Lister les motifs existants")
    new_card(
        "somme",
        30,
        cons,
        lst["Actions en cours"],
        "[Somme] Formation des agents",
        "Deux sessions prévues à Amiens et Abbeville.",
        labels=(lab["Somme"],),
        members=(people["Mathilde Fournier"],),
    )
    later("somme", 8, lambda cid: w.set_due(cid, anchor + timedelta(days=21)))
    new_card("calva", 20, cons, lst["Actions en cours"], "Calvados (14) – bilan trimestriel")
    later("calva", 4, lambda cid: w.comment(cid, "Chiffres du trimestre en pièce jointe."))
    later(
        "calva",
        4,
        lambda cid: w.add_attachment(
            cid,
            "bilan-T3.pdf",
            "https://trello.com/1/cards/attachments/bilan-T3.pdf",
            mime_type="application/pdf",
            size=182_044,
        ),
    )
    new_card(
        "yvel",
        25,
        cons,
        lst["Actions en cours"],
        "Yvelines : mise en place des rappels SMS",
        members=(people["Nathalie Bernard"],),
    )
    new_card("hds", 15, cons, lst["Actions en cours"], "Hauts-de-Seine (92) – atelier usagers")
    new_card(
        "vdo",
        12,
        cons,
        lst["Actions en cours"],
        "Val-d'Oise (95) : premier contact",
        "Rencontre avec la direction de l'insertion, pas encore de carte département.",
    )

    # "Sujets transverses".
    new_card(
        "somme_prose",
        45,
        cons,
        lst["Sujets transverses"],
        "Vérifier la somme des RDV du mois",
        "Comparer la somme des RDV du mois avec les exports des départements.",
    )
    new_card(
        "motifs",
        90,
        cons,
        lst["Sujets transverses"],
        "Mutualiser les motifs de RDV entre départements",
        labels=(lab["Transverse"],),
    )
    later("motifs", 33, lambda cid: w.comment(cid, "Proposition de nomenclature en cours."))
    new_card(
        "xss",
        35,
        cons,
        lst["Sujets transverses"],
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)> **gras** & <b>balises</b>",
    )
    new_card(
        "copil",
        60,
        cons,
        lst["Sujets transverses"],
        "Comité de pilotage trimestriel",
        labels=(lab["Transverse"], lab["Prioritaire"]),
    )
    later("copil", 3, lambda cid: w.comment(cid, "Ordre du jour envoyé."))
    new_card(
        "charte",
        110,
        cons,
        lst["Sujets transverses"],
        "Charte de nommage des lieux et des motifs",
        labels=(lab["Transverse"],),
    )

    # "Fait" (some archived) and the archived list.
    new_card(
        "drome_done", 200, cons, lst["Actions en cours"], "Drôme – ouverture du service aux usagers"
    )
    later("drome_done", 150, lambda cid: w.move_card(cid, lst["Fait"]))
    new_card("meuse_done", 170, cons, lst["Actions en cours"], "Meuse (55) : convention signée")
    later("meuse_done", 120, lambda cid: w.move_card(cid, lst["Fait"]))
    new_card(
        "somme_old",
        220,
        cons,
        lst["Actions en cours"],
        "[Somme] Ancienne priorité : recrutement d'un chargé de mission",
        labels=(lab["Prioritaire"], lab["Somme"]),
    )
    later("somme_old", 140, lambda cid: w.move_card(cid, lst["Fait"]))
    later("somme_old", 100, lambda cid: w.archive_card(cid))
    new_card(
        "pdc_kickoff",
        240,
        cons,
        lst["Actions en cours"],
        "Pas-de-Calais – réunion de lancement",
        labels=(lab["Pas-de-Calais"],),
    )
    later("pdc_kickoff", 230, lambda cid: w.move_card(cid, lst["Fait"]))
    later("pdc_kickoff", 180, lambda cid: w.archive_card(cid))
    new_card(
        "webinaire",
        160,
        cons,
        lst["Sujets transverses"],
        "Webinaire de présentation aux départements",
    )
    later("webinaire", 95, lambda cid: w.move_card(cid, lst["Fait"]))
    new_card("bilan2023", 330, cons, lst["Archives 2023"], "Bilan 2023 des déploiements")
    tl.at(300, lambda: w.archive_list(lst["Archives 2023"]))
    new_card("doublon", 26, cons, lst["Sujets transverses"], "Carte créée par erreur")
    later("doublon", 25, lambda cid: w.delete_card(cid))

    # ---------------------------------------------------------------- product board
    prod = w.create_board(
        "product-lapin",
        short_link=PRODUCT_SHORT_LINK,
        desc="Backlog produit de RDV-Solidarités (prise de RDV du secteur social).",
        by=camille,
    )
    for name in (
        "Camille Martin",
        "Thomas Girard",
        "Karim Benali",
        "Léa Dubois",
        "Antoine Rousseau",
    ):
        w.add_board_member(prod, people[name])
    plst = {
        name: w.create_list(prod, name, by=camille)
        for name in ("Backlog", "En cours", "En revue", "Fait")
    }
    plab = {
        "Agent": w.create_label(prod, "Agent", "blue"),
        "Usager": w.create_label(prod, "Usager", "green"),
        "Bug": w.create_label(prod, "Bug", "red"),
        "Prioritaire": w.create_label(prod, "Prioritaire", "orange"),
    }
    devs = [people["Thomas Girard"], people["Karim Benali"], people["Antoine Rousseau"]]
    # (key, title, final list, labels, desc)
    product: list[tuple[str, str, str, tuple[str, ...], str]] = [
        (
            "p_csv26",
            "[Agent] Export CSV pour le 26",
            "Backlog",
            ("Agent",),
            "Le département de la Drôme souhaite exporter la liste des RDV du mois.",
        ),
        (
            "p_sms77",
            "[Usager] Rappel SMS (77)",
            "Backlog",
            ("Usager",),
            "Envoyer un rappel SMS 48 h avant le RDV.",
        ),
        ("p_pdc", "[Agent] Paramétrage Pas-de-Calais", "Backlog", ("Agent",), ""),
        ("p_droits", "[Admin] Gestion des droits par territoire", "Backlog", (), ""),
        ("p_annul", "[Usager] Annulation de RDV depuis le SMS", "Backlog", ("Usager",), ""),
        (
            "p_doublons",
            "[Bug] Doublons d'usagers à la fusion",
            "Backlog",
            ("Bug", "Prioritaire"),
            "Deux fiches usager créées quand le même numéro allocataire est saisi deux fois.",
        ),
        ("p_filtre", "[Agent] Filtre par motif dans l'agenda", "Backlog", ("Agent",), ""),
        (
            "p_parcours",
            "[Usager] Parcours de prise de RDV en ligne",
            "Backlog",
            ("Usager",),
            "Maquettes en pièce jointe.",
        ),
        (
            "p_stats",
            "[Admin] Maquette export statistiques",
            "Backlog",
            (),
            "Voir la maquette jointe.",
        ),
        ("p_semaine", "[Agent] Vue semaine multi-agents", "Backlog", ("Agent",), ""),
        (
            "p_planning",
            "[Agent] Nouvelle page de planning",
            "En cours",
            ("Agent", "Prioritaire"),
            f"Maquette : {FIGMA_URLS['planning']}\n\nÀ valider avec les secrétariats.",
        ),
        (
            "p_confirm",
            "[Usager] Écran de confirmation du RDV",
            "En cours",
            ("Usager",),
            f"Maquette de l'écran : {FIGMA_URLS['confirmation']}",
        ),
        ("p_sms2", "[Bug] Le SMS de rappel part deux fois", "En cours", ("Bug", "Prioritaire"), ""),
        ("p_notif", "[Agent] Notifications par email aux référents", "En cours", ("Agent",), ""),
        ("p_import", "[Admin] Import des agents par CSV", "En cours", (), ""),
        ("p_tz", "[Bug] Fuseau horaire erroné pour La Réunion", "En cours", ("Bug",), ""),
        ("p_rgaa", "[Usager] Page d'accueil accessible (RGAA)", "En revue", ("Usager",), ""),
        ("p_caf", "[Agent] Recherche d'usager par numéro allocataire", "En revue", ("Agent",), ""),
        ("p_pdf", "[Bug] Export PDF tronqué", "En revue", ("Bug",), ""),
        (
            "p_plages",
            "[Agent] Duplication de plages d'ouverture",
            "En revue",
            ("Agent",),
            f"Parcours : {FIGMA_URLS['plages']}",
        ),
        ("p_journal", "[Admin] Journal des connexions", "En revue", (), ""),
        ("p_tel", "[Usager] Prise de RDV par téléphone : formulaire", "Fait", ("Usager",), ""),
        ("p_statlieu", "[Agent] Statistiques par lieu", "Fait", ("Agent",), ""),
        ("p_crash", "[Bug] Crash à l'ouverture du calendrier", "Fait", ("Bug",), ""),
        ("p_collectif", "[Agent] Motifs de RDV collectifs", "Fait", ("Agent",), ""),
        (
            "p_visio",
            "[Usager] Lien de visioconférence dans la convocation",
            "Fait",
            ("Usager",),
            "",
        ),
        ("p_terr", "[Admin] Paramétrage des territoires (Drôme)", "Fait", (), ""),
        ("p_conges", "[Agent] Absences et congés des agents", "Fait", ("Agent",), ""),
        ("p_libelle", "[Bug] Mauvais libellé du motif RSA", "Fait", ("Bug",), ""),
        ("p_old", "[Usager] Ancienne maquette du tunnel", "Fait", ("Usager",), ""),
    ]
    order = ["Backlog", "En cours", "En revue", "Fait"]
    for i, (key, title, final, labels, desc) in enumerate(product):
        created = 240 - 7 * i
        dev = devs[i % len(devs)]
        new_card(
            key,
            created,
            prod,
            plst["Backlog"],
            title,
            desc,
            labels=tuple(plab[x] for x in labels),
            by=camille,
        )
        steps = order.index(final)
        for s in range(1, steps + 1):
            later(
                key,
                created - s * (1 + (created - 2) / (steps + 2)) * 0.6,
                lambda cid, name=order[s], d=dev: w.move_card(cid, plst[name], by=d),
            )
        if steps >= 1:
            later(key, created - 0.5, lambda cid, d=dev: w.add_member(cid, d))
        if i % 4 == 0:
            later(
                key,
                created - 0.2,
                lambda cid: w.add_checklist(
                    cid,
                    "Critères d'acceptation",
                    ["Maquette validée", "Tests écrits", "Recette par un département"],
                ),
            )
        if i % 3 == 1:
            later(
                key,
                max(created - 10, 1.5),
                lambda cid, d=dev: w.comment(cid, "Je regarde ça cette semaine.", by=d),
            )
    later(
        "p_parcours",
        120,
        lambda cid: w.add_attachment(cid, "Parcours usager (Figma)", FIGMA_URLS["parcours"]),
    )
    later(
        "p_stats", 100, lambda cid: w.add_attachment(cid, "Maquette statistiques", FIGMA_BROKEN_URL)
    )
    later(
        "p_planning",
        40,
        lambda cid: w.add_attachment(cid, "Planning (Figma)", FIGMA_URLS["planning"]),
    )
    later("p_old", 2.5, lambda cid: w.add_attachment(cid, "Fichier Figma", FIGMA_URLS["file"]))
    later("p_old", 2, lambda cid: w.archive_card(cid))
    later(
        "p_planning",
        1,
        lambda cid: w.comment(cid, f"Nouvelle version du planning : {FIGMA_URLS['planning']}"),
    )

    tl.run()
    w.now = now
    return w


def build_large_world(
    cards: int = 1000, actions: int = 5000, now: datetime | None = None
) -> TrelloWorld:
    """One board ``bench-board`` (``LARGEb01``) with 10 lists, ``cards`` cards (labels, members,
    a checklist on every other card, custom-field values) and ``max(actions, set-up actions)``
    actions spread over the last year."""
    anchor = (now or datetime.now(UTC)).astimezone(UTC)
    rng = random.Random(_SEED + 1)
    w = TrelloWorld(seed=_SEED + 1)
    w.now = anchor - timedelta(days=366)
    people = [w.create_member(name, username=user) for name, user in _PEOPLE]
    bid = w.create_board("bench-board", short_link=LARGE_SHORT_LINK)
    for mid in people:
        w.add_board_member(bid, mid)
    lists = [w.create_list(bid, f"Colonne {i + 1}") for i in range(10)]
    colors = ("green", "yellow", "orange", "red", "purple", "blue", "sky", "lime", "pink", "black")
    labels = [w.create_label(bid, f"Étiquette {i + 1}", colors[i % len(colors)]) for i in range(12)]
    referent = w.create_custom_field(bid, "Référent territorial")
    statut = w.create_custom_field(
        bid, "Statut", type="list", options=("À lancer", "En déploiement", "Déployé")
    )
    total = max(actions, cards * 5)
    step = timedelta(days=364) / (total + 1)

    def advance() -> None:
        assert w.now is not None
        w.now += step

    card_ids: list[str] = []
    for i in range(cards):
        advance()
        action = w.create_card(
            bid,
            lists[i % 10],
            f"Carte de test n°{i + 1} – {_TOPICS[i % len(_TOPICS)]}",
            f"Description de la carte {i + 1}." if i % 3 else "",
            rng.sample(labels, i % 3),
            rng.sample(people, i % 2 + 1),
        )
        cid = action["data"]["card"]["id"]
        card_ids.append(cid)
        if i % 2 == 0:
            advance()
            w.add_checklist(cid, "Actions prioritaires", ["Étape 1", "Étape 2", "Étape 3"])
        advance()
        w.set_custom_field(cid, referent, _PEOPLE[i % len(_PEOPLE)][0])
    ops = ("move", "comment", "rename", "label", "check", "statut", "desc")
    n = 0
    while card_ids and len(w.actions[bid]) < actions:
        advance()
        n += 1
        cid = rng.choice(card_ids)
        op = ops[n % len(ops)]
        if op == "move":
            w.move_card(cid, rng.choice(lists))
        elif op == "comment":
            w.comment(cid, f"Commentaire automatique n°{n}")
        elif op == "rename":
            w.rename_card(cid, f"Carte renommée n°{n}")
        elif op == "label":
            w.add_label(cid, rng.choice(labels))
        elif op == "check":
            card = w.cards[cid]
            if card["idChecklists"]:
                item = rng.choice(w.checklists[card["idChecklists"][0]]["checkItems"])
                w.set_check_item(cid, item["id"], item["state"] != "complete")
            else:
                w.comment(cid, "RAS")
        elif op == "statut":
            w.set_custom_field(cid, statut, rng.choice(("À lancer", "En déploiement", "Déployé")))
        else:
            w.set_desc(cid, f"Description mise à jour ({n}).")
    w.now = now
    return w
