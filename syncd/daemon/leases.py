"""Duties and who holds them: the `Leases` interface the scheduler asks before doing anything.

A *duty* is work exactly one process may do at a time (a board's polls and reconcile, a Figma
file's sync, the flag computation, the digest, write-back: names in `syncd.daemon.scheduler`).
The scheduler calls `Leases.acquire` with every duty of the deployment at each tick; what it
gets back is what this process does until the next tick.

`LocalLeases` is the one-process implementation: `syncd run` already holds the store alone
(``flock`` on SQLite, a session advisory lock on PostgreSQL, `syncd.daemon.locks`), so it holds
every duty. Several replicas on PostgreSQL (advisory locks or lease rows, taken and renewed in
`acquire`, given up in `release` or when the connection is lost) implement the same interface.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from typing import Protocol


class Leases(Protocol):
    """Who holds which duty (see the module docstring)."""

    def acquire(self, duties: Collection[str]) -> frozenset[str]:
        """Try to hold each of `duties` (renewing those held); the duties held now."""
        ...

    def held(self) -> frozenset[str]:
        """The duties held at the last `acquire` (for `/readyz` and `/metrics`)."""
        ...

    def release(self) -> None:
        """Give every duty up (on stop)."""
        ...


class LocalLeases:
    """Every duty, always: the process that owns the store does all the work."""

    def __init__(self) -> None:
        self._held: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def acquire(self, duties: Collection[str]) -> frozenset[str]:
        with self._lock:
            self._held = frozenset(duties)
            return self._held

    def held(self) -> frozenset[str]:
        with self._lock:
            return self._held

    def release(self) -> None:
        with self._lock:
            self._held = frozenset()
