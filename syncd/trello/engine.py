"""The Trello sync engine: one pass over the configured boards, with as few requests as possible.

Algorithm, per pass (`Mirror.sync`):

1. **Change check.** One ``/1/batch`` request asks every board (10 per request) for its actions
   since its cursor (``/boards/{id}/actions?since=<cursor>&limit=1000``, the same filter and
   fields as every action read). An idle board answers ``[]``: nothing more is fetched, nothing
   is written (the check time is kept in memory for readiness), so an idle poll costs 1 request
   per 10 boards. A changed board's actions arrive in the check itself; only a board that
   filled the page (1000) reads its older pages (``before=``). A board Trello refuses inside
   the batch fails alone.
2. **Incremental.** The cards the new actions touch (for an action naming only a checklist,
   the stored checklist's card: see `syncd.trello.actions`) are refetched for **every changed
   board together** (10 per ``/1/batch`` request, cards of several boards sharing a request),
   then each board is written with its actions and its new cursor, in one transaction of its
   own. Actions already applied from a webhook are not refetched (webhooks never move the
   cursor, so a lost delivery is always caught here), nor are syncd's own comments
   (write-back): they are stored, their card is unchanged. A ``deleteCard`` marks its card
   deleted without a fetch. When an action changes the board itself (a list, a label, a custom
   field, a member) or too many cards changed, a full snapshot is cheaper and is taken instead
   (with the actions already read). A card Trello refuses inside the shared batch, or a card
   batch request that fails as a whole, fails the boards of those cards alone.
3. **Full snapshot** (first sync, ``--full``, the daily reconcile): one nested
   ``GET /1/boards/{id}`` with every parameter explicit (paged ``/cards`` when Trello refuses a
   board that large), plus the action pages since the cursor (the whole history the first
   time). Cards missing from the snapshot are marked deleted.

So 5 card changes on each of 2 boards cost 2 requests: the check and one card batch.

**Requests are attributed so the per-board reports add up to the requests made.** A board's
own requests (its older action pages, its snapshot) are counted on it; a shared request (a
change check request, a card batch request) is counted once, on the first board it served, in
the configured order, and so is its time. A request retried counts each attempt.

Each board is one transaction: its rows and its cursor move together, so a pass killed at any
moment leaves the previous complete state and the next pass resumes from the cursor. A board
that fails is recorded with its error and the others carry on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog

from adapters.transport import ApiError
from adapters.trello import MAX_BATCH, BoardActions, CardAnswer, TooManyCards, TrelloAPI
from state.store import BoardBatch, Row, Store, StoreClosing, StoreError, WriteResult
from state.timestamps import utc_iso
from syncd.config import BoardConfig
from syncd.trello.actions import BOARD_LEVEL_ACTIONS, action_checklist_id, changed_cards
from syncd.trello.rows import action_rows, refetched_batch, snapshot_batch
from syncd.writeback.marker import own_comment_ids

log = structlog.get_logger("syncd.mirror")

MAX_INCREMENTAL_CARDS = 50  # above this, one snapshot request beats ⌈n/10⌉ batch requests
_T = TypeVar("_T")


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
        board's failure. The change check and the card refetch ask all of them together."""
        chosen = self.boards if boards is None else [b for b in self.boards if b in boards]
        if not chosen:
            return []
        states = {row["board_ref"]: row for row in self.store.sync_states()}
        needs_full = [b for b in chosen if full or not (states.get(b.id) or {}).get("last_full_at")]
        reports = [
            self._guarded(board, lambda b=board: self._full(b, states.get(b.id)))
            for board in needs_full
        ]
        others = [_Poll(board, states[board.id]) for board in chosen if board not in needs_full]
        return reports + self._poll(others)

    def sync_board(self, board: BoardConfig, *, full: bool = False) -> BoardReport:
        """Sync one board (used by the webhook path to catch up after a refused action)."""
        state = self.store.sync_state(board.id)
        if full or not state or not state.get("last_full_at"):
            return self._guarded(board, lambda: self._full(board, state))
        (report,) = self._poll([_Poll(board, state)])
        return report

    def _poll(self, polls: list[_Poll]) -> list[BoardReport]:
        """Steps 1 and 2 of the module docstring over boards already mirrored once."""
        for start in range(0, len(polls), MAX_BATCH):  # 1. the change check
            chunk = polls[start : start + MAX_BATCH]
            cursors = {poll.board.id: poll.state.get("action_cursor") for poll in chunk}
            try:
                checks = self._shared(chunk, lambda c=cursors: self.api.actions_check(c))
            except ApiError as exc:  # the request failed as a whole: its boards fail with it
                checks = {board: BoardActions(error=str(exc)) for board in cursors}
            for poll in chunk:
                poll.check = checks[poll.board.id]
        for poll in polls:  # each board: the rest of its actions, what to refetch
            self._step(poll, lambda p=poll: self._plan(p))
        wanted = [(poll, card) for poll in polls if poll.report is None for card in poll.touched]
        for start in range(0, len(wanted), MAX_BATCH):  # every board's cards together
            chunk = wanted[start : start + MAX_BATCH]
            served = list({id(poll): poll for poll, _card in chunk}.values())
            ids = [card for _poll, card in chunk]
            try:
                answers = self._shared(served, lambda i=ids: self.api.card_answers(i))
            except ApiError as exc:
                answers = {card: CardAnswer(error=str(exc)) for card in ids}
            for poll, card in chunk:
                poll.cards[card] = answers[card]
        for poll in polls:  # each board written alone, with its cursor
            if poll.report is None:
                self._step(poll, lambda p=poll: self._write_incremental(p))
        return [self._finish(poll) for poll in polls]

    def _shared(self, served: Sequence[_Poll], call: Callable[[], _T]) -> _T:
        """Make a request shared by `served`: its cost (requests, time) is counted once, on
        the first board it served (so the reports add up to the requests made)."""
        started_requests = self.api.session.stats.requests
        started = time.perf_counter()
        try:
            return call()
        finally:
            served[0].requests += self.api.session.stats.requests - started_requests
            served[0].seconds += time.perf_counter() - started

    def _step(self, poll: _Poll, step: Callable[[], BoardReport | None]) -> None:
        """Run one step of a board: a failure is recorded and becomes its report, never
        raised; the board's report counts every request the step made, and its time."""
        started_requests = self.api.session.stats.requests
        started = time.perf_counter()
        try:
            report = step()
        except (ApiError, StoreError) as exc:
            self._failed(poll.board, str(exc))
            report = BoardReport(poll.board.id, "failed", error=str(exc))
        finally:
            poll.requests += self.api.session.stats.requests - started_requests
            poll.seconds += time.perf_counter() - started
        if report is not None:
            poll.report = report

    def _guarded(self, board: BoardConfig, step: Callable[[], BoardReport]) -> BoardReport:
        """Run a board's step alone (a snapshot): see `_step`."""
        poll = _Poll(board, {})
        self._step(poll, step)
        return self._finish(poll)

    def _finish(self, poll: _Poll) -> BoardReport:
        """The board's report, with the requests and the time counted on it; its log line."""
        report = poll.report or BoardReport(poll.board.id, "failed", error="not synced")
        report.requests = poll.requests
        report.seconds = round(poll.seconds, 3)
        log.info(
            "board synced" if report.error is None else "board sync failed",
            board=poll.board.id,
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

    # -- the modes ----------------------------------------------------------------------

    def _full(
        self,
        board: BoardConfig,
        state: dict[str, Any] | None,
        actions: list[dict[str, Any]] | None = None,
    ) -> BoardReport:
        """The snapshot; `actions`: those since the cursor, when the poll already read them."""
        cursor = (state or {}).get("action_cursor")
        # Actions first: one made while the snapshot is read is then newer than the cursor and
        # the next poll refetches its card (the other order would skip it until the reconcile).
        rows = (
            self._action_rows_since(board, cursor)
            if actions is None
            else action_rows(actions, "", "poll")
        )
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
        for row in rows:  # an action without its board named is the snapshot's board's
            row["board_id"] = row["board_id"] or snapshot["id"]
        batch.actions = rows
        batch.cursor = _newest(rows, cursor)
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

    def _plan(self, poll: _Poll) -> BoardReport | None:
        """After the check: idle, a snapshot, or the cards to refetch (None: to be written)."""
        board, state, check = poll.board, poll.state, poll.check
        assert check is not None
        if check.error is not None:
            raise ApiError(check.error)
        cursor = state.get("action_cursor")
        actions = list(check.actions)
        if check.more:  # a full page: the older actions since the cursor follow
            oldest = min(action["id"] for action in check.actions)
            for page in self.api.actions_pages(board.id, since=cursor, before=oldest):
                actions.extend(page)
                self.progress(f"{board.id}: {len(actions)} actions read")
        # `since` is exclusive: anything at or before the cursor is not new (same idle rule as
        # comparing the newest action id with the cursor)
        actions = [a for a in actions if cursor is None or a.get("id", "") > cursor]
        if not actions:
            self.last_checked[board.id] = self.clock()
            return BoardReport(board.id, "idle")
        if any(action.get("type") in BOARD_LEVEL_ACTIONS for action in actions):
            return self._full(board, state, actions)
        known = self.store.known_actions(action["id"] for action in actions)
        fresh = [action for action in actions if action["id"] not in known]
        own = own_comment_ids(fresh, self.store.writeback_intents)  # nothing to refetch
        fresh = [action for action in fresh if action["id"] not in own]
        checklists = {cid for a in fresh if (cid := action_checklist_id(a)) is not None}
        deleted, touched = changed_cards(fresh, self.store.checklist_cards(checklists))
        if len(touched) > self.max_incremental_cards:
            return self._full(board, state, actions)
        self.progress(f"{board.id}: {len(actions)} new actions, {len(touched)} cards to refetch")
        poll.actions, poll.deleted, poll.touched = actions, deleted, sorted(touched)
        return None

    def _write_incremental(self, poll: _Poll) -> BoardReport:
        """The refetched cards, the actions and the cursor of one board, in one transaction;
        a card of this board refused in the shared batch fails this board alone."""
        refused = [answer.error for answer in poll.cards.values() if answer.error is not None]
        if refused:
            raise ApiError(refused[0])
        board, board_id = poll.board, poll.state["board_id"]
        batch = refetched_batch(
            {card: answer.card for card, answer in poll.cards.items()},
            board_ref=board.id,
            role=board.role,
            board_id=board_id,
            observed_at=self._now(),
            options=self.store.custom_field_options(board_id),
            deleted=poll.deleted,
        )
        batch.actions = action_rows(poll.actions, board_id, "poll")
        batch.cursor = _newest(poll.actions, poll.state.get("action_cursor"))
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

    def _now(self) -> str:
        return utc_iso(self.clock())


@dataclass(eq=False)
class _Poll:
    """One board during a pass: its state, what the shared requests brought it, and what is
    counted on it (requests, seconds) until its report is final."""

    board: BoardConfig
    state: dict[str, Any]
    check: BoardActions | None = None
    actions: list[dict[str, Any]] = field(default_factory=list)
    touched: list[str] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)
    cards: dict[str, CardAnswer] = field(default_factory=dict)
    requests: int = 0
    seconds: float = 0.0
    report: BoardReport | None = None


def _newest(actions: Sequence[dict[str, Any]], cursor: str | None) -> str | None:
    ids = [action["id"] for action in actions if action.get("id")]
    if cursor:
        ids.append(cursor)
    return max(ids) if ids else None
