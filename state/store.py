"""The store: engine set-up, migrations, the one writer path into the mirror, and read queries.

Writing (`Store.write_board`) follows one algorithm, in one transaction per board:

1. upsert the board and its lists, labels, members and custom-field definitions;
2. read, once, the stored rows of every card in scope (all the board's cards for a full
   snapshot, the given cards otherwise) and of their children (labels, members, checklists,
   check items, custom-field items, attachments, Figma links);
3. diff them in memory against the batch and write only the difference, in bulk
   (`state.bulk`): new cards and child rows inserted, changed ones updated, child rows the
   batch no longer has deleted; an unchanged card only has its ``updated_at`` moved. The rows
   left are exactly those of upserting the cards and replacing their children as a whole;
4. mark cards gone from a full snapshot (or reported deleted) with ``deleted_at``, never erase;
   only a stored, live card goes (once): a card never stored has no history;
5. diff old and new views of the cards the write changed and write one ``card_version`` row per
   changed field (a card whose row and children are unchanged has none);
6. record the history versions of what changed (`state.history.record_write`);
7. insert the raw actions (a known action id is skipped: applying twice changes nothing);
8. move the board's ``sync_state`` (cursor, last success) forward.

Killed at any moment, the database holds either the previous complete state or the new one.

**The single-writer rule, enforced here.** Every method that writes is marked `@writes`; a marked
method runs through `Store.serialised`, which hands it to the *write route* (inline by default;
`syncd run` installs its writer thread with `route_writes`). A write transaction (`_write`)
refuses to open outside `serialised`, and the read connections are read-only (SQLite
``query_only``, PostgreSQL ``READ ONLY`` transactions): a write method added without `@writes`
fails at its first call, in the CLI and in tests alike. `tests/state/test_single_writer.py`
runs every public method with the route installed and checks each write ran on the writer.

**Several replicas (PostgreSQL).** Each write transaction that reads before it writes takes a
transaction-level advisory lock first (`state.coordination.xact_lock`): per board in
`write_board`, per Figma file, one for the flags, one for the migrations; so two replicas writing
the same board are serialised by PostgreSQL and a change is diffed once. A run of webhook
deliveries is settled in the transaction that writes its rows (`settle_deliveries`: their
``webhook_delivery`` rows, ``ON CONFLICT DO NOTHING``, and their ``webhook_queue`` rows deleted;
see `state.queue`). A write step PostgreSQL aborts as a deadlock is run again, whole.

SQLite runs in WAL mode with foreign keys on and a busy timeout; write transactions start with
``BEGIN IMMEDIATE`` so a writer never fails half-way on a lock upgrade. With
``background_checkpoints`` (the daemon) the writing connections never checkpoint the log in
their commit (SQLite's automatic checkpoint, an ``fsync`` of the database, ran inside whichever
commit crossed 1,000 pages, with the process's write lock held: a webhook's commit waited
behind it for up to ~80 ms); the owner calls `Store.checkpoint` from a thread of its own
instead. Same durability: the log is written at each commit as before, only copied later.
PostgreSQL is reached with ``postgresql+psycopg://``. Both go through the same SQLAlchemy Core
statements.
"""

from __future__ import annotations

import functools
import gc
import json
import threading
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from importlib.resources import files
from operator import itemgetter
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    String,
    Table,
    case,
    create_engine,
    delete,
    event,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

from state import bulk, history, queue
from state import models as m
from state.coordination import xact_lock
from state.schema_version import at_head, stored_revisions

Row = dict[str, Any]
_CHUNK = 500
_READ_CHUNK = 5000  # ids per IN of the writer's reads (SQLite allows 32,766 parameters)

T = TypeVar("T")
P = ParamSpec("P")
WriteRoute = Callable[[Callable[[], Any]], Any]


class StoreError(Exception):
    """The store cannot be opened or written; the message is one line."""


class StoreClosing(StoreError):
    """A write refused because the process is stopping (not a failure of the store)."""


def writes(method: Callable[Concatenate[Store, P], T]) -> Callable[Concatenate[Store, P], T]:
    """Mark a `Store` method that writes: each call runs through `Store.serialised`."""

    @functools.wraps(method)
    def routed(self: Store, *args: P.args, **kwargs: P.kwargs) -> T:
        return self.serialised(lambda: method(self, *args, **kwargs))

    routed.store_writes = True  # type: ignore[attr-defined]
    return routed


def is_write_method(function: Any) -> bool:
    """Whether a `Store` attribute is marked `@writes`."""
    return bool(getattr(function, "store_writes", False))


@dataclass
class BoardBatch:
    """Everything one sync step wants written for one board, as plain column dicts."""

    board_ref: str
    role: str
    observed_at: str
    source: str = "snapshot"  # snapshot, incremental, webhook
    full: bool = False  # a complete snapshot: cards missing from it are gone
    board: Row | None = None
    lists: list[Row] = field(default_factory=list)
    labels: list[Row] = field(default_factory=list)
    members: list[Row] = field(default_factory=list)
    custom_fields: list[Row] = field(default_factory=list)
    cards: list[Row] = field(default_factory=list)
    card_labels: list[Row] = field(default_factory=list)
    card_members: list[Row] = field(default_factory=list)
    checklists: list[Row] = field(default_factory=list)
    check_items: list[Row] = field(default_factory=list)
    custom_field_items: list[Row] = field(default_factory=list)
    attachments: list[Row] = field(default_factory=list)
    figma_links: list[Row] = field(default_factory=list)
    actions: list[Row] = field(default_factory=list)
    gone_card_ids: list[str] = field(default_factory=list)
    cursor: str | None = None
    board_activity: str | None = None
    action_id: str | None = None  # the webhook action behind this batch, kept on versions


@dataclass(frozen=True)
class WriteResult:
    cards: int
    versions: int
    deleted: int
    actions: int


@dataclass
class MirrorRows:
    """The whole mirror as plain rows, for the governance rules and reports."""

    boards: list[Row]
    lists: list[Row]
    labels: list[Row]
    members: list[Row]
    cards: list[Row]
    card_labels: list[Row]
    card_members: list[Row]
    checklists: list[Row]
    check_items: list[Row]
    custom_fields: list[Row]
    custom_field_items: list[Row]
    attachments: list[Row]
    figma_links: list[Row]
    # syncd's own comments (write-back rows posted or in flight) and every action of their
    # cards: what the rules need to leave syncd's comments out of a card's activity.
    own_comments: list[Row] = field(default_factory=list)
    own_comment_card_actions: list[Row] = field(default_factory=list)


@dataclass(frozen=True)
class LinkedNodes:
    """The nodes open cards link to in one Figma file, and what the store knows of them."""

    node_ids: list[str]  # sorted, "" (the whole file) excluded
    checks: dict[str, Row]  # figma_node_check rows of the file, by node id
    in_tree: dict[str, Row]  # the linked ids that are live nodes of the mirrored tree


# The children of a card, replaced as a whole when the card is written (order matters for FKs).
_CARD_CHILDREN: tuple[tuple[str, Table], ...] = (
    ("card_labels", m.CardLabel.__table__),  # type: ignore[attr-defined]
    ("card_members", m.CardMember.__table__),  # type: ignore[attr-defined]
    ("check_items", m.CheckItem.__table__),  # type: ignore[attr-defined]
    ("checklists", m.Checklist.__table__),  # type: ignore[attr-defined]
    ("custom_field_items", m.CustomFieldItem.__table__),  # type: ignore[attr-defined]
    ("attachments", m.Attachment.__table__),  # type: ignore[attr-defined]
    ("figma_links", m.CardFigmaLink.__table__),  # type: ignore[attr-defined]
)
_VIEW_FIELDS = ("name", "list", "closed", "due", "desc", "labels", "members")
_CARD_KEPT = frozenset({"id", "first_seen_at"})  # never set by a card's upsert
_VERSION_COLUMNS = (
    "card_id",
    "board_id",
    "observed_at",
    "field",
    "old",
    "new",
    "source",
    "action_id",
)


def _table(model: type[m.SQLModel]) -> Table:
    return model.__table__  # type: ignore[attr-defined,no-any-return]


# What the rules and the report read of each mirrored table (`Store.rules_mirror`), in order.
RULES_COLUMNS: dict[str, tuple[type[m.SQLModel], tuple[str, ...]]] = {
    "boards": (m.Board, ("id", "short_link", "name", "url", "closed", "role")),
    "lists": (m.BoardList, ("id", "board_id", "name", "closed", "pos")),
    "labels": (m.Label, ("id", "board_id", "name")),
    "members": (m.Member, ("id", "full_name", "username")),
    "custom_fields": (m.CustomField, ("id", "board_id", "name")),
    "figma_links": (m.CardFigmaLink, ("card_id", "file_key", "node_id")),
    "cards": (
        m.Card,
        (
            *("id", "board_id", "list_id", "name", "desc", "url", "closed", "pos"),
            *("date_last_activity", "deleted_at"),
        ),
    ),
    "card_labels": (m.CardLabel, ("card_id", "label_id")),
    "card_members": (m.CardMember, ("card_id", "member_id")),
    "checklists": (m.Checklist, ("id", "card_id", "name", "pos")),
    "check_items": (m.CheckItem, ("id", "checklist_id", "card_id", "name", "state", "pos")),
    "custom_field_items": (m.CustomFieldItem, ("card_id", "custom_field_id", "value")),
}
# The `BoardBatch` lists holding one card's rows: the card itself, then its children.
CARD_BATCH_FIELDS = ("cards", *(name for name, _table in _CARD_CHILDREN))
# The per-card tables of `RulesMirror`: tuples in `RULES_COLUMNS` order, each read once (the
# cards' Figma links stay dict rows: the report's Figma section reads them after the facts).
CARD_TABLES = (
    "cards",
    "card_labels",
    "card_members",
    "checklists",
    "check_items",
    "custom_field_items",
)
# Of those, the ones whose rows the rules read for the consortium board's cards only (its
# dashboard cards' referents, priority actions and topics): no rule reads a product card's
# members, checklists or custom fields, and at scale they are four rows in five of the mirror.
CONSORTIUM_CARD_TABLES = ("card_members", "checklists", "check_items", "custom_field_items")
# The card columns read for the consortium board's cards only (None for the others): a product
# card's description is read by no rule, and it is most of what a card weighs.
CONSORTIUM_CARD_COLUMNS = ("desc",)
CONSORTIUM_ROLE = "consortium"  # `board.role` of the consortium board (the config's role)
Tuple = tuple[Any, ...]


