"""The sync's health: what `/readyz` answers and the last-sync gauges of `/metrics` read.

Owns `SyncHealth`, the web layer's readiness provider. Ready means every configured board synced
within 2 × ``poll_seconds``: the newer of the stored ``last_success_at`` and the in-memory time
of the last idle change check (an idle poll writes nothing). The body names each board's last
success and last error (the in-memory one of the last pass, else the stored one), the Figma files
rate limited, the duties this process holds and, among replicas, which replica it is. A replica
that lost its database (the leases' `problem`) answers not ready with the reason alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from state.store import Store
from state.timestamps import parse_iso, utc_iso
from syncd.config import Settings
from syncd.trello.engine import BoardReport


def _nothing_held() -> Iterable[str]:
    return ()


class SyncHealth:
    """Readiness over the store, plus what the running daemon knows in memory.

    `checked` is the mirror's live ``last_checked`` (board ref → moment of the last idle
    change check); `duties` gives the duties held now. Both are optional: over a store alone
    (a test, a replica that holds no board), readiness reads the stored sync states.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        clock: Callable[[], datetime],
        checked: Mapping[str, datetime] | None = None,
        duties: Callable[[], Iterable[str]] = _nothing_held,
        problem: Callable[[], str | None] | None = None,
        replica: str | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.checked: Mapping[str, datetime] = checked if checked is not None else {}
        self.duties = duties
        self.problem = problem or (lambda: None)
        self.replica = replica
        self.last_errors: dict[str, str] = {}

    def note_boards(self, reports: Iterable[BoardReport]) -> None:
        """A pass's board reports: remember each board's error, forget it once it syncs."""
        for report in reports:
            if report.error:
                self.last_errors[report.board] = report.error
            else:
                self.last_errors.pop(report.board, None)

    def last_success(self) -> dict[str, datetime | None]:
        """Per configured board: the newer of the stored last success and the in-memory one."""
        return self._last_success({row["board_ref"]: row for row in self.store.sync_states()})

    def _last_success(self, states: Mapping[str, Mapping[str, Any]]) -> dict[str, datetime | None]:
        result: dict[str, datetime | None] = {}
        for board in self.settings.trello.boards:
            candidates = [
                moment
                for moment in (
                    parse_iso((states.get(board.id) or {}).get("last_success_at")),
                    self.checked.get(board.id),
                )
                if moment is not None
            ]
            result[board.id] = max(candidates) if candidates else None
        return result

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """(ready, body): every board synced within 2 × poll_seconds; Figma limits reported.

        A replica that lost its database (`problem`) is not ready, whatever the boards."""
        problem = self.problem()
        if problem is not None:
            return False, {
                "status": "not ready",
                "reason": problem,
                "duties": sorted(self.duties()),
                **self._identity(),
            }
        now = self.clock()
        window = timedelta(seconds=2 * self.settings.schedule.poll_seconds)
        states = {row["board_ref"]: row for row in self.store.sync_states()}
        boards: list[dict[str, Any]] = []
        stale: list[str] = []
        for ref, moment in self._last_success(states).items():
            state = states.get(ref) or {}
            fresh = moment is not None and now - moment <= window
            entry: dict[str, Any] = {
                "board": ref,
                "last_success_at": None if moment is None else utc_iso(moment),
                "fresh": fresh,
            }
            error = self.last_errors.get(ref) or state.get("last_error")
            if error:
                entry["last_error"] = error
                entry["last_error_at"] = state.get("last_error_at")
            if not fresh:
                stale.append(ref)
            boards.append(entry)
        limited = [
            {"file": row["key"], "rate_limited_until": row["rate_limited_until"]}
            for row in self.store.figma_files()
            if (until := parse_iso(row.get("rate_limited_until"))) is not None and until > now
        ]
        body: dict[str, Any] = {
            "status": "ready" if not stale else "not ready",
            "boards": boards,
            "figma_rate_limited": limited,
            "duties": sorted(self.duties()),
            **self._identity(),
        }
        if stale:
            body["stale"] = stale
            body["reason"] = f"not synced within {window.total_seconds():.0f} s: " + ", ".join(
                stale
            )
        return not stale, body

    def _identity(self) -> dict[str, str]:
        return {} if self.replica is None else {"replica": self.replica}
