"""The single-writer rule is enforced by the Store itself, on SQLite and PostgreSQL.

Every public method of `Store` is called below with a write route installed that runs steps on
a dedicated "writer" thread (as `syncd run` does). A method that writes must be `@writes` (its
write transaction then opens on the writer); one that does not must open no write transaction.
A public method missing from `CALLS` fails the test: a new method gets a sample call here, and
if it writes without `@writes`, the store's guard refuses it.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from state import models as m
from state.store import CARD_TABLES, BoardBatch, Store, StoreError, is_write_method, writes

AT = "2026-11-01T00:00:00.000Z"
BOARD = "b0000000000000000000000b"
CARD = "c" * 23 + "1"
FILE_KEY = "JhZCwwrmaw2NYrITCj8QAK"


def _batch() -> BoardBatch:
    """One board with one card, as plain rows."""
    return BoardBatch(
        board_ref="oSmy09cz",
        role="consortium",
        observed_at=AT,
        full=True,
        board={"id": BOARD, "short_link": "oSmy09cz", "name": "lapins", "role": "consortium"},
        lists=[{"id": "L1", "board_id": BOARD, "name": "Départements", "pos": 1.0}],
        cards=[{"id": CARD, "board_id": BOARD, "list_id": "L1", "name": "Drôme"}],
    )


def _writeback_row() -> dict[str, Any]:
    return {
        "id": "0" * 16,
        "flag_id": 1,
        "event": "opened",
        "event_at": AT,
        "department": "26",
        "code": "NO_REFERENT",
        "card_id": CARD,
        "text": "…",
        "created_at": AT,
    }


# One sample call per public method (properties and the route itself excepted).
CALLS: dict[str, Callable[[Store], Any]] = {
    "upgrade": lambda s: s.upgrade(),
    "write_board": lambda s: s.write_board(_batch()),
    "record_error": lambda s: s.record_error("oSmy09cz", "boom", AT),
    "record_evaluation": lambda s: s.record_evaluation([("77", "NO_REFERENT", "m")], {}, [], AT),
    "record_checked": lambda s: s.record_checked(["oSmy09cz"], AT),
    # the durable delivery queue (issue 15)
    "delivery_queue": lambda s: s.delivery_queue().close(),  # its own engine, no write
    "checkpoint": lambda s: s.checkpoint(),  # SQLite: the log copied, no transaction
    "queued_deliveries": lambda s: s.queued_deliveries(10),
    "delivered_actions": lambda s: s.delivered_actions(["d" * 24]),
    "settle_deliveries": lambda s: s.settle_deliveries(
        [
            {
                "action_id": "d" * 24,
                "board_id": BOARD,
                "received_at": AT,
                "applied_at": AT,
                "outcome": "applied",
            }
        ],
        [1],
    ),
    "write_figma_file": lambda s: s.write_figma_file(
        {"key": FILE_KEY, "name": "Maquettes"},
        nodes=[],
        versions=[],
        comments=[],
        observed_at=AT,
        node_checks=[{"file_key": FILE_KEY, "node_id": "5:131", "found": True, "checked_at": AT}],
    ),
    "update_figma_file": lambda s: s.update_figma_file(FILE_KEY, last_error="x"),
    "insert_actions": lambda s: s.insert_actions(
        [{"id": "a" * 24, "board_id": BOARD, "type": "commentCard", "date": AT, "data": {}}]
    ),
    "known_actions": lambda s: s.known_actions(["a" * 24]),
    "read_mirror": lambda s: s.read_mirror(),
    "rules_mirror": lambda s: _read_all(s.rules_mirror()),
    "sync_states": lambda s: s.sync_states(),
    "sync_state": lambda s: s.sync_state("oSmy09cz"),
    "flags": lambda s: s.flags(resolved_since=AT),
    "card_versions_since": lambda s: s.card_versions_since(AT),
    "governance_events_since": lambda s: s.governance_events_since(AT),
    "governance_snapshot": lambda s: s.governance_snapshot(),
    "figma_rows": lambda s: s.figma_rows(),
    "custom_field_options": lambda s: s.custom_field_options("b" * 24),
    "count": lambda s: s.count(m.Card),
    "card_batch": lambda s: s.card_batch("oSmy09cz", "consortium", [CARD], observed_at=AT),
    "checklist_cards": lambda s: s.checklist_cards(["k" * 24]),
    "board_rows": lambda s: s.board_rows(),
    "live_card_counts": lambda s: s.live_card_counts(),
    "open_flag_counts": lambda s: s.open_flag_counts(),
    "figma_files": lambda s: s.figma_files(),
    "figma_linked_nodes": lambda s: s.figma_linked_nodes(FILE_KEY),
    # write-back (issue 13)
    "writeback_state": lambda s: s.writeback_state(),
    "set_writeback_enabled": lambda s: s.set_writeback_enabled(True, AT),
    "set_writeback_member": lambda s: s.set_writeback_member("m" * 24),
    "writeback_flags": lambda s: s.writeback_flags(["NO_REFERENT"], AT),
    "writeback_comments": lambda s: s.writeback_comments(unposted=True),
    "add_writeback_comments": lambda s: s.add_writeback_comments([_writeback_row()]),
    "claim_writeback": lambda s: s.claim_writeback("0" * 16, "me", AT, None),
    "finish_writeback": lambda s: s.finish_writeback("0" * 16, "a" * 24, "m" * 24, AT),
    "release_writeback": lambda s: s.release_writeback("0" * 16, "me", "lost"),
    "note_writeback_error": lambda s: s.note_writeback_error("0" * 16, "boom"),
    "retarget_writeback": lambda s: s.retarget_writeback("0" * 16, CARD),
    "writeback_intents": lambda s: s.writeback_intents(["0" * 16]),
    "writeback_comment_ids": lambda s: s.writeback_comment_ids(),
    "writeback_counts": lambda s: s.writeback_counts(),
    "own_comment_activity": lambda s: s.own_comment_activity([CARD]),
    # history (issue 12)
    "history_starts_at": lambda s: s.history_starts_at(),
    "mirror_at": lambda s: s.mirror_at(AT),
    "flags_at": lambda s: s.flags_at(AT, resolved_since=AT),
    "flag_spans": lambda s: s.flag_spans(AT, AT),
    "priority_counts": lambda s: s.priority_counts(AT, AT),
    "claim_digest": lambda s: s.claim_digest("2026-W44", "test", AT, AT),
    "digest_delivered": lambda s: s.digest_delivered("2026-W44", "f" * 16),
    "finish_digest": lambda s: s.finish_digest("2026-W44", AT, error=None),
    "digest_run": lambda s: s.digest_run("2026-W44"),
}
NOT_CALLED = {"route_writes", "serialised", "close", "safe_url"}


def _public_methods() -> set[str]:
    return {
        name
        for name, value in vars(Store).items()
        if not name.startswith("_") and (callable(value) or isinstance(value, property))
    }


@contextmanager
def _writer_route(store: Store) -> Iterator[list[tuple[str, str]]]:
    """Install a one-thread writer as the route; yield the (thread, method) of each _write."""
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="writer")
    opened: list[tuple[str, str]] = []
    original = store._write

    @contextmanager
    def recording() -> Iterator[Any]:
        caller = inspect.stack()[2].function  # _write ← contextmanager ← the Store method
        opened.append((threading.current_thread().name, caller))
        with original() as connection:
            yield connection

    def route(step: Callable[[], Any]) -> Any:
        if threading.current_thread().name.startswith("writer"):
            return step()
        return writer.submit(step).result()

    store._write = recording  # type: ignore[method-assign]
    store.route_writes(route)
    try:
        yield opened
    finally:
        store.route_writes(None)
        writer.shutdown()


def _read_all(mirror: Any) -> None:
    with mirror as rows:
        for name in CARD_TABLES:
            list(getattr(rows, name))


def test_every_public_method_has_a_sample_call() -> None:
    missing = _public_methods() - set(CALLS) - NOT_CALLED
    assert not missing, f"add a sample call to CALLS for: {sorted(missing)}"


def test_every_write_runs_on_the_writer_and_reads_open_no_write(store_url: str) -> None:
    store = Store(store_url)
    with _writer_route(store) as opened:
        for name, call in CALLS.items():
            opened.clear()
            call(store)  # an unmarked write raises StoreError here (the guard)
            if is_write_method(getattr(Store, name)):
                assert opened, f"{name} is @writes but opened no write transaction"
                assert all(thread.startswith("writer") for thread, _ in opened), (
                    f"{name} wrote off the writer thread: {opened}"
                )
            else:
                assert opened == [], f"{name} opened a write transaction without @writes"
    store.close()


def test_only_write_opens_a_transaction_on_the_write_engine() -> None:
    """No method reaches the write engine's connections but `_write` (and the guard in it)."""
    openers = [
        name
        for name, value in vars(Store).items()
        if inspect.isfunction(value)
        and any(
            call in inspect.getsource(inspect.unwrap(value))
            for call in ("self.engine.begin", "self.engine.connect", "self.engine.raw_connection")
        )
    ]
    assert openers == ["_write"], openers


