"""The report JSON is byte-identical to golden files written by the code before the report was
made fast (issue 15): the sample boards mirrored from the sandbox, and a larger generated mirror
(2 boards, 101 dashboard cards, 1,500 product cards whose titles, labels and lists name
départements in every supported way and often none, archived and deleted cards, custom fields,
members, Figma links, weeks of history, unreadable stored values), each as now, with
``--since``, at a past moment (``--at``) and in English.

Run with ``SYNCD_WRITE_GOLDEN=1`` to (re)write the files; the test then fails, so that a
golden file never changes without someone reading the diff.
"""

from __future__ import annotations

import gzip
import os
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from adapters.sandbox import Sandbox, build_sample_world
from adapters.sandbox.figma_world import build_sample_figma
from state.store import Store
from state.timestamps import utc_iso
from syncd.config import (
    BoardConfig,
    FigmaConfig,
    Secrets,
    Settings,
    StoreConfig,
    TrelloConfig,
)
from syncd.demo import demo_settings
from syncd.report.build import build_report
from syncd.report.render import render_json
from syncd.rules.departments import all_departments
from syncd.rules.flags import recompute
from syncd.rules.governance import Rules
from syncd.runtime import build_runtime
from syncd.sync_pass import sync_pass
from syncd.trello.rows import snapshot_batch

GOLDEN = Path(__file__).parent / "golden"
WRITE = os.environ.get("SYNCD_WRITE_GOLDEN") == "1"
NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)  # a Tuesday
START = NOW - timedelta(weeks=13)


def check(name: str, rendered: str) -> None:
    path = GOLDEN / f"{name}.json.gz"
    if WRITE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_bytes(gzip.compress(rendered.encode("utf-8"), mtime=0))
        pytest.fail(f"wrote {path.name}: read the diff, then run without SYNCD_WRITE_GOLDEN")
    assert path.exists(), f"{path.name} missing: run once with SYNCD_WRITE_GOLDEN=1"
    golden = gzip.decompress(path.read_bytes()).decode("utf-8")
    assert rendered == golden  # byte-identical


# -- a larger generated mirror ------------------------------------------------------------


def oid(n: int) -> str:
    return f"{0x60000000 + n:08x}{n:016x}"


CONSORTIUM, PRODUCT = oid(1), oid(2)
FIGMA_URL = "https://www.figma.com/file/FigmaKey00Golden/x"
TITLE_STYLES = (
    "[Agent] Export pour {name}",
    "[Usager] Rappel SMS ({code})",
    "CD{code} paramétrage",
    "[Bug] Correction #{n} sur l'agenda",
    "[Agent] Nouvelle vue planning v2.{n}",
    "Réunion du {n}/11 : la somme des RDV",
    "{code} - {name} : ouverture",
    "département de la {name} : convention",
    "Déploiement à La Réunion et en {name}",
    "un lot de tests pour {name_lower}",
    "Nogent-sur-Marne : accueil",
    "Auvergne-Rhône-Alpes : comité",
    "{name_upper} : comité de suivi",
    "Point avec Aude sur le Cher usager",
    "dép. {code} — relance",
    "Formation des secrétariats n°{n}",
)


