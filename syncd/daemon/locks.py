"""Single-instance locks of `syncd run`: ``flock`` on ``<db>.lock`` (SQLite), an advisory lock
(PostgreSQL), and the signal handlers of the main thread."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

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


class PgInstanceLock:
    """A session-level PostgreSQL advisory lock, held on its own connection for the daemon's
    lifetime: a second `syncd run` on the same database refuses to start."""

    KEY = 0x73796E6364  # "syncd"

    def __init__(self, url: str) -> None:
        self.url = url
        self._connection: Any = None
        self._engine: Any = None

    def acquire(self) -> None:
        from sqlalchemy import create_engine, text
        from sqlalchemy.pool import NullPool

        self._engine = create_engine(self.url, poolclass=NullPool)
        connection = self._engine.connect()
        held = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.KEY})
        if not held.scalar():
            connection.close()
            self._engine.dispose()
            raise SyncFailed("another syncd run is already using this PostgreSQL store")
        connection.commit()
        self._connection = connection

    def release(self) -> None:
        if self._connection is not None:
            self._connection.close()  # closing the session releases the lock
            self._engine.dispose()
            self._connection = None


def instance_lock(url: str) -> InstanceLock | PgInstanceLock | None:
    """The single-instance lock of a store: a lock file (SQLite) or an advisory lock."""
    if url.startswith("postgresql"):
        return PgInstanceLock(url)
    return InstanceLock.for_store(url)


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
