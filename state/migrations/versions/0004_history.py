"""history: issue 12 (history): what the report needs at any past date, back-filled

Revision ID: 0004
Revises: 0003

Adds the mirror's row history (`mirror_history`), flag messages over time (`flag_message`),
per-département priority counts over time (`priority_count`, the trends) and the weekly digest
record (`digest_run`). Back-fills from the current state: every mirrored row opens one version
valid from the upgrade (the store knows the past from then on), every flag its current message
from when it was set (``last_seen_at``), every département its current count from when it was
last evaluated differently (``governance_snapshot.updated_at``).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

from state.history import backfill

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The tracked tables and columns as they are at this revision (frozen: a later revision that
# tracks more back-fills its own).
_TRACKED = {
    "board": ("id", "short_link", "name", "url", "closed", "role"),
    "board_list": ("id", "board_id", "name", "closed", "pos"),
    "label": ("id", "board_id", "name", "color"),
    "member": ("id", "full_name", "username", "initials"),
    "custom_field": ("id", "board_id", "name", "type"),
    "card": (
        "id",
        "board_id",
        "list_id",
        "name",
        "desc",
        "closed",
        "due",
        "url",
        "short_link",
        "pos",
        "date_last_activity",
        "deleted_at",
    ),
    "card_label": ("card_id", "label_id"),
    "card_member": ("card_id", "member_id"),
    "checklist": ("id", "card_id", "board_id", "name", "pos"),
    "check_item": ("id", "checklist_id", "card_id", "name", "state", "pos"),
    "custom_field_item": ("card_id", "custom_field_id", "value"),
    "card_figma_link": ("card_id", "file_key", "node_id", "url", "source"),
}


def upgrade() -> None:
    op.create_table(
        "digest_run",
        sa.Column("period", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("claimed_until", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_attempt_at", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("last_attempt_at", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("sent_at", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("delivered", sa.JSON(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("period"),
    )
    op.create_table(
        "flag_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("flag_id", sa.Integer(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("flag_message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_flag_message_flag_id"), ["flag_id"], unique=False)

    op.create_table(
        "mirror_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("valid_from", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("valid_to", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("mirror_history", schema=None) as batch_op:
        batch_op.create_index("ix_mirror_history_key", ["key", "kind", "valid_to"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_mirror_history_valid_from"), ["valid_from"], unique=False
        )

    op.create_table(
        "priority_count",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("department", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("priority_count", schema=None) as batch_op:
        batch_op.create_index("ix_priority_count_at", ["department", "at"], unique=False)

    _backfill(op.get_bind())


def _backfill(connection: sa.Connection) -> None:
    def rows(name: str, *columns: str, types: dict[str, sa.types.TypeEngine] | None = None):  # type: ignore[no-untyped-def]
        source = sa.table(name, *(sa.column(c, (types or {}).get(c)) for c in columns))
        return [dict(row) for row in connection.execute(sa.select(source)).mappings()]

    last_sync = connection.execute(
        sa.select(sa.func.max(sa.column("last_success_at"))).select_from(sa.table("sync_state"))
    ).scalar()
    now = datetime.now(UTC)
    at = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    at = max(at, last_sync or "")  # never before the newest write already in the store
    backfill(connection, {name: rows(name, *columns) for name, columns in _TRACKED.items()}, at)

    flags = rows("flag", "id", "message", "last_seen_at")
    if flags:
        connection.execute(
            sa.table(
                "flag_message", sa.column("flag_id"), sa.column("at"), sa.column("message")
            ).insert(),
            [{"flag_id": f["id"], "at": f["last_seen_at"], "message": f["message"]} for f in flags],
        )
    snapshots = rows(
        "governance_snapshot",
        "department",
        "priority_actions",
        "updated_at",
        types={"priority_actions": sa.JSON()},
    )
    if snapshots:
        connection.execute(
            sa.table(
                "priority_count", sa.column("department"), sa.column("at"), sa.column("count")
            ).insert(),
            [
                {
                    "department": s["department"],
                    "at": s["updated_at"],
                    "count": len(s["priority_actions"] or []),
                }
                for s in snapshots
            ],
        )


def downgrade() -> None:
    with op.batch_alter_table("priority_count", schema=None) as batch_op:
        batch_op.drop_index("ix_priority_count_at")
    op.drop_table("priority_count")
    with op.batch_alter_table("mirror_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mirror_history_valid_from"))
        batch_op.drop_index("ix_mirror_history_key")
    op.drop_table("mirror_history")
    with op.batch_alter_table("flag_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_flag_message_flag_id"))
    op.drop_table("flag_message")
    op.drop_table("digest_run")