@dataclass
class RulesMirror:
    """The mirror as the rules and the report read it (`syncd.rules.facts`): only the columns
    they use (`RULES_COLUMNS`), deleted cards included, no attachments; of the tables in
    `CONSORTIUM_CARD_TABLES` and the card columns in `CONSORTIUM_CARD_COLUMNS`, only the
    consortium board's cards' (the other cards' columns read as None).

    The board-level tables (a few hundred rows) and the cards' Figma links are lists of dict
    rows. The per-card tables (`CARD_TABLES`) are **iterables of tuples in `RULES_COLUMNS`
    order**: `Store.rules_mirror` streams them from the read transaction's cursor (each
    iteration runs its query again, in the same snapshot), so a reader that consumes them row
    by row never holds the whole mirror (at 100,000 cards the rows as dicts were 340 MB, more
    than the facts built from them).
    """

    boards: list[Row]
    lists: list[Row]
    labels: list[Row]
    members: list[Row]
    custom_fields: list[Row]
    figma_links: list[Row]
    cards: Iterable[Tuple]
    card_labels: Iterable[Tuple]
    card_members: Iterable[Tuple]
    checklists: Iterable[Tuple]
    check_items: Iterable[Tuple]
    custom_field_items: Iterable[Tuple]
    own_comments: list[Row] = field(default_factory=list)
    own_comment_card_actions: list[Row] = field(default_factory=list)

    @classmethod
    def from_rows(cls, rows: MirrorRows) -> RulesMirror:
        """The same mirror from whole dict rows (a past moment's, `Store.mirror_at`; tests): a
        column a row leaves out reads as None."""
        consortium = {b["id"] for b in rows.boards if b.get("role") == CONSORTIUM_ROLE}
        consortium_cards = {c["id"] for c in rows.cards if c.get("board_id") in consortium}
        tables: dict[str, Any] = {}
        for name, (_model, columns) in RULES_COLUMNS.items():
            given: list[Row] = getattr(rows, name)
            if name in CONSORTIUM_CARD_TABLES:
                given = [row for row in given if row.get("card_id") in consortium_cards]
            elif name == "cards":
                blank = dict.fromkeys(CONSORTIUM_CARD_COLUMNS)
                given = [row if row.get("id") in consortium_cards else row | blank for row in given]
            if name in CARD_TABLES:
                tables[name] = [tuple(row.get(c) for c in columns) for row in given]
            else:
                tables[name] = given
        return cls(
            **tables,
            own_comments=rows.own_comments,
            own_comment_card_actions=rows.own_comment_card_actions,
        )


def _plain_rows(
    connection: Connection, model: type[m.SQLModel], columns: tuple[str, ...]
) -> list[Row]:
    """These columns of every row of `model`'s table as dicts, as the driver gives the values
    (SQLite: booleans as 0/1), fetched on the DBAPI cursor of the transaction."""
    with _Streamed(connection, model, columns) as rows:
        return [dict(zip(columns, row, strict=True)) for row in rows]


class _Streamed:
    """These columns of every row of `model`'s table (with `rules_view`, as `RulesMirror` holds
    them), as tuples: iterating runs the query on a DBAPI cursor of the open transaction and
    gives the cursor itself, row by row (SQLAlchemy's rows, or a generator around the cursor,
    cost more than the rest of the read)."""

    def __init__(
        self,
        connection: Connection,
        model: type[m.SQLModel],
        columns: tuple[str, ...],
        *,
        rules_view: bool = False,
    ) -> None:
        self._connection = connection
        self._sql = _select_text(connection.dialect, _table(model), columns, rules_view)
        self._cursors: list[Any] = []

    def __iter__(self) -> Iterator[Tuple]:
        cursor = self._connection.connection.cursor()
        self._cursors.append(cursor)
        cursor.execute(self._sql)
        return iter(cursor)

    def close(self) -> None:
        for cursor in self._cursors:
            cursor.close()
        self._cursors.clear()

    def __enter__(self) -> _Streamed:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@functools.cache
def _select_text(
    dialect: Dialect, table: Table, columns: tuple[str, ...], rules_view: bool = False
) -> str:
    """``SELECT <columns> FROM <table>`` in `dialect`'s SQL (no parameter). With `rules_view`,
    as `RulesMirror` holds them: a table of `CONSORTIUM_CARD_TABLES`, the rows of the
    consortium board's cards only; the card table, its `CONSORTIUM_CARD_COLUMNS` of the
    consortium board's cards only (None for the others)."""
    selected: list[Any] = [table.c[name] for name in columns]
    if not rules_view:
        return str(select(*selected).compile(dialect=dialect))
    card, board = _table(m.Card), _table(m.Board)
    consortium = select(board.c.id).where(board.c.role == literal(CONSORTIUM_ROLE))
    if table is card:
        selected = [
            case((card.c.board_id.in_(consortium), column)).label(column.name)
            if column.name in CONSORTIUM_CARD_COLUMNS
            else column
            for column in selected
        ]
    query = select(*selected)
    if table.name in {_table(RULES_COLUMNS[name][0]).name for name in CONSORTIUM_CARD_TABLES}:
        consortium_cards = select(card.c.id).where(card.c.board_id.in_(consortium))
        query = query.where(table.c.card_id.in_(consortium_cards))
    return str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


