"""Applying accepted Trello actions to the store: directly, by a refetch, or by a board sync.

Owns `TrelloApplier`: deliveries recorded (a replay is recognised by its action id), applied,
and marked ``applied`` or ``failed``. A delivery is a checked `syncd.trello.schema.TrelloAction`:
only its checked values are applied (`TrelloAction.as_trello`: a value the model did not keep
is absent, so an action needing it is refetched), and an action type the model does not know
(`TrelloAction.understood` False) is never applied directly. What an action means is
`syncd.trello.actions` (`plan`, `apply_action`), and every row is built by the one conversion,
`syncd.trello.rows`. A run of deliveries (what the webhook worker has queued; one delivery is a
run of one) is applied per board:

- **direct**: the action carries the whole change: it is applied to its card's stored rows
  (`Store.card_batch`, `apply_action`), in arrival order; no Trello request;
- **refetch**: anything else about a card, or a direct action `apply_action` refuses (the card
  is not stored yet, the stored card is not older than the action, a value is missing): the
  run's cards to refetch are fetched together, 10 per ``/1/batch`` request, and converted like
  a poll's;
- **board**: an action that changes the board itself: the board is synced first
  (`Mirror.sync_board`);
- **store** / **included**: nothing mirrored is named (or syncd's own comment), or a fetch
  already returned the card after this action: only the raw action is kept.

Then the changed, refetched and deleted cards are written with every raw action of the run in
one batch through the one writer path, so the card history gets ``webhook`` rows (one per
changed field and card for the run). The batch never moves the poll cursor: a lost or failed
delivery is caught by the next poll, which reads every action since the cursor and refetches
the cards of the actions it does not hold. A failed run stores no action row.

Why this design: measured by ``bench/bench_webhook_designs.py`` (SQLite, the sample boards'
usual mix of changes, Trello's budget enforced, 2026-12-01). Trello requests spent:

    changes                        arrival  refetch each card,  one by one,  direct +
                                            coalesced           direct       coalesced
    626 on 19 busy cards           backlog        3                38            6
                                   trickle      627                78           78
    638 on 71 cards                backlog        8                80            9
                                   trickle      639                94           94
    2,094 on 885 cards (1,000)     backlog       97               353           32
                                   trickle    2,095               296          296

Refetching every delivery's card, even coalesced, costs one request per delivery when they
trickle in, so syncd's 90 requests / 10 s caps it at 9 deliveries/s; applying what an action
carries costs no request, and the refetches left (new cards, renames, checklists added,
actions arriving out of order) are shared when deliveries queue up. Direct + coalesced spent
the fewest requests but on a backlog over a few busy cards (6 against 3), and applied the
backlogs at 699, 1,014 and 88 deliveries/s (coalesced: 785, 375, 23; one by one: 209, 125,
47).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog

from state.store import CARD_BATCH_FIELDS, BoardBatch, Store
from state.timestamps import utc_iso
from syncd.config import BoardConfig
from syncd.trello.actions import action_card_id, action_checklist_id, apply_action, plan
from syncd.trello.rows import action_rows, refetched_batch
from syncd.trello.schema import TrelloAction
from syncd.writeback.marker import own_comment_ids

log = structlog.get_logger("syncd.webhooks")

T = TypeVar("T")
Action = Mapping[str, Any]  # a checked action in Trello's JSON shape (`TrelloAction.as_trello`)
Row = dict[str, Any]
Delivery = tuple[TrelloAction, BoardConfig, str]  # the action, its configured board, its id


@dataclass
class _Run:
    """One board's deliveries in a run: (index, action, queue seq) applied, seqs of replays."""

    board: BoardConfig
    board_id: str
    fresh: list[tuple[int, TrelloAction, int | None]] = field(default_factory=list)
    replays: list[int] = field(default_factory=list)


class ApplyError(Exception):
    """A delivery could not be applied (the next poll will catch it up)."""


def _inline(step: Callable[[], T]) -> T:
    return step()


