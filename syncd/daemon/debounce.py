"""A step run once after a burst of changes, on a thread of its own (the flags after webhooks).

Owns `Debounced`: `mark_dirty` (cheap, from any thread) asks for the step; its thread runs it
once no change has been marked for `idle_seconds`, or at the latest `max_delay` after the first
change still waiting, whatever the load. A burst of webhook runs is one recomputation of the
flags. The step runs on this thread, not on the writer: an evaluation of the whole mirror never
sits in front of a delivery's write (only its recording goes through the writer, as one short
step). A failing step is logged; the next change asks again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

log = structlog.get_logger("syncd.daemon")

IDLE_SECONDS = 0.5  # the step runs after this long without a new change …
MAX_DELAY = 2.0  # … or at the latest this long after the first change waiting


class Debounced:
    """`step` run once per burst of `mark_dirty` calls (see the module docstring)."""

    def __init__(
        self,
        step: Callable[[], None],
        *,
        name: str,
        idle_seconds: float = IDLE_SECONDS,
        max_delay: float = MAX_DELAY,
    ) -> None:
        self.step = step
        self.name = name
        self.idle_seconds = idle_seconds
        self.max_delay = max_delay
        self._changed = threading.Condition()
        self._first: float | None = None  # when the oldest change still waiting was marked
        self._last = 0.0  # when the newest one was
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def mark_dirty(self) -> None:
        """A change the step should see: it runs once the changes go quiet."""
        with self._changed:
            now = time.monotonic()
            if self._first is None:
                self._first = now
            self._last = now
            self._changed.notify()

    def stop(self, timeout: float = 5.0) -> None:
        """Run no more steps; wait (bounded) for the one in flight."""
        with self._changed:
            self._stopping = True
            self._changed.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._changed:
                while True:
                    if self._stopping:
                        return
                    if self._first is None:
                        self._changed.wait()
                        continue
                    now = time.monotonic()
                    due = min(self._last + self.idle_seconds, self._first + self.max_delay)
                    if now >= due:
                        self._first = None
                        break
                    self._changed.wait(due - now)
            try:
                self.step()
            except Exception as exc:  # the next change asks again
                log.error(
                    "step after changes failed",
                    step=self.name,
                    error=" ".join(str(exc).split())[:300],
                )