class Store:
    """A mirror database: SQLite (default) or PostgreSQL."""

    def __init__(
        self,
        url: str,
        *,
        migrate: bool = True,
        application_name: str | None = None,
        background_checkpoints: bool = False,
    ) -> None:
        self.url = url
        # SQLite: the writing connections leave checkpoints to `checkpoint` (module docstring)
        self.background_checkpoints = background_checkpoints
        self.is_sqlite = url.startswith("sqlite")
        self.application_name = application_name  # PostgreSQL: names this process's sessions
        self._route: WriteRoute | None = None
        self._in_write = threading.local()
        # SQLite: the process's write transactions (the writer's and the delivery queue's) take
        # this lock first, so one waits for the other's commit without the busy handler's sleeps
        self._sqlite_write = threading.RLock() if self.is_sqlite else None
        try:
            self.engine = self._make_engine(url, immediate=True)
            self.reader = (
                self._make_engine(url, immediate=False)
                if self.is_sqlite
                # one snapshot for every statement of a read: a report reads a dozen tables
                else self.engine.execution_options(
                    postgresql_readonly=True, isolation_level="REPEATABLE READ"
                )
            )
            if migrate and not self._at_head():
                self.upgrade()
        except Exception as exc:  # driver errors are long; give one line
            raise StoreError(f"cannot open store {self.safe_url}: {_one_line(exc)}") from None

    @property
    def safe_url(self) -> str:
        """The store URL without any password."""
        from sqlalchemy.engine import make_url

        return make_url(self.url).render_as_string(hide_password=True)

    def _make_engine(self, url: str, *, immediate: bool) -> Engine:
        if not url.startswith("sqlite"):
            connect_args = {}
            if self.application_name:
                connect_args["application_name"] = self.application_name[:63]
            return create_engine(url, pool_pre_ping=True, connect_args=connect_args)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            if not immediate:  # the reader: a write through it fails
                cursor.execute("PRAGMA query_only=ON")
            elif self.background_checkpoints:  # never in a commit: `checkpoint` does it
                cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    def close(self) -> None:
        self.engine.dispose()
        if self.is_sqlite:
            self.reader.dispose()

    def checkpoint(self) -> None:
        """SQLite: copy what the write-ahead log holds into the database, waiting for no reader
        nor writer (``PASSIVE``: commits go on meanwhile); on a read connection (a checkpoint
        changes no row), no transaction, no lock of this process. PostgreSQL: nothing to do."""
        if not self.is_sqlite:
            return
        connection = self.reader.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
            cursor.fetchall()
            cursor.close()
        finally:
            connection.close()

    # -- the write route ----------------------------------------------------------------

    def route_writes(self, route: WriteRoute | None) -> None:
        """Run every write through `route` from now on (the daemon's writer thread; None:
        inline). `route(step)` must run `step` and return its result."""
        self._route = route

    def serialised(self, step: Callable[[], T]) -> T:
        """Run `step` (a write, or a read-modify-write) as one routed write step."""

        def marked() -> T:
            depth = getattr(self._in_write, "depth", 0)
            self._in_write.depth = depth + 1
            try:
                if depth:
                    return step()
                return _retrying_conflicts(step)
            finally:
                self._in_write.depth = depth

        route = self._route
        return marked() if route is None else route(marked)  # type: ignore[no-any-return]

    # -- migrations ---------------------------------------------------------------------

    def _at_head(self) -> bool:
        """Whether the store already holds the newest schema (`state.schema_version`): plain SQL
        on a read connection, so opening a store at head imports no Alembic and takes no lock.
        Any failure (a new store, no table yet) says no: `upgrade` then decides, as before."""
        try:
            with self._read() as connection:
                return at_head(stored_revisions(connection))
        except DBAPIError:
            return False

    @writes
    def upgrade(self) -> None:
        """Apply the Alembic migrations up to head (Alembic is imported here only)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(files("state") / "migrations"))
        with self._write() as connection:
            xact_lock(connection, "migrations")  # replicas starting together migrate once
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    # -- transactions -------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """The one way to open a write transaction: only inside a routed write step."""
        if not getattr(self._in_write, "depth", 0):
            raise StoreError("store write outside the write route: mark the Store method @writes")
        with self._sqlite_write or nullcontext(), self.engine.begin() as connection:
            yield connection

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.reader.begin() as connection:
            yield connection

    def _upsert(
        self,
        connection: Connection,
        model: type[m.SQLModel],
        rows: Sequence[Row],
        keys: Sequence[str],
        *,
        keep: Iterable[str] = (),
        do_nothing: bool = False,
    ) -> None:
        if not rows:
            return
        table = _table(model)
        insert = bulk.conflict_insert("sqlite" if self.is_sqlite else "postgresql")
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            statement = insert(table)
            if do_nothing:
                statement = statement.on_conflict_do_nothing(index_elements=list(keys))
            else:
                columns = set(chunk[0]) - set(keys) - set(keep)
                if not columns:
                    statement = statement.on_conflict_do_nothing(index_elements=list(keys))
                else:
                    statement = statement.on_conflict_do_update(
                        index_elements=list(keys),
                        set_={name: statement.excluded[name] for name in columns},
                    )
            connection.execute(statement, list(chunk))

    # -- the writer path ----------------------------------------------------------------

    @writes
    def write_board(self, batch: BoardBatch) -> WriteResult:
        """Write one board's batch in one transaction (see the module docstring)."""
        with self._write() as connection:
            # replicas write a board one at a time: the old view is read under this lock, so a
            # change is diffed (and its history written) once, whoever applies it twice
            xact_lock(connection, f"board:{batch.board_ref}")
            with _collector_paused():
                return self._write_board(connection, batch)

    def _write_board(self, connection: Connection, batch: BoardBatch) -> WriteResult:
        state = (
            connection.execute(
                select(_table(m.SyncState)).where(
                    _table(m.SyncState).c.board_ref == batch.board_ref
                )
            )
            .mappings()
            .first()
        )
        board_id = (batch.board or {}).get("id") or (state["board_id"] if state else None)
        if board_id is None:
            raise StoreError(f"board {batch.board_ref} has never been snapshotted")
        initial = state is None or state["last_full_at"] is None

        if batch.board is not None:
            self._upsert(connection, m.Board, [batch.board], ["id"])
        self._upsert(connection, m.BoardList, batch.lists, ["id"])
        self._upsert(connection, m.Label, batch.labels, ["id"])
        self._upsert(connection, m.Member, batch.members, ["id"])
        if batch.full and batch.members:
            board_member = _table(m.BoardMember)
            connection.execute(delete(board_member).where(board_member.c.board_id == board_id))
            self._upsert(
                connection,
                m.BoardMember,
                [{"board_id": board_id, "member_id": row["id"]} for row in batch.members],
                ["board_id", "member_id"],
            )
        self._upsert(connection, m.CustomField, batch.custom_fields, ["id"])

        card_ids = list(dict.fromkeys(card["id"] for card in batch.cards))
        stored = self._stored_cards(connection, board_id if batch.full else None, card_ids)
        if batch.full:  # the board's live cards
            old_ids = [
                card_id
                for card_id, row in stored.items()
                if row["board_id"] == board_id and row["deleted_at"] is None
            ]
        else:  # the given cards the store holds, deleted or not
            old_ids = [card_id for card_id in card_ids if card_id in stored]
        scope = sorted(set(old_ids) | set(card_ids))
        children = self._stored_children(
            connection, board_id if batch.full else None, stored, scope
        )

        touched: set[str] = set()  # cards whose stored row or children change
        touched |= self._write_cards(connection, batch, stored)
        touched |= _write_children(connection, batch, children)
        # a card neither written differently nor gone has no new version: compare the others
        old_views = _views_from_rows(
            {card_id: stored[card_id] for card_id in old_ids if card_id in touched}, children
        )

        present = set(card_ids)
        gone = set(batch.gone_card_ids)
        if batch.full:
            gone |= {card_id for card_id in old_ids if card_id not in present}
        gone = {card_id for card_id in gone if card_id not in present}
        # Only a stored, live card can go: a card never stored (created and deleted before a
        # sync saw it) has no history, and a deletion is recorded once.
        gone_names = {
            card_id: stored[card_id]["name"]
            for card_id in gone
            if card_id in stored and stored[card_id]["deleted_at"] is None
        }
        gone_names.update(
            self._live_names(connection, [card_id for card_id in gone if card_id not in stored])
        )
        newly_gone = sorted(gone_names)
        bulk.update(
            connection,
            "card",
            ("deleted_at", "updated_at"),
            ("id",),
            [(batch.observed_at, batch.observed_at, card_id) for card_id in newly_gone],
        )

        # the first snapshot of a board records no "created" version: only stored cards compare
        new_views = _views_from_batch(batch, cards=set(old_views) if initial else touched)
        versions: list[tuple[Any, ...]] = []

        def version(card_id: str, name: str, old: Any, new: Any) -> None:
            versions.append(
                (
                    card_id,
                    board_id,
                    batch.observed_at,
                    name,
                    None if old is None else _history_json(old),
                    None if new is None else _history_json(new),
                    batch.source,
                    batch.action_id,
                )
            )

        for card_id, new in new_views.items():
            old = old_views.get(card_id)
            if old is None:
                if not initial:
                    version(card_id, "created", None, {"name": new["name"], "list": new["list"]})
                continue
            if old.get("deleted"):
                version(card_id, "restored", None, new["name"])
            for name in _VIEW_FIELDS:
                if old[name] != new[name]:
                    version(card_id, name, old[name], new[name])
            changed_items = {
                item: [new["checklist"].get(item), old["checklist"].get(item)]
                for item in set(old["checklist"]) | set(new["checklist"])
                if old["checklist"].get(item) != new["checklist"].get(item)
            }
            if changed_items:
                version(
                    card_id,
                    "checklist",
                    {item: states[1] for item, states in changed_items.items()},
                    {item: states[0] for item, states in changed_items.items()},
                )
            for field_id in set(old["custom_fields"]) | set(new["custom_fields"]):
                before = old["custom_fields"].get(field_id)
                after = new["custom_fields"].get(field_id)
                if before != after:
                    version(card_id, "custom_field", {field_id: before}, {field_id: after})
        for card_id in newly_gone:
            version(card_id, "deleted", gone_names[card_id], None)
        bulk.insert(connection, "card_version", _VERSION_COLUMNS, versions)
        history.record_write(
            connection, batch, scope=scope, newly_gone=newly_gone, cards=touched, stored=stored
        )

        actions_before = len(batch.actions)
        self._upsert(connection, m.Action, batch.actions, ["id"], do_nothing=True)

        self._move_state(connection, batch, board_id, state)
        return WriteResult(len(batch.cards), len(versions), len(newly_gone), actions_before)

    def _write_cards(
        self, connection: Connection, batch: BoardBatch, stored: Mapping[str, Row]
    ) -> set[str]:
        """Upsert the batch's cards against their stored rows (`first_seen_at` kept): insert
        the new, update the changed, move only ``updated_at`` of the others. The changed ids."""
        table = _table(m.Card)
        defaults = _column_defaults(table)
        texts = _text_columns(table)
        every = itemgetter(*defaults)
        inserts: list[tuple[Any, ...]] = []
        updates: dict[tuple[str, ...], list[tuple[Any, ...]]] = defaultdict(list)
        touches: list[tuple[Any, ...]] = []
        written: dict[str, Row] = {}
        for card in batch.cards:
            card.setdefault("first_seen_at", batch.observed_at)
            card["updated_at"] = batch.observed_at
            card["deleted_at"] = None
            written[_stored_form(card["id"], True)] = card  # the last wins, as an upsert would
        Shape = tuple[tuple[str, ...], tuple[str, ...], Any, Any]
        shapes: dict[tuple[str, ...], Shape] = {}
        changed: set[str] = set()
        for card_id, card in written.items():
            shape = tuple(card)
            if shape not in shapes:  # the columns an upsert sets, and those that may differ
                columns = tuple(name for name in shape if name not in _CARD_KEPT)
                compared = tuple(n for n in columns if n != "updated_at")
                text_of = itemgetter("id", *(name for name in shape if name in texts))
                shapes[shape] = (columns, compared, itemgetter(*compared, "id"), text_of)
            columns, compared, values_of, text_of = shapes[shape]
            old = stored.get(card_id)
            if old is not None and values_of(card) == values_of(old):
                touches.append((batch.observed_at, card_id))
                continue
            if int in set(map(type, text_of(card))):  # only a text column stores another form
                card = {name: _stored_form(value, name in texts) for name, value in card.items()}
            if old is None:
                try:
                    inserts.append(every(card))
                except KeyError:  # a column left out: its default, as an INSERT would
                    inserts.append(tuple(card.get(name, defaults[name]) for name in defaults))
                changed.add(card_id)
            elif any(card[name] != old[name] for name in compared):
                updates[columns].append((*(card[name] for name in columns), card_id))
                changed.add(card_id)
            else:
                touches.append((batch.observed_at, card_id))
        bulk.insert(connection, table.name, tuple(defaults), inserts)
        for columns, rows in updates.items():
            bulk.update(connection, table.name, columns, ("id",), rows)
        bulk.update(connection, table.name, ("updated_at",), ("id",), touches)
        return changed

    def _stored_cards(
        self, connection: Connection, board_id: str | None, card_ids: Sequence[str]
    ) -> dict[str, Row]:
        """The stored rows of the board's cards (any state; `board_id` given) and of these, as
        the driver gives them (`bulk.fetch`)."""
        card = _table(m.Card)
        names = tuple(column.name for column in card.columns)
        every = _select_text(connection.dialect, card, names)
        found: dict[str, Row] = {}
        if board_id is not None:
            sql = f"{every} WHERE card.board_id = {bulk.marks(connection, 1)}"
            for row in bulk.fetch(connection, sql, [board_id]):
                found[row[0]] = dict(zip(names, row, strict=True))
        missing = [card_id for card_id in card_ids if card_id not in found]
        for start in range(0, len(missing), _READ_CHUNK):
            chunk = missing[start : start + _READ_CHUNK]
            sql = f"{every} WHERE card.id IN ({bulk.marks(connection, len(chunk))})"
            for row in bulk.fetch(connection, sql, chunk):
                found[row[0]] = dict(zip(names, row, strict=True))
        return found

    def _stored_children(
        self,
        connection: Connection,
        board_id: str | None,
        stored: Mapping[str, Row],
        scope: Sequence[str],
    ) -> dict[str, list[tuple[Any, ...]]]:
        """The stored child rows (whole, in table column order, as the driver gives them) of
        the stored cards in `scope`, by `_CARD_CHILDREN` name: the board's in one query per
        table, the others by id."""
        wanted = {card_id for card_id in scope if card_id in stored}
        others = sorted(
            card_id
            for card_id in wanted
            if board_id is None or stored[card_id]["board_id"] != board_id
        )
        found: dict[str, list[tuple[Any, ...]]] = {}
        for name, table in _CARD_CHILDREN:
            names = tuple(column.name for column in table.columns)
            every = _select_text(connection.dialect, table, names)
            at = names.index("card_id")
            queries: list[tuple[str, Sequence[str]]] = []
            if board_id is not None and len(others) < len(wanted):
                on_board = (
                    f"SELECT card.id FROM card WHERE card.board_id = {bulk.marks(connection, 1)}"
                )
                queries.append((f"{every} WHERE {table.name}.card_id IN ({on_board})", [board_id]))
            for start in range(0, len(others), _READ_CHUNK):
                chunk = others[start : start + _READ_CHUNK]
                marks = bulk.marks(connection, len(chunk))
                queries.append((f"{every} WHERE {table.name}.card_id IN ({marks})", chunk))
            rows: list[tuple[Any, ...]] = []
            for sql, params in queries:
                rows += [row for row in bulk.fetch(connection, sql, params) if row[at] in wanted]
            found[name] = rows
        return found

    def _move_state(
        self,
        connection: Connection,
        batch: BoardBatch,
        board_id: str,
        state: Mapping[str, Any] | None,
    ) -> None:
        values: Row = {"board_ref": batch.board_ref, "board_id": board_id, "role": batch.role}
        if batch.source != "webhook":  # a webhook is no sync: readiness and errors stay
            values.update(last_success_at=batch.observed_at, last_error=None, last_error_at=None)
        cursor = batch.cursor or (state["action_cursor"] if state else None)
        if state and state["action_cursor"] and cursor and cursor < state["action_cursor"]:
            cursor = state["action_cursor"]  # ids grow with time: never move backwards
        values["action_cursor"] = cursor
        if batch.board_activity is not None:
            values["board_activity"] = batch.board_activity
        if batch.full:
            values["last_full_at"] = batch.observed_at
        self._upsert(connection, m.SyncState, [values], ["board_ref"])

    def _live_names(self, connection: Connection, ids: Iterable[str]) -> dict[str, str]:
        """The name of each of these cards that is stored and not marked deleted."""
        ids = list(ids)
        card = _table(m.Card)
        found: dict[str, str] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            for row in connection.execute(
                select(card.c.id, card.c.name).where(
                    card.c.id.in_(chunk), card.c.deleted_at.is_(None)
                )
            ):
                found[row[0]] = row[1]
        return found

    @writes
    def record_error(self, board_ref: str, message: str, at: str) -> None:
        """Remember a failed sync of a board (its rows stay as they were)."""
        with self._write() as connection:
            self._upsert(
                connection,
                m.SyncState,
                [{"board_ref": board_ref, "last_error": message[:2000], "last_error_at": at}],
                ["board_ref"],
            )

    @writes
    def record_checked(self, board_refs: Sequence[str], at: str) -> None:
        """Boards found unchanged by an idle change check at `at`: a success, for every replica.

        Replicas only (PostgreSQL): the replica holding a board says so in the store, so the
        others' `/readyz` knows the board is fresh. One process keeps it in memory instead.
        """
        table = _table(m.SyncState)
        with self._write() as connection:
            connection.execute(
                update(table)
                .where(
                    table.c.board_ref.in_(list(board_refs)),
                    table.c.last_success_at.is_(None) | (table.c.last_success_at < at),
                )
                .values(last_success_at=at, last_error=None, last_error_at=None)
            )

    # -- governance ---------------------------------------------------------------------

    @writes
    def record_evaluation(
        self,
        findings: Iterable[tuple[str, str, str]],
        snapshots: Mapping[str, tuple[list[str], list[str]]],
        events: Iterable[Row],
        at: str,
    ) -> tuple[int, int]:
        """Open new flags, resolve gone ones, keep the per-département snapshot and events.

        `findings` are (department, code, message); returns (opened, resolved). Writes only
        differences: an evaluation that finds what the last one found changes no row.
        """
        flag = _table(m.Flag)
        with self._write() as connection:
            xact_lock(connection, "flags")  # one evaluation at a time across replicas
            open_rows = {
                (row["department"], row["code"]): row
                for row in connection.execute(
                    select(flag).where(flag.c.resolved_at.is_(None))
                ).mappings()
            }
            seen: set[tuple[str, str]] = set()
            opened = 0
            messages: list[Row] = []  # each message a flag shows, from when (history)
            for department, code, message in findings:
                key = (department, code)
                seen.add(key)
                if key in open_rows:
                    if open_rows[key]["message"] != message:
                        connection.execute(
                            update(flag)
                            .where(flag.c.id == open_rows[key]["id"])
                            .values(message=message, last_seen_at=at)
                        )
                        messages.append(
                            {"flag_id": open_rows[key]["id"], "at": at, "message": message}
                        )
                else:
                    opened += 1
                    inserted = connection.execute(
                        flag.insert().values(
                            department=department,
                            code=code,
                            message=message,
                            since=at,
                            last_seen_at=at,
                        )
                    )
                    flag_id = inserted.inserted_primary_key[0]
                    messages.append({"flag_id": flag_id, "at": at, "message": message})
            gone = [row["id"] for key, row in open_rows.items() if key not in seen]
            if gone:
                connection.execute(update(flag).where(flag.c.id.in_(gone)).values(resolved_at=at))
            stored = {
                row["department"]: (list(row["referents"]), list(row["priority_actions"]))
                for row in self._all(connection, m.GovernanceSnapshot)
            }
            snapshot_rows = [
                {
                    "department": code,
                    "referents": referents,
                    "priority_actions": priorities,
                    "updated_at": at,
                }
                for code, (referents, priorities) in snapshots.items()
                if stored.get(code) != (list(referents), list(priorities))
            ]
            self._upsert(connection, m.GovernanceSnapshot, snapshot_rows, ["department"])
            event_rows = list(events)
            if event_rows:
                connection.execute(_table(m.GovernanceEvent).insert(), event_rows)
            if messages:
                connection.execute(_table(m.FlagMessage).insert(), messages)
            self._record_priority_counts(
                connection, {code: len(p) for code, (_r, p) in snapshots.items()}, at
            )
            return opened, len(gone)

    def _record_priority_counts(
        self, connection: Connection, counts: Mapping[str, int], at: str
    ) -> None:
        """A `priority_count` row for each département whose count changed (0 once gone)."""
        table = _table(m.PriorityCount)
        newest = select(func.max(table.c.id)).group_by(table.c.department)
        latest: dict[str, int] = {
            department: count
            for department, count in connection.execute(
                select(table.c.department, table.c.count).where(table.c.id.in_(newest))
            )
        }
        rows = [
            {"department": code, "at": at, "count": counts.get(code, 0)}
            for code in sorted(set(latest) | set(counts))
            if latest.get(code) != counts.get(code, 0)
        ]
        if rows:
            connection.execute(table.insert(), rows)

    # -- webhooks: the durable delivery queue (issue 15), `state.queue` -------------------

    def delivery_queue(self) -> queue.DeliveryQueue:
        """The durable delivery queue's writer, on an engine of its own set up like this
        store's writer (see `state.queue.DeliveryQueue`: outside the write route)."""
        return queue.DeliveryQueue(
            self._make_engine(self.url, immediate=True), lock=self._sqlite_write
        )

    def queued_deliveries(
        self, limit: int, *, after: int = 0, older_than: str | None = None
    ) -> list[Row]:
        """Queued deliveries in queue order (see `state.queue.pending`)."""
        with self._read() as connection:
            return queue.pending(connection, limit, after=after, older_than=older_than)

    def delivered_actions(self, action_ids: Iterable[str]) -> set[str]:
        """Which of these action ids were delivered before (their ``webhook_delivery`` row)."""
        with self._read() as connection:
            return queue.delivered(connection, action_ids)

    @writes
    def settle_deliveries(
        self,
        outcomes: Sequence[Row],
        dequeue: Iterable[int] = (),
        *,
        batch: BoardBatch | None = None,
    ) -> WriteResult | None:
        """A run of webhook deliveries settled in ONE transaction: the rows it changed (`batch`,
        written like `write_board`, or only its raw actions when it names no card), the
        ``webhook_delivery`` row of each (``outcomes``) and the deletion of its queue rows, so
        a crash leaves the run either queued or applied and recorded, never half of it."""
        with self._write() as connection:
            result = None
            if batch is not None and (batch.cards or batch.gone_card_ids):
                xact_lock(connection, f"board:{batch.board_ref}")
                result = self._write_board(connection, batch)
            elif batch is not None and batch.actions:
                self._upsert(connection, m.Action, batch.actions, ["id"], do_nothing=True)
            queue.settle(connection, outcomes, dequeue)
            return result

    def known_actions(self, action_ids: Iterable[str]) -> set[str]:
        """Which of these action ids are already in the mirror."""
        ids = list(action_ids)
        table = _table(m.Action)
        found: set[str] = set()
        with self._read() as connection:
            for start in range(0, len(ids), _CHUNK):
                found |= set(
                    connection.execute(
                        select(table.c.id).where(table.c.id.in_(ids[start : start + _CHUNK]))
                    ).scalars()
                )
        return found

    # -- Figma --------------------------------------------------------------------------

    @writes
    def write_figma_file(
        self,
        file_row: Row,
        *,
        nodes: Sequence[Row] | None,
        versions: Sequence[Row],
        comments: Sequence[Row] | None,
        observed_at: str,
        node_checks: Sequence[Row] = (),
    ) -> None:
        """Write one Figma file's metadata, and its frames when the tree was read.

        `nodes` and `comments` are None when they were not read; when read, they are complete,
        so the stored ones missing from them are marked deleted (never erased). `node_checks`
        are Figma's answers about linked nodes (``figma_node_check`` rows), upserted.
        """
        key = file_row["key"]
        with self._write() as connection:
            xact_lock(connection, f"figma:{key}")  # a webhook refresh and the file's duty
            self._upsert(connection, m.FigmaFile, [file_row], ["key"])
            self._upsert(connection, m.FigmaNodeCheck, list(node_checks), ["file_key", "node_id"])
            if nodes is not None:
                table = _table(m.FigmaNode)
                present = {row["node_id"] for row in nodes}
                for row in nodes:
                    row.setdefault("first_seen_at", observed_at)
                    row["deleted_at"] = None
                self._upsert(
                    connection,
                    m.FigmaNode,
                    list(nodes),
                    ["file_key", "node_id"],
                    keep=("first_seen_at",),
                )
                stored = connection.execute(
                    select(table.c.node_id).where(
                        table.c.file_key == key, table.c.deleted_at.is_(None)
                    )
                ).scalars()
                gone = [node_id for node_id in stored if node_id not in present]
                if gone:
                    connection.execute(
                        update(table)
                        .where(table.c.file_key == key, table.c.node_id.in_(gone))
                        .values(deleted_at=observed_at)
                    )
            self._upsert(connection, m.FigmaVersion, list(versions), ["file_key", "id"])
            if comments is not None:
                rows = [{**row, "deleted_at": None} for row in comments]
                self._upsert(connection, m.FigmaComment, rows, ["file_key", "id"])
                table = _table(m.FigmaComment)
                present = [row["id"] for row in rows]
                connection.execute(
                    update(table)
                    .where(
                        table.c.file_key == key,
                        table.c.deleted_at.is_(None),
                        table.c.id.not_in(present),
                    )
                    .values(deleted_at=observed_at)
                )

    @writes
    def update_figma_file(self, key: str, **values: Any) -> None:
        """Set some columns of a Figma file row (rate limit, error), creating it if needed."""
        with self._write() as connection:
            self._upsert(connection, m.FigmaFile, [{"key": key, **values}], ["key"])

    # -- reads --------------------------------------------------------------------------

    def _all(self, connection: Connection, model: type[m.SQLModel], *where: Any) -> list[Row]:
        statement = select(_table(model)).where(*where) if where else select(_table(model))
        return [dict(row) for row in connection.execute(statement).mappings()]

    def read_mirror(self) -> MirrorRows:
        """The whole mirror as rows (deleted cards included, flagged by ``deleted_at``)."""
        with self._read() as connection:
            return MirrorRows(
                boards=self._all(connection, m.Board),
                lists=self._all(connection, m.BoardList),
                labels=self._all(connection, m.Label),
                members=self._all(connection, m.Member),
                cards=self._all(connection, m.Card),
                card_labels=self._all(connection, m.CardLabel),
                card_members=self._all(connection, m.CardMember),
                checklists=self._all(connection, m.Checklist),
                check_items=self._all(connection, m.CheckItem),
                custom_fields=self._all(connection, m.CustomField),
                custom_field_items=self._all(connection, m.CustomFieldItem),
                attachments=self._all(connection, m.Attachment),
                figma_links=self._all(connection, m.CardFigmaLink),
                **self._own_comment_rows(connection),
            )

    @contextmanager
    def rules_mirror(self) -> Iterator[RulesMirror]:
        """The mirror as the rules read it (`RulesMirror`), in one read transaction that stays
        open while the caller reads: its per-card tables stream from the database cursor."""
        with self._read() as connection:
            tables: dict[str, Any] = {}
            streams: list[_Streamed] = []
            for name, (model, columns) in RULES_COLUMNS.items():
                if name in CARD_TABLES:
                    streams.append(_Streamed(connection, model, columns, rules_view=True))
                    tables[name] = streams[-1]
                else:
                    tables[name] = _plain_rows(connection, model, columns)
            try:
                yield RulesMirror(**tables, **self._own_comment_rows(connection))
            finally:
                for stream in streams:
                    stream.close()

    def sync_states(self) -> list[Row]:
        with self._read() as connection:
            return self._all(connection, m.SyncState)

    def sync_state(self, board_ref: str) -> Row | None:
        with self._read() as connection:
            rows = self._all(connection, m.SyncState, _table(m.SyncState).c.board_ref == board_ref)
        return rows[0] if rows else None

    def flags(self, *, resolved_since: str | None = None) -> list[Row]:
        """Open flags, plus those resolved at or after `resolved_since`."""
        flag = _table(m.Flag)
        condition = flag.c.resolved_at.is_(None)
        if resolved_since is not None:
            condition = condition | (flag.c.resolved_at >= resolved_since)
        with self._read() as connection:
            return self._all(connection, m.Flag, condition)

    def card_versions_since(self, since: str, until: str | None = None) -> list[Row]:
        """Card history rows observed in [since, until] (until: no bound)."""
        table = _table(m.CardVersion)
        condition = table.c.observed_at >= since
        if until is not None:
            condition = condition & (table.c.observed_at <= until)
        with self._read() as connection:
            rows = connection.execute(
                select(table).where(condition).order_by(table.c.id)
            ).mappings()
            return [dict(row) for row in rows]

    def governance_events_since(self, since: str, until: str | None = None) -> list[Row]:
        """Governance events in [since, until] (until: no bound)."""
        table = _table(m.GovernanceEvent)
        condition = table.c.at >= since
        if until is not None:
            condition = condition & (table.c.at <= until)
        with self._read() as connection:
            rows = connection.execute(
                select(table).where(condition).order_by(table.c.id)
            ).mappings()
            return [dict(row) for row in rows]

    def governance_snapshot(self) -> dict[str, Row]:
        with self._read() as connection:
            return {row["department"]: row for row in self._all(connection, m.GovernanceSnapshot)}

    def figma_rows(self) -> dict[str, list[Row]]:
        with self._read() as connection:
            return {
                "files": self._all(connection, m.FigmaFile),
                "nodes": self._all(connection, m.FigmaNode),
                "versions": self._all(connection, m.FigmaVersion),
                "comments": self._all(connection, m.FigmaComment),
                "node_checks": self._all(connection, m.FigmaNodeCheck),
            }

    def figma_linked_nodes(self, key: str) -> LinkedNodes:
        """What a Figma pass needs to check the nodes open cards link to in file `key`."""
        link, card = _table(m.CardFigmaLink), _table(m.Card)
        check, node = _table(m.FigmaNodeCheck), _table(m.FigmaNode)
        with self._read() as connection:
            linked = connection.execute(
                select(link.c.node_id)
                .distinct()
                .join(card, card.c.id == link.c.card_id)
                .where(
                    link.c.file_key == key,
                    link.c.node_id != "",
                    card.c.deleted_at.is_(None),
                    card.c.closed.is_(False),
                )
                .order_by(link.c.node_id)
            ).scalars()
            node_ids = list(linked)
            checks = {
                row["node_id"]: dict(row)
                for row in connection.execute(
                    select(check).where(check.c.file_key == key)
                ).mappings()
            }
            in_tree = {
                row["node_id"]: dict(row)
                for row in connection.execute(
                    select(node).where(
                        node.c.file_key == key,
                        node.c.deleted_at.is_(None),
                        node.c.node_id.in_(node_ids),
                    )
                ).mappings()
            }
        return LinkedNodes(node_ids, checks, in_tree)

    def custom_field_options(self, board_id: str) -> dict[str, dict[str, str]]:
        """Dropdown option texts by custom-field id (to resolve ``idValue`` on refetched cards)."""
        table = _table(m.CustomField)
        with self._read() as connection:
            rows = connection.execute(
                select(table.c.id, table.c.options).where(table.c.board_id == board_id)
            )
            return {row[0]: dict(row[1] or {}) for row in rows}

    def count(self, model: type[m.SQLModel], *where: Any) -> int:
        with self._read() as connection:
            statement = select(func.count()).select_from(_table(model))
            if where:
                statement = statement.where(*where)
            return int(connection.execute(statement).scalar_one())

    # -- webhook support (the daemon) ----------------------------------------------------

    def card_batch(
        self,
        board_ref: str,
        role: str,
        card_ids: Iterable[str],
        *,
        observed_at: str,
        source: str = "webhook",
    ) -> BoardBatch:
        """The stored rows of live cards as a batch, to change and write back (webhooks).

        Cards unknown to the store or marked deleted are left out. The batch moves no cursor:
        ``cursor`` stays None, so the next poll still reads every action since the last one.
        """
        ids = sorted(set(card_ids))
        batch = BoardBatch(board_ref=board_ref, role=role, observed_at=observed_at, source=source)
        card = _table(m.Card)
        with self._read() as connection:
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                batch.cards.extend(
                    dict(row)
                    for row in connection.execute(
                        select(card).where(card.c.id.in_(chunk), card.c.deleted_at.is_(None))
                    ).mappings()
                )
            live = [row["id"] for row in batch.cards]
            for start in range(0, len(live), _CHUNK):
                chunk = live[start : start + _CHUNK]
                for name, table in _CARD_CHILDREN:
                    getattr(batch, name).extend(
                        dict(row)
                        for row in connection.execute(
                            select(table).where(table.c.card_id.in_(chunk))
                        ).mappings()
                    )
        return batch

    def checklist_cards(self, checklist_ids: Iterable[str]) -> dict[str, str]:
        """The card of each stored checklist among these ids (for actions naming no card)."""
        ids = sorted(set(checklist_ids))
        table = _table(m.Checklist)
        found: dict[str, str] = {}
        if not ids:
            return found
        with self._read() as connection:
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                for row in connection.execute(
                    select(table.c.id, table.c.card_id).where(table.c.id.in_(chunk))
                ):
                    found[row[0]] = row[1]
        return found

    @writes
    def insert_actions(self, rows: Sequence[Row]) -> int:
        """Store raw actions alone (a known id is skipped); no card row and no sync state move."""
        if not rows:
            return 0
        with self._write() as connection:
            self._upsert(connection, m.Action, list(rows), ["id"], do_nothing=True)
        return len(rows)

    def board_rows(self) -> list[Row]:
        """The mirrored boards (id, short link, name, role), without their content."""
        table = _table(m.Board)
        with self._read() as connection:
            rows = connection.execute(
                select(table.c.id, table.c.short_link, table.c.name, table.c.role)
            ).mappings()
            return [dict(row) for row in rows]

    def live_card_counts(self) -> dict[str, int]:
        """Cards not marked deleted, by board id (the mirrored-cards gauge)."""
        card = _table(m.Card)
        with self._read() as connection:
            rows = connection.execute(
                select(card.c.board_id, func.count())
                .where(card.c.deleted_at.is_(None))
                .group_by(card.c.board_id)
            )
            return {row[0]: int(row[1]) for row in rows}

    def open_flag_counts(self) -> dict[str, int]:
        """Open flags by code (the open-flags gauge)."""
        flag = _table(m.Flag)
        with self._read() as connection:
            rows = connection.execute(
                select(flag.c.code, func.count())
                .where(flag.c.resolved_at.is_(None))
                .group_by(flag.c.code)
            )
            return {row[0]: int(row[1]) for row in rows}

    def figma_files(self) -> list[Row]:
        """The mirrored Figma files' own rows (metadata, tree version, rate limit, last error)."""
        with self._read() as connection:
            return self._all(connection, m.FigmaFile)

    # -- write-back (issue 13) -----------------------------------------------------------

    def writeback_state(self) -> Row:
        """Write-back's one row (``enabled_since``, ``member_id``); empty before the first use."""
        with self._read() as connection:
            rows = self._all(connection, m.WritebackState)
        return rows[0] if rows else {}

    @writes
    def set_writeback_enabled(self, enabled: bool, at: str) -> str | None:
        """Keep ``enabled_since``: set to `at` when first seen enabled, cleared when seen
        disabled; returns it. Writes only when it changes (callers read `writeback_state`
        first, so an unchanged state costs no write step)."""
        table = _table(m.WritebackState)
        with self._write() as connection:
            current = connection.execute(select(table.c.enabled_since)).scalar()
            if bool(current) == enabled:
                return current  # type: ignore[no-any-return]
            value = at if enabled else None
            self._upsert(connection, m.WritebackState, [{"id": 1, "enabled_since": value}], ["id"])
        return value

    @writes
    def set_writeback_member(self, member_id: str) -> None:
        """Remember the token's Trello member (the author of syncd's comments)."""
        with self._write() as connection:
            self._upsert(connection, m.WritebackState, [{"id": 1, "member_id": member_id}], ["id"])

    def writeback_flags(self, codes: Sequence[str], since: str | None) -> list[Row]:
        """The flags write-back may owe a comment for: open ones, those resolved at or after
        `since`, and those whose opening has a comment row but their resolution none."""
        flag, comment = _table(m.Flag), _table(m.WritebackComment)
        resolved = select(comment.c.flag_id).where(comment.c.event == "resolved")
        awaiting = select(comment.c.flag_id).where(
            comment.c.event == "opened", comment.c.flag_id.not_in(resolved)
        )
        condition = flag.c.resolved_at.is_(None) | flag.c.id.in_(awaiting)
        if since is not None:
            condition = condition | (flag.c.resolved_at >= since)
        with self._read() as connection:
            return self._all(connection, m.Flag, flag.c.code.in_(list(codes)) & condition)

    def writeback_comments(self, *, unposted: bool = False) -> list[Row]:
        """The write-back rows in the order they are owed; only those not posted yet on demand."""
        table = _table(m.WritebackComment)
        statement = select(table)
        if unposted:
            statement = statement.where(table.c.comment_id.is_(None))
        statement = statement.order_by(
            table.c.created_at,
            table.c.event_at,
            table.c.event,
            table.c.department,
            table.c.code,
            table.c.id,
        )
        with self._read() as connection:
            return [dict(row) for row in connection.execute(statement).mappings()]

    @writes
    def add_writeback_comments(self, rows: Sequence[Row]) -> int:
        """Insert owed comments; an event that already has its row is left as it is.
        Returns how many rows were new."""
        if not rows:
            return 0
        table = _table(m.WritebackComment)
        with self._write() as connection:
            before = int(connection.execute(select(func.count()).select_from(table)).scalar_one())
            self._upsert(
                connection, m.WritebackComment, list(rows), ["flag_id", "event"], do_nothing=True
            )
            after = int(connection.execute(select(func.count()).select_from(table)).scalar_one())
        return after - before

    @writes
    def claim_writeback(
        self, intent_id: str, attempt: str, at: str, activity_before: str | None
    ) -> bool:
        """Record the intent to post before the request: True when this caller owns it now
        (nobody else is posting it and it is not posted)."""
        table = _table(m.WritebackComment)
        with self._write() as connection:
            result = connection.execute(
                update(table)
                .where(
                    table.c.id == intent_id,
                    table.c.attempt.is_(None),
                    table.c.comment_id.is_(None),
                )
                .values(attempt=attempt, attempted_at=at, activity_before=activity_before)
            )
            return result.rowcount == 1

    @writes
    def finish_writeback(
        self, intent_id: str, comment_id: str, author_id: str | None, posted_at: str
    ) -> None:
        """Record the posted comment (after the request, or when found on the card)."""
        table = _table(m.WritebackComment)
        with self._write() as connection:
            connection.execute(
                update(table)
                .where(table.c.id == intent_id)
                .values(
                    comment_id=comment_id,
                    author_id=author_id,
                    posted_at=posted_at,
                    last_error=None,
                )
            )

    @writes
    def release_writeback(self, intent_id: str, attempt: str, error: str | None) -> bool:
        """The comment is known not posted: owed again (only if `attempt` still holds it)."""
        table = _table(m.WritebackComment)
        with self._write() as connection:
            result = connection.execute(
                update(table)
                .where(
                    table.c.id == intent_id,
                    table.c.attempt == attempt,
                    table.c.comment_id.is_(None),
                )
                .values(attempt=None, attempted_at=None, last_error=error)
            )
            return result.rowcount == 1

    @writes
    def note_writeback_error(self, intent_id: str, error: str) -> None:
        table = _table(m.WritebackComment)
        with self._write() as connection:
            connection.execute(
                update(table).where(table.c.id == intent_id).values(last_error=error[:2000])
            )

    @writes
    def retarget_writeback(self, intent_id: str, card_id: str) -> None:
        """Point an owed comment at another card (its département's dashboard card changed)."""
        table = _table(m.WritebackComment)
        with self._write() as connection:
            connection.execute(
                update(table)
                .where(table.c.id == intent_id, table.c.attempt.is_(None))
                .values(card_id=card_id)
            )

    def writeback_intents(self, intent_ids: Iterable[str]) -> dict[str, str | None]:
        """Which of these intent ids exist, with their comment id (None until posted)."""
        ids = sorted(set(intent_ids))
        table = _table(m.WritebackComment)
        found: dict[str, str | None] = {}
        with self._read() as connection:
            for start in range(0, len(ids), _CHUNK):
                rows = connection.execute(
                    select(table.c.id, table.c.comment_id).where(
                        table.c.id.in_(ids[start : start + _CHUNK])
                    )
                )
                found.update({row[0]: row[1] for row in rows})
        return found

    def writeback_counts(self) -> dict[str, int]:
        """Write-back's comments by state: ``owed``, ``in_doubt``, ``posted`` (the gauge)."""
        table = _table(m.WritebackComment)
        state = case(
            (table.c.comment_id.is_not(None), "posted"),
            (table.c.attempt.is_not(None), "in_doubt"),
            else_="owed",
        )
        counts = {"owed": 0, "in_doubt": 0, "posted": 0}
        with self._read() as connection:
            for name, count in connection.execute(select(state, func.count()).group_by(state)):
                counts[name] = int(count)
        return counts

    def writeback_comment_ids(self) -> set[str]:
        """The action ids of syncd's own comments (mirrored, never counted as activity)."""
        table = _table(m.WritebackComment)
        with self._read() as connection:
            return set(
                connection.execute(
                    select(table.c.comment_id).where(table.c.comment_id.is_not(None))
                ).scalars()
            )

    def own_comment_activity(
        self, card_ids: Iterable[str]
    ) -> tuple[list[Row], list[Row], list[Row]]:
        """For these cards: their rows, syncd's comments on them and all their actions."""
        ids = sorted(set(card_ids))
        card = _table(m.Card)
        with self._read() as connection:
            cards: list[Row] = []
            for start in range(0, len(ids), _CHUNK):
                cards.extend(
                    dict(row)
                    for row in connection.execute(
                        select(card.c.id, card.c.date_last_activity).where(
                            card.c.id.in_(ids[start : start + _CHUNK])
                        )
                    ).mappings()
                )
            own = self._own_comment_rows(connection, ids)
        return cards, own["own_comments"], own["own_comment_card_actions"]

    def _own_comment_rows(
        self,
        connection: Connection,
        card_ids: Sequence[str] | None = None,
        *,
        at: str | None = None,
    ) -> dict[str, list[Row]]:
        """syncd's comments and their cards' actions; with `at`, as known then (history)."""
        comment, action = _table(m.WritebackComment), _table(m.Action)
        statement = select(
            comment.c.id,
            comment.c.card_id,
            comment.c.attempted_at,
            comment.c.activity_before,
            comment.c.comment_id,
            comment.c.posted_at,
        ).where(comment.c.attempted_at.is_not(None) | comment.c.comment_id.is_not(None))
        if card_ids is not None:
            statement = statement.where(comment.c.card_id.in_(list(card_ids)))
        if at is not None:
            statement = statement.where(
                (comment.c.attempted_at <= at) | (comment.c.posted_at <= at)
            )
        own = [dict(row) for row in connection.execute(statement).mappings()]
        if at is not None:
            for row in own:
                if row["posted_at"] is not None and row["posted_at"] > at:
                    row.update(posted_at=None, comment_id=None)  # posted after `at`
                if row["attempted_at"] is not None and row["attempted_at"] > at:
                    row["attempted_at"] = None
        cards = sorted({row["card_id"] for row in own})
        actions: list[Row] = []
        for start in range(0, len(cards), _CHUNK):
            condition = action.c.card_id.in_(cards[start : start + _CHUNK])
            if at is not None:
                condition = condition & (action.c.date <= at)
            actions.extend(
                dict(row)
                for row in connection.execute(
                    select(
                        action.c.id, action.c.card_id, action.c.type, action.c.date, action.c.data
                    ).where(condition)
                ).mappings()
            )
        return {"own_comments": own, "own_comment_card_actions": actions}

    # -- history (issue 12): the store as it was at a past moment --------------------------

    def history_starts_at(self) -> str | None:
        """From when the store knows the boards (None: never synced)."""
        with self._read() as connection:
            return history.known_since(connection)

    def mirror_at(self, at: str) -> MirrorRows:
        """The mirror as it was at `at` (from `mirror_history`; attachments are not kept), with
        syncd's write-back comments as known then (actions dated up to `at`)."""
        with self._read() as connection:
            rows = history.rows_at(connection, at)
            own = self._own_comment_rows(connection, at=at)
        return MirrorRows(
            boards=rows["board"],
            lists=rows["board_list"],
            labels=rows["label"],
            members=rows["member"],
            cards=rows["card"],
            card_labels=rows["card_label"],
            card_members=rows["card_member"],
            checklists=rows["checklist"],
            check_items=rows["check_item"],
            custom_fields=rows["custom_field"],
            custom_field_items=rows["custom_field_item"],
            attachments=[],
            figma_links=rows["card_figma_link"],
            **own,
        )

    def flags_at(self, at: str, *, resolved_since: str | None = None) -> list[Row]:
        """The flags as they were at `at`: open then, plus those resolved in [resolved_since, at].

        A flag resolved after `at` was open then (``resolved_at`` None); its message is the one
        it showed at `at`.
        """
        flag = _table(m.Flag)
        condition = (flag.c.since <= at) & (
            flag.c.resolved_at.is_(None) | (flag.c.resolved_at > at)
        )
        if resolved_since is not None:
            condition = condition | (
                (flag.c.resolved_at >= resolved_since) & (flag.c.resolved_at <= at)
            )
        message = _table(m.FlagMessage)
        with self._read() as connection:
            rows = self._all(connection, m.Flag, condition)
            shown: dict[int, str] = {}
            ids = [row["id"] for row in rows]
            for start in range(0, len(ids), _CHUNK):
                for flag_id, text in connection.execute(
                    select(message.c.flag_id, message.c.message)
                    .where(message.c.flag_id.in_(ids[start : start + _CHUNK]), message.c.at <= at)
                    .order_by(message.c.at, message.c.id)
                ):
                    shown[flag_id] = text
        for row in rows:
            if row["resolved_at"] is not None and row["resolved_at"] > at:
                row["resolved_at"] = None
            row["message"] = shown.get(row["id"], row["message"])
        return rows

    def flag_spans(self, start: str, end: str) -> list[Row]:
        """(department, since, resolved_at) of every flag open at some moment in [start, end]."""
        flag = _table(m.Flag)
        with self._read() as connection:
            rows = connection.execute(
                select(flag.c.department, flag.c.since, flag.c.resolved_at).where(
                    flag.c.since <= end,
                    flag.c.resolved_at.is_(None) | (flag.c.resolved_at >= start),
                )
            ).mappings()
            return [dict(row) for row in rows]

    # -- the weekly digest (issue 12): one per period, whatever restarts or replicas ----------

    @writes
    def claim_digest(
        self, period: str, owner: str, now: str, lease_until: str, *, force: bool = False
    ) -> tuple[str, Row]:
        """Take the right to send `period`'s digest: ("claimed" | "sent" | "busy", its row).

        "sent": already sent (unless `force`, which starts over for every destination);
        "busy": another process holds a live claim (until ``claimed_until``). A claim left by a
        process that died lapses at ``claimed_until``. The row's ``delivered`` lists the
        destinations (fingerprints) that already have it: a new claim sends only to the others.
        """
        table = _table(m.DigestRun)
        with self._write() as connection:
            self._upsert(
                connection,
                m.DigestRun,
                [{"period": period, "status": "pending", "delivered": []}],
                ["period"],
                do_nothing=True,
            )
            row = dict(
                connection.execute(select(table).where(table.c.period == period).with_for_update())
                .mappings()
                .one()
            )
            if row["status"] == "sent" and not force:
                return "sent", row
            live_claim = row["claimed_until"] is not None and row["claimed_until"] > now
            if row["status"] == "sending" and live_claim and row["claimed_by"] != owner:
                return "busy", row
            values: Row = {
                "status": "sending",
                "claimed_by": owner,
                "claimed_until": lease_until,
                "attempts": int(row["attempts"] or 0) + 1,
                "first_attempt_at": row["first_attempt_at"] or now,
                "last_attempt_at": now,
            }
            if force:
                values["delivered"] = []
            connection.execute(update(table).where(table.c.period == period).values(**values))
            row.update(values)
            return "claimed", row

    @writes
    def digest_delivered(self, period: str, fingerprint: str) -> None:
        """Remember that one destination has `period`'s digest (right after it accepted it)."""
        table = _table(m.DigestRun)
        with self._write() as connection:
            current = connection.execute(
                select(table.c.delivered).where(table.c.period == period).with_for_update()
            ).scalar_one()
            delivered = list(current or [])
            if fingerprint not in delivered:
                delivered.append(fingerprint)
                connection.execute(
                    update(table).where(table.c.period == period).values(delivered=delivered)
                )

    @writes
    def finish_digest(self, period: str, now: str, *, error: str | None) -> None:
        """Release the claim: "sent" (every destination has it) or "failed" with one line."""
        table = _table(m.DigestRun)
        values: Row = {"claimed_by": None, "claimed_until": None, "last_error": error}
        if error:
            values["status"] = "failed"
        else:
            values.update(status="sent", sent_at=now)
        with self._write() as connection:
            connection.execute(update(table).where(table.c.period == period).values(**values))

    def digest_run(self, period: str) -> Row | None:
        with self._read() as connection:
            rows = self._all(connection, m.DigestRun, _table(m.DigestRun).c.period == period)
        return rows[0] if rows else None

    def priority_counts(self, start: str, end: str) -> list[Row]:
        """The `priority_count` rows that matter in [start, end]: those in it and, per
        département, the last one before it; ordered by time."""
        table = _table(m.PriorityCount)
        before = select(func.max(table.c.id)).where(table.c.at < start).group_by(table.c.department)
        with self._read() as connection:
            rows = connection.execute(
                select(table.c.department, table.c.at, table.c.count)
                .where(((table.c.at >= start) & (table.c.at <= end)) | table.c.id.in_(before))
                .order_by(table.c.at, table.c.id)
            ).mappings()
            return [dict(row) for row in rows]


