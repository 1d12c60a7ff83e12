"""Coordination of several `syncd run` on one PostgreSQL store, with PostgreSQL's own primitives.

Owns four things, each a thin layer of SQL:

- `xact_lock(connection, name)`: a transaction-level advisory lock taken first thing in a write
  transaction and released at its commit. The store takes one per board in `write_board` (so the
  old/new diff, hence the history rows, is computed by one replica at a time), one for the flags,
  one per Figma file and one for the migrations. A no-op on SQLite, whose writes are already
  serialised by the one writer and ``BEGIN IMMEDIATE``.
- `LeaseTable`: the ``replica`` and ``duty_lease`` rows, on a connection of their own (never the
  mirror's writer: a long write must not delay a renewal). One `LeaseTable.beat` is one short
  transaction: this replica's heartbeat, the renewal of its leases, the live replicas and
  holders, then the duties it takes. Expiry is judged by the database clock (``now()``), so the
  replicas' own clocks never matter.
- `SessionLocks`: named session advisory locks held on a connection of their own, around a
  read-remote-then-write step spanning several transactions (a board's poll, a webhook's
  refetch): the cross-replica counterpart of the daemon's in-process lock.
- `Notifications`: ``LISTEN`` on one channel on a connection of its own, and
  `LeaseTable.notify` (``pg_notify``): how a replica asks the holder of a duty to act now (the
  flags after a webhook it applied, write-back after flags it computed).

Lock names are hashed with ``hashtext`` into a two-key advisory lock whose first key is the
namespace below (write locks and session locks never collide, nor with anyone else's
one-key locks).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

WRITE_NAMESPACE = 0x73790001  # pg_advisory_xact_lock(namespace, hashtext(name)) in a write
SESSION_NAMESPACE = 0x73790002  # pg_advisory_lock(namespace, hashtext(name)) around a step

# Server-side keep-alives on the coordination connections: a replica cut off the network is
# noticed by PostgreSQL within ~10 s and its session locks are freed.
_SESSION_SETTINGS = (
    "SET tcp_keepalives_idle = 5",
    "SET tcp_keepalives_interval = 2",
    "SET tcp_keepalives_count = 3",
)


def is_postgresql(url: str) -> bool:
    return url.startswith("postgresql")


def xact_lock(connection: Connection, name: str) -> None:
    """Wait for the write lock `name` until the end of this transaction (PostgreSQL only)."""
    if connection.dialect.name != "postgresql":
        return
    connection.execute(
        text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:name))"),
        {"namespace": WRITE_NAMESPACE, "name": name},
    )


def _engine(url: str, application_name: str, timeout_seconds: float) -> Engine:
    """An engine of one connection at a time, with bounded connect and network waits."""
    return create_engine(
        url,
        poolclass=NullPool,
        connect_args={
            "application_name": application_name[:63],
            "connect_timeout": max(2, int(timeout_seconds)),
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 2,
            # a request unanswered this long (network cut) fails instead of hanging
            "tcp_user_timeout": int(timeout_seconds * 1000),
        },
    )


# -- leases -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeaseView:
    """What one heartbeat saw: the live replicas (sorted) and the live holder of each duty."""

    members: tuple[str, ...]
    holders: Mapping[str, str]  # duty -> live holder; a duty absent here is free

    def held_by(self, replica: str) -> frozenset[str]:
        return frozenset(duty for duty, holder in self.holders.items() if holder == replica)


_BEAT = text(
    "INSERT INTO replica (id, host, pid, started_at, heartbeat_at, expires_at)"
    " VALUES (:me, :host, :pid, now(), now(), now() + make_interval(secs => :ttl))"
    " ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), expires_at = EXCLUDED.expires_at"
)
_RENEW = text(
    "UPDATE duty_lease SET expires_at = now() + make_interval(secs => :ttl) WHERE holder = :me"
)
_FORGET_DEAD = text("DELETE FROM replica WHERE expires_at < now() - interval '1 hour'")
_MEMBERS = text("SELECT id FROM replica WHERE expires_at > now() ORDER BY id")
_HOLDERS = text(
    "SELECT duty, holder FROM duty_lease WHERE holder IS NOT NULL AND expires_at > now()"
)
_TAKE = text(
    "INSERT INTO duty_lease (duty, holder, acquired_at, expires_at, generation)"
    " VALUES (:duty, :me, now(), now() + make_interval(secs => :ttl), 1)"
    " ON CONFLICT (duty) DO UPDATE SET holder = EXCLUDED.holder, acquired_at = now(),"
    " expires_at = EXCLUDED.expires_at, generation = duty_lease.generation + 1"
    " WHERE duty_lease.holder IS NULL OR duty_lease.expires_at <= now()"
    " RETURNING duty"
)
_GIVE_UP = text(
    "UPDATE duty_lease SET holder = NULL, expires_at = now() WHERE holder = :me AND duty IN :duties"
).bindparams(bindparam("duties", expanding=True))
_GIVE_UP_ALL = text("UPDATE duty_lease SET holder = NULL, expires_at = now() WHERE holder = :me")
_LEAVE = text("DELETE FROM replica WHERE id = :me")
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


class LeaseTable:
    """This replica's view of the ``replica`` and ``duty_lease`` rows (see the module docstring).

    Not thread-safe: its owner (`syncd.daemon.leases.PgLeases`) serialises the calls. A failed
    call drops the connection; the next one reconnects.
    """

    def __init__(
        self,
        url: str,
        *,
        replica: str,
        host: str,
        pid: int,
        ttl_seconds: float,
        application_name: str,
    ) -> None:
        self.replica = replica
        self.host = host
        self.pid = pid
        self.ttl = ttl_seconds
        self._engine = _engine(url, application_name, ttl_seconds)
        self._connection: Connection | None = None

    def _connect(self) -> Connection:
        if self._connection is None:
            connection = self._engine.connect()
            for statement in _SESSION_SETTINGS:
                connection.exec_driver_sql(statement)
            connection.exec_driver_sql(f"SET statement_timeout = {int(self.ttl * 1000)}")
            connection.commit()
            self._connection = connection
        return self._connection

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        connection = self._connect()
        try:
            with connection.begin():
                yield connection
        except BaseException:
            self.drop()
            raise

    def drop(self) -> None:
        """Forget the connection (after a failure, or on close)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.invalidate()
                connection.close()
            except Exception:
                pass

    def beat(
        self, choose: Callable[[LeaseView], Collection[str]]
    ) -> tuple[LeaseView, frozenset[str]]:
        """One heartbeat (one transaction): renew, look, take what `choose` picks from what it
        sees. Returns what was seen and the duties held now (renewed + taken)."""
        me = {"me": self.replica, "ttl": self.ttl}
        with self._transaction() as connection:
            connection.execute(_BEAT, {**me, "host": self.host[:200], "pid": self.pid})
            connection.execute(_RENEW, me)
            connection.execute(_FORGET_DEAD)
            members = tuple(connection.execute(_MEMBERS).scalars())
            holders = {duty: holder for duty, holder in connection.execute(_HOLDERS)}
            view = LeaseView(members, holders)
            taken: set[str] = set()
            for duty in sorted(set(choose(view)) - set(holders)):
                taken.update(connection.execute(_TAKE, {**me, "duty": duty}).scalars())
        return view, view.held_by(self.replica) | taken

    def give_up(self, duties: Collection[str]) -> None:
        """Hand these duties over (the next heartbeat of another replica takes them)."""
        if duties:
            with self._transaction() as connection:
                connection.execute(_GIVE_UP, {"me": self.replica, "duties": sorted(duties)})

    def leave(self) -> None:
        """Give every duty up and leave the live replicas (on stop)."""
        with self._transaction() as connection:
            connection.execute(_GIVE_UP_ALL, {"me": self.replica})
            connection.execute(_LEAVE, {"me": self.replica})

    def notify(self, channel: str, payload: str) -> None:
        """Wake the replicas listening on `channel` (`Notifications`) with `payload`."""
        with self._transaction() as connection:
            connection.execute(_NOTIFY, {"channel": channel, "payload": payload})

    def close(self) -> None:
        self.drop()
        self._engine.dispose()


