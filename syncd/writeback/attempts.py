"""Who is posting a write-back comment, and whether that attempt can still be in flight.

Before each request, the comment's row records the attempt of this process
(``host|pid namespace|pid|nonce``) and its time. A row attempted and never finished is *in
doubt*: the comment may or may not be on the card. It may be checked (by reading the card's
comments) and posted again only once no request of that attempt can still land:

- the attempt is this process's own: a process runs one write-back round at a time (rounds of
  one identity share a lock, `syncd.writeback.service`), so nothing of it is in flight any more;
- the attempt is from this machine and that process is gone (a crash, ``kill -9``, a container
  restarted with the same pid: the nonce differs);
- otherwise (another machine, or a pid still alive), once `grace` has passed since the attempt:
  longer than one request can last (a comment is one attempt, bounded by the timeout).
"""

from __future__ import annotations

import functools
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta


def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "-"


@dataclass(frozen=True)
class ProcessIdentity:
    host: str
    namespace: str
    pid: int
    nonce: str

    @classmethod
    def current(cls) -> ProcessIdentity:
        """This process's identity: one per process (a forked child gets its own)."""
        return _identity_of(os.getpid())

    def __str__(self) -> str:
        return f"{self.host}|{self.namespace}|{self.pid}|{self.nonce}"

    @classmethod
    def parse(cls, text: str) -> ProcessIdentity | None:
        parts = text.rsplit("|", 3)
        if len(parts) != 4 or not parts[2].isdigit():
            return None
        return cls(parts[0], parts[1], int(parts[2]), parts[3])

    def holds(self, attempt: str) -> bool:
        return attempt == str(self)

    def sees_gone(self, attempt: str) -> bool:
        """True when `attempt` belongs to a process of this machine that no longer runs."""
        other = ProcessIdentity.parse(attempt)
        if other is None or (other.host, other.namespace) != (self.host, self.namespace):
            return False
        if other.pid == self.pid:
            return other.nonce != self.nonce  # an earlier process that had our pid
        try:
            os.kill(other.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False  # alive, or the pid was reused: wait for the grace period


@functools.cache
def _identity_of(pid: int) -> ProcessIdentity:
    return ProcessIdentity(socket.gethostname(), _pid_namespace(), pid, secrets.token_hex(4))


def settled(
    identity: ProcessIdentity,
    attempt: str | None,
    attempted_at: datetime | None,
    now: datetime,
    grace: timedelta,
) -> bool:
    """Whether an in-doubt attempt can no longer land (see the module docstring)."""
    if attempt is None:
        return True
    if identity.holds(attempt) or identity.sees_gone(attempt):
        return True
    return attempted_at is None or now - attempted_at >= grace
