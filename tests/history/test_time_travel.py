"""`--at` is exact: a report taken at T equals the report rebuilt at T later, over randomised
board changes (sandbox mutations applied by polls, full syncs and webhooks, at controlled clock
times); and the history's open versions always equal the mirror's tables."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from adapters.sandbox import CONSORTIUM_SHORT_LINK, PRODUCT_SHORT_LINK, Sandbox, build_sample_world
from state import history
from state import models as m
from state.store import Store
from syncd.config import StoreConfig
from syncd.demo import demo_settings
from syncd.history.moment import BeforeHistory
from syncd.report.build import build_report
from syncd.rules.flags import recompute
from syncd.runtime import Runtime, build_runtime
from syncd.sync_pass import sync_pass
from syncd.trello.apply import TrelloApplier, plan
from syncd.trello.schema import TrelloDelivery
from syncd.trello.webhooks import BoardIndex

START = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)  # a Tuesday, 13 weeks before the tests' "now"
PEOPLE = ("Camille Martin", "Julien Moreau", "Léa Dubois", "Karim Benali")
TITLES = (
    "Seine-et-Marne : relance du comité",
    "CD62 paramétrage des motifs",
    "[Somme] export mensuel",
    "Réunion du 12/11 : la somme des RDV",
    "Aveyron (12) - bilan",
    "Formation des secrétariats",
    "Val-d'Oise (95) : convention",
)


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Run:
    """A mirrored sandbox driven by a seeded random sequence of changes."""

    sandbox: Sandbox
    runtime: Runtime
    clock: Clock
    rng: random.Random
    applier: TrelloApplier
    index: BoardIndex
    log: list[str] = field(default_factory=list)

    @property
    def world(self) -> Any:
        return self.sandbox.world

    def board_id(self, short_link: str) -> str:
        return str(self.world.board(short_link)["id"])

    def live_cards(self, short_link: str) -> list[dict[str, Any]]:
        return [c for c in self.world.board_cards(self.board_id(short_link)) if not c["closed"]]

    def dashboard_cards(self) -> list[dict[str, Any]]:
        first = self.world.board_lists(self.board_id(CONSORTIUM_SHORT_LINK))[0]["id"]
        return [c for c in self.live_cards(CONSORTIUM_SHORT_LINK) if c["idList"] == first]

    def change(self) -> dict[str, Any] | None:
        """One random change on the boards; returns its action (for webhook delivery)."""
        w, rng = self.world, self.rng
        board = rng.choice((CONSORTIUM_SHORT_LINK, CONSORTIUM_SHORT_LINK, PRODUCT_SHORT_LINK))
        dashboards = self.dashboard_cards()
        cards = self.live_cards(board)
        card = rng.choice(
            dashboards if board == CONSORTIUM_SHORT_LINK and rng.random() < 0.6 else cards
        )
        kind = rng.choice(
            (
                "tick",
                "tick",
                "add_item",
                "label",
                "label",
                "member",
                "field",
                "desc",
                "rename",
                "move",
                "archive",
                "create",
                "delete",
            )
        )
        self.log.append(f"{kind} {card['name']}")
        if kind in ("tick", "add_item") and card["idChecklists"]:
            checklist = w.checklists[rng.choice(card["idChecklists"])]
            if kind == "add_item" or not checklist["checkItems"]:
                return w.add_check_item(checklist["id"], f"Action {rng.randrange(1000)}")
            item = rng.choice(checklist["checkItems"])
            return w.set_check_item(card["id"], item["id"], item["state"] != "complete")
        if kind == "label":
            label = w.find_label(board, "Prioritaire")
            if label in card["idLabels"]:
                return w.remove_label(card["id"], label)
            return w.add_label(card["id"], label)
        if kind == "member":
            member = w.find_member(rng.choice(PEOPLE))
            if member in card["idMembers"]:
                return w.remove_member(card["id"], member)
            return w.add_member(card["id"], member)
        if kind == "field" and board == CONSORTIUM_SHORT_LINK:
            field_id = w.find_custom_field(board, "Référent territorial")
            value = rng.choice((None, "Nina Petit", "Paul Durand"))
            return w.set_custom_field(card["id"], field_id, value)
        if kind == "desc":
            return w.set_desc(card["id"], rng.choice(("", "Référent : Inès Roy", "Notes")))
        if kind == "rename":
            return w.rename_card(card["id"], rng.choice(TITLES))
        if kind == "move":
            lists = w.board_lists(self.board_id(board))
            return w.move_card(card["id"], rng.choice(lists)["id"])
        if kind == "archive":
            return w.archive_card(card["id"], closed=True)
        if kind == "create":
            lists = w.board_lists(self.board_id(board))
            return w.create_card(board, rng.choice(lists)["id"], rng.choice(TITLES))
        if kind == "delete" and rng.random() < 0.3:
            return w.delete_card(card["id"])
        return None

    def step(self) -> None:
        """Advance the clock, change a few things, and bring the store up to date."""
        self.clock.now += timedelta(minutes=self.rng.choice((1, 7, 90, 60 * 26, 60 * 24 * 6)))
        self.world.now = self.clock.now
        actions = [a for _ in range(self.rng.randint(0, 4)) if (a := self.change())]
        how = self.rng.choice(("poll", "poll", "full", "webhook"))
        if how == "webhook" and actions:
            for action in actions:
                delivery = TrelloDelivery.model_validate({"action": action})  # as at intake
                match = self.index.resolve(*delivery.board())
                if match is not None and plan(action) != "board":
                    self.applier.deliver(delivery.action, *match)
            recompute(
                self.runtime.store,
                self.runtime.settings.governance,
                self.clock(),
            )
        else:
            result = sync_pass(self.runtime, full=how == "full")
            assert not result.failed, result.failed


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[Callable[..., Run]]:
    opened: list[tuple[Sandbox, Runtime]] = []

    def make(seed: int, store_url: str | None = None) -> Run:
        sandbox = Sandbox(world=build_sample_world(now=START), deliver_webhooks=False)
        sandbox.__enter__()
        clock = Clock(START)
        settings = demo_settings(sandbox, tmp_path / f"run{seed}.db")
        settings = settings.model_copy(  # no Figma: its budget (10 requests a minute) is slow
            update={"figma": settings.figma.model_copy(update={"files": ()})}
        )
        if store_url is not None:
            settings = settings.model_copy(update={"store": StoreConfig(url=store_url)})
        runtime = build_runtime(settings, clock=clock)
        opened.append((sandbox, runtime))
        assert not sync_pass(runtime, full=True).failed
        applier = TrelloApplier(
            store=runtime.store, trello=runtime.trello, mirror=runtime.mirror, clock=clock
        )
        index = BoardIndex(settings.trello.boards, runtime.store)
        return Run(sandbox, runtime, clock, random.Random(seed), applier, index)

    yield make
    for sandbox, runtime in opened:
        runtime.store.close()
        sandbox.__exit__(None, None, None)


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    """The parts `--at` reproduces exactly (README): all but the build time, the moment's own
    key, the boards' last sync times and the Figma section (Figma files keep no history; the
    cards' Figma links do, checked by `assert_history_mirrors_tables`)."""
    kept = {k: v for k, v in report.items() if k not in ("generated_at", "at", "figma")}
    kept["boards"] = [{k: v for k, v in b.items() if k != "last_synced_at"} for b in kept["boards"]]
    return json.loads(json.dumps(kept))


