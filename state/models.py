"""The SQL tables of the mirror (SQLModel), shared by SQLite and PostgreSQL.

Conventions:
- Trello and Figma ids are the primary keys, as strings.
- Timestamps are ISO-8601 UTC strings of one fixed shape (``2026-11-30T08:00:00.000Z``, the
  shape Trello uses): they sort and compare as text identically on SQLite and PostgreSQL and
  never lose their time zone. `state.timestamps.utc_iso` writes them.
- Nothing mirrored is ever erased: a card or frame gone from the remote gets ``deleted_at``.
- ``card_version`` is the card history: one row per observed change of one field, with the
  old and new values as JSON text. Drift reports are queries over it.

Import cost (every command imports these 35 classes): the tables are written and read through
SQLAlchemy Core only (``Model.__table__``), never validated as pydantic models, so each class
defers its pydantic schema to a first validation (`TableModel`, ``defer_build``), and the
annotations are evaluated as the module runs (no ``from __future__ import annotations``: pydantic
and SQLAlchemy would otherwise parse 221 annotation strings back). Same tables and columns:
Alembic's autogenerate sees no difference (tests/state).
"""

from datetime import datetime
from typing import Any

from pydantic import ConfigDict
from sqlalchemy import JSON, Column, DateTime, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

metadata = SQLModel.metadata


class TableModel(SQLModel):
    """The base of every table below: its pydantic schema is built on a first validation only
    (``defer_build``), which syncd never asks for (rows go through SQLAlchemy Core)."""

    model_config = ConfigDict(defer_build=True)


class Board(TableModel, table=True):
    id: str = Field(primary_key=True)
    short_link: str = Field(default="", index=True)
    name: str = ""
    desc: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    url: str = ""
    closed: bool = False
    role: str = ""
    date_last_activity: str | None = None


class BoardList(TableModel, table=True):
    __tablename__ = "board_list"
    id: str = Field(primary_key=True)
    board_id: str = Field(foreign_key="board.id", index=True)
    name: str = ""
    closed: bool = False
    pos: float = 0.0


class Label(TableModel, table=True):
    id: str = Field(primary_key=True)
    board_id: str = Field(foreign_key="board.id", index=True)
    name: str = ""
    color: str | None = None


class Member(TableModel, table=True):
    id: str = Field(primary_key=True)
    full_name: str = ""
    username: str = ""
    initials: str = ""


class BoardMember(TableModel, table=True):
    __tablename__ = "board_member"
    board_id: str = Field(foreign_key="board.id", primary_key=True)
    member_id: str = Field(foreign_key="member.id", primary_key=True)


class Card(TableModel, table=True):
    # On PostgreSQL `card` keeps 30 % of each page free (fillfactor 70): every full snapshot
    # moves each card's `updated_at`, and the new version then stays on its page, no index
    # touched. Set by migration 0009 alone, like `uq_flag_open`'s PostgreSQL form: a
    # `postgresql_with` here would load SQLAlchemy's PostgreSQL dialect into every process.
    id: str = Field(primary_key=True)
    board_id: str = Field(foreign_key="board.id", index=True)
    list_id: str = Field(default="", index=True)
    name: str = ""
    desc: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    closed: bool = False
    due: str | None = None
    due_complete: bool = False
    url: str = ""
    short_link: str = ""
    id_short: int = 0
    pos: float = 0.0
    date_last_activity: str | None = None
    created_at: str | None = None  # from the id's embedded timestamp
    first_seen_at: str = ""
    updated_at: str = ""
    deleted_at: str | None = Field(default=None, index=True)


class CardLabel(TableModel, table=True):
    __tablename__ = "card_label"
    card_id: str = Field(foreign_key="card.id", primary_key=True)
    label_id: str = Field(primary_key=True)


class CardMember(TableModel, table=True):
    __tablename__ = "card_member"
    card_id: str = Field(foreign_key="card.id", primary_key=True)
    member_id: str = Field(primary_key=True)


class Checklist(TableModel, table=True):
    id: str = Field(primary_key=True)
    card_id: str = Field(foreign_key="card.id", index=True)
    board_id: str = Field(index=True)
    name: str = ""
    pos: float = 0.0


