"""Duties and who holds them: the `Leases` interface the scheduler asks before doing anything.

A *duty* is work exactly one process may do at a time (a board's polls and reconcile, a Figma
file's sync, the flag computation, the digest, write-back: names in `syncd.daemon.scheduler`).
The scheduler calls `Leases.acquire` with every duty of the deployment at each tick; what it
gets back is what this process does until the next tick.

- `LocalLeases`: one process (SQLite, whose ``flock`` keeps a second `syncd run` off the
  store): every duty, always.
- `PgLeases`: several replicas on one PostgreSQL store. **Lease rows with an expiry renewed by a
  heartbeat** (`state.coordination.LeaseTable`), chosen over session advisory locks because
  (1) a replica cut off the network loses its leases by time alone, on the database clock,
  while a session lock lives until the server notices the dead socket; (2) the replica knows,
  by its own monotonic clock, when its leases may have lapsed, and stops claiming them first
  (no two holders even across a partition); (3) the rows say who holds what
  (``SELECT * FROM duty_lease``), and work through a transaction-pooling proxy.

How `PgLeases` behaves:

- a heartbeat thread, on its own connection, every ``ttl / 4``: renews this replica's row and
  its leases (``ttl`` = half of ``poll_seconds``, between 3 and 30 s) and takes free duties up
  to its fair share (`plan_duties`: each kind of duty, boards first, spread evenly over the
  live replicas, so a replica does not grab everything when others are alive). A dead
  replica's leases expire after ``ttl``; another replica takes them at its next heartbeat and
  does them at once: takeover within ``ttl + ttl / 4`` (≤ 2 × ``poll_seconds``);
- duties over the fair share (a replica joined) are handed over in `acquire`, which the
  scheduler calls between tasks, so a duty is never handed over in the middle of its work;
- the database unreachable (a failed heartbeat, or none succeeded for ``ttl``): every duty is
  given up at once, one log line says so, `problem` makes `/readyz` 503; the heartbeat retries
  with a backoff and, once it succeeds, the replica takes its share again (one log line);
- `release` (on stop) hands every duty over and leaves, so the others take over at once.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from state.coordination import LeaseTable, LeaseView

log = structlog.get_logger("syncd.leases")


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


# -- the fair share (pure) ----------------------------------------------------------------


def duty_kind(duty: str) -> str:
    """``board``, ``figma`` or ``other`` (the single duties: flags, digest, write-back)."""
    kind, colon, _rest = duty.partition(":")
    return kind if colon else "other"


_KIND_ORDER = {"board": 0, "figma": 1, "other": 2}


def fair_shares(duties: Collection[str], members: Sequence[str]) -> dict[str, dict[str, int]]:
    """How many duties of each kind each live replica should hold.

    Per kind (boards first), ``n // R`` each and one more for ``n % R`` replicas, the extra
    ones rotating from kind to kind so the totals stay even too. The shares of a kind add up to
    its number of duties: with every replica at its share, every duty is held.
    """
    ranked = sorted(members)
    count = len(ranked)
    shares: dict[str, dict[str, int]] = {member: {} for member in ranked}
    if not count:
        return shares
    by_kind: dict[str, int] = defaultdict(int)
    for duty in set(duties):
        by_kind[duty_kind(duty)] += 1
    offset = 0
    for kind in sorted(by_kind, key=lambda k: (_KIND_ORDER.get(k, 9), k)):
        base, extra = divmod(by_kind[kind], count)
        for rank, member in enumerate(ranked):
            shares[member][kind] = base + (1 if (rank - offset) % count < extra else 0)
        offset = (offset + extra) % count
    return shares


@dataclass(frozen=True)
class DutyPlan:
    take: frozenset[str]
    give: frozenset[str]


def plan_duties(
    duties: Collection[str],
    view: LeaseView,
    me: str,
    *,
    long_free: Collection[str] = (),
) -> DutyPlan:
    """What this replica should take and hand over, given what one heartbeat saw.

    Take free duties of each kind up to the share; hand over the excess of a kind only when no
    duty of that kind is free and another live replica is under its share (it will take it).
    `long_free` are duties seen free for several heartbeats: taken whatever the share (the safety
    net while the replicas' views of who is alive differ).
    """
    members = sorted(set(view.members) | {me})
    shares = fair_shares(duties, members)
    held: dict[str, dict[str, set[str]]] = {m: defaultdict(set) for m in members}
    for duty, holder in view.holders.items():
        if duty in duties and holder in held:
            held[holder][duty_kind(duty)].add(duty)
    free: dict[str, list[str]] = defaultdict(list)
    for duty in sorted(set(duties)):
        if duty not in view.holders:
            free[duty_kind(duty)].append(duty)
    take: set[str] = set()
    give: set[str] = set()
    for kind in {duty_kind(duty) for duty in duties}:
        mine = held[me][kind]
        share = shares[me].get(kind, 0)
        room = share - len(mine)
        if room > 0:
            take.update(free[kind][:room])
        elif room < 0 and not free[kind]:
            starved = any(
                len(held[other][kind]) < shares[other].get(kind, 0)
                for other in members
                if other != me
            )
            if starved:
                give.update(sorted(mine, reverse=True)[:-room])
    take.update(duty for duty in long_free if duty not in view.holders and duty in duties)
    return DutyPlan(frozenset(take), frozenset(give))


# -- PostgreSQL ---------------------------------------------------------------------------

MIN_TTL_SECONDS = 3.0
MAX_TTL_SECONDS = 30.0
LONG_FREE_BEATS = 3  # a duty free this many heartbeats in a row is taken whatever the share


def lease_seconds(poll_seconds: float) -> float:
    """The lease duration: half the poll interval, between 3 and 30 s (takeover ≤ 1.25 ttl)."""
    return min(MAX_TTL_SECONDS, max(MIN_TTL_SECONDS, poll_seconds / 2))


def new_replica_id() -> str:
    """``host-pid-random``: unique per process start, readable in ``pg_stat_activity``."""
    host = socket.gethostname().split(".")[0][:30] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(2)}"


def application_name(replica: str) -> str:
    """The ``application_name`` of every connection of this replica (``pg_stat_activity``)."""
    return f"syncd {replica}"[:63]


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


class PgLeases:
    """Duties held through lease rows in PostgreSQL (see the module docstring)."""

    def __init__(
        self,
        url: str,
        duties: Collection[str],
        *,
        ttl_seconds: float,
        replica: str | None = None,
        on_change: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        table: LeaseTable | None = None,
    ) -> None:
        self.replica = replica or new_replica_id()
        self.ttl = ttl_seconds
        self.interval = ttl_seconds / 4
        self.duties = frozenset(duties)
        self.on_change = on_change or (lambda: None)
        self.clock = clock
        self.table = table or LeaseTable(
            url,
            replica=self.replica,
            host=socket.gethostname(),
            pid=os.getpid(),
            ttl_seconds=ttl_seconds,
            application_name=application_name(self.replica),
        )
        self._io = threading.Lock()  # the lease connection: one call at a time
        self._state = threading.Lock()
        self._held: frozenset[str] = frozenset()
        self._valid_until = 0.0  # monotonic: the leases may have lapsed after this
        self._lost: str | None = None  # why the database is unreachable (None: fine)
        self._to_give: frozenset[str] = frozenset()
        self._free_beats: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the Leases interface -----------------------------------------------------------

    def acquire(self, duties: Collection[str]) -> frozenset[str]:
        """Hand over the excess (between tasks: nothing of it is running); the duties held."""
        self.duties = frozenset(duties)
        if self._thread is None:  # not started (a test, a one-off pass): beat here
            self.beat()
        with self._state:
            give, self._to_give = self._to_give, frozenset()
        give &= self._held
        if give:
            try:
                with self._io:
                    self.table.give_up(give)
            except Exception as exc:
                log.warning("cannot hand duties over", duties=sorted(give), error=_one_line(exc))
            else:
                with self._state:
                    self._held -= give
                log.info("duties handed over", duties=sorted(give), replica=self.replica)
        return self.held()

    def held(self) -> frozenset[str]:
        with self._state:
            self._check_lapse_locked()
            return self._held

    def release(self) -> None:
        """Stop the heartbeat, hand every duty over and leave the live replicas."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.ttl + 1)
        try:
            with self._io:
                self.table.leave()
        except Exception as exc:  # the leases lapse by themselves
            log.warning("cannot hand duties over on stop", error=_one_line(exc))
        with self._state:
            self._held = frozenset()
        self.table.close()

    # -- replica extras -----------------------------------------------------------------

    def problem(self) -> str | None:
        """Why this replica holds nothing whatever its share (for `/readyz`); None when fine."""
        with self._state:
            self._check_lapse_locked()
            return self._lost

    def notify(self, channel: str, payload: str) -> None:
        """Wake the replicas listening on `channel`; a failure is only logged (the listener's
        own schedule catches up)."""
        try:
            with self._io:
                self.table.notify(channel, payload)
        except Exception as exc:
            log.warning("cannot notify the other replicas", channel=channel, error=_one_line(exc))

    def start(self) -> None:
        if self._thread is None:
            with self._state:
                self._valid_until = max(self._valid_until, self.clock() + self.ttl)
            self._thread = threading.Thread(target=self._loop, name="syncd-leases", daemon=True)
            self._thread.start()

    # -- the heartbeat ------------------------------------------------------------------

    def _loop(self) -> None:
        backoff = max(1.0, self.interval)
        wait = 0.0
        while not self._stop.wait(wait):
            if self.beat():
                wait, backoff = self.interval, max(1.0, self.interval)
            else:
                wait, backoff = backoff, min(backoff * 2, self.ttl)

    def beat(self) -> bool:
        """One heartbeat: renew, look, take the share. False when the database failed."""
        started = self.clock()
        try:
            with self._io:
                view, held = self.table.beat(self._choose)
        except Exception as exc:
            with self._state:
                self._give_up_locked(f"database unreachable: {_one_line(exc)}")
            return False
        with self._state:
            back = self._lost is not None
            before = self._held
            self._lost = None
            self._held = held
            self._valid_until = started + self.ttl * 0.9  # the rows expire at ttl, later
            plan = plan_duties(self.duties, view, self.replica)
            self._to_give = plan.give & held
        if back:
            log.warning("database reachable again: taking duties", replica=self.replica)
        gained = held - before
        if gained:
            log.info("duties taken", duties=sorted(gained), replica=self.replica)
        if held != before:
            self.on_change()
        return True

    def _choose(self, view: LeaseView) -> frozenset[str]:
        """Inside the heartbeat's transaction: which free duties to take."""
        for duty in self.duties:
            if duty in view.holders:
                self._free_beats.pop(duty, None)
            else:
                self._free_beats[duty] = self._free_beats.get(duty, 0) + 1
        long_free = [d for d, beats in self._free_beats.items() if beats > LONG_FREE_BEATS]
        plan = plan_duties(self.duties, view, self.replica, long_free=long_free)
        return plan.take

    def _check_lapse_locked(self) -> None:
        """No heartbeat succeeded for the lease duration (a hung connection): give up."""
        if self._thread is not None and self.clock() > self._valid_until:
            self._give_up_locked(f"no lease renewal for {self.ttl:.0f} s")

    def _give_up_locked(self, why: str) -> None:
        """Hold nothing from now on, and say so once (the caller holds `_state`)."""
        had = self._held
        self._held = frozenset()
        self._to_give = frozenset()
        if self._lost is None:
            self._lost = why
            log.error(
                "lost the database: gave up every duty",
                duties=sorted(had),
                reason=why,
                replica=self.replica,
            )
            if had:
                threading.Thread(target=self.on_change, daemon=True).start()
