"""Which comments the flags owe: pure, from the flags, the rows already planned and the rules'
evaluation of the mirror.

For each flag whose code is in ``writeback.flags``:

- its **opening** is owed when it has no row yet and the flag is open, or opened while
  write-back was enabled (``since`` at or after ``enabled_since``: an opening and its resolution
  between two rounds are both commented); it goes to the département's dashboard card (none:
  nothing yet, the next round looks again);
- its **resolution** is owed once the flag is resolved and its opening has a row; it goes to the
  card of the opening when that card is still open, else to the current dashboard card.

A row not posted nor being posted whose card is gone (deleted or archived) is pointed at the
département's current dashboard card. Rows are never planned twice: the store keeps one per
(flag, event) whatever the number of processes planning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from syncd.rules.governance import DepartmentStatus, Rules
from syncd.writeback.marker import new_intent_id
from syncd.writeback.text import opened_comment, resolved_comment

Row = dict[str, Any]
OPENED, RESOLVED = "opened", "resolved"


@dataclass
class Plan:
    new_rows: list[Row] = field(default_factory=list)
    retargets: list[tuple[str, str]] = field(default_factory=list)  # (intent id, card id)


def plan_comments(
    flags: Iterable[Mapping[str, Any]],
    existing: Sequence[Mapping[str, Any]],
    statuses: Mapping[str, DepartmentStatus],
    open_card_ids: set[str],
    *,
    codes: Sequence[str],
    enabled_since: str | None,
    rules: Rules,
    public_url: str,
    now: str,
    new_id: Callable[[], str] = new_intent_id,
) -> Plan:
    """The rows to add and the owed rows to point at another card (see the module docstring)."""
    plan = Plan()
    rows = {(row["flag_id"], row["event"]): row for row in existing}
    wanted = set(codes)
    for flag in sorted(flags, key=lambda f: (f["since"], f["id"])):
        if flag["code"] not in wanted:
            continue
        status = statuses.get(flag["department"])
        dashboard = status.dashboard_card_id if status else None
        opened = rows.get((flag["id"], OPENED))
        seen_open = flag["resolved_at"] is None or (
            enabled_since is not None and flag["since"] >= enabled_since
        )
        if opened is None and seen_open and dashboard is not None:
            intent = new_id()
            text = opened_comment(
                flag, status, rules=rules, public_url=public_url, intent_id=intent
            )
            opened = _row(intent, flag, OPENED, flag["since"], dashboard, text, now)
            plan.new_rows.append(opened)
        if flag["resolved_at"] is None or opened is None:
            continue
        if (flag["id"], RESOLVED) in rows:
            continue
        target = opened["card_id"] if opened["card_id"] in open_card_ids else dashboard
        if target is None:
            continue
        intent = new_id()
        text = resolved_comment(flag, status, rules=rules, public_url=public_url, intent_id=intent)
        plan.new_rows.append(_row(intent, flag, RESOLVED, flag["resolved_at"], target, text, now))
    for row in existing:
        if row["comment_id"] is not None or row["attempt"] is not None:
            continue
        if row["card_id"] in open_card_ids:
            continue
        status = statuses.get(row["department"])
        target = status.dashboard_card_id if status else None
        if target is not None and target != row["card_id"]:
            plan.retargets.append((row["id"], target))
    return plan


def _row(
    intent: str, flag: Mapping[str, Any], event: str, event_at: str, card: str, text: str, now: str
) -> Row:
    return {
        "id": intent,
        "flag_id": flag["id"],
        "event": event,
        "event_at": event_at,
        "department": flag["department"],
        "code": flag["code"],
        "card_id": card,
        "text": text,
        "created_at": now,
    }