class CheckItem(TableModel, table=True):
    __tablename__ = "check_item"
    id: str = Field(primary_key=True)
    checklist_id: str = Field(foreign_key="checklist.id", index=True)
    card_id: str = Field(foreign_key="card.id", index=True)
    name: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    state: str = "incomplete"
    pos: float = 0.0


class CustomField(TableModel, table=True):
    __tablename__ = "custom_field"
    id: str = Field(primary_key=True)
    board_id: str = Field(foreign_key="board.id", index=True)
    name: str = ""
    type: str = "text"
    options: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class CustomFieldItem(TableModel, table=True):
    __tablename__ = "custom_field_item"
    card_id: str = Field(foreign_key="card.id", primary_key=True)
    custom_field_id: str = Field(primary_key=True)
    value: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class Attachment(TableModel, table=True):
    id: str = Field(primary_key=True)
    card_id: str = Field(foreign_key="card.id", index=True)
    name: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    url: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    date: str | None = None


class Action(TableModel, table=True):
    """A raw Trello action (board history), keyed by its id: applying one twice is a no-op."""

    id: str = Field(primary_key=True)
    board_id: str = Field(index=True)
    type: str = ""
    date: str = Field(default="", index=True)
    card_id: str | None = Field(default=None, index=True)
    member_creator_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    source: str = "poll"  # "poll" (actions feed) or "webhook"


class CardVersion(TableModel, table=True):
    """One observed change of one field of one card."""

    __tablename__ = "card_version"
    __table_args__ = (Index("ix_card_version_board_observed", "board_id", "observed_at"),)
    id: int | None = Field(default=None, primary_key=True)
    card_id: str = Field(index=True)
    board_id: str
    observed_at: str
    field: str  # created, name, list, labels, members, closed, due, desc, checklist, ...
    old: str | None = Field(default=None, sa_column=Column(Text))  # JSON text
    new: str | None = Field(default=None, sa_column=Column(Text))  # JSON text
    source: str = "snapshot"  # snapshot, incremental, webhook
    action_id: str | None = None


class SyncState(TableModel, table=True):
    """Where each configured board's sync stands; moves in the same transaction as its rows."""

    __tablename__ = "sync_state"
    board_ref: str = Field(primary_key=True)  # as configured: id or short link
    board_id: str | None = None
    role: str = ""
    action_cursor: str | None = None  # newest action id applied
    board_activity: str | None = None  # board dateLastActivity at the last sync
    last_full_at: str | None = None
    last_success_at: str | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    last_error_at: str | None = None


class Flag(TableModel, table=True):
    """A governance flag of one département; open while ``resolved_at`` is null."""

    __table_args__ = (Index("ix_flag_open", "department", "code", "resolved_at"),)
    id: int | None = Field(default=None, primary_key=True)
    department: str
    code: str
    message: str = ""
    since: str
    last_seen_at: str
    resolved_at: str | None = Field(default=None, index=True)


class GovernanceSnapshot(TableModel, table=True):
    """Per-département state at the last evaluation, to report what changed (referents, …)."""

    __tablename__ = "governance_snapshot"
    department: str = Field(primary_key=True)
    referents: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    priority_actions: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    updated_at: str = ""


class GovernanceEvent(TableModel, table=True):
    """A governance change seen between two evaluations (priority added/completed, referents)."""

    __tablename__ = "governance_event"
    id: int | None = Field(default=None, primary_key=True)
    at: str = Field(index=True)
    department: str
    kind: str
    summary: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class WebhookDelivery(TableModel, table=True):
    """A Trello webhook delivery, by action id: a replay is recognised and applied once."""

    __tablename__ = "webhook_delivery"
    action_id: str = Field(primary_key=True)
    board_id: str = ""
    received_at: str = ""
    applied_at: str | None = None
    outcome: str = "queued"


class WebhookQueue(TableModel, table=True):
    """A verified Trello delivery durably queued (answered 200) and not applied yet.

    Written in group commits by the daemon's intake (`state.queue`), deleted in the transaction
    that applies it (with its ``webhook_delivery`` row); what is left after a crash is applied
    at start-up. ``action`` holds the checked action as JSON, in Trello's shape.
    """

    __tablename__ = "webhook_queue"
    seq: int | None = Field(default=None, primary_key=True)
    action_id: str = Field(unique=True, index=True)
    board_ref: str = ""  # the configured board (its id or short link in the config)
    board_id: str = ""
    action: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    queued_at: str = ""
    queued_by: str = ""  # the replica that queued it ("" with SQLite: one process)


