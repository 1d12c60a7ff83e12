"""`syncd demo`: the bundled sandbox on loopback, mirrored into local SQLite, then the report.

Nothing leaves the machine: the sandbox imitates Trello and Figma on 127.0.0.1 with a sample of
the two RDV-Solidarités boards and the mock-up file; syncd is configured against it exactly as
it would be against the real APIs (only ``api_base`` differs).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from adapters.sandbox import Sandbox
from adapters.sandbox.figma_world import build_sample_figma
from adapters.sandbox.sample import CONSORTIUM_SHORT_LINK, FIGMA_FILE_KEY, PRODUCT_SHORT_LINK
from state.store import Store
from syncd.config import (
    BoardConfig,
    FigmaConfig,
    Secrets,
    Settings,
    StoreConfig,
    TrelloConfig,
)
from syncd.errors import SyncFailed
from syncd.report.build import build_report
from syncd.report.render import render
from syncd.rules.governance import Rules
from syncd.runtime import build_runtime
from syncd.sync_pass import sync_pass

KNOWN_DEPARTMENTS = ("12", "14", "22", "26", "55", "62", "64", "77", "78", "80", "92", "95")


def demo_config(
    sandbox: Sandbox,
    *,
    store_url: str | None = None,
    departments: Sequence[str] | None = None,
    figma: bool = True,
    trello_timeout: int | None = None,
    extra: str = "",
) -> str:
    """The TOML an operator would write for the sandbox's two sample boards (and its Figma
    file), for a `syncd` process run by a test or a benchmark; `extra` (more sections) is
    appended. Secrets stay in the environment, as in production."""
    parts = [f'[store]\nurl = "{store_url}"\n'] if store_url else []
    timeout = f"timeout_seconds = {trello_timeout}\n" if trello_timeout else ""
    parts.append(f'[trello]\napi_base = "{sandbox.trello_api_base}"\n{timeout}')
    for board, role in ((CONSORTIUM_SHORT_LINK, "consortium"), (PRODUCT_SHORT_LINK, "product")):
        parts.append(f'[[trello.boards]]\nid = "{board}"\nrole = "{role}"\n')
    if figma:
        parts.append(
            f'[figma]\napi_base = "{sandbox.figma_api_base}"\nfiles = ["{FIGMA_FILE_KEY}"]\n'
        )
    if departments is not None:
        listed = ", ".join(f'"{code}"' for code in departments)
        parts.append(f"[governance]\ndepartments = [{listed}]\n")
    return "\n".join(parts) + extra


def demo_settings(sandbox: Sandbox, db: Path) -> Settings:
    """Settings pointing at a running sandbox (the same shape as a real config)."""
    return Settings(
        store=StoreConfig(url=f"sqlite:///{db}"),
        trello=TrelloConfig(
            api_base=sandbox.trello_api_base,
            boards=(
                BoardConfig(id=CONSORTIUM_SHORT_LINK, role="consortium"),
                BoardConfig(id=PRODUCT_SHORT_LINK, role="product"),
            ),
        ),
        figma=FigmaConfig(api_base=sandbox.figma_api_base, files=(FIGMA_FILE_KEY,)),
        governance=Rules(departments=KNOWN_DEPARTMENTS),
        secrets=Secrets(
            TRELLO_API_KEY=sandbox.api_key,
            TRELLO_TOKEN=sandbox.token,
            TRELLO_API_SECRET=sandbox.api_secret,
            FIGMA_TOKEN="sandbox-figma-token",
        ),
    )


def run_demo(db: Path, fmt: str, lang: str) -> None:
    """Mirror the sandbox into `db` (replaced) and print what was mirrored and the report."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    with Sandbox() as sandbox:
        sandbox.figma = build_sample_figma()
        settings = demo_settings(sandbox, db)
        runtime = build_runtime(settings, store=Store(settings.store.url))
        result = sync_pass(runtime, full=True)
        err = sys.stderr
        err.write(f"sandbox on {sandbox.url}; mirrored into {db}\n")
        for board in result.boards:
            err.write(
                f"  board {board.board}: {board.mode}, {board.requests} requests, "
                f"{board.cards} cards, {board.actions} actions, {board.seconds:.2f} s\n"
            )
        for file in result.figma:
            err.write(f"  figma {file.key}: {file.mode}, {file.requests} requests\n")
        if result.failed:
            raise SyncFailed("; ".join(result.failed))
        report = build_report(runtime.store, settings, now=datetime.now(UTC), lang=lang)
        sys.stdout.write(render(report, fmt, lang=lang, color=sys.stdout.isatty()))
        runtime.store.close()
