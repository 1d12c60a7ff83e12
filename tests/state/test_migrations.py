"""Alembic migrations: the head schema is exactly the models, and upgrades keep the data."""

from __future__ import annotations

import subprocess
import sys
from importlib.resources import files

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from state.models import metadata
from state.store import Store


def alembic_config(connection) -> Config:  # type: ignore[no-untyped-def]
    config = Config()
    config.set_main_option("script_location", str(files("state") / "migrations"))
    config.attributes["connection"] = connection
    return config


def test_head_schema_matches_the_models(store_url: str) -> None:
    store = Store(store_url)  # applies every migration
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
    store.close()


def test_the_table_models_build_no_pydantic_schema_at_import() -> None:
    """`state.models` defers each table's pydantic schema (rows go through SQLAlchemy Core); a
    row object still validates on demand. Run in a fresh process: tests may validate rows."""
    script = (
        "from sqlmodel import SQLModel\n"
        "from state import models as m\n"
        "tables = [c for c in vars(m).values() if isinstance(c, type) and issubclass(c, SQLModel)"
        " and hasattr(c, '__table__')]\n"
        "print(len(tables), sum(c.__pydantic_complete__ for c in tables))\n"
        "print(m.Action.model_validate({'id': 'a', 'board_id': 'b'}).data)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split("\n")[:2] == ["35 0", "{}"]


def test_upgrade_from_0001_keeps_rows(store_url: str) -> None:
    engine = create_engine(store_url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0001")
        connection.execute(text("INSERT INTO figma_file (key, name) VALUES ('K', 'Maquettes')"))
        connection.execute(
            text(
                "INSERT INTO figma_comment (file_key, id, author, message, created_at)"
                " VALUES ('K', 'c1', 'Léa', 'Bouton trop petit', '2026-11-01T00:00:00.000Z')"
            )
        )
    engine.dispose()
    store = Store(store_url)  # upgrades to head
    (comment,) = store.figma_rows()["comments"]
    assert comment["message"] == "Bouton trop petit" and comment["deleted_at"] is None
    store.close()


def test_0003_drops_last_poll_at_and_keeps_the_sync_state(store_url: str) -> None:
    engine = create_engine(store_url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0002")
        connection.execute(
            text(
                "INSERT INTO sync_state (board_ref, board_id, role, action_cursor, last_poll_at)"
                " VALUES ('oSmy09cz', 'b1', 'consortium', 'a9', '2026-11-01T00:00:00.000Z')"
            )
        )
    engine.dispose()
    store = Store(store_url)  # upgrades to head
    (state,) = store.sync_states()
    assert "last_poll_at" not in state
    assert (state["board_id"], state["action_cursor"]) == ("b1", "a9")
    store.close()


def test_a_store_at_0007_gets_the_delivery_queue(store_url: str) -> None:
    """The last landed schema (0007, with 0006 an empty slot) is upgraded to the durable queue."""
    engine = create_engine(store_url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0007")
        assert "webhook_queue" not in inspect(connection).get_table_names()
        connection.execute(
            text(
                "INSERT INTO sync_state (board_ref, board_id, role, action_cursor)"
                " VALUES ('oSmy09cz', 'b1', 'consortium', 'a9')"
            )
        )
    engine.dispose()
    store = Store(store_url)  # upgrades to head
    with store.engine.connect() as connection:
        assert "webhook_queue" in inspect(connection).get_table_names()
    (state,) = store.sync_states()
    assert state["action_cursor"] == "a9"
    store.close()


def test_the_card_table_keeps_room_on_its_pages_on_postgresql(pg_store_url: str) -> None:
    """Migration 0009 gives ``card`` a fillfactor of 70 (a snapshot that moves every card's
    ``updated_at`` then updates in place); a downgrade takes it back."""
    reloptions = text("SELECT reloptions FROM pg_class WHERE oid = 'card'::regclass")
    store = Store(pg_store_url)  # upgrades to head
    with store.engine.connect() as connection:
        assert connection.execute(reloptions).scalar() == ["fillfactor=70"]
    store.close()
    engine = create_engine(pg_store_url)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0008")
        assert connection.execute(reloptions).scalar() is None
    engine.dispose()


def test_the_fillfactor_is_postgresql_s_alone(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """On SQLite migration 0009 changes nothing: the store upgrades to head and back."""
    url = f"sqlite:///{tmp_path}/store.db"
    Store(url).close()
    engine = create_engine(url)
    with engine.begin() as connection:
        before = inspect(connection).get_table_names()
        command.downgrade(alembic_config(connection), "0008")
        assert inspect(connection).get_table_names() == before
    engine.dispose()
