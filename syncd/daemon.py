"""`syncd run`: one process serving HTTP, running the scheduled syncs and applying webhooks.

Owns the daemon's threads and their life cycle:

- **the writer** (`Writer`): every store write (mirror batches, webhook applies, flags, Figma
  rows, delivery records) runs on this one thread, in order. `SerialStore` is a `Store` whose
  write methods hand themselves to the writer, so every engine (the mirror, the Figma mirror,
  the flag recomputation) writes through it without knowing. Flags are recomputed after each
  sync pass, and after webhook changes once the writer is idle (a burst is one recomputation);
- **the webhook worker** (`syncd.webhooks.WebhookWorker`): applies accepted deliveries in order;
- **the scheduler** (`schedule`): the first pass at start, then the idle poll every
  ``poll_seconds`` (with the Figma sync) and the full reconcile every ``full_sync_hours``;
- **the HTTP server** (uvicorn, in a thread, serving `syncd.server.create_app`).

The main thread waits for SIGTERM/SIGINT, then stops taking work, lets the transaction in
flight finish and returns 0 within a few seconds. With SQLite, an ``fcntl.flock`` on
``<db>.lock`` keeps a second `syncd run` off the same store (it exits 1 with one line); with
PostgreSQL, a session advisory lock does the same.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import schedule
import structlog

from state.store import BoardBatch, Store, StoreError, WriteResult, parse_iso, utc_iso
from syncd.config import Settings
from syncd.errors import SyncFailed
from syncd.facts import rules_from_config
from syncd.flags import recompute
from syncd.metrics import Metrics
from syncd.runtime import Runtime, build_runtime
from syncd.webhooks import TRELLO_PATH, BoardIndex, FairLock, TrelloApplier, WebhookWorker

log = structlog.get_logger("syncd.daemon")

T = TypeVar("T")

RECOMPUTE_IDLE_SECONDS = 0.05  # the writer recomputes flags after this long without work
RECOMPUTE_MAX_DELAY = 2.0  # … or at the latest this long after the first pending change
STOP_SECONDS = 5.0


# -- the one writer -----------------------------------------------------------------------


@dataclass
class _Job:
    step: Callable[[], Any]
    future: Future[Any]


def _nothing() -> None:
    return None


class Writer:
    """One thread running every store write in submission order (see the module docstring).

    `call` runs a step on the writer and returns its result (inline when already on the writer,
    so steps may nest). `mark_dirty` asks for `on_idle` (the flag recomputation) once the queue
    has been quiet for a moment.
    """

    def __init__(
        self,
        *,
        on_idle: Callable[[], None] | None = None,
        idle_seconds: float = RECOMPUTE_IDLE_SECONDS,
        max_delay: float = RECOMPUTE_MAX_DELAY,
        metrics: Metrics | None = None,
    ) -> None:
        self.on_idle = on_idle
        self.idle_seconds = idle_seconds
        self.max_delay = max_delay
        self.metrics = metrics
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._dirty_since: float | None = None
        self._dirty_lock = threading.Lock()
        self.jobs = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="syncd-writer", daemon=True)
            self._thread.start()

    @property
    def on_writer(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, step: Callable[[], T]) -> Future[T]:
        if self._closed.is_set() or self._thread is None:
            raise StoreError("the store writer is stopped (syncd is shutting down)")
        future: Future[T] = Future()
        self._queue.put(_Job(step, future))
        if self.metrics is not None:
            self.metrics.writer_queue.set(self._queue.qsize())
        return future

    def call(self, step: Callable[[], T]) -> T:
        if self.on_writer:
            return step()
        return self.submit(step).result()

    def mark_dirty(self) -> None:
        with self._dirty_lock:
            if self._dirty_since is not None:
                return
            self._dirty_since = time.monotonic()
        if not self._closed.is_set():
            self._queue.put(_Job(_nothing, Future()))  # wake a writer blocked without timeout

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Refuse new work, finish the step in flight, fail the ones still queued."""
        self._closed.set()
        self._queue.put(None)
        if self._thread is not None and not self.on_writer:
            self._thread.join(timeout)
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None and job.future.set_running_or_notify_cancel():
                job.future.set_exception(StoreError("syncd is shutting down"))

    def _run(self) -> None:
        while True:
            try:
                job = self._queue.get(timeout=self._wait())
            except queue.Empty:
                self._maybe_idle(force=False)
                continue
            if job is None:
                return
            if self._closed.is_set():
                self._queue.put(job)  # failed by stop()
                return
            if job.future.set_running_or_notify_cancel():
                try:
                    job.future.set_result(job.step())
                except BaseException as exc:
                    job.future.set_exception(exc)
            self.jobs += 1
            if self.metrics is not None:
                self.metrics.writer_queue.set(self._queue.qsize())
            self._maybe_idle(force=True)

    def _wait(self) -> float | None:
        with self._dirty_lock:
            return None if self._dirty_since is None else self.idle_seconds

    def _maybe_idle(self, *, force: bool) -> None:
        """Run `on_idle` when dirty and quiet (or after `max_delay` whatever the load)."""
        with self._dirty_lock:
            since = self._dirty_since
            if since is None or self.on_idle is None or self._closed.is_set():
                return
            overdue = time.monotonic() - since >= self.max_delay
            if force and not overdue:
                return  # right after a job: wait for a quiet moment (the timeout path)
            self._dirty_since = None
        try:
            self.on_idle()
        except Exception as exc:
            log.error("flag recomputation failed", error=str(exc)[:300])


