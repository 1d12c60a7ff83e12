"""Shared fixtures: store URLs for SQLite and PostgreSQL, and a running sandbox."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

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
