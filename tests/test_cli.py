"""The command line: each command imports only what it uses (a cold `syncd sync` imports neither
the web server, nor the report's templates, nor Alembic when the store is at head), and errors
still map to one line and an exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.sandbox import CONSORTIUM_SHORT_LINK, Sandbox
from adapters.sandbox import build_sample_world as sample
from adapters.sandbox.figma_world import build_sample_figma
from syncd.cli import COMMAND_GC_THRESHOLD, main
from syncd.demo import demo_config

REPO = Path(__file__).resolve().parents[1]
# What a sync never needs: the daemon's web server and metrics, the HTML/Markdown templates, the
# digest, write-back when it is off, and Alembic once the store is at head.
NOT_FOR_SYNC = (
    "fastapi",
    "uvicorn",
    "starlette",
    "prometheus_client",
    "alembic",
    "mako",
    "jinja2",
    "apprise",
    "authlib",
    "syncd.web",
    "syncd.daemon",
    "syncd.digest",
    "syncd.report.render",
    "syncd.writeback.service",
    # structlog imports Rich (with Pygments and attrs) for the console's tracebacks only: JSON
    # logs import structlog with Rich hidden ("rich" itself is listed, as a failed import)
    "rich.console",
    "rich.traceback",
    "pygments",
    "attr",
    # a SQLite store never loads SQLAlchemy's PostgreSQL dialect
    "sqlalchemy.dialects.postgresql",
    # the delivery models: imported to store actions, and this sync at head is idle
    "syncd.trello.schema",
    "syncd.payloads",
)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(world=sample(), figma=build_sample_figma(), rate_limit_per_10s=None) as running:
        yield running


@pytest.fixture
def config(sandbox: Sandbox, tmp_path: Path) -> Path:
    path = tmp_path / "syncd.toml"
    path.write_text(
        demo_config(
            sandbox,
            store_url=f"sqlite:///{tmp_path / 'store.db'}",
            trello_timeout=5,
            departments=["77", "95"],
        ),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def one_board(tmp_path: Path) -> Path:
    """A config naming only the consortium board (no sandbox: the store comes from the env)."""
    path = tmp_path / "syncd.toml"
    path.write_text(f'[[trello.boards]]\nid = "{CONSORTIUM_SHORT_LINK}"\nrole = "consortium"\n')
    return path


def imports_of(
    sandbox: Sandbox, config: Path, *args: str, log_format: str = "json"
) -> tuple[set[str], str]:
    """Run ``python -X importtime -m syncd.cli ARGS`` in a fresh process: the modules it
    imported (``-X importtime`` lists each once, when first imported) and its stdout."""
    variables = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SYNCD_", "TRELLO_", "FIGMA_"))
    }
    variables.update(
        PYTHONPATH=str(REPO),
        SYNCD_CONFIG=str(config),
        SYNCD_LOG_FORMAT=log_format,
        TRELLO_API_KEY=sandbox.api_key,
        TRELLO_TOKEN=sandbox.token,
        FIGMA_TOKEN="sandbox-figma-token",
    )
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "syncd.cli", *args],
        env=variables,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "self [us]" not in line
    }
    return modules, result.stdout


def imported(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """The names (packages or modules) among these imports, a package with its submodules."""
    return [name for name in names if any(m == name or m.startswith(name + ".") for m in modules)]


@pytest.mark.slow
def test_a_sync_imports_only_what_it_uses(sandbox: Sandbox, config: Path) -> None:
    first, out = imports_of(sandbox, config, "sync")  # a new store: Alembic creates the schema
    assert "full" in out
    assert imported(first, ("alembic", "syncd.sync_pass", "sqlalchemy")) == [
        "alembic",
        "syncd.sync_pass",
        "sqlalchemy",
    ]
    again, out = imports_of(sandbox, config, "sync")  # the store is at head
    assert f"{CONSORTIUM_SHORT_LINK}: idle" in out
    assert imported(again, ("syncd.sync_pass", "sqlalchemy", "adapters.trello")) == [
        "syncd.sync_pass",
        "sqlalchemy",
        "adapters.trello",
    ]
    assert imported(again, NOT_FOR_SYNC) == []
    # the store's connections were closed at exit: SQLite checkpointed and removed its WAL
    assert not config.with_name("store.db-wal").exists()


@pytest.mark.slow
def test_a_json_report_needs_no_client_templates_nor_alembic(
    sandbox: Sandbox, config: Path
) -> None:
    imports_of(sandbox, config, "sync")
    modules, out = imports_of(sandbox, config, "report", "--format", "json")
    assert '"departments"' in out
    assert "syncd.report.build" in modules
    needless = ("requests", "adapters.transport", "jinja2", "alembic", "fastapi", "syncd.web")
    assert imported(modules, needless) == []


def test_help_imports_neither_the_store_nor_the_clients(sandbox: Sandbox, config: Path) -> None:
    modules, out = imports_of(sandbox, config, "--help")
    assert "sync" in out and "typer" in modules
    assert imported(modules, ("sqlalchemy", "state", "requests", "pydantic_settings")) == []


def test_a_store_error_is_one_line_and_exit_1(
    tmp_path: Path,
    one_board: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SYNCD_STORE_URL", f"sqlite:///{tmp_path}/no/such/folder/store.db")
    assert main(["--config", str(one_board), "report", "--format", "json"]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("syncd: cannot open store sqlite:///")


def test_console_logs_still_format_with_rich(sandbox: Sandbox, config: Path) -> None:
    """Rich is hidden from structlog only when the logs are JSON lines."""
    imports_of(sandbox, config, "sync")
    modules, _ = imports_of(sandbox, config, "sync", log_format="console")
    assert imported(modules, ("rich.console", "rich.traceback")) == [
        "rich.console",
        "rich.traceback",
    ]


def test_code_calling_main_keeps_its_collector(
    tmp_path: Path, one_board: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the `syncd` process freezes its imported objects (main() without argv)."""
    import gc

    monkeypatch.setenv("SYNCD_STORE_URL", f"sqlite:///{tmp_path}/store.db")
    frozen = gc.get_freeze_count()
    assert main(["--config", str(one_board), "report", "--format", "json"]) == 0
    assert gc.get_freeze_count() == frozen