# -- session locks ------------------------------------------------------------------------


class SessionLocks:
    """Named advisory locks held across several transactions, on a connection of their own.

    `hold(names)` waits for each lock (sorted, so two holders never deadlock) and releases them
    on exit. A lock wait is bounded by ``lock_timeout`` (a failed wait raises; the caller's step
    fails and is caught up later). Thread-safe: one holder at a time per process.
    """

    def __init__(
        self, url: str, *, application_name: str, lock_timeout_seconds: float = 120.0
    ) -> None:
        self._engine = _engine(url, application_name, 30.0)
        self._lock_timeout = lock_timeout_seconds
        self._connection: Connection | None = None
        self._mutex = threading.Lock()

    def _connect(self) -> Connection:
        if self._connection is None:
            connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            for statement in _SESSION_SETTINGS:
                connection.exec_driver_sql(statement)
            connection.exec_driver_sql(f"SET lock_timeout = {int(self._lock_timeout * 1000)}")
            self._connection = connection
        return self._connection

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.invalidate()
                connection.close()
            except Exception:
                pass

    def _call(self, function: str, name: str, *, retry: bool) -> Any:
        """Run one lock function; a session found dead (terminated, cut) when a lock is
        wanted is replaced once: nothing was held on it that this call still needs."""
        fresh = self._connection is None
        connection = self._connect()
        try:
            return connection.execute(
                text(f"SELECT {function}(:namespace, hashtext(:name))"),
                {"namespace": SESSION_NAMESPACE, "name": name},
            ).scalar()
        except DBAPIError as exc:
            self._drop()  # a lost session has lost its locks too
            if retry and not fresh and exc.connection_invalidated:
                return self._call(function, name, retry=False)
            raise
        except Exception:
            self._drop()
            raise

    @contextmanager
    def hold(self, names: Sequence[str]) -> Iterator[None]:
        with self._mutex:
            taken: list[str] = []
            try:
                for name in sorted(set(names)):
                    self._call("pg_advisory_lock", name, retry=not taken)
                    taken.append(name)
                yield
            finally:
                for name in reversed(taken):
                    try:
                        self._call("pg_advisory_unlock", name, retry=False)
                    except Exception:
                        break  # the connection is gone, and its locks with it

    def close(self) -> None:
        with self._mutex:
            self._drop()
        self._engine.dispose()