class SerialStore(Store):
    """A `Store` sharing another's engines whose every write runs on the writer thread."""

    def __init__(self, inner: Store, writer: Writer) -> None:  # no super().__init__: shares
        self.__dict__.update(inner.__dict__)
        self.inner = inner
        self.writer = writer

    def write_board(self, batch: BoardBatch) -> WriteResult:
        return self.writer.call(lambda: self.inner.write_board(batch))

    def record_error(self, board_ref: str, message: str, at: str) -> None:
        self.writer.call(lambda: self.inner.record_error(board_ref, message, at))

    def record_evaluation(self, *args: Any, **kwargs: Any) -> tuple[int, int]:
        return self.writer.call(lambda: self.inner.record_evaluation(*args, **kwargs))

    def record_delivery(self, action_id: str, board_id: str, at: str) -> bool:
        return self.writer.call(lambda: self.inner.record_delivery(action_id, board_id, at))

    def mark_delivery(self, action_id: str, outcome: str, at: str) -> None:
        self.writer.call(lambda: self.inner.mark_delivery(action_id, outcome, at))

    def write_figma_file(self, *args: Any, **kwargs: Any) -> None:
        self.writer.call(lambda: self.inner.write_figma_file(*args, **kwargs))

    def update_figma_file(self, key: str, **values: Any) -> None:
        self.writer.call(lambda: self.inner.update_figma_file(key, **values))

    def insert_actions(self, rows: Any) -> int:
        return self.writer.call(lambda: self.inner.insert_actions(rows))

    def upgrade(self) -> None:
        self.writer.call(self.inner.upgrade)


# -- the daemon ---------------------------------------------------------------------------