def consortium_snapshot(week: int, rng: random.Random) -> dict[str, Any]:
    """101 dashboard cards (a few missing, doubled or archived), plus lists naming départements."""
    cards: list[dict[str, Any]] = []
    checklists: list[dict[str, Any]] = []
    lists = [
        {"id": "L0", "name": "Départements", "pos": 1},
        {"id": "L1", "name": "Hauts-de-Seine (92)", "pos": 2},
        {"id": "L2", "name": "Archives", "pos": 3, "closed": True},
        {"id": "L3", "name": "Somme", "pos": 4},
    ]
    for index, department in enumerate(all_departments()):
        if index % 17 == 5:  # no dashboard card: NO_DASHBOARD when listed
            continue
        card_id = oid(1_000 + index)
        title = department.name if index % 5 else f"{department.code} - {department.name}"
        cards.append(
            {
                "id": card_id,
                "idList": "L0",
                "name": title,
                "pos": 1000 - index if index % 9 == 0 else index,
                "desc": (f"Référent : Agent {index}" if index % 7 else "")
                + (f"\n{FIGMA_URL}?node-id=1-{index}" if index % 11 == 0 else ""),
                "closed": index % 23 == 3,
                "idMembers": [f"m{index % 4}"] if index % 6 == 0 else [],
                "customFieldItems": (
                    [{"idCustomField": "cf1", "value": {"text": f"Référent {index % 3}"}}]
                    if index % 8 == 0
                    else []
                ),
                "dateLastActivity": utc_iso(START + timedelta(days=index % 60, hours=week)),
            }
        )
        states = ["incomplete", "complete"]
        checklists.append(
            {
                "id": oid(2_000 + index),
                "idCard": card_id,
                "name": "Actions prioritaires" if index % 13 else "actions  PRIORITAIRES",
                "pos": 1,
                "checkItems": [
                    {
                        "id": oid(3_000 + index * 10 + i),
                        "name": f"Action {i} de {department.code}",
                        "state": rng.choice(states) if week else states[i % 3 == 0],
                        "pos": 10 - i,
                    }
                    for i in range(1 + index % 5)
                ],
            }
        )
        checklists.append(
            {
                "id": oid(4_000 + index),
                "idCard": card_id,
                "name": "Sujets importants",
                "pos": 2,
                "checkItems": [
                    {"id": oid(5_000 + index * 10 + i), "name": f"Sujet {i}", "state": "incomplete"}
                    for i in range(index % 3)
                ],
            }
        )
    for n in range(60):  # cards in the other lists (a list names a département)
        cards.append(
            {
                "id": oid(6_000 + n),
                "idList": ("L1", "L2", "L3")[n % 3],
                "name": f"Sujet consortium {n}",
                "pos": n,
                "idLabels": ["cprio"] if n % 4 == 0 else [],
                "dateLastActivity": utc_iso(START + timedelta(days=n)),
            }
        )
    if week >= 2:  # a second dashboard card for one département: the most active wins
        cards.append(
            {
                "id": oid(7_000),
                "idList": "L0",
                "name": "seine st denis",
                "pos": 500,
                "dateLastActivity": utc_iso(START + timedelta(weeks=week)),
            }
        )
    return {
        "id": CONSORTIUM,
        "shortLink": "oSmy09cz",
        "name": "lapins-consortium-départements",
        "url": "https://trello.com/b/oSmy09cz",
        "lists": lists,
        "labels": [
            {"id": "cprio", "name": "Prioritaire", "color": "red"},
            {"id": "c62", "name": "CD62", "color": "blue"},
        ],
        "members": [
            {"id": f"m{i}", "fullName": name, "username": f"user{i}"}
            for i, name in enumerate(("Camille Martin", "Léa Dubois", "", "Karim Benali"))
        ],
        "customFields": [{"id": "cf1", "name": "Référent territorial", "type": "text"}],
        "cards": cards,
        "checklists": checklists,
    }


def product_snapshot(count: int, week: int) -> dict[str, Any]:
    rng = random.Random(7)
    departments = all_departments()
    labels = [
        {"id": "prio", "name": "prioritaire", "color": "red"},
        {"id": "somme", "name": "Somme", "color": "green"},
        {"id": "cd77", "name": "CD77", "color": "green"},
        {"id": "bug", "name": "Bug", "color": "orange"},
    ]
    cards: list[dict[str, Any]] = []
    for n in range(count):
        department = rng.choice(departments)
        style = rng.choice(TITLE_STYLES)
        title = style.format(
            name=department.name,
            name_lower=department.name.lower(),
            name_upper=department.name.upper(),
            code=department.code,
            n=n % 28 + 1,
        )
        if week and n % 50 == week:  # renamed this week
            title = f"{title} (v{week})"
        gone = week >= 3 and n % 211 == 0  # deleted from Trello from week 3 on
        if gone:
            continue
        every = (("prio", 37), ("somme", 101), ("cd77", 89), ("bug", 7))
        label_ids = [label for label, period in every if n % period == 0]
        cards.append(
            {
                "id": oid(10_000_000 + n),
                "idList": ("P0", "P1", "P2")[(n + week) % 3 if n % 5 == 0 else 0],
                "name": title,
                "pos": (n * 7919) % 10_007,
                "idLabels": label_ids,
                "closed": n % 41 == 0,
                "desc": f"{FIGMA_URL}?node-id=2-{n}" if n % 97 == 0 else "",
                "dateLastActivity": utc_iso(START + timedelta(hours=n % 2000)),
            }
        )
    return {
        "id": PRODUCT,
        "shortLink": "BiT8tx09",
        "name": "product-lapin",
        "url": "https://trello.com/b/BiT8tx09",
        "lists": [
            {"id": "P0", "name": "Backlog", "pos": 0},
            {"id": "P1", "name": "En cours", "pos": 1},
            {"id": "P2", "name": "Seine-Maritime", "pos": 2},
        ],
        "labels": labels,
        "members": [],
        "customFields": [],
        "cards": cards,
        "checklists": [],
    }