class _Careless(Store):
    """A store with a write method someone forgot to mark."""

    def forgot_the_marker(self) -> None:
        with self._write() as connection:
            connection.execute(text("DELETE FROM flag"))

    @writes
    def writes_through_the_reader(self) -> None:
        with self._read() as connection:
            connection.execute(text("DELETE FROM flag"))


def test_a_write_without_the_marker_is_refused(store_url: str) -> None:
    store = _Careless(store_url)
    with pytest.raises(StoreError, match="mark the Store method @writes"):
        store.forgot_the_marker()
    with _writer_route(store), pytest.raises(StoreError, match="outside the write route"):
        store.forgot_the_marker()
    store.close()


def test_a_write_through_the_read_connection_is_refused(store_url: str) -> None:
    store = _Careless(store_url)
    with pytest.raises(DBAPIError, match=r"(?i)read.only|readonly"):
        store.writes_through_the_reader()
    store.close()


def test_a_marked_write_nests_in_a_routed_step(store_url: str) -> None:
    store = Store(store_url)
    with _writer_route(store) as opened:

        def read_modify_write() -> BoardBatch:
            store.write_board(_batch())
            return store.card_batch("oSmy09cz", "consortium", [CARD], observed_at=AT)

        batch = store.serialised(read_modify_write)
    assert [row["name"] for row in batch.cards] == ["Drôme"]
    assert [thread.startswith("writer") for thread, _ in opened] == [True]
    store.close()
