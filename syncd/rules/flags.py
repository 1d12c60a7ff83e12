"""Recompute the governance flags after a sync and keep their history.

`recompute` evaluates the pure rules over the whole mirror (read on the store's reader, off the
one writer), then in one write step opens new flags (with the time first seen), resolves the
ones gone (with the time resolved), and records what changed per département since the last
evaluation (priority actions added, completed or removed; referents changed) for the drift
report's ``changes``. A stored row it cannot read degrades only its card
(`syncd.rules.facts`), named in the logs. Evaluations run one at a time in the process (each
diffs against the snapshot the previous one recorded), but never hold the writer: only
`Store.record_evaluation` runs on it, so a webhook delivery's write never waits behind a whole
evaluation.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from state.store import Store
from state.timestamps import utc_iso
from syncd.rules.facts import MirrorFacts, collection_paused, log_degraded, stored_facts
from syncd.rules.governance import Evaluation, Rules, evaluate

_one_at_a_time = threading.Lock()  # the events diff against the last recorded snapshot


@dataclass(frozen=True)
class Recomputed:
    evaluation: Evaluation
    facts: MirrorFacts
    opened: int
    resolved: int


def recompute(store: Store, rules: Rules, now: datetime) -> Recomputed:
    """Evaluate the rules over the stored mirror and persist flags and governance changes
    (the reads on the calling thread, the write a routed step; one evaluation at a time)."""
    with _one_at_a_time:
        return _recompute(store, rules, now)


def _recompute(store: Store, rules: Rules, now: datetime) -> Recomputed:
    with collection_paused():
        facts = stored_facts(store)
        evaluation = evaluate(facts.cards, facts.lists, rules, now)
    log_degraded(facts.degraded)
    at = utc_iso(now)
    previous = store.governance_snapshot()
    events = governance_events(previous, evaluation, facts, at)
    snapshots = {
        status.code: (list(status.referents), [p.title for p in status.priority_actions])
        for status in evaluation.departments
    }
    findings = [(f.department, str(f.code), f.message) for f in evaluation.findings]
    opened, resolved = store.record_evaluation(findings, snapshots, events, at)
    return Recomputed(evaluation, facts, opened, resolved)


def governance_events(
    previous: Mapping[str, Mapping[str, Any]],
    evaluation: Evaluation,
    facts: MirrorFacts,
    at: str,
) -> list[dict[str, str]]:
    """What changed per département since the previous evaluation (none the first time)."""
    dashboards = {status.dashboard_card_id for status in evaluation.departments}
    completed_by_card: dict[str, set[str]] = {  # the dashboard cards' (not a set per card)
        card.id: {
            item.name for checklist in card.checklists for item in checklist.items if item.complete
        }
        for card in facts.cards
        if card.id in dashboards
    }
    archived_titles = {card.name for card in facts.cards if card.closed}
    events: list[dict[str, str]] = []
    for status in evaluation.departments:
        before = previous.get(status.code)
        if before is None:
            continue
        old_titles = list(before.get("priority_actions") or [])
        new_titles = [action.title for action in status.priority_actions]
        done = archived_titles | completed_by_card.get(status.dashboard_card_id or "", set())
        for title in new_titles:
            if title not in old_titles:
                events.append(_event(at, status.code, "priority_added", title))
        for title in old_titles:
            if title not in new_titles:
                kind = "priority_completed" if title in done else "priority_removed"
                events.append(_event(at, status.code, kind, title))
        old_referents = list(before.get("referents") or [])
        if sorted(old_referents) != sorted(status.referents):
            summary = f"{', '.join(old_referents) or '—'} → {', '.join(status.referents) or '—'}"
            events.append(_event(at, status.code, "referents_changed", summary))
    return events


def _event(at: str, department: str, kind: str, summary: str) -> dict[str, str]:
    return {"at": at, "department": department, "kind": kind, "summary": summary}