class TrelloApplier:
    """Applies accepted Trello actions to the store (see the module docstring).

    `run_write` runs a read-modify-write step where every store write happens (the daemon's
    writer thread); by default inline. Remote calls (refetch, board sync) run in the caller.
    `metrics` (optional) counts how each action was applied.
    """

    def __init__(
        self,
        *,
        store: Store,
        trello: Any,
        mirror: Any,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        run_write: Callable[[Callable[[], Any]], Any] = _inline,
        metrics: Any = None,
    ) -> None:
        self.store = store
        self.metrics = metrics
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

    # -- deliveries -----------------------------------------------------------------------

    def deliver(self, action: TrelloAction, board: BoardConfig, board_id: str) -> str:
        """Apply and record one delivery: ``applied``, ``replay`` or ``failed``."""
        return self.deliver_many([(action, board, board_id)])[0]

    def deliver_many(
        self, deliveries: Sequence[Delivery], *, queued: Sequence[int | None] | None = None
    ) -> list[str]:
        """Apply and record a run of checked deliveries (in arrival order), board by board:
        ``applied``, ``replay`` or ``failed`` for each.

        `queued` gives each delivery's ``webhook_queue`` seq (None: not queued). Per board, ONE
        write transaction holds the rows the run changed, each delivery's ``webhook_delivery``
        row (with its outcome) and the deletion of its queue row (`Store.settle_deliveries`):
        a crash leaves a delivery queued or applied, never both nor neither. A replay (an
        action id delivered before, or twice in the run) is only dequeued. The caller holds
        the boards' locks (`syncd.daemon.locks.BoardLocks`: across replicas too), so the
        replay check read first stays true until the commit.
        """
        seqs = list(queued) if queued is not None else [None] * len(deliveries)
        outcomes: list[str] = []
        runs: dict[str, _Run] = {}
        seen = self.store.delivered_actions(action.id for action, _, _ in deliveries)
        received = utc_iso(self.clock())
        for index, ((action, board, board_id), seq) in enumerate(
            zip(deliveries, seqs, strict=True)
        ):
            run = runs.setdefault(board.id, _Run(board, board_id))
            if action.id in seen:
                outcomes.append("replay")
                if seq is not None:
                    run.replays.append(seq)
                continue
            seen.add(action.id)
            outcomes.append("applied")
            run.fresh.append((index, action, seq))
        for run in runs.values():
            self._deliver_run(run, outcomes, received)
        return outcomes

    def _deliver_run(self, run: _Run, outcomes: list[str], received: str) -> None:
        board, board_id = run.board, run.board_id
        if not run.fresh:
            if run.replays:
                self.run_write(lambda: self.store.settle_deliveries([], run.replays))
            return
        actions = [action.as_trello() for _, action, _ in run.fresh]  # the checked values only
        understood = [action.understood for _, action, _ in run.fresh]
        dequeue = [seq for _, _, seq in run.fresh if seq is not None] + run.replays

        def settled(outcome: str) -> list[Row]:
            at = utc_iso(self.clock())
            return [
                {
                    "action_id": action.id,
                    "board_id": board_id,
                    "received_at": received,
                    "applied_at": at,
                    "outcome": outcome,
                }
                for _, action, _ in run.fresh
            ]

        try:
            hows = self.apply_many(
                actions,
                board,
                board_id,
                understood=understood,
                settle=lambda: (settled("applied"), dequeue),
            )
        except Exception as exc:  # a failed apply must never stop the worker
            log.warning(
                "webhook apply failed",
                actions=[action["id"] for action in actions[:20]],
                types=sorted({str(action.get("type")) for action in actions}),
                board=board.id,
                error=" ".join(str(exc).split())[:300] or type(exc).__name__,
            )
            hows = ["failed"] * len(actions)
            try:  # recorded as failed (the next poll catches them up) and dequeued
                self.run_write(lambda: self.store.settle_deliveries(settled("failed"), dequeue))
            except Exception as again:  # e.g. stopping: they stay queued for the next start
                log.warning("cannot record failed webhook deliveries", error=str(again)[:300])
        for (index, action, _), how in zip(run.fresh, hows, strict=True):
            outcomes[index] = "failed" if how == "failed" else "applied"
            if self.metrics is not None and how != "failed":
                self.metrics.applied(how)
            log.debug(
                "webhook delivery",
                action=action.id,
                type=action.type,
                outcome=outcomes[index],
                how=how,
            )

    # -- applying -------------------------------------------------------------------------

    def apply(self, action: Action, board: BoardConfig, board_id: str) -> str:
        """Apply one action; returns how (see `apply_many`)."""
        return self.apply_many([action], board, board_id)[0]

    def apply_many(
        self,
        actions: Sequence[Action],
        board: BoardConfig,
        board_id: str,
        *,
        understood: Sequence[bool] | None = None,
        settle: Callable[[], tuple[list[Row], list[int]]] | None = None,
    ) -> list[str]:
        """Apply a run of one board's actions (in arrival order); returns how, for each:
        ``direct``, ``refetch``, ``board``, ``store`` or ``included``. An action whose
        `understood` is False is never ``direct`` (refetched instead). `settle` gives the
        deliveries' rows and queue seqs to commit in the same transaction as the run's rows."""
        own = own_comment_ids(actions, self.store.writeback_intents)  # syncd's: card unchanged
        hows = ["store" if action["id"] in own else plan(action) for action in actions]
        for index, known in enumerate(understood or ()):
            if not known and hows[index] == "direct":
                hows[index] = "refetch"
        if "board" in hows:
            report = self.mirror.sync_board(board)
            if report.error:
                raise ApplyError(f"board {board.id}: {report.error}")
        cards = self._cards_of(actions, hows)
        for index, card_id in enumerate(cards):
            if hows[index] not in ("direct", "refetch"):
                continue
            if card_id is None:
                hows[index] = "store"  # a checklist not stored yet: it comes with its card
            elif self._included(card_id, actions[index].get("date")):
                hows[index] = "included"  # a fetch after this action holds it: row only
        observed = utc_iso(self.clock())
        changed, refetch, gone = self.run_write(
            lambda: self._apply_direct(actions, hows, cards, board, board_id, observed)
        )
        fetched = self.trello.cards(sorted(refetch)) if refetch else {}  # remote, off the writer
        self.run_write(
            lambda: self._write(changed, fetched, gone, actions, board, board_id, observed, settle)
        )
        return hows

    def _cards_of(self, actions: Sequence[Action], hows: list[str]) -> list[str | None]:
        """Each action's card: named in it, or (``updateChecklist``) the stored checklist's."""
        wanted = {
            checklist_id
            for action, how in zip(actions, hows, strict=True)
            if how in ("direct", "refetch") and (checklist_id := action_checklist_id(action))
        }
        checklists = self.store.checklist_cards(wanted) if wanted else {}
        return [
            action_card_id(action) or checklists.get(action_checklist_id(action) or "")
            for action in actions
        ]

    def _apply_direct(
        self,
        actions: Sequence[Action],
        hows: list[str],
        cards: Sequence[str | None],
        board: BoardConfig,
        board_id: str,
        observed: str,
    ) -> tuple[BoardBatch, set[str], set[str]]:
        """On the writer: the direct actions applied in order onto their cards' stored rows.

        Returns (the changed rows, the cards to refetch, the cards deleted); a direct action
        `apply_action` refuses becomes ``refetch`` in `hows`.
        """
        refetch = {card for card, how in zip(cards, hows, strict=True) if how == "refetch"}
        direct = [(i, card) for i, card in enumerate(cards) if hows[i] == "direct" and card]
        batch = (
            self.store.card_batch(
                board.id, board.role, {card for _, card in direct}, observed_at=observed
            )
            if direct
            else BoardBatch(board_ref=board.id, role=board.role, observed_at=observed)
        )
        options = None
        if any(actions[i].get("type") == "updateCustomFieldItem" for i, _ in direct):
            options = self.store.custom_field_options(board_id)
        gone: set[str] = set()
        for i, card_id in direct:
            if actions[i].get("type") == "deleteCard":
                gone.add(card_id)
            elif card_id in refetch:
                hows[i] = "refetch"  # the card's fetched state will hold this action too
            elif card_id not in gone and not apply_action(
                batch, actions[i], card_id=card_id, board_id=board_id, options=options
            ):
                hows[i] = "refetch"
                refetch.add(card_id)
        return batch, {card for card in refetch if card} - gone, gone

    def _write(
        self,
        changed: BoardBatch,
        fetched: Mapping[str, Mapping[str, Any] | None],
        gone: set[str],
        actions: Sequence[Action],
        board: BoardConfig,
        board_id: str,
        observed: str,
        settle: Callable[[], tuple[list[Row], list[int]]] | None = None,
    ) -> None:
        """On the writer: the directly changed, refetched and deleted cards written with every
        raw action of the run, in one batch (the cursor never moves); with `settle`, the
        deliveries recorded and dequeued in the same transaction."""
        batch = refetched_batch(
            fetched,
            board_ref=board.id,
            role=board.role,
            board_id=board_id,
            observed_at=observed,
            options=self.store.custom_field_options(board_id) if fetched else {},
            deleted=gone,
            source="webhook",
        )
        replaced = set(fetched) | gone
        for name in CARD_BATCH_FIELDS:
            key = "id" if name == "cards" else "card_id"
            getattr(batch, name).extend(
                row for row in getattr(changed, name) if row[key] not in replaced
            )
        batch.actions = action_rows(actions, board_id, "webhook")
        batch.action_id = actions[0]["id"] if len(actions) == 1 else None
        batch.cursor = None  # never: the poll resumes from its own cursor
        if settle is not None:
            outcomes, dequeue = settle()
            self.store.settle_deliveries(outcomes, dequeue, batch=batch)
            if batch.cards or batch.gone_card_ids:
                self.note_fetched(_fetched_part(batch, fetched))
        elif batch.cards or batch.gone_card_ids:
            self.store.write_board(batch)
            self.note_fetched(_fetched_part(batch, fetched))
        else:  # nothing mirrored changes: the raw actions alone (no sync state needed)
            self.store.insert_actions(batch.actions)


def _fetched_part(batch: BoardBatch, fetched: Mapping[str, Any]) -> BoardBatch:
    """The cards of a written batch that Trello returned (what `note_fetched` may remember)."""
    part = BoardBatch(board_ref=batch.board_ref, role=batch.role, observed_at=batch.observed_at)
    part.cards = [card for card in batch.cards if card["id"] in fetched]
    return part
