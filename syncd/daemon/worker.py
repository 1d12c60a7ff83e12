"""The webhook intake and worker: verified deliveries durably queued, then applied in runs.

Owns `WebhookWorker` (the web layer's `DeliveryIntake`). **A Trello delivery is answered 200
only once it is durably queued** (or known as delivered before): `offer_trello` hands it to a
group commit (`syncd.daemon.intake.GroupCommit`) that writes every delivery waiting at that
moment into ``webhook_queue`` in one transaction (`state.queue.DeliveryQueue`, on a connection
of its own: a 200 never waits for the mirror writes queued on the writer thread) and returns
once that commit succeeded; a ``kill -9`` at any moment loses no acknowledged delivery.
(SQLite runs with ``synchronous=NORMAL``: a committed delivery survives the process dying,
not the machine losing power; PostgreSQL commits are flushed.)

The worker thread then applies what was queued in runs: the Trello deliveries waiting in
memory (`MAX_RUN` at most), their boards' locks held (`syncd.daemon.locks.BoardLocks`, shared
with the sync and, on PostgreSQL, with the other replicas), through
`TrelloApplier.deliver_many`, which writes per board the changed rows, the
``webhook_delivery`` rows and the deletion of the queue rows in ONE transaction. At start-up
the worker first applies what a previous process left in ``webhook_queue``; every
`SWEEP_SECONDS` it also applies rows older than `ORPHAN_SECONDS` it is not applying itself
(left by a replica that died: whichever replica holds the board's lock applies them; an action
id is applied once, the others only dequeue it). Figma events stay in memory: a refresh
queued, coalesced per file and event; a lost one is caught up by the file's scheduled sync.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from state.store import Store
from state.timestamps import utc_iso
from syncd.config import BoardConfig
from syncd.daemon.intake import GroupCommit
from syncd.daemon.locks import BoardLocks
from syncd.trello.apply import TrelloApplier
from syncd.trello.schema import TrelloAction, parse_action
from syncd.web.context import IntakeClosed

log = structlog.get_logger("syncd.webhooks")

MAX_RUN = 500  # Trello deliveries applied together, at most (one hold of their boards' locks)
SWEEP_SECONDS = 5.0  # how often the queue is searched for rows a dead replica left
ORPHAN_SECONDS = 15.0  # a queued row this old that this process is not applying is taken
HOLD = "SYNCD_TEST_HOLD_WEBHOOKS"  # tests: while this file exists, runs wait (queue builds up)


@dataclass
class _TrelloJob:
    action: TrelloAction
    board: BoardConfig
    board_id: str
    received: float
    seq: int | None = None


@dataclass
class _FigmaJob:
    key: str
    event: str
    received: float


_SWEEP = _FigmaJob("", "", 0.0)  # the worker's own reminder: search the queue for orphans


class WebhookWorker:
    """The delivery intake and the thread applying deliveries (see the module docstring).

    `offer_trello` blocks until the delivery is durably queued (group commit) and answers
    False for a replay: an action id already queued or applied in this process, or known to
    the store (``webhook_delivery``/``webhook_queue``). `offer_figma` queues a file's refresh
    in memory unless the same one is already waiting. `sync_lock` (the boards' locks) is held
    around each run of Trello deliveries, and by the scheduler around each sync, so a snapshot
    fetched before a webhook change can never be written over it.
    """

    def __init__(
        self,
        applier: TrelloApplier,
        *,
        metrics: Any = None,
        figma: Any = None,
        sync_lock: BoardLocks | None = None,
        on_change: Callable[[], None] | None = None,
        remember: int = 100_000,
        store: Store | None = None,
        boards: Sequence[BoardConfig] = (),
        replica: str = "",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.applier = applier
        self.store = store if store is not None else getattr(applier, "store", None)
        self.metrics = metrics
        self.figma = figma
        self.sync_lock = sync_lock or BoardLocks()
        self.on_change = on_change or (lambda: None)
        self.boards = {board.id: board for board in boards}
        self.replica = replica
        self.clock = clock
        self._remember = remember
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._seen_lock = threading.Lock()
        self._figma_waiting: set[tuple[str, str]] = set()  # (file key, event) refreshes queued
        self._queue: queue.Queue[_TrelloJob | _FigmaJob | None] = queue.Queue()
        self._inflight: set[int] = set()  # queue seqs this process holds in memory
        self._pending = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.durable = self.store.delivery_queue() if self.store is not None else None
        self.group: GroupCommit[_TrelloJob, bool] = GroupCommit(self._commit)

    # -- intake (HTTP threads) ----------------------------------------------------------

    def offer_trello(self, action: TrelloAction, board: BoardConfig, board_id: str) -> bool:
        """Queue a checked action durably, then answer; False when it is a replay. Raises
        `IntakeClosed` while stopping; a store error propagates (the route answers 503)."""
        return self.queue_trello(action, board, board_id).result()

    def queue_trello(self, action: TrelloAction, board: BoardConfig, board_id: str) -> Future[bool]:
        """`offer_trello` as a future (what the route awaits): resolved with False at once for
        a replay seen in this process, else once the group commit holding it succeeded."""
        if self._stopping.is_set():
            raise IntakeClosed("the daemon is stopping")
        action_id = action.id
        with self._seen_lock:
            if action_id in self._seen:
                replay: Future[bool] = Future()
                replay.set_result(False)
                return replay
            self._seen[action_id] = None
            while len(self._seen) > self._remember:
                self._seen.popitem(last=False)
        queued = self.group.enqueue(_TrelloJob(action, board, board_id, time.perf_counter()))
        queued.add_done_callback(lambda done: self._not_queued(done, action_id))
        return queued

    def _not_queued(self, done: Future[bool], action_id: str) -> None:
        """A commit that failed: forget the action id, so Trello's retry is taken."""
        if done.exception() is not None:
            with self._seen_lock:
                self._seen.pop(action_id, None)

    def _commit(self, jobs: list[_TrelloJob]) -> list[bool]:
        """The group commit: every waiting delivery in one INSERT and one commit (on the
        writer); the ones queued now go to the worker, in order."""
        if self.durable is None:  # no store (unit tests of the apply loop): memory only
            queued = {job.action.id: None for job in jobs}
        else:
            at = utc_iso(self.clock())
            queued = self.durable.enqueue(
                [
                    {
                        "action_id": job.action.id,
                        "board_ref": job.board.id,
                        "board_id": job.board_id,
                        "action": json.dumps(job.action.as_trello(), ensure_ascii=False),
                        "queued_at": at,
                        "queued_by": self.replica,
                    }
                    for job in jobs
                ]
            )
        fresh: list[bool] = []
        for job in jobs:
            if job.action.id in queued:  # (an id twice in the group: the first is queued)
                job.seq = queued.pop(job.action.id)
                if job.seq is not None:
                    with self._seen_lock:
                        self._inflight.add(job.seq)
                self._put(job)
                fresh.append(True)
            else:
                fresh.append(False)
        return fresh

    def offer_figma(self, key: str, event: str) -> None:
        """Queue a file's refresh; one already waiting for the same file and event covers it
        (a burst of Figma events, or a flood of them, never delays the Trello deliveries)."""
        if self._stopping.is_set():
            raise IntakeClosed("the daemon is stopping")
        with self._seen_lock:
            if (key, event) in self._figma_waiting:
                return
            self._figma_waiting.add((key, event))
        self._put(_FigmaJob(key, event, time.perf_counter()))

    def _put(self, job: _TrelloJob | _FigmaJob) -> None:
        with self._idle:
            self._pending += 1
        self._gauge()
        self._queue.put(job)

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.webhook_queue.set(self._pending)

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread: it applies what is left in the queue first (counted as pending
        from now on, so `wait_idle` waits for it)."""
        if self._thread is None:
            with self._idle:
                self._pending += 1
            self._thread = threading.Thread(target=self._run, name="syncd-webhooks", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> int:
        """Stop taking deliveries, finish the run in hand; returns how many were left (they
        stay in ``webhook_queue``: applied at the next start)."""
        self._stopping.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
        if self.durable is not None:
            self.durable.close()
        left = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            left += item is not None
        if left:
            log.info("webhook deliveries left queued for the next start", count=left)
        return left

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every accepted delivery has been processed (tests, benches)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def _run(self) -> None:
        if self.durable is not None:
            try:
                self.durable.warm()  # the intake's connection, before the first delivery
            except Exception as exc:  # the first enqueue opens it then (and reports errors)
                log.warning("webhook queue warm-up failed", error=str(exc)[:300])
        self._guarded_replay(None, counted=True)  # what a previous process left
        swept = time.monotonic()
        while True:
            try:
                job = self._queue.get(timeout=SWEEP_SECONDS)
            except queue.Empty:
                job = None if self._stopping.is_set() else _SWEEP
            if job is None or self._stopping.is_set():
                if job is not None and job is not _SWEEP:
                    self._queue.put(job)  # counted as left by stop()
                return
            if job is _SWEEP or time.monotonic() - swept >= SWEEP_SECONDS:
                swept = time.monotonic()
                older = utc_iso(self.clock() - timedelta(seconds=ORPHAN_SECONDS))
                self._guarded_replay(older)
                if job is _SWEEP:
                    continue
            jobs: list[_TrelloJob | _FigmaJob] = [job]
            try:
                if isinstance(job, _TrelloJob):
                    run = [job, *self._queued_trello(MAX_RUN - 1)]
                    jobs = list(run)
                    self._trello(run)
                else:
                    self._figma(job)
            except Exception as exc:  # keep the worker alive whatever happens
                log.error("webhook worker error", error=str(exc)[:300])
            finally:
                with self._seen_lock:
                    self._inflight.difference_update(
                        job.seq for job in jobs if isinstance(job, _TrelloJob) and job.seq
                    )
                with self._idle:
                    self._pending -= len(jobs)
                    self._idle.notify_all()
                self._gauge()

    def _guarded_replay(self, older_than: str | None, *, counted: bool = False) -> None:
        """`_replay`, counted as pending work (`wait_idle`); `counted`: already counted."""
        if not counted:
            with self._idle:
                self._pending += 1
        try:
            self._replay(older_than=older_than)
        except Exception as exc:  # the next sweep (or start) tries again
            log.error("webhook queue replay failed", error=str(exc)[:300])
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _replay(self, *, older_than: str | None) -> None:
        """Apply the queued rows this process does not hold (all at start-up; with
        `older_than`, those a dead replica left), in queue order, `MAX_RUN` at a time."""
        if self.store is None:
            return
        after, replayed = 0, 0
        while not self._stopping.is_set():
            rows = self.store.queued_deliveries(MAX_RUN, after=after, older_than=older_than)
            if not rows:
                break
            after = rows[-1]["seq"]
            with self._seen_lock:
                rows = [row for row in rows if row["seq"] not in self._inflight]
            run = [job for row in rows if (job := self._restored(row)) is not None]
            if run:
                self._trello(run)
                replayed += len(run)
        if replayed:
            log.info("queued webhook deliveries applied", count=replayed, start=older_than is None)

    def _restored(self, row: dict[str, Any]) -> _TrelloJob | None:
        """A queued row as a job again (the action checked again); one that cannot be (its
        board no longer configured, a value no longer valid) is recorded failed and dequeued:
        the poll catches it up."""
        board = self.boards.get(row["board_ref"])
        try:
            action = parse_action(json.loads(row["action"])) if board is not None else None
        except Exception:
            action = None
        if action is None or board is None:
            log.warning(
                "queued webhook delivery dropped", action=row["action_id"], board=row["board_ref"]
            )
            assert self.store is not None
            outcome = {
                "action_id": row["action_id"],
                "board_id": row["board_id"],
                "received_at": row["queued_at"],
                "applied_at": utc_iso(self.clock()),
                "outcome": "failed",
            }
            self.store.settle_deliveries([outcome], [row["seq"]])
            return None
        return _TrelloJob(action, board, row["board_id"], time.perf_counter(), row["seq"])

    def _queued_trello(self, limit: int) -> list[_TrelloJob]:
        """The Trello deliveries waiting at the head of the queue (up to `limit`), taken off."""
        taken: list[_TrelloJob] = []
        with self._queue.mutex:
            waiting = self._queue.queue
            while waiting and len(taken) < limit and isinstance(waiting[0], _TrelloJob):
                taken.append(waiting.popleft())
        return taken

    def _trello(self, run: list[_TrelloJob]) -> None:
        self._held()
        with self.sync_lock.hold(sorted({job.board.id for job in run})):
            outcomes = self.applier.deliver_many(
                [(job.action, job.board, job.board_id) for job in run],
                queued=[job.seq for job in run],
            )
        if self.metrics is not None:
            for job, outcome in zip(run, outcomes, strict=True):
                self.metrics.delivery(outcome)
                if outcome == "applied":
                    self.metrics.synced("webhook", time.perf_counter() - job.received)
        if "applied" in outcomes:
            self.on_change()

    def _held(self) -> None:
        """Tests only (`HOLD`): wait while the named file exists, so deliveries stay queued."""
        hold = os.environ.get(HOLD)
        while hold and os.path.exists(hold) and not self._stopping.is_set():
            time.sleep(0.05)

    def _figma(self, job: _FigmaJob) -> None:
        with self._seen_lock:  # an event arriving from now on needs a refresh of its own
            self._figma_waiting.discard((job.key, job.event))
        if self.figma is None:
            return
        report = self.figma.refresh(job.key, job.event)
        outcome = "failed" if getattr(report, "mode", "") == "failed" else "applied"
        if self.metrics is not None:
            self.metrics.delivery(outcome, source="figma")
            self.metrics.synced("figma_webhook", time.perf_counter() - job.received)
