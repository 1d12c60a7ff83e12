"""The Trello sync engine: one pass over the configured boards, with as few requests as possible.

Algorithm, per pass (`Mirror.sync`):

1. **Change check.** One ``/1/batch`` request asks every board (10 per request) for its newest
   action id. A board whose newest id is the stored cursor is *idle*: nothing is fetched,
   nothing is written (the check time is kept in memory for readiness). A board Trello refuses
   inside the batch fails alone; the check request is counted once, in the report of the
   first board it served (so the reports add up to the requests made).
2. **Incremental.** Otherwise the actions since the cursor are read (1000 per page). The cards
   they touch (for an action naming only a checklist, the stored checklist's card: see
   `syncd.trello.actions`) are refetched through ``/1/batch`` (10 per request) and written
   with the actions and the new cursor, in one transaction. Actions already applied from a
   webhook are not refetched (webhooks never move the cursor, so a lost delivery is always
   caught here), nor are syncd's own comments (write-back): they are stored, their card is
   unchanged. A ``deleteCard`` marks its card deleted without a fetch. When an action changes
   the board itself (a list, a label, a custom field, a member) or too many cards changed, a
   full snapshot is cheaper and is taken instead.
3. **Full snapshot** (first sync, ``--full``, the daily reconcile): one nested
   ``GET /1/boards/{id}`` with every parameter explicit (paged ``/cards`` when Trello refuses a
   board that large), plus the action pages since the cursor (the whole history the first
   time). Cards missing from the snapshot are marked deleted.

Each board is one transaction: its rows and its cursor move together, so a pass killed at any
moment leaves the previous complete state and the next pass resumes from the cursor. A board
that fails is recorded with its error and the others carry on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from adapters.transport import ApiError
from adapters.trello import BoardCheck, TooManyCards, TrelloAPI
from state.store import BoardBatch, Row, Store, StoreClosing, StoreError, WriteResult
from state.timestamps import utc_iso
from syncd.config import BoardConfig
from syncd.trello.actions import BOARD_LEVEL_ACTIONS, action_checklist_id, changed_cards
from syncd.trello.rows import action_rows, refetched_batch, snapshot_batch
from syncd.writeback.marker import own_comment_ids

log = structlog.get_logger("syncd.mirror")

MAX_INCREMENTAL_CARDS = 50  # above this, one snapshot request beats ⌈n/10⌉ batch requests


@dataclass
class BoardReport:
    """What one board's sync did (the per-board summary line)."""

    board: str
    mode: str  # full, paged, incremental, idle, failed
    requests: int = 0
    cards: int = 0
    changes: int = 0
    actions: int = 0
    deleted: int = 0
    seconds: float = 0.0
    error: str | None = None


