"""Group commit: concurrent submissions made durable by one commit, each answered after it.

Owns `GroupCommit`. Each HTTP thread handing over a verified delivery calls `submit` and
blocks; the first waiter finding no commit in progress becomes the *leader*: it takes every
submission waiting (its own included, `max_batch` at most), runs `commit` on them once (one
``INSERT`` and one commit through the store's writer: `syncd.daemon.worker`), hands each its
result and wakes them. Submissions arriving meanwhile wait for the next leader, so under load
one commit serves a whole burst and at rest a delivery costs one commit of its own. A
submission returns only after the commit that holds it succeeded; if that commit raises, every
submission of the group gets the exception (the route answers 503 and Trello retries).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

I = TypeVar("I")  # noqa: E741 - a submitted item
R = TypeVar("R")  # its result

MAX_BATCH = 1000


class _Ticket(Generic[I, R]):
    __slots__ = ("done", "error", "item", "result")

    def __init__(self, item: I) -> None:
        self.item = item
        self.done = False
        self.result: R | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[I, R]):
    """Leader/follower group commit over `commit(items) -> results` (one result per item, in
    order). `commits` counts the commits run (tests, metrics)."""

    def __init__(
        self, commit: Callable[[list[I]], Sequence[R]], *, max_batch: int = MAX_BATCH
    ) -> None:
        self._commit = commit
        self._max_batch = max_batch
        self._waiting: list[_Ticket[I, R]] = []
        self._leading = False
        self._changed = threading.Condition()
        self.commits = 0

    @property
    def waiting(self) -> int:
        """How many submissions wait for a commit (not counting the group being committed)."""
        with self._changed:
            return len(self._waiting)

    def submit(self, item: I) -> R:
        """Block until a commit holding `item` succeeded; its result (or its exception)."""
        ticket: _Ticket[I, R] = _Ticket(item)
        with self._changed:
            self._waiting.append(ticket)
        while True:
            with self._changed:
                while not ticket.done and self._leading:
                    self._changed.wait()
                if ticket.done:
                    break
                self._leading = True  # lead: commit everyone waiting (in arrival order)
                group = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
            self._lead(group)
        if ticket.error is not None:
            raise ticket.error
        return ticket.result  # type: ignore[return-value]

    def _lead(self, group: list[_Ticket[I, R]]) -> None:
        try:
            results = list(self._commit([waiting.item for waiting in group]))
            if len(results) != len(group):
                raise RuntimeError("a group commit must give one result per item")
            for waiting, result in zip(group, results, strict=True):
                waiting.result = result
        except BaseException as exc:  # the whole group failed: each waiter gets the error
            for waiting in group:
                waiting.error = exc
        with self._changed:
            for waiting in group:
                waiting.done = True
            self.commits += 1
            self._leading = False
            self._changed.notify_all()
