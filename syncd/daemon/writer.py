"""The one writer: every store write of `syncd run` runs on one thread, in order.

Owns `Writer`: the thread and its queue. The daemon installs `Writer.call` as the store's write
route (`Store.route_writes`), so every `@writes` method of the `Store`, and every
read-modify-write step handed to `Store.serialised`, runs here; the store itself refuses a write
transaction opened any other way. Nothing runs here but writes: the flags after webhook
changes are evaluated on a thread of their own (`syncd.daemon.debounce`), only recorded here.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from state.store import StoreClosing
from syncd.metrics import Metrics

log = structlog.get_logger("syncd.daemon")

T = TypeVar("T")

# -- the one writer -----------------------------------------------------------------------


@dataclass
class _Job:
    step: Callable[[], Any]
    future: Future[Any]


class Writer:
    """One thread running every store write in submission order (see the module docstring).

    `call` runs a step on the writer and returns its result (inline when already on the writer,
    so steps may nest).
    """

    def __init__(self, *, metrics: Metrics | None = None) -> None:
        self.metrics = metrics
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

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
            job = self._queue.get()
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
