"""The digest as team leads receive it: through Apprise to a loopback Mattermost-style webhook
and a real SMTP server; a failing destination retried with backoff while the others get it;
`syncd digest` on the command line, once per period, secrets never shown."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.sandbox import CONSORTIUM_SHORT_LINK, Sandbox, build_sample_world
from syncd.config import ConfigError, DigestConfig, ServerConfig
from syncd.demo import demo_settings
from syncd.digest.deliver import deliver, parse_destinations
from syncd.digest.service import send_digest
from syncd.runtime import Runtime, build_runtime
from syncd.sync_pass import sync_pass

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def mirror_a_week(tmp_path: Path, start: datetime, *, lang: str = "fr") -> tuple[Runtime, Clock]:
    """The sample boards synced at `start`, then a week of governance changes."""
    clock = Clock(start)
    with Sandbox(world=build_sample_world(now=start)) as sandbox:
        settings = demo_settings(sandbox, tmp_path / "store.db")
        settings = settings.model_copy(
            update={
                "figma": settings.figma.model_copy(update={"files": ()}),
                "server": ServerConfig(public_url="https://syncd.example.org"),
                "digest": DigestConfig(lang=lang),
            }
        )
        runtime = build_runtime(settings, clock=clock)
        assert not sync_pass(runtime, full=True).failed
        w = sandbox.world
        clock.now = w.now = start + timedelta(days=2)
        calais = w.find_card("Pas-de-Calais", board=CONSORTIUM_SHORT_LINK)
        w.set_check_item(calais["id"], w.find_check_item(calais["id"], "Ouvrir les créneaux"), True)
        meuse = w.find_card("Meuse (55)", board=CONSORTIUM_SHORT_LINK)
        w.add_member(meuse["id"], w.find_member("Julien Moreau"))
        drome = w.find_card("Drôme", board=CONSORTIUM_SHORT_LINK)
        w.add_check_item(drome["idChecklists"][0], "Former les agents d'accueil <b>*vite*</b>")
        assert not sync_pass(runtime).failed
    clock.now = start + timedelta(days=7)
    return runtime, clock


@pytest.fixture
def week(tmp_path: Path) -> Iterator[tuple[Runtime, Clock]]:
    runtime, clock = mirror_a_week(tmp_path, START)
    yield runtime, clock
    runtime.store.close()


def test_mattermost_and_email_receive_the_weeks_story(week, mattermost, smtp) -> None:  # type: ignore[no-untyped-def]
    runtime, clock = week
    destinations = parse_destinations(f"{mattermost.url('t0k3n-secret')}  {smtp.url()}")
    outcome = send_digest(runtime.store, runtime.settings, destinations, now=clock())
    assert outcome.status == "sent" and outcome.line == "digest 2026-W49 sent to 2 destination(s)"

    (text,) = mattermost.texts("t0k3n-secret")
    assert text.startswith("syncd — synthèse de la semaine, du 23/11/2026 au 30/11/2026")
    assert "Du 23/11/2026 10:00 au 30/11/2026 10:00 (heure de Paris)." in text
    for expected in (
        "## Signalements résolus (2)",
        "- **55 Meuse** — Aucun référent (25/11/2026 10:00)",
        "- **62 Pas-de-Calais** — Trop d'actions prioritaires (25/11/2026 10:00)",
        "## Actions prioritaires ajoutées (1)",
        "- **26 Drôme** : Former les agents d'accueil &lt;b&gt;\\*vite\\*&lt;/b&gt;",
        "## Actions prioritaires terminées (1)",
        "- **62 Pas-de-Calais** : Ouvrir les créneaux en ligne",
        "## Référents modifiés (1)",
        "- **55 Meuse** : — → Julien Moreau",
        "## Signalements toujours ouverts (3)",
        "- **77 Seine-et-Marne** — Trop d'actions prioritaires : 4 actions prioritaires ouvertes"
        " (max 3) — ouvert depuis le 23/11/2026 10:00",
        "- **95 Val-d'Oise** — Pas de carte tableau de bord : aucune carte tableau de bord dans la"
        " liste Départements (23/11/2026 10:00)",
        "Tableau de bord : https://syncd.example.org/",
    ):
        assert expected in text, expected

    (mail,) = smtp.messages
    assert mail["Subject"] == "syncd — synthèse de la semaine, du 23/11/2026 au 30/11/2026"
    assert mail["To"] == "equipe@example.org"
    plain = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Julien Moreau" in plain and "https://syncd.example.org/" in plain
    assert "<strong>55 Meuse</strong>" in html
    assert "<b>*vite*</b>" not in html  # a card title never becomes markup

    again = send_digest(
        runtime.store, runtime.settings, destinations, now=clock() + timedelta(hours=1)
    )
    assert again.status == "already_sent" and len(mattermost.posts) == 1 and len(smtp.messages) == 1


def test_a_failing_destination_is_retried_with_backoff_and_the_others_get_it(
    week, mattermost, smtp
) -> None:  # type: ignore[no-untyped-def]
    runtime, clock = week
    mattermost.failing = {"down-t0k3n"}
    destinations = parse_destinations(f"{mattermost.url('down-t0k3n')} {smtp.url()}")
    waits: list[float] = []
    send = functools.partial(deliver, sleep=waits.append)
    outcome = send_digest(runtime.store, runtime.settings, destinations, now=clock(), send=send)
    assert outcome.status == "failed"
    assert outcome.line == (
        "digest 2026-W49: 1 of 2 destination(s) failed after 3 attempts: destination 1 (mmost)"
    )
    assert mattermost.attempts["down-t0k3n"] == 3 and waits == [1.0, 2.0]
    assert len(smtp.messages) == 1  # the e-mail went out all the same
    mattermost.failing = set()
    retry = send_digest(runtime.store, runtime.settings, destinations, now=clock(), send=send)
    assert retry.status == "sent" and retry.delivered == 1
    assert len(mattermost.texts("down-t0k3n")) == 1 and len(smtp.messages) == 1


def test_a_url_apprise_does_not_understand_is_one_line_without_the_url() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_destinations("json://127.0.0.1:9/ok nope-s3cret")
    assert str(caught.value) == (
        "SYNCD_DIGEST_URLS: destination 2 is not a URL Apprise understands"
    )
    assert parse_destinations("") == [] and parse_destinations(None) == []
    (only,) = parse_destinations("mmost://127.0.0.1:9/t0k3n")
    assert "t0k3n" not in repr(only) and only.name == "destination 1 (mmost)"


@pytest.mark.slow
def test_the_digest_command(tmp_path: Path, mattermost, smtp) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    runtime, _clock = mirror_a_week(tmp_path, now - timedelta(days=3), lang="en")
    runtime.store.close()
    config = tmp_path / "syncd.toml"
    config.write_text(
        f'[store]\nurl = "{runtime.settings.store.url}"\n'
        '[trello]\n[[trello.boards]]\nid = "oSmy09cz"\nrole = "consortium"\n'
        '[[trello.boards]]\nid = "BiT8tx09"\nrole = "product"\n'
        '[server]\npublic_url = "https://syncd.example.org"\n'
        '[digest]\nlang = "en"\ntimezone = "UTC"\n'
    )
    secret_urls = f"{mattermost.url('t0k3n-s3cret')} {smtp.url('s3cret-lead@example.org')}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRELLO_", "FIGMA_", "SYNCD_"))}
    env["SYNCD_LOG_FORMAT"] = "json"

    def syncd(*args: str, urls: str | None = secret_urls) -> subprocess.CompletedProcess[str]:
        run_env = {**env, "SYNCD_DIGEST_URLS": urls} if urls is not None else env
        command = [sys.executable, "-m", "syncd", "--config", str(config), "digest", *args]
        return subprocess.run(command, capture_output=True, text=True, env=run_env, timeout=90)

    dry = syncd("--dry-run", urls=None)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("# syncd — weekly digest, ")
    assert (
        "## Flags resolved (2)" in dry.stdout
        and "Dashboard: https://syncd.example.org/" in dry.stdout
    )
    assert mattermost.posts == [] and smtp.messages == []

    missing = syncd(urls=None)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        "syncd: config error: SYNCD_DIGEST_URLS: missing from the environment (or use --dry-run)"
    ]

    sent = syncd()
    assert sent.returncode == 0, sent.stderr
    period = sent.stdout.split()[1]
    assert sent.stdout == f"digest {period} sent to 2 destination(s)\n"
    assert len(mattermost.posts) == 1 and len(smtp.messages) == 1
    again = syncd()
    assert (
        again.returncode == 0 and "already sent" in again.stdout and "nothing sent" in again.stdout
    )
    assert len(mattermost.posts) == 1
    forced = syncd("--force")
    assert forced.returncode == 0 and len(mattermost.posts) == 2 and len(smtp.messages) == 2

    mattermost.failing = {"t0k3n-s3cret"}
    failing = syncd("--force")
    assert failing.returncode == 1
    assert failing.stderr.strip().splitlines()[-1] == (
        f"syncd: digest {period}: 1 of 2 destination(s) failed after 3 attempts:"
        " destination 1 (mmost)"
    )
    assert len(smtp.messages) == 3
    for done in (dry, missing, sent, again, forced, failing):
        for stream in (done.stdout, done.stderr):
            assert "s3cret" not in stream and str(mattermost.port) not in stream


def test_the_daemon_sends_it_through_its_digest_duty(tmp_path: Path, mattermost) -> None:  # type: ignore[no-untyped-def]
    from pydantic import SecretStr

    from syncd.daemon.run import Daemon

    start = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)  # Monday 06:00 in Paris; due at 08:00
    clock = Clock(start)
    with Sandbox(world=build_sample_world(now=start), deliver_webhooks=False) as sandbox:
        settings = demo_settings(sandbox, tmp_path / "store.db")
        secrets = settings.secrets.model_copy(
            update={"digest_urls": SecretStr(mattermost.url("t0k3n-daemon"))}
        )
        settings = settings.model_copy(
            update={"figma": settings.figma.model_copy(update={"files": ()}), "secrets": secrets}
        )
        daemon = Daemon(settings, clock=clock)
        assert "digest" in daemon.duties
        daemon.start_workers()
        try:
            daemon.scheduler.tick()  # the first pass; the digest is not due yet
            assert mattermost.posts == []
            clock.now = datetime(2026, 11, 30, 6, 59, tzinfo=UTC)  # Monday 07:59 in Paris
            daemon.scheduler.tick()
            assert mattermost.posts == []
            clock.now = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)  # Monday 08:00 in Paris
            daemon.scheduler.tick()
            assert len(mattermost.texts("t0k3n-daemon")) == 1
            clock.now += timedelta(hours=5)
            daemon.scheduler.tick()
            assert len(mattermost.posts) == 1  # once a week
        finally:
            daemon.stop()
