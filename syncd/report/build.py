"""The drift report: the contract's JSON shape, built from the store alone (no remote call).

`build_report` evaluates the governance rules over the mirror (pure, fast), takes the flags and
their history from the store, and, with ``since``, lists what changed: flags opened and
resolved, priority actions added/completed/removed, referents changed (governance events), and
cards created, moved, renamed, archived or deleted on either board (the card history). It reads
the store through `syncd.history.moment.StoreAt`: now, or, with ``at``, as the store was then;
``trends`` come from `syncd.history.trends`.

A stored value it cannot read degrades only its card (`syncd.rules.facts`): the report is still
built, lists the card under ``degraded`` (an added key) and the logs name it; an unreadable
history row is left out of ``changes`` the same way.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from state.store import RulesMirror, Store
from state.timestamps import parse_iso, utc_iso
from syncd.config import Settings
from syncd.history.moment import StoreAt, store_at
from syncd.history.trends import build_trends
from syncd.report.figma import build_figma_section
from syncd.report.model import ChangeEntry, DegradedEntry, DepartmentEntry, FlagEntry, Report
from syncd.report.strings import flag_label, localised_flag_message, strings_for
from syncd.rules.departments import by_code
from syncd.rules.facts import (
    Degraded,
    MirrorFacts,
    collection_paused,
    facts_from_rows,
    log_degraded,
)
from syncd.rules.governance import evaluate


def build_report(
    store: Store,
    settings: Settings,
    *,
    now: datetime,
    since: datetime | None = None,
    lang: str = "fr",
    at: datetime | None = None,
) -> Report:
    """The drift report as the contract's JSON (plus a few added keys), in `lang`.

    With `at` (before `now`), the report as the store knew it then (`syncd.history.moment`);
    raises `BeforeHistory` for a moment before the store's history.
    """
    strings_for(lang)  # ValueError for a language syncd does not speak
    with collection_paused():
        return _build(store, settings, now=now, since=since, lang=lang, at=at)


def _build(
    store: Store,
    settings: Settings,
    *,
    now: datetime,
    since: datetime | None,
    lang: str,
    at: datetime | None,
) -> Report:
    source = store_at(store, at, now)
    moment = parse_iso(source.at) if source.at else now
    assert moment is not None
    with source.mirror() as rows:  # its per-card tables are read once, by the facts
        facts = facts_from_rows(rows)
    degraded = list(facts.degraded)
    rules = settings.governance
    evaluation = evaluate(facts.cards, facts.lists, rules, moment)
    since_iso = utc_iso(since) if since else None
    flags = source.flags(resolved_since=since_iso)
    open_codes: dict[str, list[str]] = {}
    for flag in flags:
        if flag["resolved_at"] is None:
            open_codes.setdefault(flag["department"], []).append(flag["code"])

    live_cards = Counter(card.board_id for card in facts.cards if not card.deleted)
    states = {state["board_id"]: state for state in store.sync_states() if state["board_id"]}
    boards = [
        {
            "id": board["id"],
            "short_link": board["short_link"],
            "name": board["name"],
            "role": board["role"],
            "url": board["url"],
            "last_synced_at": (  # syncs are not history: unknown in a past report
                None if source.at else (states.get(board["id"]) or {}).get("last_success_at")
            ),
            "cards": live_cards.get(board["id"], 0),
        }
        for board in sorted(
            rows.boards, key=lambda row: (row["role"] != "consortium", str(row["name"] or ""))
        )
    ]
    departments: list[DepartmentEntry] = [
        {
            "code": status.code,
            "name": status.name,
            "dashboard_card": (
                {"id": status.dashboard_card_id, "url": status.dashboard_card_url}
                if status.dashboard_card_id
                else None
            ),
            "referents": list(status.referents),
            "priority_actions": [
                {
                    "title": action.title,
                    "source": action.source,
                    "card_id": action.card_id,
                    "url": action.url,
                }
                for action in status.priority_actions
            ],
            "topics": list(status.topics),
            "linked_cards": {
                "consortium": status.linked_cards.get("consortium", 0),
                "product": status.linked_cards.get("product", 0),
            },
            "flags": sorted(open_codes.get(status.code, [])),
        }
        for status in evaluation.departments
    ]
    linked_codes = {status.code for status in evaluation.departments}
    for code in sorted(set(open_codes) - linked_codes):  # a flag on a département now gone
        departments.append(_bare_department(code, sorted(open_codes[code])))
    departments.sort(key=lambda row: row["code"])

    priority_card_ids = {
        action.card_id for status in evaluation.departments for action in status.priority_actions
    }
    report: Report = {
        "generated_at": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "at": source.at,
        "lang": lang,
        "since": since_iso,
        "max_priority_actions": rules.max_priority_actions,
        "boards": boards,
        "departments": departments,
        "flags": [
            _flag_entry(flag)
            for flag in sorted(
                flags, key=lambda row: (row["department"], row["code"], row["since"])
            )
        ],
        "changes": (
            _changes(source, rows, facts, flags, since_iso, lang, degraded) if since_iso else []
        ),
        "trends": build_trends(store, departments, end=moment, zone=settings.digest.zone),
        "figma": build_figma_section(  # Figma files as they are now, the cards as at `moment`
            store.figma_rows(), rows, facts, priority_card_ids, settings.figma.files, now
        ),
        "degraded": [_degraded_entry(entry) for entry in degraded],
    }
    log_degraded(degraded)
    return report


def _degraded_entry(entry: Degraded) -> DegradedEntry:
    return {
        "card_id": entry.card_id,
        "board_id": entry.board_id,
        "row": entry.row,
        "row_id": entry.row_id,
        "reason": entry.reason,
    }


def _flag_entry(flag: dict[str, Any]) -> FlagEntry:
    return {
        "department": flag["department"],
        "code": flag["code"],
        "message": flag["message"],
        "message_fr": localised_flag_message(flag["code"], flag["message"], "fr"),
        "since": flag["since"],
        "resolved_at": flag["resolved_at"],
    }


def _bare_department(code: str, flags: list[str]) -> DepartmentEntry:
    department = by_code(code)
    return {
        "code": code,
        "name": department.name if department else code,
        "dashboard_card": None,
        "referents": [],
        "priority_actions": [],
        "topics": [],
        "linked_cards": {"consortium": 0, "product": 0},
        "flags": flags,
    }


def _changes(
    store: StoreAt,
    rows: RulesMirror,
    facts: MirrorFacts,
    flags: list[dict[str, Any]],
    since: str,
    lang: str,
    degraded: list[Degraded],
) -> list[ChangeEntry]:
    """What changed since `since`, told in `lang`. `flags` are the open ones and those resolved
    since then, which holds every flag opened since then too (opened before it was resolved).
    A card history row that cannot be read is left out and added to `degraded`."""
    text = strings_for(lang)["changes_text"]
    boards = {board["id"]: board for board in rows.boards}
    consortium = next((b["id"] for b in rows.boards if b["role"] == "consortium"), None)
    changes: list[ChangeEntry] = []

    names = _Names(
        cards={card.id: card.name for card in facts.cards},
        lists={item["id"]: item["name"] for item in rows.lists},
        labels={label["id"]: label["name"] for label in rows.labels},
        members={m["id"]: m["full_name"] or m["username"] for m in rows.members},
        fields={field["id"]: field["name"] for field in rows.custom_fields},
        boards=boards,
    )
    for version in store.card_versions_since(since):
        try:
            entry = _card_change(version, names, text)
        except (TypeError, ValueError, AttributeError, KeyError, IndexError):
            degraded.append(_unreadable_version(version))
            continue
        if entry is not None:
            changes.append(entry)

    for flag in flags:
        if flag["since"] >= since:
            changes.append(
                _flag_change(lang, "flag_opened", flag, flag["since"], consortium, boards)
            )
        if flag["resolved_at"]:
            changes.append(
                _flag_change(lang, "flag_resolved", flag, flag["resolved_at"], consortium, boards)
            )
    for event in store.governance_events_since(since):
        changes.append(
            {
                "at": event["at"],
                "board": (boards.get(consortium or "") or {}).get("name", ""),
                "board_id": consortium,
                "card_id": None,
                "department": event["department"],
                "kind": event["kind"],
                "detail": event["summary"],  # the title, or "old → new" referents
                "summary": text[event["kind"]].format(
                    department=event["department"], summary=event["summary"]
                ),
            }
        )
    changes.sort(  # a total order: the same changes read in any order list the same way
        key=lambda change: (
            change["at"],
            change["kind"],
            change.get("department") or "",
            change.get("code") or "",
            change["card_id"] or "",
            change["summary"],
        )
    )
    return changes


@dataclass(frozen=True)
class _Names:
    """What a card history row's ids are called in the mirror."""

    cards: dict[str, str]  # card id -> title
    lists: dict[str, str]
    labels: dict[str, str]
    members: dict[str, str]
    fields: dict[str, str]
    boards: dict[str, Any]