def assert_history_mirrors_tables(store: Store) -> None:
    """The invariant behind exactness: the open versions are exactly the current rows."""
    with store.reader.begin() as connection:
        opened = history.rows_at(connection, None)
        for table_name, columns in history.TRACKED_TABLES.items():
            table = m.SQLModel.metadata.tables[table_name]
            current = connection.execute(select(*(table.c[c] for c in columns))).all()
            kept = [tuple(row[c] for c in columns) for row in opened.get(table_name, [])]
            assert sorted(map(repr, kept)) == sorted(map(repr, map(tuple, current))), table_name


def first_difference(a: Any, b: Any, path: str = "") -> str:
    """Where two JSON values first differ (for a readable failure)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return first_difference(a.get(key), b.get(key), f"{path}.{key}")
    if isinstance(a, list) and isinstance(b, list):
        for index, (x, y) in enumerate(zip(a, b, strict=False)):
            if x != y:
                return first_difference(x, y, f"{path}[{index}]")
        return f"{path}: {len(a)} vs {len(b)} items"
    return f"{path}: {a!r} != {b!r}"


def run_and_compare(run: Run, steps: int) -> int:
    settings, store = run.runtime.settings, run.runtime.store
    taken: list[tuple[datetime, datetime, dict[str, Any]]] = []
    for _ in range(steps):
        run.step()
        now = run.clock()
        since = now - timedelta(days=run.rng.choice((1, 3, 10)))
        since = max(since, START)
        live = build_report(
            store, settings, now=now, since=since, lang=run.rng.choice(("fr", "en"))
        )
        taken.append((now, since, live))
    assert_history_mirrors_tables(store)

    later = run.clock() + timedelta(days=3)
    differing = 0
    for moment, since, live in taken:
        rebuilt = build_report(
            store, settings, now=later, since=since, lang=live["lang"], at=moment
        )
        assert rebuilt["at"] is not None and rebuilt["at"].startswith(
            moment.strftime("%Y-%m-%dT%H:%M")
        )
        assert comparable(rebuilt) == comparable(live), (
            moment,
            first_difference(comparable(rebuilt), comparable(live)),
        )
        differing += comparable(live) != comparable(taken[-1][2])
    return differing


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_report_rebuilt_at_t_equals_the_report_taken_at_t(make_run, seed: int) -> None:  # type: ignore[no-untyped-def]
    run = make_run(seed)
    differing = run_and_compare(run, steps=24)
    # the sequence really changed what the report says (the test could fail)
    assert differing >= 10, run.log
    final = build_report(run.runtime.store, run.runtime.settings, now=run.clock())
    assert len(final["trends"]["weeks"]) == 12
    assert any(
        v is not None and v > 0
        for series in final["trends"]["departments"].values()
        for v in series["priority_actions"][:-1]
    )


def test_report_rebuilt_at_t_on_postgresql(make_run, pg_store_url: str) -> None:  # type: ignore[no-untyped-def]
    run = make_run(4, pg_store_url)
    assert run_and_compare(run, steps=12) >= 4


def test_before_the_history_is_refused_with_the_date_it_starts(make_run) -> None:  # type: ignore[no-untyped-def]
    run = make_run(5)
    store, settings = run.runtime.store, run.runtime.settings
    start = store.history_starts_at()
    assert start is not None and start.startswith("2026-09-01T08:00")
    with pytest.raises(
        BeforeHistory, match=re.escape("knows the boards from 2026-09-01T08:00:00.000Z")
    ):
        build_report(store, settings, now=START + timedelta(days=1), at=START - timedelta(days=1))
    # exactly at the first sync: the first report
    first = build_report(store, settings, now=START + timedelta(days=1), at=START)
    assert first["at"] == "2026-09-01T08:00:00.000Z"
    assert {d["code"] for d in first["departments"] if d["flags"]} == {"12", "55", "62", "77", "95"}


@pytest.mark.slow
def test_cli_at_every_format_and_the_one_line_before_history(make_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = make_run(6)
    for _ in range(4):
        run.step()
    moment = START + timedelta(minutes=1)  # just after the first sync
    config = tmp_path / "syncd.toml"
    config.write_text(
        f'[store]\nurl = "{run.runtime.settings.store.url}"\n'
        '[trello]\n[[trello.boards]]\nid = "oSmy09cz"\nrole = "consortium"\n'
        '[[trello.boards]]\nid = "BiT8tx09"\nrole = "product"\n'
        '[governance]\ndepartments = ["12", "14", "22", "26", "55", "62", "64", "77", "78",'
        ' "80", "92", "95"]\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRELLO_", "FIGMA_", "SYNCD_"))}
    base = [sys.executable, "-m", "syncd", "--config", str(config), "report"]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], capture_output=True, text=True, env=env, timeout=60)

    expected = build_report(run.runtime.store, run.runtime.settings, now=run.clock(), at=moment)
    done = cli("--format", "json", "--at", moment.isoformat())
    assert done.returncode == 0, done.stderr
    assert comparable(json.loads(done.stdout)) == comparable(expected)
    for fmt, marker in (
        ("table", "État au 01/09/2026 08:01 UTC"),
        ("markdown", "État au"),
        ("html", 'class="at-banner"'),
    ):
        shown = cli("--format", fmt, "--at", moment.isoformat())
        assert shown.returncode == 0, shown.stderr
        assert marker in shown.stdout, fmt
    since = cli("--format", "json", "--at", moment.isoformat(), "--since", START.isoformat())
    assert since.returncode == 0 and json.loads(since.stdout)["since"] == "2026-09-01T08:00:00.000Z"
    before = cli("--at", "2026-08-01")
    assert before.returncode == 2
    lines = before.stderr.strip().splitlines()
    assert lines == [
        "syncd: 2026-08-01T00:00:00.000Z is before the store's history: it knows the boards"
        " from 2026-09-01T08:00:00.000Z"
    ]
    backwards = cli("--at", "2026-09-02", "--since", "2026-09-03")
    assert backwards.returncode == 2 and len(backwards.stderr.strip().splitlines()) == 1