class Mirror:
    """Mirrors the configured Trello boards into the store (see the module docstring)."""

    def __init__(
        self,
        api: TrelloAPI,
        store: Store,
        boards: Sequence[BoardConfig],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        progress: Callable[[str], None] | None = None,
        max_incremental_cards: int = MAX_INCREMENTAL_CARDS,
        write: Callable[[BoardBatch], WriteResult] | None = None,
    ) -> None:
        self.api = api
        self.store = store
        self.boards = list(boards)
        self.clock = clock
        self.progress = progress or (lambda _message: None)
        self.max_incremental_cards = max_incremental_cards
        self.write = write or store.write_board  # the daemon routes this to its writer thread
        self.last_checked: dict[str, datetime] = {}

    # -- a pass -------------------------------------------------------------------------

    def sync(
        self, *, full: bool = False, boards: Sequence[BoardConfig] | None = None
    ) -> list[BoardReport]:
        """One pass over `boards` (default: every configured board); never raises for one
        board's failure. The change check asks all of them together."""
        chosen = self.boards if boards is None else [b for b in self.boards if b in boards]
        if not chosen:
            return []
        states = {row["board_ref"]: row for row in self.store.sync_states()}
        needs_full = [b for b in chosen if full or not (states.get(b.id) or {}).get("last_full_at")]
        others = [b for b in chosen if b not in needs_full]
        reports = [
            self._guarded(board, lambda b=board: self._full(b, states.get(b.id)))
            for board in needs_full
        ]
        if others:
            started = self.api.session.stats.requests
            try:
                checks = self.api.change_check([board.id for board in others])
            except ApiError as exc:  # the check failed as a whole: every board fails with it
                checks = {board.id: BoardCheck(error=str(exc)) for board in others}
            check_cost = self.api.session.stats.requests - started
            for index, board in enumerate(others):
                state = states[board.id]
                reports.append(
                    self._guarded(
                        board,
                        lambda b=board, s=state: self._incremental(b, s, checks[b.id]),
                        # the shared check is counted once, on the first board it served
                        shared_requests=check_cost if index == 0 else 0,
                    )
                )
        return reports

    def sync_board(self, board: BoardConfig, *, full: bool = False) -> BoardReport:
        """Sync one board (used by the webhook path to catch up after a refused action)."""
        state = self.store.sync_state(board.id)
        if full or not state or not state.get("last_full_at"):
            return self._guarded(board, lambda: self._full(board, state))
        return self._guarded(
            board,
            lambda: self._incremental(board, state, self.api.change_check([board.id])[board.id]),
        )

    def _guarded(
        self, board: BoardConfig, step: Callable[[], BoardReport], *, shared_requests: int = 0
    ) -> BoardReport:
        """Run one board's step: a failure is recorded and reported, never raised; the report
        counts every request the step made (and `shared_requests` spent for it beforehand)."""
        started_requests = self.api.session.stats.requests
        started = time.perf_counter()
        try:
            report = step()
        except (ApiError, StoreError) as exc:
            self._failed(board, str(exc))
            report = BoardReport(board.id, "failed", error=str(exc))
        report.requests = self.api.session.stats.requests - started_requests + shared_requests
        report.seconds = round(time.perf_counter() - started, 3)
        log.info(
            "board synced" if report.error is None else "board sync failed",
            board=board.id,
            mode=report.mode,
            requests=report.requests,
            cards=report.cards,
            changes=report.changes,
            actions=report.actions,
            deleted=report.deleted,
            seconds=report.seconds,
            error=report.error,
        )
        return report

    def _failed(self, board: BoardConfig, message: str) -> None:
        try:
            self.store.record_error(board.id, message, utc_iso(self.clock()))
        except StoreClosing:  # syncd is stopping: the next run syncs this board again
            log.info("sync interrupted: syncd is stopping", board=board.id)
        except StoreError as exc:  # the store itself is down: the log line is all we have
            log.error("cannot record sync error", board=board.id, error=str(exc))

    # -- the three modes ----------------------------------------------------------------

    def _full(self, board: BoardConfig, state: dict[str, Any] | None) -> BoardReport:
        cursor = (state or {}).get("action_cursor")
        # Actions first: one made while the snapshot is read is then newer than the cursor and
        # the next poll refetches its card (the other order would skip it until the reconcile).
        actions = self._action_rows_since(board, cursor)
        self.progress(f"{board.id}: snapshot")
        mode = "full"
        try:
            snapshot = self.api.board_snapshot(board.id)
            cards = None
        except TooManyCards:
            mode = "paged"
            self.progress(f"{board.id}: board too large for one request, paging cards")
            snapshot = self.api.board_skeleton(board.id)
            cards = [card for page in self.api.board_cards_pages(board.id) for card in page]
        batch = snapshot_batch(
            snapshot, board_ref=board.id, role=board.role, observed_at=self._now(), cards=cards
        )
        for row in actions:  # an action without its board named is the snapshot's board's
            row["board_id"] = row["board_id"] or snapshot["id"]
        batch.actions = actions
        batch.cursor = _newest(actions, cursor)
        result = self.write(batch)
        self.last_checked[board.id] = self.clock()
        return BoardReport(
            board.id,
            mode,
            cards=result.cards,
            changes=result.versions,
            actions=result.actions,
            deleted=result.deleted,
        )

    def _incremental(
        self, board: BoardConfig, state: dict[str, Any], check: BoardCheck
    ) -> BoardReport:
        if check.error is not None:
            raise ApiError(check.error)
        newest = check.newest
        cursor = state.get("action_cursor")
        if newest is None or (cursor is not None and newest <= cursor):
            self.last_checked[board.id] = self.clock()
            return BoardReport(board.id, "idle")
        actions = self._actions_since(board, cursor)
        if not actions:
            self.last_checked[board.id] = self.clock()
            return BoardReport(board.id, "idle")
        if any(action.get("type") in BOARD_LEVEL_ACTIONS for action in actions):
            return self._full(board, state)
        known = self.store.known_actions(action["id"] for action in actions)
        fresh = [action for action in actions if action["id"] not in known]
        own = own_comment_ids(fresh, self.store.writeback_intents)  # nothing to refetch
        fresh = [action for action in fresh if action["id"] not in own]
        checklists = {cid for a in fresh if (cid := action_checklist_id(a)) is not None}
        deleted, touched = changed_cards(fresh, self.store.checklist_cards(checklists))
        if len(touched) > self.max_incremental_cards:
            return self._full(board, state)
        board_id = state["board_id"]
        self.progress(f"{board.id}: {len(actions)} new actions, {len(touched)} cards to refetch")
        batch = refetched_batch(
            self.api.cards(sorted(touched)) if touched else {},
            board_ref=board.id,
            role=board.role,
            board_id=board_id,
            observed_at=self._now(),
            options=self.store.custom_field_options(board_id),
            deleted=deleted,
        )
        batch.actions = action_rows(actions, board_id, "poll")
        batch.cursor = _newest(actions, cursor)
        result = self.write(batch)
        self.last_checked[board.id] = self.clock()
        return BoardReport(
            board.id,
            "incremental",
            cards=result.cards,
            changes=result.versions,
            actions=result.actions,
            deleted=result.deleted,
        )

    def _action_rows_since(self, board: BoardConfig, cursor: str | None) -> list[Row]:
        """The actions since `cursor` as rows, each page converted as it comes: a page's JSON
        takes about three times the memory of its rows (20,000 actions: ~70 MB less at once)."""
        rows: list[Row] = []
        for page in self.api.actions_pages(board.id, since=cursor):
            rows.extend(action_rows(page, "", "poll"))
            self.progress(f"{board.id}: {len(rows)} actions read")
        return rows

    def _actions_since(self, board: BoardConfig, cursor: str | None) -> list[dict[str, Any]]:
        actions: list[dict[str, Any]] = []
        for page in self.api.actions_pages(board.id, since=cursor):
            actions.extend(page)
            self.progress(f"{board.id}: {len(actions)} actions read")
        return actions

    def _now(self) -> str:
        return utc_iso(self.clock())


def _newest(actions: Sequence[dict[str, Any]], cursor: str | None) -> str | None:
    ids = [action["id"] for action in actions if action.get("id")]
    if cursor:
        ids.append(cursor)
    return max(ids) if ids else None