def _card_change(
    version: dict[str, Any], names: _Names, text: dict[str, str]
) -> ChangeEntry | None:
    """One card history row told as a change (None: a kind the report does not tell)."""
    old = json.loads(version["old"]) if version["old"] else None
    new = json.loads(version["new"]) if version["new"] else None
    kind = version["field"]
    values: dict[str, Any] = {
        "card": names.cards.get(version["card_id"], version["card_id"]),
        "old": old,
        "new": new,
    }
    lists = names.lists
    if kind == "name":
        kind = "renamed"
    elif kind == "list":
        kind = "moved"
        values.update(old=lists.get(old, old or "—"), new=lists.get(new, new or "—"))
    elif kind == "closed":
        kind = "archived" if new else "unarchived"
    elif kind == "created":
        values["list"] = lists.get((new or {}).get("list"), "—")
    elif kind in ("labels", "members"):
        known = names.labels if kind == "labels" else names.members
        values.update(
            old=", ".join(known.get(i, i) for i in old or []) or "—",
            new=", ".join(known.get(i, i) for i in new or []) or "—",
        )
    elif kind == "checklist":
        values["count"] = len(new or {})
    elif kind == "custom_field":
        field_id = next(iter((new or old or {}).keys()), "")
        values.update(
            field=names.fields.get(field_id, field_id),
            old=(old or {}).get(field_id) or "—",
            new=(new or {}).get(field_id) or "—",
        )
    elif kind == "due":
        values.update(old=old or "—", new=new or "—")
    if kind not in text:
        return None
    return {
        "at": version["observed_at"],
        "board": (names.boards.get(version["board_id"]) or {}).get("name", version["board_id"]),
        "board_id": version["board_id"],
        "card_id": version["card_id"],
        "kind": kind,
        "summary": text[kind].format(**values),
    }


def _unreadable_version(version: dict[str, Any]) -> Degraded:
    return Degraded(
        card_id=version.get("card_id"),
        board_id=version.get("board_id"),
        row="card_version",
        row_id=str(version.get("id")),
        reason=f"{version.get('field')}: history row unreadable",
    )


def _flag_change(
    lang: str,
    kind: str,
    flag: dict[str, Any],
    at: str,
    consortium: str | None,
    boards: dict[str, Any],
) -> ChangeEntry:
    code = flag["code"]
    summary = strings_for(lang)["changes_text"][kind].format(
        department=flag["department"],
        label=flag_label(code, lang),
        message=localised_flag_message(code, flag["message"], lang),
    )
    return {
        "at": at,
        "board": (boards.get(consortium or "") or {}).get("name", ""),
        "board_id": consortium,
        "card_id": None,
        "department": flag["department"],
        "kind": kind,
        "code": code,
        "summary": summary,
    }
