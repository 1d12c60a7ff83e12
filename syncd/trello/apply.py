"""Applying one accepted Trello action to the store: directly, by a refetch, or by a board sync.

Owns `TrelloApplier`: one delivery recorded (a replay is recognised by its action id), applied
and marked ``applied`` or ``failed``. What an action means is `syncd.trello.actions` (`plan`,
`apply_action`), and every row is built by the one conversion, `syncd.trello.rows`:

- **direct**: the action carries the whole change: the card's stored rows are loaded
  (`Store.card_batch`), changed by `apply_action`, and written back through the one writer
  path with the raw action, so the card history gets ``webhook`` rows; no Trello request;
- **refetch**: anything else about a card, or a direct action `apply_action` refuses (the card
  is not stored yet, the stored card is not older than the action, a value is missing): the
  card is fetched again (one ``/1/batch`` request) and converted like a poll's;
- **board**: an action that changes the board itself: the board is synced (`Mirror.sync_board`);
- **store** / **included**: nothing mirrored is named, or a fetch already returned the card
  after this action: only the raw action is kept.

A webhook batch never moves the poll cursor: a lost or failed delivery is caught by the next
poll, which reads every action since the cursor and refetches the cards of the actions it does
not hold. A failed delivery stores no action row, so the poll does not mistake it for applied.

Why direct application and not a coalesced refetch (measured by ``bench/bench_webhook_designs.py``
on the sandbox, SQLite, 600 signed deliveries of the sample board's usual changes; see the
bench's docstring for the table): MEASUREMENTS.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog

from state.store import BoardBatch, Store
from state.timestamps import utc_iso
from syncd.config import BoardConfig
from syncd.trello.actions import action_card_id, action_checklist_id, apply_action, plan
from syncd.trello.rows import action_rows, refetched_batch
from syncd.writeback.marker import own_comment_ids

log = structlog.get_logger("syncd.webhooks")


T = TypeVar("T")


# -- applying -----------------------------------------------------------------------------


class ApplyError(Exception):
    """A delivery could not be applied (the next poll will catch it up)."""


def _inline(step: Callable[[], T]) -> T:
    return step()


class TrelloApplier:
    """Applies one Trello action to the store (see the module docstring).

    `run_write` runs a read-modify-write step where every store write happens (the daemon's
    writer thread); by default inline. Remote calls (refetch, board sync) run in the caller.
    """

    def __init__(
        self,
        *,
        store: Store,
        trello: Any,
        mirror: Any,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        run_write: Callable[[Callable[[], Any]], Any] = _inline,
    ) -> None:
        self.store = store
        self.trello = trello
        self.mirror = mirror
        self.clock = clock
        self.run_write = run_write
        # card id -> dateLastActivity of its last fetch from Trello (snapshot or refetch): that
        # fetched state holds every action on the card dated strictly before it.
        self._fetched: dict[str, str] = {}
        self._fetched_lock = threading.Lock()

    def note_fetched(self, batch: BoardBatch) -> None:
        """Remember what a written batch of cards read from Trello holds (snapshot, refetch)."""
        with self._fetched_lock:
            for card in batch.cards:
                activity = card.get("date_last_activity")
                if activity and activity > self._fetched.get(card["id"], ""):
                    self._fetched[card["id"]] = activity

    def _included(self, card_id: str | None, date: str | None) -> bool:
        """Whether a fetched state already holds this action (it is strictly older)."""
        if not card_id or not date:
            return False
        with self._fetched_lock:
            return date < self._fetched.get(card_id, "")

    def deliver(self, action: Mapping[str, Any], board: BoardConfig, board_id: str) -> str:
        """Record, apply and mark one delivery: ``applied``, ``replay`` or ``failed``."""
        action_id = action["id"]
        at = utc_iso(self.clock())
        if not self.run_write(lambda: self.store.record_delivery(action_id, board_id, at)):
            return "replay"
        try:
            how = self.apply(action, board, board_id)
        except Exception as exc:  # a failed apply must never stop the worker
            log.warning(
                "webhook apply failed",
                action=action_id,
                type=action.get("type"),
                board=board.id,
                error=" ".join(str(exc).split())[:300] or type(exc).__name__,
            )
            self._mark(action_id, "failed")
            return "failed"
        self._mark(action_id, "applied")
        log.debug("webhook applied", action=action_id, type=action.get("type"), how=how)
        return "applied"

    def _mark(self, action_id: str, outcome: str) -> None:
        at = utc_iso(self.clock())
        try:
            self.run_write(lambda: self.store.mark_delivery(action_id, outcome, at))
        except Exception as exc:
            log.warning("cannot mark webhook delivery", action=action_id, error=str(exc)[:300])

    def apply(self, action: Mapping[str, Any], board: BoardConfig, board_id: str) -> str:
        """Apply one action; returns how (``direct``, ``refetch``, ``board``, ``store``,
        ``included``)."""
        how = plan(action)
        if own_comment_ids([action], self.store.writeback_intents):
            how = "store"  # syncd's own comment (write-back): kept, its card is unchanged
        card_id = self._card_of(action) if how in ("direct", "refetch") else None
        if how in ("direct", "refetch"):
            if card_id is None:
                how = "store"  # a checklist not stored yet: it comes with its card's refetch
            elif self._included(card_id, action.get("date")):
                how = "included"  # the stored card was fetched after this action: row only
        if card_id is not None and how == "direct":
            direct_card = card_id
            if self.run_write(lambda: self._direct(action, board, board_id, direct_card)):
                return "direct"
            how = "refetch"
        if card_id is not None and how == "refetch":
            self._refetch(action, board, board_id, card_id)
            return "refetch"
        if how == "board":
            report = self.mirror.sync_board(board)
            if report.error:
                raise ApplyError(f"board {board.id}: {report.error}")
        rows = action_rows([action], board_id, "webhook")
        self.run_write(lambda: self.store.insert_actions(rows))
        return how

    def _card_of(self, action: Mapping[str, Any]) -> str | None:
        """The action's card: named in it, or (``updateChecklist``) the stored checklist's."""
        card_id = action_card_id(action)
        checklist_id = action_checklist_id(action)
        if card_id is None and checklist_id is not None:
            card_id = self.store.checklist_cards([checklist_id]).get(checklist_id)
        return card_id

    def _direct(
        self, action: Mapping[str, Any], board: BoardConfig, board_id: str, card_id: str
    ) -> bool:
        """On the writer: load the card's rows, change them, write them back. False: refetch."""
        observed = utc_iso(self.clock())
        batch = self.store.card_batch(board.id, board.role, [card_id], observed_at=observed)
        if action.get("type") == "deleteCard":
            if not batch.cards:  # never stored, or already marked gone: nothing to record
                self.store.insert_actions(action_rows([action], board_id, "webhook"))
                return True
            batch = BoardBatch(
                board_ref=board.id,
                role=board.role,
                observed_at=observed,
                source="webhook",
                gone_card_ids=[card_id],
            )
        else:
            options = None
            if action.get("type") == "updateCustomFieldItem":
                options = self.store.custom_field_options(board_id)
            if not apply_action(batch, action, card_id=card_id, board_id=board_id, options=options):
                return False
        self._write(batch, action, board_id)
        return True

    def _refetch(
        self, action: Mapping[str, Any], board: BoardConfig, board_id: str, card_id: str
    ) -> None:
        fetched = self.trello.cards([card_id])  # remote call, off the writer

        def write() -> None:
            batch = refetched_batch(
                fetched,
                board_ref=board.id,
                role=board.role,
                board_id=board_id,
                observed_at=utc_iso(self.clock()),
                options=self.store.custom_field_options(board_id),
                source="webhook",
            )
            self._write(batch, action, board_id)
            self.note_fetched(batch)

        self.run_write(write)

    def _write(self, batch: BoardBatch, action: Mapping[str, Any], board_id: str) -> None:
        batch.source = "webhook"
        batch.action_id = action["id"]
        batch.cursor = None  # never: the poll resumes from its own cursor
        batch.actions = action_rows([action], board_id, "webhook")
        self.store.write_board(batch)
