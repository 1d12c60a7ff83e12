"""The one writer: every store write of `syncd run` runs on one thread, in order.

Owns `Writer`: the thread, its queue, and the idle hook that recomputes flags after a burst of
webhook changes. The daemon installs `Writer.call` as the store's write route
(`Store.route_writes`), so every `@writes` method of the `Store`, and every read-modify-write
step handed to `Store.serialised`, runs here; the store itself refuses a write transaction
opened any other way.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from state.store import StoreClosing
from syncd.metrics import Metrics

log = structlog.get_logger("syncd.daemon")

T = TypeVar("T")

RECOMPUTE_IDLE_SECONDS = 0.05  # the writer recomputes flags after this long without work
RECOMPUTE_MAX_DELAY = 2.0  # … or at the latest this long after the first pending change

# -- the one writer -----------------------------------------------------------------------


@dataclass
class _Job:
    step: Callable[[], Any]
    future: Future[Any]


def _nothing() -> None:
    return None


class Writer:
    """One thread running every store write in submission order (see the module docstring).

    `call` runs a step on the writer and returns its result (inline when already on the writer,
    so steps may nest). `mark_dirty` asks for `on_idle` (the flag recomputation) once the queue
    has been quiet for a moment.
    """

    def __init__(
        self,
        *,
        on_idle: Callable[[], None] | None = None,
        idle_seconds: float = RECOMPUTE_IDLE_SECONDS,
        max_delay: float = RECOMPUTE_MAX_DELAY,
        metrics: Metrics | None = None,
    ) -> None:
        self.on_idle = on_idle
        self.idle_seconds = idle_seconds
        self.max_delay = max_delay
        self.metrics = metrics
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._dirty_since: float | None = None
        self._dirty_lock = threading.Lock()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="syncd-writer", daemon=True)
            self._thread.start()

    @property
    def on_writer(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, step: Callable[[], T]) -> Future[T]:
        if self._closed.is_set() or self._thread is None:
            raise StoreClosing("the store writer is stopped (syncd is shutting down)")
        future: Future[T] = Future()
        self._queue.put(_Job(step, future))
        if self.metrics is not None:
            self.metrics.writer_queue.set(self._queue.qsize())
        return future

    def call(self, step: Callable[[], T]) -> T:
        if self.on_writer:
            return step()
        return self.submit(step).result()

    def mark_dirty(self) -> None:
        with self._dirty_lock:
            if self._dirty_since is not None:
                return
            self._dirty_since = time.monotonic()
        if not self._closed.is_set():
            self._queue.put(_Job(_nothing, Future()))  # wake a writer blocked without timeout

    def stop(self, timeout: float = 5.0) -> None:
        """Refuse new work, finish the step in flight, fail the ones still queued."""
        self._closed.set()
        self._queue.put(None)
        if self._thread is not None and not self.on_writer:
            self._thread.join(timeout)
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None and job.future.set_running_or_notify_cancel():
                job.future.set_exception(StoreClosing("syncd is shutting down"))

    def _run(self) -> None:
        while True:
            try:
                job = self._queue.get(timeout=self._wait())
            except queue.Empty:
                self._maybe_idle(force=False)
                continue
            if job is None:
                return
            if self._closed.is_set():
                self._queue.put(job)  # failed by stop()
                return
            if job.future.set_running_or_notify_cancel():
                try:
                    job.future.set_result(job.step())
                except BaseException as exc:
                    job.future.set_exception(exc)
            if self.metrics is not None:
                self.metrics.writer_queue.set(self._queue.qsize())
            self._maybe_idle(force=True)

    def _wait(self) -> float | None:
        with self._dirty_lock:
            return None if self._dirty_since is None else self.idle_seconds

    def _maybe_idle(self, *, force: bool) -> None:
        """Run `on_idle` when dirty and quiet (or after `max_delay` whatever the load)."""
        with self._dirty_lock:
            since = self._dirty_since
            if since is None or self.on_idle is None or self._closed.is_set():
                return
            overdue = time.monotonic() - since >= self.max_delay
            if force and not overdue:
                return  # right after a job: wait for a quiet moment (the timeout path)
            self._dirty_since = None
        try:
            self.on_idle()
        except Exception as exc:
            log.error("flag recomputation failed", error=str(exc)[:300])