class FigmaFile(TableModel, table=True):
    __tablename__ = "figma_file"
    key: str = Field(primary_key=True)
    name: str = ""
    last_modified: str | None = None
    version: str | None = None
    editor_type: str | None = None
    thumbnail_url: str | None = Field(default=None, sa_column=Column(Text))
    tree_version: str | None = None  # the version whose tree is mirrored
    tree_read_at: str | None = None  # the last Tier-1 read (tree or linked nodes), for the interval
    last_synced_at: str | None = None
    rate_limited_until: str | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))


class FigmaNode(TableModel, table=True):
    """A page (CANVAS) or a top-level frame of a Figma file."""

    __tablename__ = "figma_node"
    file_key: str = Field(foreign_key="figma_file.key", primary_key=True)
    node_id: str = Field(primary_key=True)
    page_id: str | None = None
    name: str = ""
    type: str = ""
    first_seen_at: str = ""
    deleted_at: str | None = None


class FigmaVersion(TableModel, table=True):
    __tablename__ = "figma_version"
    file_key: str = Field(foreign_key="figma_file.key", primary_key=True)
    id: str = Field(primary_key=True)
    created_at: str = ""
    label: str | None = None
    description: str | None = Field(default=None, sa_column=Column(Text))
    user_name: str | None = None


class FigmaComment(TableModel, table=True):
    __tablename__ = "figma_comment"
    file_key: str = Field(foreign_key="figma_file.key", primary_key=True)
    id: str = Field(primary_key=True)
    author: str = ""
    message: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: str = ""
    resolved_at: str | None = None
    node_id: str | None = None
    deleted_at: str | None = None  # gone from the file's comment list


class CardFigmaLink(TableModel, table=True):
    """A card pointing at a Figma file (and, when the URL says so, a frame)."""

    __tablename__ = "card_figma_link"
    card_id: str = Field(primary_key=True)
    file_key: str = Field(primary_key=True)
    node_id: str = Field(default="", primary_key=True)  # "" = the whole file
    url: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    source: str = "desc"  # desc or attachment


# ---------------------------------------------------------------------------------------------
# Report accuracy (issue 10): the nodes cards link to, as Figma answered for each.
# ---------------------------------------------------------------------------------------------


class FigmaNodeCheck(TableModel, table=True):
    """Figma's last answer about one node a card links to (``GET /v1/files/:key/nodes``).

    The tree is read two levels deep, so a layer inside a frame is only known from here.
    ``found`` is False when Figma answered ``null`` (the node does not exist in the file);
    ``version`` is the file version that answer is about, ``seen_at`` the last time the node
    existed (null: never seen).
    """

    __tablename__ = "figma_node_check"
    file_key: str = Field(foreign_key="figma_file.key", primary_key=True)
    node_id: str = Field(primary_key=True)
    found: bool = False
    name: str = ""
    type: str = ""
    version: str | None = None
    checked_at: str = ""
    seen_at: str | None = None


# -- write-back (issue 13, migration 0005) ----------------------------------------------------


class WritebackComment(TableModel, table=True):
    """One comment write-back owes or posted on a dashboard card: a flag opening or resolving.

    ``id`` is the intent id, written in the comment's text as its marker (``syncd-<id>``): a
    comment found on the card carrying it is this one. (``flag_id``, ``event``) is unique, so
    two processes planning the same event make one row. Life cycle: owed (``attempt`` null) →
    in flight or in doubt (``attempt`` and ``attempted_at`` set before the request) → posted
    (``comment_id`` set after it). ``activity_before`` is the card's activity just before the
    comment, so the rules never count syncd's own comment as activity.
    """

    __tablename__ = "writeback_comment"
    __table_args__ = (UniqueConstraint("flag_id", "event", name="uq_writeback_comment_event"),)
    id: str = Field(primary_key=True)
    flag_id: int = Field(index=True)
    event: str  # opened, resolved
    event_at: str  # the flag's since (opened) or resolved_at (resolved)
    department: str
    code: str
    card_id: str = Field(index=True)
    text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: str
    attempt: str | None = None  # the process posting it (see syncd.writeback.attempts)
    attempted_at: str | None = None
    activity_before: str | None = None
    comment_id: str | None = Field(default=None, index=True)  # the commentCard action id
    author_id: str | None = None
    posted_at: str | None = None  # the comment's date on Trello
    last_error: str | None = Field(default=None, sa_column=Column(Text))