# -- notifications ------------------------------------------------------------------------


class Notifications:
    """``LISTEN`` on `channel`, on a connection of its own; `wait` gives the payloads that came.
    A lost connection is replaced at the next `wait` (a notification sent meanwhile is lost:
    the listener's regular work catches up)."""

    def __init__(self, url: str, channel: str, *, application_name: str) -> None:
        self.channel = channel
        self._engine = _engine(url, application_name, 30.0)
        self._raw: Any = None

    def _connect(self) -> Any:
        if self._raw is None:
            raw = self._engine.raw_connection()
            connection = raw.driver_connection  # psycopg's own
            connection.autocommit = True
            for statement in _SESSION_SETTINGS:
                connection.execute(statement)
            connection.execute(f'LISTEN "{self.channel}"')
            self._raw = raw
        return self._raw.driver_connection

    def wait(self, timeout: float) -> set[str]:
        """Block up to `timeout` seconds for a notification; the payloads of those that came
        (empty: none)."""
        try:
            connection = self._connect()
            payloads = {n.payload for n in connection.notifies(timeout=timeout, stop_after=1)}
            payloads |= {n.payload for n in connection.notifies(timeout=0)}  # any queued too
            return payloads
        except Exception:
            self.close_connection()
            raise

    def close_connection(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None:
            with suppress(Exception):
                raw.invalidate()

    def close(self) -> None:
        self.close_connection()
        self._engine.dispose()