def test_a_bug_is_not_hidden(
    tmp_path: Path, one_board: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import syncd.report.build

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(syncd.report.build, "build_report", broken)
    monkeypatch.setenv("SYNCD_STORE_URL", f"sqlite:///{tmp_path}/store.db")
    with pytest.raises(RuntimeError, match="a bug"):
        main(["--config", str(one_board), "report", "--format", "json"])


def test_a_short_command_collects_less_often_the_daemon_as_usual(
    tmp_path: Path, one_board: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short command runs with a larger young generation (start-up allocates objects that live
    as long as the process); `syncd run` keeps the interpreter's pace; either way the caller in
    the same process gets its own pace back."""
    import gc

    import syncd.daemon.run
    import syncd.report.build
    from syncd.errors import SyncFailed

    seen: dict[str, tuple[int, int, int]] = {}

    def daemon(*_args: object, **_kwargs: object) -> int:
        seen["run"] = gc.get_threshold()
        return 0

    def report(*_args: object, **_kwargs: object) -> None:
        seen["report"] = gc.get_threshold()
        raise SyncFailed("stop here")

    monkeypatch.setattr(syncd.daemon.run, "run_daemon", daemon)
    monkeypatch.setattr(syncd.report.build, "build_report", report)
    monkeypatch.setenv("SYNCD_STORE_URL", f"sqlite:///{tmp_path}/store.db")
    before = gc.get_threshold()
    assert main(["--config", str(one_board), "report", "--format", "json"]) == 1
    assert gc.get_threshold() == before
    assert main(["--config", str(one_board), "run"]) == 0
    assert gc.get_threshold() == before
    assert seen == {"report": COMMAND_GC_THRESHOLD, "run": before}