class WritebackState(TableModel, table=True):
    """Write-back's one row: since when it is enabled (events before are not commented)."""

    __tablename__ = "writeback_state"
    id: int = Field(default=1, primary_key=True)
    enabled_since: str | None = None
    member_id: str | None = None  # the token's Trello member, learnt from a posted comment


# ---------------------------------------------------------------------------------------------
# History (issue 12): the mirror at any past moment, flag messages, priority counts, digests.
# ---------------------------------------------------------------------------------------------


class MirrorHistory(TableModel, table=True):
    """One version of a mirrored row or card, valid from ``valid_from`` until ``valid_to``.

    ``kind`` is a board-level row kind or ``card`` (a card with its children), ``key`` its id,
    ``data`` its tracked values as JSON text (see `state.history`). The open versions
    (``valid_to`` null) are exactly the mirror's current rows; the versions valid at T are the
    mirror as it was at T.
    """

    __tablename__ = "mirror_history"
    __table_args__ = (Index("ix_mirror_history_key", "key", "kind", "valid_to"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str
    key: str
    valid_from: str = Field(index=True)
    valid_to: str | None = None
    data: str = Field(sa_column=Column(Text, nullable=False))


class FlagMessage(TableModel, table=True):
    """A flag's message from ``at`` on (messages change while a flag stays open)."""

    __tablename__ = "flag_message"
    id: int | None = Field(default=None, primary_key=True)
    flag_id: int = Field(index=True)
    at: str
    message: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class PriorityCount(TableModel, table=True):
    """A département's number of open priority actions from ``at`` on (the trends' source)."""

    __tablename__ = "priority_count"
    __table_args__ = (Index("ix_priority_count_at", "department", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    department: str
    at: str
    count: int = 0


class DigestRun(TableModel, table=True):
    """The weekly digest of one period (an ISO week in ``digest.timezone``): sent once."""

    __tablename__ = "digest_run"
    period: str = Field(primary_key=True)  # e.g. "2026-W49"
    status: str = "sending"  # sending, sent, failed
    claimed_by: str | None = None  # the process sending it now
    claimed_until: str | None = None  # its claim lapses then (a crashed sender)
    attempts: int = 0
    first_attempt_at: str | None = None
    last_attempt_at: str | None = None
    sent_at: str | None = None
    delivered: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    last_error: str | None = Field(default=None, sa_column=Column(Text))


# -- replicas (issue 14): who is alive and who holds which duty (PostgreSQL) ------------------
# Written by the lease heartbeat on its own connection (`state.coordination`), not through the
# mirror's writer: a long write must never delay a renewal. The tables exist on SQLite too (one
# schema for both backends) and stay empty there.


class Replica(TableModel, table=True):
    """A running `syncd run` on a PostgreSQL store; alive while ``expires_at`` is ahead."""

    id: str = Field(primary_key=True)  # host-pid-random, also its connections' application_name
    host: str = ""
    pid: int = 0
    started_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    heartbeat_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class DutyLease(TableModel, table=True):
    """One duty (``board:<ref>``, ``figma:<key>``, ``flags``, …) and the replica holding it.

    Held while ``holder`` is set and ``expires_at`` (database clock) is ahead; taken over by
    another replica once expired. ``generation`` grows at every change of holder.
    """

    __tablename__ = "duty_lease"
    duty: str = Field(primary_key=True)
    holder: str | None = None
    acquired_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    expires_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    generation: int = 0


# At most one open flag per (département, code), whatever replicas do: the database says no to
# a second one. Migration 0007 creates it, on PostgreSQL with the same WHERE; it is not declared
# here as `postgresql_where`: that would import SQLAlchemy's PostgreSQL dialect (~30 ms) into
# every process, SQLite ones included, and no table is ever created from these models.
Index(
    "uq_flag_open",
    Flag.__table__.c.department,  # type: ignore[attr-defined]
    Flag.__table__.c.code,  # type: ignore[attr-defined]
    unique=True,
    sqlite_where=text("resolved_at IS NULL"),
)