def _history_json(value: Any) -> str:
    """A card history value as JSON; a stored value of a kind JSON cannot hold (a BLOB left in
    a text column) is written as text rather than failing the write."""
    return json.dumps(value, ensure_ascii=False, default=_as_text)


def _as_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for one write: the write allocates hundreds of
    thousands of acyclic tuples and dicts, each burst of which would rescan the whole heap."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@functools.cache
def _column_defaults(table: Table) -> dict[str, Any]:
    """Each column of `table` (in order) with the value an INSERT leaving it out stores."""
    return {
        column.name: None if column.default is None else column.default.arg  # type: ignore[attr-defined]
        for column in table.columns
    }


@functools.cache
def _text_columns(table: Table) -> frozenset[str]:
    return frozenset(
        column.name
        for column in table.columns
        if isinstance(getattr(column.type, "impl_instance", column.type), String)
    )


def _stored_form(value: Any, text: bool) -> Any:
    """A value as a text column gives it back (both backends store an integer as its digits),
    so a written row compares equal to the row read back."""
    return str(value) if text and type(value) is int else value


def _write_children(
    connection: Connection, batch: BoardBatch, stored: Mapping[str, Sequence[tuple[Any, ...]]]
) -> set[str]:
    """Make the children of the cards in scope (`stored`: their rows now, by `_CARD_CHILDREN`
    name) the batch's: insert the new rows, update the changed, delete the others. The same
    rows as deleting them all and inserting the batch's, written as a diff. The cards touched."""
    touched: set[str] = set()
    plans = []
    for name, table in _CARD_CHILDREN:
        defaults = _column_defaults(table)
        columns = tuple(defaults)
        texts = tuple(name in _text_columns(table) for name in columns)
        keys = tuple(column.name for column in table.primary_key.columns)
        key_at = tuple(columns.index(key) for key in keys)
        rest_at = tuple(i for i in range(len(columns)) if i not in key_at)
        card_at = columns.index("card_id")
        whole, key_of = itemgetter(*columns), itemgetter(*key_at)  # tables of >= 2 columns
        current = {key_of(row): row for row in stored[name]}  # what is left is deleted
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        for row in getattr(batch, name):
            try:
                values = whole(row)
            except KeyError:  # a column left out: its default, as an INSERT would
                values = tuple(row[c] if c in row else defaults[c] for c in columns)
            key = key_of(values)
            old = current.pop(key, None)  # a key given twice is inserted twice: refused
            if old != values and int in set(map(type, values)):  # 0 is stored as "0"
                if old is not None:
                    current[key] = old
                values = tuple(map(_stored_form, values, texts))
                key = key_of(values)
                old = current.pop(key, None)
            if old is None:
                inserts.append(values)
            elif old != values:
                updates.append(tuple(values[i] for i in (*rest_at, *key_at)))
                touched.add(old[card_at])
            else:
                continue
            touched.add(values[card_at])
        touched.update(row[card_at] for row in current.values())
        deletes = [tuple(row[i] for i in key_at) for row in current.values()]
        rest = tuple(columns[i] for i in rest_at)
        plans.append((table.name, columns, keys, rest, inserts, updates, deletes))
    for table_name, columns, _keys, _rest, inserts, _updates, _deletes in reversed(plans):
        bulk.insert(connection, table_name, columns, inserts)  # parents first
    for table_name, _columns, keys, rest, _inserts, updates, _deletes in reversed(plans):
        bulk.update(connection, table_name, rest, keys, updates)
    for table_name, _columns, keys, _rest, _inserts, _updates, deletes in plans:
        bulk.delete(connection, table_name, keys, deletes)  # children first
    return touched


