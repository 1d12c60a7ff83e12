"""The head revision known without Alembic, and a store at head opened without importing it."""

from __future__ import annotations

import subprocess
import sys
from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from state.schema_version import HEAD_REVISION, at_head, stored_revisions
from state.store import Store

REPO = Path(__file__).resolve().parents[2]


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("state") / "migrations"))
    return config


def test_the_static_head_is_alembics_head() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [HEAD_REVISION], (
        "a new migration: set state.schema_version.HEAD_REVISION to its revision"
    )


def test_at_head_only_for_exactly_the_head() -> None:
    assert at_head((HEAD_REVISION,))
    assert not at_head(())
    assert not at_head(("0001",))
    assert not at_head(("0001", HEAD_REVISION))


def opened_in_a_new_process(url: str) -> list[str]:
    """Open the store in a fresh interpreter: the Alembic modules it imported."""
    code = (
        "import sys; from state.store import Store; Store(sys.argv[1]).close(); "
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, url],
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.split()


def test_a_store_at_head_opens_without_alembic(store_url: str) -> None:
    store = Store(store_url)  # a new store: Alembic creates the schema
    with store.engine.connect() as connection:
        assert stored_revisions(connection) == (HEAD_REVISION,)
    store.close()
    assert opened_in_a_new_process(store_url) == []


def test_a_store_behind_is_upgraded_by_alembic(store_url: str) -> None:
    store = Store(store_url)
    with store.engine.begin() as connection:  # back to the migration before the head
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "-1")
        assert stored_revisions(connection) not in ((), (HEAD_REVISION,))
    store.close()
    assert "alembic" in opened_in_a_new_process(store_url)
    store = Store(store_url, migrate=False)
    with store.engine.connect() as connection:
        assert stored_revisions(connection) == (HEAD_REVISION,)
        assert connection.execute(text("SELECT count(*) FROM duty_lease")).scalar() == 0
    store.close()