class Daemon:
    """Everything `syncd run` runs, without the HTTP server and the signals (tests use it)."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        clock: Callable[[], datetime] | None = None,
        policy: Any = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self.metrics = Metrics()
        self.writer = Writer(on_idle=self.recompute_flags, metrics=self.metrics)
        self.inner_store = store or Store(settings.store.url)
        self.store = SerialStore(self.inner_store, self.writer)
        self.runtime: Runtime = build_runtime(
            settings,
            store=self.store,
            observer=self.metrics.observe_request,
            policy=policy,
            write=self._write_mirror_batch,
            clock=self.clock,
        )
        self.rules = rules_from_config(settings.governance)
        self.boards = BoardIndex(settings.trello.boards, self.store)
        self.sync_lock = FairLock()
        self.applier = TrelloApplier(
            store=self.store,
            trello=self.runtime.trello,
            mirror=self.runtime.mirror,
            clock=self.clock,
            run_write=self.writer.call,
        )
        self.worker = WebhookWorker(
            self.applier,
            metrics=self.metrics,
            figma=self.runtime.figma,
            sync_lock=self.sync_lock,
            on_change=self.writer.mark_dirty,
        )
        secrets = settings.secrets
        self.callback_url = settings.server.public_url + TRELLO_PATH
        self.trello_secret = _secret(secrets.trello_api_secret)
        self.figma_passcode = _secret(secrets.figma_webhook_passcode)
        self.admin_token = _secret(secrets.admin_token)
        self.last_errors: dict[str, str] = {}
        self._stop = threading.Event()
        self._scheduler: threading.Thread | None = None
        self.passes = 0

    def _write_mirror_batch(self, batch: BoardBatch) -> WriteResult:
        """The Mirror's write hook: through the writer, then remembered by the applier."""
        result = self.store.write_board(batch)
        self.applier.note_fetched(batch)
        return result

    # -- life cycle ---------------------------------------------------------------------

    def start_workers(self) -> None:
        self.writer.start()
        self.worker.start()

    def start_scheduler(self) -> None:
        if self._scheduler is None:
            self._scheduler = threading.Thread(
                target=self._schedule_loop, name="syncd-scheduler", daemon=True
            )
            self._scheduler.start()

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Stop taking work, finish what is in flight (bounded by `timeout`)."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        self.worker.stop(max(0.5, deadline - time.monotonic()))
        self.writer.stop(max(0.5, deadline - time.monotonic()))
        if self._scheduler is not None:
            self._scheduler.join(max(0.1, deadline - time.monotonic()))
        self.inner_store.close()

    # -- syncs --------------------------------------------------------------------------

    def _schedule_loop(self) -> None:
        scheduled = schedule.Scheduler()
        poll = self.settings.schedule.poll_seconds
        full = max(60, int(self.settings.schedule.full_sync_hours * 3600))
        scheduled.every(poll).seconds.do(self.sync_pass, full=False)
        scheduled.every(full).seconds.do(self.sync_pass, full=True)
        self.sync_pass(full=False)
        while not self._stop.is_set():
            scheduled.run_pending()
            idle = scheduled.idle_seconds
            self._stop.wait(min(1.0, max(0.05, idle if idle is not None else 1.0)))

    def sync_pass(self, *, full: bool = False) -> None:
        """One pass (every board, then Figma, then flags); never raises."""
        if self._stop.is_set():
            return
        try:
            started = time.perf_counter()
            with self.sync_lock:
                reports = self.runtime.mirror.sync(full=full)
            self.metrics.synced("full" if full else "poll", time.perf_counter() - started)
            for report in reports:
                if report.error:
                    self.last_errors[report.board] = report.error
                else:
                    self.last_errors.pop(report.board, None)
            if self.runtime.figma is not None and not self._stop.is_set():
                started = time.perf_counter()
                self.runtime.figma.sync(force_tree=False)
                self.metrics.synced("figma", time.perf_counter() - started)
            # every pass: STALE_PRIORITY comes with time alone; only differences are written
            self.writer.call(self.recompute_flags)
            self.passes += 1
        except Exception as exc:  # the scheduler must survive anything
            log.error("sync pass failed", full=full, error=" ".join(str(exc).split())[:300])

    def recompute_flags(self) -> None:
        """Evaluate the rules over the mirror and record flag changes (on the writer)."""
        result = recompute(self.store, self.rules, self.clock())
        if result.opened or result.resolved:
            log.info("flags changed", opened=result.opened, resolved=result.resolved)

    # -- health -------------------------------------------------------------------------

    def last_success(self) -> dict[str, datetime | None]:
        """Per configured board: the newer of the stored last success and the in-memory one."""
        states = {row["board_ref"]: row for row in self.store.sync_states()}
        checked = self.runtime.mirror.last_checked
        result: dict[str, datetime | None] = {}
        for board in self.settings.trello.boards:
            candidates = [
                moment
                for moment in (
                    parse_iso((states.get(board.id) or {}).get("last_success_at")),
                    checked.get(board.id),
                )
                if moment is not None
            ]
            result[board.id] = max(candidates) if candidates else None
        return result

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """(ready, body): every board synced within 2 × poll_seconds; Figma limits reported."""
        now = self.clock()
        window = timedelta(seconds=2 * self.settings.schedule.poll_seconds)
        states = {row["board_ref"]: row for row in self.store.sync_states()}
        boards: list[dict[str, Any]] = []
        stale: list[str] = []
        for ref, moment in self.last_success().items():
            state = states.get(ref) or {}
            fresh = moment is not None and now - moment <= window
            entry: dict[str, Any] = {
                "board": ref,
                "last_success_at": _iso(moment),
                "fresh": fresh,
            }
            error = self.last_errors.get(ref) or state.get("last_error")
            if error:
                entry["last_error"] = error
                entry["last_error_at"] = state.get("last_error_at")
            if not fresh:
                stale.append(ref)
            boards.append(entry)
        limited = [
            {"file": row["key"], "rate_limited_until": row["rate_limited_until"]}
            for row in self.store.figma_files()
            if (until := parse_iso(row.get("rate_limited_until"))) is not None and until > now
        ]
        body: dict[str, Any] = {
            "status": "ready" if not stale else "not ready",
            "boards": boards,
            "figma_rate_limited": limited,
        }
        if stale:
            body["stale"] = stale
            body["reason"] = f"not synced within {window.total_seconds():.0f} s: " + ", ".join(
                stale
            )
        return not stale, body


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value.get_secret_value())
    return text or None


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else utc_iso(moment)


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
def _signals(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# -- `syncd run` --------------------------------------------------------------------------


def run_daemon(settings: Settings, *, register_webhooks: bool = False) -> int:
    """Serve until SIGTERM/SIGINT; 0 after a clean stop (failures raise one-line errors)."""
    import uvicorn

    from syncd.server import create_app

    lock = instance_lock(settings.store.url)
    if lock is not None:
        lock.acquire()
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("stop requested", signal=signal.Signals(signum).name)
        stop.set()

    try:
        with _signals(on_signal):
            daemon = Daemon(settings)
            if daemon.trello_secret is None:
                log.warning("TRELLO_API_SECRET is not set: every Trello delivery will be refused")
            daemon.start_workers()
            host, port = settings.server.host, settings.server.port
            config = uvicorn.Config(
                create_app(daemon),
                host=host,
                port=port,
                log_config=None,
                log_level="warning",
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=2,
            )
            server = uvicorn.Server(config)
            http = threading.Thread(target=server.run, name="syncd-http", daemon=True)
            http.start()
            deadline = time.monotonic() + 15
            while not server.started and http.is_alive() and time.monotonic() < deadline:
                if stop.wait(0.02):
                    break
            if not server.started and not stop.is_set():
                server.should_exit = True
                daemon.stop(1.0)
                raise SyncFailed(f"cannot serve HTTP on {host}:{port} (address in use?)")
            daemon.start_scheduler()
            log.info(
                "syncd running",
                url=f"http://{host}:{port}",
                boards=len(settings.trello.boards),
                store=daemon.inner_store.safe_url,
            )
            if register_webhooks and not stop.is_set():
                _register(daemon)
            crashed = False
            while not stop.wait(0.25):
                if not http.is_alive():
                    crashed = True
                    break
            log.info("stopping")
            server.should_exit = True
            daemon.stop(STOP_SECONDS)
            http.join(3.0)
            log.info("stopped")
            if crashed:
                raise SyncFailed("the HTTP server stopped unexpectedly")
            return 0
    finally:
        if lock is not None:
            lock.release()


def _register(daemon: Daemon) -> None:
    from syncd.webhook_admin import register_webhooks

    try:
        for line in register_webhooks(daemon.runtime, index=daemon.boards):
            log.info("webhook", detail=line)
    except Exception as exc:  # polling still works without webhooks
        log.error("webhook registration failed", error=" ".join(str(exc).split())[:300])


__all__ = [
    "Daemon",
    "InstanceLock",
    "PgInstanceLock",
    "SerialStore",
    "Writer",
    "run_daemon",
]