def _views_from_rows(
    cards: Mapping[str, Row], children: Mapping[str, Sequence[tuple[Any, ...]]]
) -> dict[str, Row]:
    """The stored view of these cards (the rows read by `_write_board`): what card versions
    compare."""
    views: dict[str, Row] = {
        card_id: {
            "name": row["name"],
            "list": row["list_id"],
            "closed": bool(row["closed"]),
            "due": row["due"],
            "desc": row["desc"],
            "labels": [],
            "members": [],
            "checklist": {},
            "custom_fields": {},
            "deleted": row["deleted_at"] is not None,
        }
        for card_id, row in cards.items()
    }
    tables = dict(_CARD_CHILDREN)

    def at(name: str, *columns: str) -> tuple[int, ...]:
        names = [column.name for column in tables[name].columns]
        return tuple(names.index(column) for column in columns)

    for name, key, (card_at, value_at) in (
        ("card_labels", "labels", at("card_labels", "card_id", "label_id")),
        ("card_members", "members", at("card_members", "card_id", "member_id")),
    ):
        for row in children[name]:
            if row[card_at] in views:
                views[row[card_at]][key].append(row[value_at])
    card_at, item_at, state_at = at("check_items", "card_id", "id", "state")
    for row in children["check_items"]:
        if row[card_at] in views:
            views[row[card_at]]["checklist"][row[item_at]] = row[state_at]
    card_at, field_at, value_at = at("custom_field_items", "card_id", "custom_field_id", "value")
    for row in children["custom_field_items"]:
        if row[card_at] in views:
            views[row[card_at]]["custom_fields"][row[field_at]] = row[value_at]
    for view in views.values():
        view["labels"].sort()
        view["members"].sort()
    return views


