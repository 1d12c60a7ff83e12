"""Which moment a report describes, and what the report reads of the store at that moment.

`StoreAt` is the store seen from one moment: now (``at`` None: the live tables) or a past
moment (the mirror's row history, the flags as they stood, history rows up to then). The report
is built through it alone, so a report rebuilt at T reads exactly what a report taken at T read.
`store_at` turns a date a person gave (``--at``, ``?at=``) into one, refusing a date before the
store's history with one line saying from when it knows the boards.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime

from state.store import Row, RulesMirror, Store
from state.timestamps import utc_iso
from syncd.errors import BadUsage


class BeforeHistory(BadUsage):
    """``--at`` names a moment the store cannot describe; the message is one line."""


@dataclass(frozen=True)
class StoreAt:
    """The store as a report at `at` reads it (None: now)."""

    store: Store
    at: str | None = None

    def mirror(self) -> AbstractContextManager[RulesMirror]:
        """What the rules read, open while the caller reads it (now: streamed from the store)."""
        if self.at is None:
            return self.store.rules_mirror()
        return nullcontext(RulesMirror.from_rows(self.store.mirror_at(self.at)))

    def flags(self, *, resolved_since: str | None = None) -> list[Row]:
        if self.at is None:
            return self.store.flags(resolved_since=resolved_since)
        return self.store.flags_at(self.at, resolved_since=resolved_since)

    def card_versions_since(self, since: str) -> list[Row]:
        return self.store.card_versions_since(since, self.at)

    def governance_events_since(self, since: str) -> list[Row]:
        return self.store.governance_events_since(since, self.at)


def store_at(store: Store, at: datetime | None, now: datetime) -> StoreAt:
    """The store at `at` (a moment at or after `now` is now); `BeforeHistory` before it knew."""
    if at is None or at >= now:
        return StoreAt(store)
    moment = utc_iso(at)
    start = store.history_starts_at()
    if start is None:
        raise BeforeHistory("the store has no history yet: run `syncd sync` first")
    if moment < start:
        raise BeforeHistory(
            f"{moment} is before the store's history: it knows the boards from {start}"
        )
    return StoreAt(store, moment)
