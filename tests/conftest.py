"""Shared fixtures: store URLs for SQLite and PostgreSQL, and a running sandbox."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# `pytest --hypothesis-profile=fuzz`: the fuzz suite with thousands of examples per test
# (tests/web/test_fuzz.py, tests/daemon/test_fuzz_daemon.py); CI runs hundreds.
settings.register_profile(
    "fuzz",
    max_examples=3000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

PG_BASE = os.environ.get("SYNCD_TEST_PG", "postgresql+psycopg://root@127.0.0.1:5432/test")


def _pg_reachable() -> bool:
    import psycopg

    try:
        with psycopg.connect(_libpq(PG_BASE), connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture(scope="session")
def pg_ok() -> bool:
    return _pg_reachable()


def make_pg_url(schema: str) -> str:
    import psycopg

    with psycopg.connect(_libpq(PG_BASE), autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    return f"{PG_BASE}?options=-csearch_path%3D{schema}"


def drop_pg_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(_libpq(PG_BASE), autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path, pg_ok: bool) -> Iterator[str]:
    """A fresh, empty store URL on each backend (PostgreSQL: a schema of its own)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/store.db"
        return
    yield from _pg_schema_url(pg_ok)


@pytest.fixture
def pg_store_url(pg_ok: bool) -> Iterator[str]:
    """A fresh, empty PostgreSQL store URL (a schema of its own), for PostgreSQL-only tests."""
    yield from _pg_schema_url(pg_ok)


def _pg_schema_url(pg_ok: bool) -> Iterator[str]:
    if not pg_ok:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required in CI")
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    url = make_pg_url(schema)
    try:
        yield url
    finally:
        drop_pg_schema(schema)


CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's headless Chromium (CI installs it); the test is skipped without it."""
    binary = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (.ci/run installs it)")
        pytest.skip("Chromium not installed (apt-get install chromium); CI installs it")
    return binary


@pytest.fixture(scope="session")
def chromium_flags() -> tuple[str, ...]:
    """The flags every Chromium run uses (for drivers such as playwright-core)."""
    return CHROMIUM_FLAGS


@pytest.fixture
def run_chromium(chromium: str, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run headless Chromium with a fresh profile and no network chatter; 60 s at most."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    return run