def _views_from_batch(batch: BoardBatch, cards: Collection[str] | None = None) -> dict[str, Row]:
    """The view of the batch's cards (of those among `cards`, when given)."""
    if cards is not None and not cards:
        return {}
    views: dict[str, Row] = {
        card["id"]: {
            "name": card.get("name", ""),
            "list": card.get("list_id", ""),
            "closed": bool(card.get("closed", False)),
            "due": card.get("due"),
            "desc": card.get("desc", ""),
            "labels": [],
            "members": [],
            "checklist": {},
            "custom_fields": {},
        }
        for card in batch.cards
        if cards is None or str(card["id"]) in cards
    }
    for key, rows, column in (
        ("labels", batch.card_labels, "label_id"),
        ("members", batch.card_members, "member_id"),
    ):
        for row in rows:
            view = views.get(row["card_id"])
            if view is not None:
                view[key].append(row[column])
    for view in views.values():
        view["labels"].sort()
        view["members"].sort()
    for row in batch.check_items:
        if row["card_id"] in views:
            views[row["card_id"]]["checklist"][row["id"]] = row.get("state", "incomplete")
    for row in batch.custom_field_items:
        if row["card_id"] in views:
            views[row["card_id"]]["custom_fields"][row["custom_field_id"]] = row.get("value", "")
    return views


# PostgreSQL's "try again" answers: deadlock_detected, serialization_failure.
_RETRY_SQLSTATES = frozenset({"40P01", "40001"})
_RETRIES = 3


def _retrying_conflicts(step: Callable[[], T]) -> T:
    """Run a whole write step, again (up to 3 times) when PostgreSQL aborted it as one side of
    a deadlock between replicas; the step's transaction was rolled back, so nothing is doubled."""
    for attempt in range(_RETRIES):
        try:
            return step()
        except DBAPIError as exc:
            sqlstate = getattr(exc.orig, "sqlstate", None)
            if sqlstate not in _RETRY_SQLSTATES or attempt == _RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__
