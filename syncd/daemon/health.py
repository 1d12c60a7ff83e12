"""The sync's health: what `/readyz` answers and the last-sync gauges of `/metrics` read.

Owns `SyncHealth`, the web layer's readiness provider. Ready means all of:

- every configured board synced within 2 × ``poll_seconds``: the newer of the stored
  ``last_success_at`` and the in-memory time of the last idle change check (an idle poll
  writes nothing);
- the last pass did not fail: no board's last attempt ended in an error, no Figma file's last
  sync failed (a rate limit is not a failure: it is listed), the pass itself did not raise;
- the report can be built from the store: it is built at most every `report_every` seconds
  (and at the first question; the daemon also builds it after each pass, off the request
  path); cards whose stored rows it had to read with neutral values are listed (``degraded``)
  without making the process unready.

The body names each board's last success and last error (the in-memory one of the last pass,
else the stored one), the Figma files rate limited, the report check, the duties this process
holds and, among replicas, which replica it is, and, when not ready, every reason on one line
(``reason``). A replica that lost its database (the leases' `problem`) answers not ready with
the reason alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import structlog

from state.store import Store
from state.timestamps import parse_iso, utc_iso
from syncd.config import Settings
from syncd.daemon.scheduler import board_duty, figma_duty
from syncd.figma.engine import FigmaFileReport
from syncd.payloads import one_line
from syncd.report.build import build_report
from syncd.trello.engine import BoardReport

log = structlog.get_logger("syncd.health")

REPORT_EVERY = 30.0  # seconds between two report checks of /readyz
MAX_DEGRADED_SHOWN = 20


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
        report_every: float = REPORT_EVERY,
        problem: Callable[[], str | None] | None = None,
        replica: str | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.checked: Mapping[str, datetime] = checked if checked is not None else {}
        self.duties = duties
        self.report_every = report_every
        self.problem = problem or (lambda: None)
        self.replica = replica
        self.last_errors: dict[str, str] = {}
        self.figma_errors: dict[str, str] = {}
        self.pass_error: str | None = None
        self._report_lock = threading.Lock()
        self._report_checked = float("-inf")
        self._report: dict[str, Any] = {}

    def note_boards(self, reports: Iterable[BoardReport]) -> None:
        """A pass's board reports: remember each board's error, forget it once it syncs."""
        for report in reports:
            if report.error:
                self.last_errors[report.board] = report.error
            else:
                self.last_errors.pop(report.board, None)

    def note_pass(self, figma: Iterable[FigmaFileReport] = (), error: str | None = None) -> None:
        """A pass ended: its Figma reports (every file it held), or the error it raised."""
        self.pass_error = one_line(error, 300) if error else None
        if error is None:
            self.figma_errors = {
                report.key: one_line(report.error or "failed", 300)
                for report in figma
                if report.mode == "failed"
            }

    def report_check(self, *, fresh: bool = False) -> dict[str, Any]:
        """Whether the report can be built (at most every `report_every` s, or now when
        `fresh`: the daemon asks after each pass): ``ok``, the ``error`` if not, and the
        ``degraded`` rows it read with neutral values."""
        with self._report_lock:
            recent = time.monotonic() - self._report_checked < self.report_every
            if recent and self._report and not fresh:
                return self._report
            try:
                report = build_report(self.store, self.settings, now=self.clock())
            except Exception as exc:  # what /readyz exists to say
                error = one_line(str(exc), 300) or type(exc).__name__
                log.error("the report cannot be built", error=error)
                self._report = {"ok": False, "error": error, "degraded": []}
            else:
                self._report = {"ok": True, "degraded": report["degraded"]}
            self._report["checked_at"] = utc_iso(self.clock())
            self._report_checked = time.monotonic()
            return self._report

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
        reasons: list[str] = []
        if stale:
            reasons.append(f"not synced within {window.total_seconds():.0f} s: " + ", ".join(stale))
        held = set(self.duties())
        tracked = self.duties is not _nothing_held  # over a store alone: every board is ours

        def mine(duty: str) -> bool:  # a duty handed to another replica is its business now
            return not tracked or duty in held

        failed = [
            f"{ref}: {error}"
            for ref, error in sorted(self.last_errors.items())
            if mine(board_duty(ref))
        ]
        failed += [
            f"figma {key}: {error}"
            for key, error in sorted(self.figma_errors.items())
            if mine(figma_duty(key))
        ]
        if self.pass_error:
            failed.append(self.pass_error)
        if failed:
            reasons.append("the last sync pass failed: " + "; ".join(failed))
        check = self.report_check()
        if not check["ok"]:
            reasons.append(f"the report cannot be built: {check['error']}")
        degraded = check["degraded"]
        body: dict[str, Any] = {
            "status": "ready" if not reasons else "not ready",
            "boards": boards,
            "figma_rate_limited": limited,
            "report": {
                "ok": check["ok"],
                "checked_at": check["checked_at"],
                "degraded_rows": len(degraded),
                "degraded": degraded[:MAX_DEGRADED_SHOWN],
            },
            "duties": sorted(held),
            **self._identity(),
        }
        if stale:
            body["stale"] = stale
        if reasons:
            body["reason"] = one_line("; ".join(reasons), 1000)
        return not reasons, body

    def _identity(self) -> dict[str, str]:
        return {} if self.replica is None else {"replica": self.replica}