def generated_settings(url: str) -> Settings:
    return Settings(
        store=StoreConfig(url=url),
        trello=TrelloConfig(
            boards=(
                BoardConfig(id="oSmy09cz", role="consortium"),
                BoardConfig(id="BiT8tx09", role="product"),
            )
        ),
        figma=FigmaConfig(files=("FigmaKey00Golden",)),
        governance=Rules(departments=("05", "22", "39", "56", "73", "93", "974")),
        secrets=Secrets(),
    )


def fill_generated(store: Store, settings: Settings, cards: int = 1_500, weeks: int = 10) -> None:
    """Weekly snapshots of both boards from START, each followed by an evaluation; then a few
    stored values made unreadable (after the last write, as a damaged database would be)."""
    rng = random.Random(12)
    for week in range(weeks + 1):
        moment = START + timedelta(weeks=week, hours=1)
        for snapshot, role in (
            (consortium_snapshot(week, rng), "consortium"),
            (product_snapshot(cards, week), "product"),
        ):
            store.write_board(
                snapshot_batch(
                    snapshot,
                    board_ref=snapshot["shortLink"],
                    role=role,
                    observed_at=utc_iso(moment),
                )
            )
        recompute(store, settings.governance, moment + timedelta(minutes=5))
    damage = [
        "UPDATE card SET name = X'4142' WHERE id = :a",
        "UPDATE card SET \"desc\" = 'Référent : X' || char(0) || 'Y' WHERE id = :b",
        "UPDATE card SET pos = 'haut' WHERE id = :c",
        "UPDATE card SET date_last_activity = 'hier' WHERE id = :d",
        "UPDATE check_item SET state = 'peut-être' WHERE id = :e",
        "UPDATE check_item SET name = X'37' WHERE id = :f",
        "UPDATE board_list SET pos = 'x' WHERE id = 'P1'",
        "UPDATE checklist SET pos = 'x' WHERE id = :g",
        "UPDATE custom_field_item SET value = X'33' WHERE card_id = :h",
    ]
    ids = {
        "a": oid(10_000_000 + 4),
        "b": oid(1_000 + 1),
        "c": oid(10_000_000 + 8),
        "d": oid(1_000 + 2),
        "e": oid(3_000 + 131),
        "f": oid(3_000 + 132),
        "g": oid(2_000 + 3),
        "h": oid(1_000 + 16),
    }
    with store.engine.begin() as connection:
        for statement in damage:
            connection.execute(text(statement), ids)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Settings]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('golden')}/generated.db"
    store = Store(url)
    settings = generated_settings(url)
    fill_generated(store, settings)
    yield store, settings
    store.close()


VARIANTS: dict[str, dict[str, Any]] = {
    "now": {},
    "since": {"since": NOW - timedelta(weeks=3)},
    "at": {"at": NOW - timedelta(weeks=5, days=2)},
    "at_since": {"at": NOW - timedelta(weeks=5, days=2), "since": NOW - timedelta(weeks=9)},
    "en": {"lang": "en", "since": NOW - timedelta(days=10)},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_generated_report_is_byte_identical(generated, variant: str) -> None:  # type: ignore[no-untyped-def]
    store, settings = generated
    report = build_report(store, settings, now=NOW, **VARIANTS[variant])
    assert report["degraded"] if variant in ("now", "since", "en") else True
    check(f"generated-{variant}", render_json(report))


def test_generated_report_twice_in_one_process_is_the_same(generated) -> None:  # type: ignore[no-untyped-def]
    """Whatever a process remembers between two reports changes nothing in them."""
    store, settings = generated
    first = render_json(build_report(store, settings, now=NOW))
    assert render_json(build_report(store, settings, now=NOW)) == first


# -- the sample boards, mirrored from the sandbox -----------------------------------------


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


SAMPLE_VARIANTS: dict[str, dict[str, Any]] = {
    "now": {},
    "since": {"since": NOW - timedelta(days=120)},
    "en": {"lang": "en", "since": NOW - timedelta(days=30)},
}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Settings]]:
    with Sandbox(world=build_sample_world(NOW)) as sandbox:
        sandbox.figma = build_sample_figma(NOW)
        db = tmp_path_factory.mktemp("sample") / "s.db"
        runtime = build_runtime(demo_settings(sandbox, db), clock=Clock(NOW))
        sync_pass(runtime, full=True)
        yield runtime.store, runtime.settings


@pytest.mark.parametrize("variant", sorted(SAMPLE_VARIANTS))
def test_sample_report_is_byte_identical(sample, variant: str) -> None:  # type: ignore[no-untyped-def]
    store, settings = sample
    report = build_report(store, settings, now=NOW, **SAMPLE_VARIANTS[variant])
    check(f"sample-{variant}", render_json(report))
