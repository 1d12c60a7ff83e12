"""The webhook worker: one thread applying accepted deliveries in arrival order.

Owns `WebhookWorker` (the web layer's `DeliveryIntake`: intake from the HTTP threads, in-process
replay memory, the apply loop). Each delivery is applied holding its board's lock
(`syncd.daemon.locks.BoardLocks`, shared with the sync and, on PostgreSQL, with the other
replicas), so a snapshot read before a webhook change is never written over it. The Trello
deliveries waiting in the queue are handed to the applier together (`MAX_RUN` at most, their
boards' locks held), which refetches their cards in shared requests and writes them at once
(`TrelloApplier.deliver_many`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from syncd.config import BoardConfig
from syncd.daemon.locks import BoardLocks
from syncd.trello.apply import TrelloApplier
from syncd.trello.schema import TrelloAction
from syncd.web.context import IntakeClosed

log = structlog.get_logger("syncd.webhooks")

MAX_RUN = 500  # Trello deliveries applied together, at most (one hold of their boards' locks)


@dataclass
class _TrelloJob:
    action: TrelloAction
    board: BoardConfig
    board_id: str
    received: float


@dataclass
class _FigmaJob:
    key: str
    event: str
    received: float


class WebhookWorker:
    """One thread applying accepted deliveries in arrival order (so in order per board).

    `offer_trello` answers at once: a delivery whose action id is already queued or applied in
    this process is a replay; the store's ``webhook_delivery`` row decides for the others.
    `offer_figma` queues a file's refresh unless the same one is already waiting (Figma's
    refreshes wait for its rate limit: a burst must not hold the Trello deliveries back).
    `sync_lock` (the board's lock) is held around each Trello delivery, and by the scheduler
    around each sync, so a snapshot fetched before a webhook change can never be written over
    it. The replay memory is per process; across replicas the store's ``webhook_delivery`` row
    (recorded with ``ON CONFLICT DO NOTHING``) decides which replica applies an action.
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
    ) -> None:
        self.applier = applier
        self.metrics = metrics
        self.figma = figma
        self.sync_lock = sync_lock or BoardLocks()
        self.on_change = on_change or (lambda: None)
        self._remember = remember
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._seen_lock = threading.Lock()
        self._figma_waiting: set[tuple[str, str]] = set()  # (file key, event) refreshes queued
        self._queue: queue.Queue[_TrelloJob | _FigmaJob | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- intake (HTTP threads) ----------------------------------------------------------

    def offer_trello(self, action: TrelloAction, board: BoardConfig, board_id: str) -> bool:
        """Queue a checked action; False when it is a replay of one seen in this process."""
        if self._stopping.is_set():
            raise IntakeClosed("the daemon is stopping")
        action_id = action.id
        with self._seen_lock:
            if action_id in self._seen:
                return False
            self._seen[action_id] = None
            while len(self._seen) > self._remember:
                self._seen.popitem(last=False)
        self._put(_TrelloJob(action, board, board_id, time.perf_counter()))
        return True

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
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="syncd-webhooks", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> int:
        """Stop taking deliveries, finish the one in hand; returns how many were dropped."""
        self._stopping.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
        dropped = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            dropped += item is not None
        if dropped:
            log.info("webhook deliveries left to the next poll", count=dropped)
        return dropped

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
        while True:
            job = self._queue.get()
            if job is None or self._stopping.is_set():
                if job is not None:
                    self._queue.put(job)  # counted as dropped by stop()
                return
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
                with self._idle:
                    self._pending -= len(jobs)
                    self._idle.notify_all()
                self._gauge()

    def _queued_trello(self, limit: int) -> list[_TrelloJob]:
        """The Trello deliveries waiting at the head of the queue (up to `limit`), taken off."""
        taken: list[_TrelloJob] = []
        with self._queue.mutex:
            waiting = self._queue.queue
            while waiting and len(taken) < limit and isinstance(waiting[0], _TrelloJob):
                taken.append(waiting.popleft())
        return taken

    def _trello(self, run: list[_TrelloJob]) -> None:
        with self.sync_lock.hold(sorted({job.board.id for job in run})):
            outcomes = self.applier.deliver_many(
                [(job.action, job.board, job.board_id) for job in run]
            )
        if self.metrics is not None:
            for job, outcome in zip(run, outcomes, strict=True):
                self.metrics.delivery(outcome)
                if outcome == "applied":
                    self.metrics.synced("webhook", time.perf_counter() - job.received)
        if "applied" in outcomes:
            self.on_change()

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
