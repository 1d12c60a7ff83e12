"""The daemon's scheduler: named duties, done on time, by the process that holds them.

**Duties** are named work exactly one process may do at a time: ``board:<ref>`` (that board's
polls and full reconcile), ``figma:<key>`` (that file's sync), ``flags`` (the flag
computation), ``writeback`` (write-back's comments, with ``writeback.enabled``), ``digest``
(the weekly digest, when ``SYNCD_DIGEST_URLS`` is set). Who holds what is the `Leases`' answer
(`syncd.daemon.leases`): locally, every duty.

**Tasks** are what runs on time: the poll pass every ``poll_seconds``, the full reconcile every
``full_sync_hours``, the digest check every minute (more tasks are added the same way).
A task's `next_after` gives its next time from the end of its last run (`every(seconds)` for a
fixed interval); its `run` gets the duties held at that moment and does only those
(`pass_scope` turns them into the sync pass's scope).

Each tick (`Scheduler.tick`, at most a second apart in the scheduler's thread, or at once when
`wake` is called: the leases changed):

1. ``leases.acquire(every duty)`` gives the duties held now;
2. duties newly held are done at once: each task marked `on_gain` runs for them alone (at start
   every duty is new: that is the first pass; a duty taken over from another replica is polled
   at once, not a whole interval later);
3. each task whose time has come runs with the duties held.

A task that raises is logged and runs again at its next time: the scheduler never dies. The
clock is injected (the daemon's), so tests drive `tick` without sleeping.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from state.store import StoreClosing
from syncd.config import Settings, secret_text
from syncd.daemon.leases import Leases
from syncd.sync_pass import PassScope

log = structlog.get_logger("syncd.scheduler")

FLAGS = "flags"
DIGEST = "digest"  # slot: the weekly digest (one replica sends it)
WRITEBACK = "writeback"  # write-back comments (one replica posts them)

MAX_TICK_SECONDS = 1.0
MIN_TICK_SECONDS = 0.05


def board_duty(ref: str) -> str:
    return f"board:{ref}"


def figma_duty(key: str) -> str:
    return f"figma:{key}"


def duties_of(settings: Settings) -> list[str]:
    """Every duty of this deployment: each board, each Figma file, the flags, write-back (when
    enabled) and the weekly digest (when it has somewhere to go, ``SYNCD_DIGEST_URLS``)."""
    duties = [board_duty(board.id) for board in settings.trello.boards]
    duties += [figma_duty(key) for key in settings.figma.files]
    duties.append(FLAGS)
    if settings.writeback.enabled:
        duties.append(WRITEBACK)
    if secret_text(settings.secrets.digest_urls):
        duties.append(DIGEST)
    return duties


def pass_scope(settings: Settings, held: Collection[str]) -> PassScope:
    """The sync pass's scope for these held duties (all of them: everything)."""
    return PassScope(
        boards=[board for board in settings.trello.boards if board_duty(board.id) in held],
        figma_files=[key for key in settings.figma.files if figma_duty(key) in held],
        flags=FLAGS in held,
        writeback=WRITEBACK in held,
    )


def every(seconds: float) -> Callable[[datetime], datetime]:
    """A fixed interval, counted from the end of the last run."""
    step = timedelta(seconds=seconds)
    return lambda moment: moment + step


@dataclass
class Task:
    """Something the scheduler runs on time (see the module docstring)."""

    name: str
    next_after: Callable[[datetime], datetime]
    run: Callable[[frozenset[str]], object]
    on_gain: bool = False  # also run at once for duties newly held


class Scheduler:
    """Runs `tasks` on time over the duties `leases` grants (see the module docstring)."""

    def __init__(
        self,
        tasks: Sequence[Task],
        *,
        duties: Collection[str],
        leases: Leases,
        clock: Callable[[], datetime],
        stop: threading.Event | None = None,
        on_held: Callable[[frozenset[str]], None] | None = None,
    ) -> None:
        self.tasks = list(tasks)
        self.duties = list(duties)
        self.leases = leases
        self.clock = clock
        self.stop_event = stop or threading.Event()
        self.on_held = on_held or (lambda _held: None)
        self._held: frozenset[str] = frozenset()
        self._due: dict[str, datetime] = {}
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="syncd-scheduler", daemon=True)
            self._thread.start()

    def join(self, timeout: float) -> None:
        """Wait for the loop to end (after `stop_event` is set)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        """Tick now (the duties held changed, or the daemon is stopping)."""
        self._wake.set()

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            wait = self.tick()
            self._wake.wait(min(MAX_TICK_SECONDS, max(MIN_TICK_SECONDS, wait)))
            self._wake.clear()

    # -- one tick -----------------------------------------------------------------------

    def tick(self) -> float:
        """Acquire the duties, do the gained ones, run what is due; seconds to the next."""
        now = self.clock()
        if not self._due:  # the first tick: every interval starts now
            self._due = {task.name: task.next_after(now) for task in self.tasks}
        try:
            held = self.leases.acquire(self.duties)
        except Exception as exc:  # e.g. the database is unreachable: hold nothing
            log.error("cannot acquire duties", error=_one_line(exc))
            held = frozenset()
        previous, self._held = self._held, held
        if held != previous:
            self.on_held(held)
        gained = held - previous
        for task in self.tasks:
            if self.stop_event.is_set():
                break
            if task.on_gain and gained:
                self._run(task, gained)
        for task in sorted(self.tasks, key=lambda t: self._due[t.name]):
            if self.stop_event.is_set():
                break
            if self._due[task.name] <= self.clock():
                self._run(task, self._held)
                self._due[task.name] = task.next_after(self.clock())
        left = min(self._due.values(), default=None)
        if left is None:
            return MAX_TICK_SECONDS
        return (left - self.clock()).total_seconds()

    @property
    def held(self) -> frozenset[str]:
        return self._held

    def _run(self, task: Task, held: frozenset[str]) -> None:
        try:
            task.run(held)
        except StoreClosing:  # stopped mid-task: nothing failed
            log.info("scheduled task interrupted: syncd is stopping", task=task.name)
        except Exception as exc:  # the scheduler must survive anything
            log.error("scheduled task failed", task=task.name, error=_one_line(exc))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__
