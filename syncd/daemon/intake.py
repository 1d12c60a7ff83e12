"""Group commit: concurrent submissions made durable by one commit, each answered after it.

Owns `GroupCommit`. An HTTP request handing over a verified delivery calls `enqueue` (a future
the route awaits, off nothing: the event loop keeps serving) or `submit` (blocking). One
committer thread takes every submission waiting (`max_batch` at most, in arrival order), runs
`commit` on them once (one ``INSERT`` and one commit: `syncd.daemon.worker`), and resolves
their futures; submissions arriving meanwhile wait for the next commit. Under load one commit
serves a whole burst, at rest a delivery costs one commit of its own, and the requests cost
two thread hand-overs per commit rather than per request. A future resolves only after the
commit that holds it succeeded; if that commit raises, every submission of the group gets the
exception (the route answers 503 and Trello retries).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

I = TypeVar("I")  # noqa: E741 - a submitted item
R = TypeVar("R")  # its result

MAX_BATCH = 1000


class GroupCommit(Generic[I, R]):
    """Group commit over `commit(items) -> results` (one result per item, in order), on one
    committer thread started on first use. `commits` counts the commits run (or running)."""

    def __init__(
        self, commit: Callable[[list[I]], Sequence[R]], *, max_batch: int = MAX_BATCH
    ) -> None:
        self._commit = commit
        self._max_batch = max_batch
        self._waiting: list[tuple[I, Future[R]]] = []
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self.commits = 0

    @property
    def waiting(self) -> int:
        """How many submissions wait for a commit (not counting the group being committed)."""
        with self._changed:
            return len(self._waiting)

    def enqueue(self, item: I) -> Future[R]:
        """Hand `item` to the next commit; its future resolves once that commit succeeded."""
        future: Future[R] = Future()
        with self._changed:
            self._waiting.append((item, future))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="syncd-intake", daemon=True)
                self._thread.start()
            self._changed.notify()
        return future

    def submit(self, item: I) -> R:
        """Block until a commit holding `item` succeeded; its result (or its exception)."""
        return self.enqueue(item).result()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._waiting:
                    self._changed.wait()
                group = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                self.commits += 1
            try:
                results = list(self._commit([item for item, _ in group]))
                if len(results) != len(group):
                    raise RuntimeError("a group commit must give one result per item")
            except BaseException as exc:  # the whole group failed: each submission gets it
                for _, future in group:
                    future.set_exception(exc)
            else:
                for (_, future), result in zip(group, results, strict=True):
                    future.set_result(result)
