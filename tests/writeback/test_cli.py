"""Write-back through the real command line, as subprocesses against the sandbox started here: a
``kill -9`` between the POST and its commit posts nothing twice; ``syncd writeback --dry-run``;
``syncd check`` says whether write-back can post."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.sandbox import Sandbox
from adapters.sandbox import build_sample_world as sample
from state.store import Store
from syncd.demo import demo_config

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(world=sample()) as running:
        yield running


@pytest.fixture
def config(sandbox: Sandbox, tmp_path: Path) -> Path:
    path = tmp_path / "syncd.toml"
    path.write_text(
        demo_config(
            sandbox,
            store_url=f"sqlite:///{tmp_path / 'store.db'}",
            trello_timeout=5,
            figma=False,
            departments=["77", "95"],
            extra=(
                '\n[server]\npublic_url = "https://syncd.example.fr"\n'
                "\n[writeback]\nenabled = true\n"
            ),
        ),
        encoding="utf-8",
    )
    return path


def env(sandbox: Sandbox, **extra: str) -> dict[str, str]:
    variables = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SYNCD_", "TRELLO_", "FIGMA_"))
    }
    variables.update(
        PYTHONPATH=str(REPO),
        TRELLO_API_KEY=sandbox.api_key,
        TRELLO_TOKEN=sandbox.token,
        TRELLO_API_SECRET=sandbox.api_secret,
        SYNCD_LOG_FORMAT="json",
        **extra,
    )
    return variables


def syncd(
    config: Path, sandbox: Sandbox, *args: str, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncd", "--config", str(config), *args],
        cwd=REPO,
        env=env(sandbox, **extra),
        capture_output=True,
        text=True,
        timeout=120,
    )


def syncd_comments(sandbox: Sandbox) -> list[dict]:
    return [
        action
        for actions in sandbox.world.actions.values()
        for action in actions
        if action["type"] == "commentCard" and "syncd-" in action["data"]["text"]
    ]


def comment_posts(sandbox: Sandbox) -> int:
    return sum(
        1 for r in sandbox.requests if r.method == "POST" and r.path.endswith("/actions/comments")
    )


def test_kill_9_between_the_post_and_the_commit_never_posts_twice(
    sandbox: Sandbox, config: Path, tmp_path: Path
) -> None:
    paused = tmp_path / "paused"
    process = subprocess.Popen(
        [sys.executable, "-m", "syncd", "--config", str(config), "sync"],
        cwd=REPO,
        env=env(sandbox, SYNCD_TEST_PAUSE_AFTER_POST=str(paused)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not paused.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert paused.exists(), "the first sync never reached its first comment"
        os.kill(process.pid, signal.SIGKILL)  # the comment is on the card, not in the store
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    intent = paused.read_text(encoding="utf-8")
    assert comment_posts(sandbox) == 1 and len(syncd_comments(sandbox)) == 1
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    (row,) = [r for r in store.writeback_comments() if r["id"] == intent]
    assert row["attempt"] is not None and row["comment_id"] is None  # in doubt
    store.close()

    again = syncd(config, sandbox, "sync")
    assert again.returncode == 0, again.stderr
    assert "write-back: 3 comment(s) posted, 0 owed, 1 found already posted" in again.stdout
    assert comment_posts(sandbox) == 4
    comments = syncd_comments(sandbox)
    assert len(comments) == 4
    assert sum(f"syncd-{intent}" in c["data"]["text"] for c in comments) == 1
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    (row,) = [r for r in store.writeback_comments() if r["id"] == intent]
    assert row["comment_id"] == next(c["id"] for c in comments if intent in c["data"]["text"])
    store.close()

    third = syncd(config, sandbox, "sync")
    assert third.returncode == 0, third.stderr
    assert "write-back: 0 comment(s) posted, 0 owed" in third.stdout
    assert comment_posts(sandbox) == 4


def test_dry_run_prints_the_comments_and_posts_none(sandbox: Sandbox, config: Path) -> None:
    synced = syncd(config, sandbox, "sync", SYNCD_WRITEBACK_ENABLED="false")
    assert synced.returncode == 0, synced.stderr
    assert "write-back" not in synced.stdout
    sandbox.reset_counts()
    dry = syncd(config, sandbox, "writeback", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("write-back would post 4 comment(s) now:")
    assert "⚠️ **Signalement syncd : Trop d'actions prioritaires**" in dry.stdout
    assert sandbox.requests == []  # the dry run never reaches Trello
    posted = syncd(config, sandbox, "writeback")
    assert posted.returncode == 0, posted.stderr
    assert posted.stdout.strip() == "write-back: 4 comment(s) posted, 0 owed"
    assert syncd(config, sandbox, "writeback", "--dry-run").stdout == "nothing to post\n"


def test_check_says_whether_write_back_can_post(sandbox: Sandbox, config: Path) -> None:
    sandbox.read_only = True
    refused = syncd(config, sandbox, "check")
    assert refused.returncode == 1
    assert "FAIL  write-back: enabled but the Trello token is read-only" in refused.stdout
    sandbox.read_only = False
    fine = syncd(config, sandbox, "check")
    assert fine.returncode == 0, fine.stdout + fine.stderr
    assert "ok    write-back: enabled; the token may write" in fine.stdout
    assert comment_posts(sandbox) == 0  # checking posts nothing
    off = syncd(config, sandbox, "check", SYNCD_WRITEBACK_ENABLED="false")
    assert "ok    write-back: disabled" in off.stdout


def test_a_read_only_token_gives_one_line_and_the_sync_succeeds(
    sandbox: Sandbox, config: Path
) -> None:
    sandbox.read_only = True
    result = syncd(config, sandbox, "sync")
    assert result.returncode == 0, result.stderr
    refusals = [line for line in result.stderr.splitlines() if "write-back cannot post" in line]
    assert len(refusals) == 1
    assert "write-back: 0 comment(s) posted, 4 owed (the token may not write)" in result.stdout
