"""Alembic environment: runs the migrations on the connection the Store hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from state.models import metadata

config = context.config


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # `alembic` command line: sqlalchemy.url from the ini
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///syncd.db")
        with engine.begin() as own:
            _run(own)
        return
    _run(connection)


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
