"""The locks of `syncd run`: the single-instance ``flock`` on ``<db>.lock`` (SQLite only: on
PostgreSQL replicas share the store), `BoardLocks` (a board's sync and a webhook delivery, in
the process and across replicas, with `FairLock`), and the signal handlers of the main thread."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import FrameType

from state.coordination import SessionLocks
from syncd.errors import SyncFailed

# -- single instance ----------------------------------------------------------------------


class InstanceLock:
    """An exclusive ``flock`` on ``<sqlite file>.lock``, held for the daemon's lifetime."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @classmethod
    def for_store(cls, url: str) -> InstanceLock | None:
        """The lock of a SQLite store; None for PostgreSQL or an in-memory database."""
        if not url.startswith("sqlite"):
            return None
        from sqlalchemy.engine import make_url

        database = make_url(url).database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return cls(Path(database + ".lock"))

    def acquire(self) -> None:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SyncFailed(
                f"another syncd run is already using this store (lock {self.path} is held)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def instance_lock(url: str) -> InstanceLock | None:
    """The single-instance lock of a SQLite store; None for PostgreSQL, where any number of
    replicas share the store (duties through `syncd.daemon.leases.PgLeases`)."""
    return InstanceLock.for_store(url)


# -- the board lock -----------------------------------------------------------------------


class BoardLocks:
    """The lock a board's sync and a webhook delivery share, so that a snapshot read before a
    webhook change is never written over it.

    In the process, a first-come first-served `FairLock` (a waiting sync is never starved by a
    webhook stream). Across replicas (PostgreSQL), also one session advisory lock per board
    (`state.coordination.SessionLocks`), taken after it, in board order: a delivery applied by
    one replica waits for the poll of that board running on another.
    """

    def __init__(self, fair: FairLock | None = None, session: SessionLocks | None = None):
        self.fair = fair or FairLock()
        self.session = session

    @contextlib.contextmanager
    def hold(self, board_refs: Iterable[str]) -> Iterator[None]:
        with self.fair:
            if self.session is None:
                yield
                return
            with self.session.hold([f"board:{ref}" for ref in board_refs]):
                yield

    def close(self) -> None:
        if self.session is not None:
            self.session.close()


class FairLock:
    """A first-come first-served lock: a waiting sync is never starved by a webhook stream."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    def __enter__(self) -> FairLock:
        with self._cond:
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._serving:
                self._cond.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._serving += 1
            self._cond.notify_all()


@contextlib.contextmanager
def signals_handled(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
