"""Make docs/trends.png (the dashboard's trends) and docs/digest-example.md (a weekly digest).

Twelve weeks of a team's life on the bundled sandbox boards, synced weekly with a controlled
clock; then the real daemon serves the dashboard (`GET /`) and headless Chromium takes its
picture. Loopback only.

    PYTHONPATH=. python docs/screenshot.py [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from adapters.sandbox import CONSORTIUM_SHORT_LINK, Sandbox, build_sample_world
from syncd.config import ServerConfig
from syncd.daemon.run import Daemon
from syncd.demo import demo_settings
from syncd.digest.service import build_digest
from syncd.logs import configure_logging
from syncd.web.app import create_app

DOCS = Path(__file__).resolve().parent
NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
START = NOW - timedelta(weeks=12)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def a_week(world, week: int, rng: random.Random) -> None:  # type: ignore[no-untyped-def]
    """What the consortium did that week: 77 works its list down, 62 piles up then recovers,
    55 finds a referent, 26 takes on new priorities."""
    board = CONSORTIUM_SHORT_LINK

    def tick(name: str, done: bool = True) -> None:
        card = world.find_card(name, board=board)
        checklist = world.checklists[card["idChecklists"][0]]
        for item in checklist["checkItems"]:
            if (item["state"] == "complete") != done:
                world.set_check_item(card["id"], item["id"], done)
                return

    def add(name: str, title: str) -> None:
        card = world.find_card(name, board=board)
        world.add_check_item(card["idChecklists"][0], title)

    if week in (2, 5, 9):
        tick("Seine-et-Marne")
    if week in (1, 3, 4):
        add("Pas-de-Calais", f"Relancer les partenaires (lot {week})")
    if week in (7, 8, 10):
        tick("Pas-de-Calais")
    if week == 6:
        meuse = world.find_card("Meuse (55)", board=board)
        world.add_member(meuse["id"], world.find_member("Julien Moreau"))
    if week in (8, 10, 11):
        add("Drôme", rng.choice(("Former les agents d'accueil", "Ouvrir le RDV en ligne CAF")))
    if week == 11:
        tick("Drôme", done=True)
    if week == 12:  # the digest's week
        tick("Pas-de-Calais")
        tick("Pas-de-Calais")
        add("Côtes-d'Armor", "Paramétrer les rappels SMS")
        meuse = world.find_card("Meuse (55)", board=board)
        world.remove_member(meuse["id"], world.find_member("Julien Moreau"))
        world.add_member(meuse["id"], world.find_member("Léa Dubois"))
        stale = world.find_card("[Seine-et-Marne] Ouverture", board=board)
        world.comment(stale["id"], "Créneaux du samedi ouverts à Meaux et Melun.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    configure_logging(json_lines=True)
    rng = random.Random(7)
    with (
        tempfile.TemporaryDirectory() as tmp,
        Sandbox(world=build_sample_world(now=START), deliver_webhooks=False) as sandbox,
    ):
        settings = demo_settings(sandbox, Path(tmp) / "store.db")
        settings = settings.model_copy(
            update={
                "figma": settings.figma.model_copy(update={"files": ()}),
                "server": ServerConfig(public_url="https://syncd.example.org"),
            }
        )
        clock = Clock()
        daemon = Daemon(settings, clock=clock)
        daemon.start_workers()
        daemon.sync_pass(full=True)
        for week in range(1, 13):
            clock.now = sandbox.world.now = START + timedelta(weeks=week, hours=-1)
            a_week(sandbox.world, week, rng)
            daemon.sync_pass()
        clock.now = NOW
        with TestClient(create_app(daemon.web_context())) as client:
            page = client.get("/").text
        (DOCS / "digest-example.md").write_text(
            build_digest(daemon.store, settings, NOW).markdown, encoding="utf-8"
        )
        daemon.stop()
        html = Path(tmp) / "dashboard.html"
        html.write_text(page, encoding="utf-8")
        shot = DOCS / "trends.png"
        subprocess.run(
            [
                args.chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--disable-background-networking",
                f"--user-data-dir={tmp}/profile",
                f"--screenshot={shot}",
                "--window-size=1280,2100",
                html.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    print(f"wrote {shot} and {DOCS / 'digest-example.md'}")


if __name__ == "__main__":
    main()
