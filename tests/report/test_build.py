"""The drift report from a mirrored sandbox: flags, links, history across syncs, the CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.sandbox import (
    CONSORTIUM_SHORT_LINK,
    PRODUCT_SHORT_LINK,
    Sandbox,
    build_sample_world,
)
from adapters.sandbox.figma_world import build_sample_figma
from syncd.demo import demo_settings
from syncd.report.build import build_report
from syncd.report.model import REPORT_ADAPTER
from syncd.runtime import Runtime, build_runtime
from syncd.sync_pass import sync_pass

CONTRACT_KEYS = {"generated_at", "boards", "departments", "flags", "changes", "figma"}
DEPARTMENT_KEYS = {
    "code",
    "name",
    "dashboard_card",
    "referents",
    "priority_actions",
    "topics",
    "linked_cards",
    "flags",
}


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def mirrored(tmp_path: Path) -> Iterator[tuple[Sandbox, Runtime, Clock]]:
    with Sandbox(world=build_sample_world()) as sandbox:
        sandbox.figma = build_sample_figma()
        clock = Clock(datetime.now(UTC))
        runtime = build_runtime(demo_settings(sandbox, tmp_path / "r.db"), clock=clock)
        sync_pass(runtime, full=True)
        yield sandbox, runtime, clock


def test_sandbox_report_has_the_contract_shape_and_the_planted_flags(mirrored) -> None:  # type: ignore[no-untyped-def]
    _sandbox, runtime, clock = mirrored
    report = build_report(runtime.store, runtime.settings, now=clock())
    assert set(report) >= CONTRACT_KEYS
    json.dumps(report)  # serialisable as is
    REPORT_ADAPTER.validate_python(report)  # the typed model, no undeclared key anywhere
    codes = [d["code"] for d in report["departments"]]
    assert codes == sorted(codes)
    assert set(codes) == {"12", "14", "22", "26", "55", "62", "64", "77", "78", "80", "92", "95"}
    by_code = {d["code"]: d for d in report["departments"]}
    for department in report["departments"]:
        assert set(department) >= DEPARTMENT_KEYS
    assert by_code["62"]["flags"] == ["TOO_MANY_PRIORITIES"]
    assert by_code["77"]["flags"] == ["TOO_MANY_PRIORITIES"]
    assert len(by_code["77"]["priority_actions"]) == 4
    assert {a["source"] for a in by_code["77"]["priority_actions"]} == {"checklist", "card"}
    assert by_code["55"]["flags"] == ["NO_REFERENT"] and by_code["55"]["referents"] == []
    assert by_code["95"]["flags"] == ["NO_DASHBOARD"] and by_code["95"]["dashboard_card"] is None
    assert by_code["12"]["flags"] == ["STALE_PRIORITY"]
    assert by_code["22"]["referents"] == ["Sophie Lefèvre"]  # from the description line
    assert by_code["77"]["linked_cards"]["product"] >= 1  # "[Usager] Rappel SMS (77)"
    flags = {(f["department"], f["code"]) for f in report["flags"]}
    assert flags == {
        ("62", "TOO_MANY_PRIORITIES"),
        ("77", "TOO_MANY_PRIORITIES"),
        ("55", "NO_REFERENT"),
        ("95", "NO_DASHBOARD"),
        ("12", "STALE_PRIORITY"),
    }
    assert all(f["resolved_at"] is None and f["since"] for f in report["flags"])
    assert report["changes"] == []
    assert {b["role"] for b in report["boards"]} == {"consortium", "product"}
    assert all(b["cards"] > 0 and b["last_synced_at"] for b in report["boards"])
    # prose never links: "Vérifier la somme des RDV du mois" is no Somme card
    somme = by_code["80"]
    assert somme["linked_cards"]["consortium"] >= 2


def test_flag_history_across_syncs_and_changes_since(mirrored) -> None:  # type: ignore[no-untyped-def]
    sandbox, runtime, clock = mirrored
    world = sandbox.world
    start = clock()
    clock.now = start + timedelta(minutes=5)
    # 62 completes a priority item: back to 3, its flag resolves
    dashboard = world.find_card("Pas-de-Calais", board=CONSORTIUM_SHORT_LINK)
    item = world.find_check_item(dashboard["id"], "Ouvrir les créneaux")
    world.set_check_item(dashboard["id"], item, True)
    # 55 gets a referent member
    meuse = world.find_card("Meuse (55)", board=CONSORTIUM_SHORT_LINK)
    world.add_member(meuse["id"], world.find_member("Julien Moreau"))
    # a product card moves
    product = world.board(PRODUCT_SHORT_LINK)["id"]
    card = world.board_cards(product)[0]
    world.move_card(card["id"], world.find_list(product, "Fait"))
    result = sync_pass(runtime)
    assert result.flags is not None and result.flags.resolved == 2

    report = build_report(
        runtime.store, runtime.settings, now=clock.now, since=start + timedelta(minutes=1)
    )
    resolved = {(f["department"], f["code"]): f for f in report["flags"] if f["resolved_at"]}
    assert set(resolved) == {("62", "TOO_MANY_PRIORITIES"), ("55", "NO_REFERENT")}
    REPORT_ADAPTER.validate_python(report)
    # JSON `message` stays English for scripts; `message_fr` is what a French reader sees
    too_many = resolved[("62", "TOO_MANY_PRIORITIES")]
    assert too_many["message"] == "4 open priority actions (max 3)"
    assert too_many["message_fr"] == "4 actions prioritaires ouvertes (max 3)"
    stale = next(f for f in report["flags"] if f["code"] == "STALE_PRIORITY")
    assert re.fullmatch(r"priority card '.+' inactive for \d+ days", stale["message"])
    assert re.fullmatch(r"carte prioritaire « .+ » inactive depuis \d+ jours", stale["message_fr"])
    # the changes are told in the report's language, flag labels included
    resolved_change = next(
        c for c in report["changes"] if c["kind"] == "flag_resolved" and c["department"] == "62"
    )
    assert resolved_change["summary"] == "62 : signalement « Trop d'actions prioritaires » résolu"
    english = build_report(
        runtime.store,
        runtime.settings,
        now=clock.now,
        since=start + timedelta(minutes=1),
        lang="en",
    )
    assert any(
        c["summary"] == "62: flag “Too many priority actions” resolved" for c in english["changes"]
    )
    for flag in resolved.values():
        assert flag["since"] < flag["resolved_at"]
    kinds = {(c["kind"], c.get("department")) for c in report["changes"]}
    assert ("flag_resolved", "62") in kinds and ("flag_resolved", "55") in kinds
    assert ("priority_completed", "62") in kinds
    assert ("referents_changed", "55") in kinds
    assert any(c["kind"] == "moved" and c["card_id"] == card["id"] for c in report["changes"])
    moved = next(c for c in report["changes"] if c["kind"] == "moved")
    assert "Fait" in moved["summary"]
    # without --since the resolved ones are gone from "flags"
    plain = build_report(runtime.store, runtime.settings, now=clock.now)
    assert all(f["resolved_at"] is None for f in plain["flags"])
    assert plain["changes"] == []

    # a later sync re-opens a flag: a new row with a new "since"
    clock.now = start + timedelta(minutes=10)
    world.set_check_item(dashboard["id"], item, False)
    sync_pass(runtime)
    again = build_report(runtime.store, runtime.settings, now=clock.now, since=start)
    rows = [f for f in again["flags"] if f["department"] == "62"]
    assert len(rows) == 2
    assert sorted(f["resolved_at"] is None for f in rows) == [False, True]
    opened = [c for c in again["changes"] if c["kind"] == "flag_opened"]
    # the five flags of the first sync, and 62 opened a second time
    assert sorted(c["department"] for c in opened) == ["12", "55", "62", "62", "77", "95"]


def test_report_command_formats_exit_codes_and_clean_stdout(mirrored, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sandbox, runtime, clock = mirrored
    xss = sandbox.world.find_card("<script>", board=CONSORTIUM_SHORT_LINK)
    consortium = sandbox.world.board(CONSORTIUM_SHORT_LINK)["id"]
    sandbox.world.move_card(xss["id"], sandbox.world.find_list(consortium, "Fait"))
    since = (clock() - timedelta(minutes=1)).isoformat()
    sync_pass(runtime)
    db = runtime.settings.store.url.removeprefix("sqlite:///")
    config = tmp_path / "syncd.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{db}"\n[trello]\napi_base = "{sandbox.trello_api_base}"\n'
        '[[trello.boards]]\nid = "oSmy09cz"\nrole = "consortium"\n'
        '[[trello.boards]]\nid = "BiT8tx09"\nrole = "product"\n'
        '[governance]\ndepartments = ["12", "55", "62", "77", "95"]\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRELLO_", "FIGMA_"))}
    base = [sys.executable, "-m", "syncd", "--config", str(config), "report"]
    sandbox.reset_counts()
    done = subprocess.run(
        [*base, "--format", "json"], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)) >= CONTRACT_KEYS
    assert len(sandbox.requests) == 0  # the report reads the store alone
    failing = subprocess.run(
        [*base, "--format", "markdown", "--fail-on-flags"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert failing.returncode == 3
    assert "TOO_MANY_PRIORITIES" in failing.stdout
    out = tmp_path / "report.html"
    html = subprocess.run(
        [*base, "--format", "html", "--output", str(out), "--lang", "en", "--since", since],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert html.returncode == 0 and html.stdout == ""
    page = out.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    bad = subprocess.run(
        [*base, "--since", "yesterday"], capture_output=True, text=True, env=env, timeout=60
    )
    assert bad.returncode == 2
    assert "'yesterday' is not an ISO date" in bad.stderr and "Traceback" not in bad.stderr
    # the ends of time are clamped to what the store holds, not an OverflowError
    for edge in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        done = subprocess.run(
            [*base, "--format", "json", "--since", edge],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["since"] in (
            "0001-01-01T00:00:00.000Z",
            "9999-12-31T23:59:59.999Z",
        )


@pytest.mark.chromium
def test_sandbox_report_renders_in_headless_chromium(mirrored, run_chromium) -> None:  # type: ignore[no-untyped-def]
    from syncd.report.render import render

    sandbox, runtime, clock = mirrored
    xss = sandbox.world.find_card("<script>", board=CONSORTIUM_SHORT_LINK)
    sandbox.world.rename_card(xss["id"], "<script>alert(1)</script> (renommée)")
    start = clock()
    sync_pass(runtime)
    artifacts = Path(__file__).resolve().parents[1] / "artifacts"
    artifacts.mkdir(exist_ok=True)
    page = artifacts / "report-sandbox.html"
    report = build_report(runtime.store, runtime.settings, now=clock(), since=start)
    page.write_text(render(report, "html"), encoding="utf-8")
    dom = run_chromium("--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    flagged = set(re.findall(r'<tr class="flagged" data-code="(\w+)"', dom.stdout))
    assert flagged == {"12", "55", "62", "77", "95"}
    assert "&lt;script&gt;alert(1)&lt;/script&gt; (renommée)" in dom.stdout
    assert "<script" not in dom.stdout.lower()
    shot = artifacts / "report-sandbox.png"
    shot.unlink(missing_ok=True)
    taken = run_chromium(f"--screenshot={shot}", "--window-size=1280,2400", page.as_uri())
    assert taken.returncode == 0 and shot.stat().st_size > 10_000
