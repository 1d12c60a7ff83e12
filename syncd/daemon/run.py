"""`syncd run`: one process serving HTTP, running the scheduled duties and applying webhooks.

`Daemon` assembles the parts and owns their life cycle; each part is its own module:

- **the writer** (`writer.Writer`): installed as the store's write route, so every store write
  (mirror batches, webhook applies, flags, Figma rows, delivery records) runs on this one
  thread, in order, and nothing else runs there. Flags are recomputed after each pass, and
  after webhook changes once they go quiet (`debounce.Debounced`, its own thread: a burst is
  one recomputation, and only its recording is a write step);
- **the webhook worker** (`worker.WebhookWorker`): the web layer's delivery intake; a Trello
  delivery is answered 200 once durably queued (group commit into ``webhook_queue``), then
  applied in runs; what a crash left queued is applied at start-up;
- **the scheduler** (`scheduler.Scheduler`): the duties this process holds (`leases`: locally,
  all; on PostgreSQL, its share, `leases.PgLeases`), the first pass at start, the poll every
  ``poll_seconds`` and the full reconcile every ``full_sync_hours``, each through the one sync
  pass (`syncd.sync_pass`) with the daemon's hooks (the board locks shared with the worker,
  metrics, error bookkeeping); and, when ``SYNCD_DIGEST_URLS`` is set, the ``digest`` duty
  asked every minute whether this week's digest is due (`syncd.digest.service.DigestDuty`);
- **the write-back worker** (`syncd.writeback.service.WritebackWorker`, with
  ``writeback.enabled``): its own thread, woken after each flag computation and every
  ``poll_seconds`` while this process holds the ``writeback`` duty, so posting (and waiting for
  a spare request) never holds up the sync nor the writer;
- **the readiness provider** (`health.SyncHealth`);
- **the HTTP server** (uvicorn, in a thread, serving `syncd.web.app.create_app` over
  `Daemon.web_context()`).

With SQLite the write-ahead log is checkpointed every second by a thread of its own, never
inside a commit (`Store(background_checkpoints=True)`): a webhook's 200 no longer waits behind
an ``fsync`` of the database. Once the workers start, what start-up built (modules, settings,
the store's engines) is moved out of the cyclic garbage collector's reach (`gc.freeze`, after
a collection; undone at stop): a full collection then scans only what the daemon made since,
so it no longer pauses every thread for a quarter of a second in the middle of a webhook's
path (`bench/bench_webhooks.py`).

The main thread waits for SIGTERM/SIGINT, then stops taking work, lets the transaction in
flight finish and returns 0 within a few seconds. With SQLite, an ``fcntl.flock`` on
``<db>.lock`` keeps a second `syncd run` off the same store (it exits 1 with one line). With
PostgreSQL any number of replicas share the store: each takes webhooks and serves pages, the
duties are spread over them by lease rows (`leases.PgLeases`, this replica's id in `/readyz`
and in its sessions' ``application_name``), and a board's sync and its webhook deliveries are
serialised across replicas (`locks.BoardLocks`, and the store's write locks).
"""

from __future__ import annotations

import gc
import signal
import threading
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import structlog

from state.coordination import Notifications, SessionLocks, is_postgresql
from state.store import BoardBatch, Store, StoreClosing, WriteResult
from state.timestamps import utc_iso
from syncd.config import Settings, secret_text
from syncd.daemon.debounce import Debounced
from syncd.daemon.health import REPORT_EVERY, SyncHealth
from syncd.daemon.leases import (
    Leases,
    LocalLeases,
    PgLeases,
    application_name,
    lease_seconds,
    new_replica_id,
)
from syncd.daemon.locks import BoardLocks, instance_lock, signals_handled
from syncd.daemon.scheduler import (
    DIGEST,
    FLAGS,
    WRITEBACK,
    Scheduler,
    Task,
    duties_of,
    every,
    pass_scope,
)
from syncd.daemon.worker import WebhookWorker
from syncd.daemon.writer import Writer
from syncd.digest.deliver import parse_destinations
from syncd.digest.service import DigestDuty
from syncd.errors import SyncFailed
from syncd.metrics import Metrics
from syncd.rules.flags import Recomputed
from syncd.runtime import Runtime, build_runtime
from syncd.sync_pass import PassHooks, PassResult, recompute_flags, sync_pass
from syncd.trello.apply import TrelloApplier
from syncd.trello.engine import BoardReport
from syncd.trello.webhooks import BoardIndex
from syncd.web.context import WebContext
from syncd.writeback.service import RoundReport, WritebackWorker

log = structlog.get_logger("syncd.daemon")

STOP_SECONDS = 5.0
CHECKPOINT_SECONDS = 1.0  # SQLite: how often the write-ahead log is copied into the database
# replicas: "the holder of this duty should act now" (payload: flags, writeback)
DUTY_CHANNEL = "syncd_duties"
MIN_FULL_SYNC_SECONDS = 60
DIGEST_CHECK_SECONDS = 60  # how often the digest duty asks whether this week's digest is due


class Daemon:
    """Everything `syncd run` runs, without the HTTP server and the signals (tests use it)."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        clock: Callable[[], datetime] | None = None,
        policy: Any = None,
        leases: Leases | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self.metrics = Metrics()
        url = settings.store.url
        replicated = leases is None and is_postgresql(url)
        self.replica: str | None = new_replica_id() if replicated else None
        app_name = application_name(self.replica) if self.replica else None
        self.store = store or Store(url, application_name=app_name, background_checkpoints=True)
        self.writer = Writer(metrics=self.metrics)
        # after webhook changes: the flags, once the burst is over (on a thread of its own)
        self.flags_after = Debounced(self._flags_after_webhooks, name="syncd-flags")
        self.store.route_writes(self.writer.call)
        self.runtime: Runtime = build_runtime(
            settings,
            store=self.store,
            observer=self.metrics.observe_request,
            policy=policy,
            write=self._write_mirror_batch,
            clock=self.clock,
        )
        self.boards = BoardIndex(settings.trello.boards, self.store)
        self.sync_lock = BoardLocks(
            session=SessionLocks(url, application_name=app_name or "syncd") if replicated else None
        )
        self.applier = TrelloApplier(
            store=self.store,
            trello=self.runtime.trello,
            mirror=self.runtime.mirror,
            clock=self.clock,
            run_write=self.store.serialised,
            metrics=self.metrics,
        )
        self.worker = WebhookWorker(
            self.applier,
            metrics=self.metrics,
            figma=self.runtime.figma,
            sync_lock=self.sync_lock,
            on_change=self.flags_after.mark_dirty,
            store=self.store,
            boards=settings.trello.boards,
            replica=self.replica or "",
            clock=self.clock,
        )
        self.writeback = (
            WritebackWorker(self.runtime.writeback) if self.runtime.writeback is not None else None
        )
        self.digest = DigestDuty(
            self.store, settings, parse_destinations(secret_text(settings.secrets.digest_urls))
        )
        self.duties = duties_of(settings)
        self.pg_leases: PgLeases | None = None
        if replicated:
            self.pg_leases = PgLeases(
                url,
                self.duties,
                ttl_seconds=lease_seconds(settings.schedule.poll_seconds),
                replica=self.replica,
                on_change=lambda: self.scheduler.wake(),
            )
        self.leases: Leases = leases or self.pg_leases or LocalLeases()
        self.duty_requests = (
            Notifications(url, DUTY_CHANNEL, application_name=app_name or "syncd")
            if replicated
            else None
        )
        self._listener: threading.Thread | None = None
        self._checkpoints: threading.Thread | None = None
        self.health = SyncHealth(
            settings,
            self.store,
            clock=self.clock,
            checked=self.runtime.mirror.last_checked,
            duties=self.leases.held,
            problem=self.pg_leases.problem if self.pg_leases else None,
            replica=self.replica,
            # built after each pass (below): /readyz itself rarely has to
            report_every=max(REPORT_EVERY, 2 * settings.schedule.poll_seconds),
        )
        self._stop = threading.Event()
        self.hooks = PassHooks(
            trello_lock=lambda boards: self.sync_lock.hold([board.id for board in boards]),
            stopping=self._stop.is_set,
            step_done=self.metrics.synced,
            boards_done=self._boards_done,
            after_flags=self._writeback_after_flags,
        )
        full_seconds = max(MIN_FULL_SYNC_SECONDS, int(settings.schedule.full_sync_hours * 3600))
        self.scheduler = Scheduler(
            [
                Task("poll", every(settings.schedule.poll_seconds), self._poll, on_gain=True),
                Task("reconcile", every(full_seconds), self._reconcile),
                Task(
                    "writeback",
                    every(settings.schedule.poll_seconds),
                    self._writeback_due,
                    on_gain=True,
                ),
                Task("digest", every(DIGEST_CHECK_SECONDS), self._digest, on_gain=True),
            ],
            duties=self.duties,
            leases=self.leases,
            clock=self.clock,
            stop=self._stop,
            on_held=lambda held: self.metrics.duties_held(self.duties, held),
        )

    def web_context(self) -> WebContext:
        """What the HTTP layer serves from: this daemon's store, metrics, health and intake."""
        return WebContext(
            settings=self.settings,
            store=self.store,
            metrics=self.metrics,
            health=self.health,
            intake=self.worker,
            clock=self.clock,
            boards=self.boards,
        )

    def _write_mirror_batch(self, batch: BoardBatch) -> WriteResult:
        """The Mirror's write hook: through the writer, then remembered by the applier."""
        result = self.store.write_board(batch)
        self.applier.note_fetched(batch)
        return result

    # -- life cycle ---------------------------------------------------------------------

    def start_workers(self) -> None:
        self.writer.start()
        self.flags_after.start()
        self.worker.start()
        if self.writeback is not None:
            self.writeback.start()
        elif self.store.writeback_state().get("enabled_since"):
            # write-back off: the flag events until it is on again are not commented
            self.store.set_writeback_enabled(False, utc_iso(self.clock()))
        if self.store.is_sqlite and self.store.background_checkpoints:
            self._checkpoints = threading.Thread(
                target=self._checkpoint_loop, name="syncd-checkpoints", daemon=True
            )
            self._checkpoints.start()
        gc.collect()  # start-up's garbage freed, then what is left kept out of every collection
        gc.freeze()

    def start_scheduler(self) -> None:
        if self.pg_leases is not None:
            self.pg_leases.start()
        if self.duty_requests is not None and self._listener is None:
            self._listener = threading.Thread(
                target=self._listen_for_duty_requests, name="syncd-notifications", daemon=True
            )
            self._listener.start()
        self.scheduler.start()

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Stop taking work, finish what is in flight (bounded by `timeout`)."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        self.scheduler.wake()
        if self.writeback is not None:
            self.writeback.stop(max(0.5, deadline - time.monotonic()))
        self.worker.stop(max(0.5, deadline - time.monotonic()))
        self.flags_after.stop(max(0.5, deadline - time.monotonic()))
        self.writer.stop(max(0.5, deadline - time.monotonic()))
        if self._checkpoints is not None:
            self._checkpoints.join(max(0.1, deadline - time.monotonic()))
        self.scheduler.join(max(0.1, deadline - time.monotonic()))
        self.leases.release()  # replicas: the others take over at once
        self.sync_lock.close()
        if self._listener is not None:
            self._listener.join(max(0.1, deadline - time.monotonic()))
        if self.duty_requests is not None:
            self.duty_requests.close()
        self.store.close()
        gc.unfreeze()  # what start-up made is collectable again (tests run many daemons)

    def _checkpoint_loop(self) -> None:
        """SQLite: the log copied into the database every `CHECKPOINT_SECONDS`, off every
        commit (`Store.checkpoint`; the store's last connection closing does the final one)."""
        while not self._stop.wait(CHECKPOINT_SECONDS):
            try:
                self.store.checkpoint()
            except Exception as exc:  # the next one tries again; the log only grows meanwhile
                log.warning("store checkpoint failed", error=" ".join(str(exc).split())[:300])

    # -- duties -------------------------------------------------------------------------

    def _poll(self, held: Collection[str]) -> None:
        self.sync_pass(full=False, held=held)

    def _reconcile(self, held: Collection[str]) -> None:
        self.sync_pass(full=True, held=held)

    def _digest(self, held: Collection[str]) -> None:
        """The weekly digest, when due and this process holds it (`syncd.digest.service`)."""
        if DIGEST in held and not self._stop.is_set():
            self.digest.run(self.clock())

    def sync_pass(
        self, *, full: bool = False, held: Collection[str] | None = None
    ) -> PassResult | None:
        """One pass over the duties held (default: those held now); never raises."""
        if self._stop.is_set():
            return None
        if held is None:
            held = self.leases.acquire(self.duties)
        scope = pass_scope(self.settings, held)
        if scope.empty:
            return None
        try:
            result = sync_pass(self.runtime, full=full, scope=scope, hooks=self.hooks)
        except StoreClosing:  # stopped mid-pass: nothing failed, the next start syncs again
            log.info("sync pass interrupted: syncd is stopping", full=full)
            return None
        except Exception as exc:  # the scheduler must survive anything
            error = " ".join(str(exc).split())[:300] or type(exc).__name__
            log.error("sync pass failed", full=full, error=error)
            self.health.note_pass(error=f"sync pass failed: {error}")
            return None
        self.health.note_pass(result.figma)
        self.health.report_check(fresh=True)
        return result

    def _boards_done(self, reports: list[BoardReport]) -> None:
        """A pass's board reports: readiness bookkeeping; among replicas, the idle change checks
        recorded in the store too (the other replicas' `/readyz` reads them there)."""
        self.health.note_boards(reports)
        idle = [report.board for report in reports if report.mode == "idle" and not report.error]
        if self.replica is None or not idle:
            return
        try:
            self.store.record_checked(idle, utc_iso(self.clock()))
        except Exception as exc:  # readiness only: the sync itself went fine
            log.warning("cannot record the change check", error=" ".join(str(exc).split())[:300])

    def _flags_after_webhooks(self) -> None:
        """After webhook changes (`flags_after`): they may change flags. This replica recomputes
        them when it holds the flags; otherwise it asks the holder (replicas, `pg_notify`)."""
        if FLAGS in self.leases.held():
            self._writeback_after_flags(self.runtime, recompute_flags(self.runtime))
        elif self.pg_leases is not None:
            self.pg_leases.notify(DUTY_CHANNEL, FLAGS)

    def _listen_for_duty_requests(self) -> None:
        """Replicas: another replica asks this duty's holder to act now: the flags after
        webhook changes it applied (as after our own: `flags_after`), write-back after
        flags it computed."""
        assert self.duty_requests is not None
        backoff = 1.0
        while not self._stop.is_set():
            try:
                asked = self.duty_requests.wait(1.0)
            except Exception as exc:  # each duty's own schedule catches up anyway
                log.warning("duty requests unavailable", error=" ".join(str(exc).split())[:300])
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 1.0
            held = self.leases.held()
            if self._stop.is_set():
                return
            if FLAGS in asked and FLAGS in held:
                self.flags_after.mark_dirty()
            if WRITEBACK in asked and WRITEBACK in held and self.writeback is not None:
                self.writeback.wake(None)

    def _writeback_after_flags(self, _runtime: Runtime, flags: Recomputed) -> RoundReport | None:
        """After a flag computation: wake write-back's thread (it posts there, never here)."""
        if self.writeback is None:
            return None
        if WRITEBACK in self.leases.held():
            self.writeback.wake(flags)
        elif self.pg_leases is not None and (flags.opened or flags.resolved):
            self.pg_leases.notify(DUTY_CHANNEL, WRITEBACK)  # its holder posts now
        return None

    def _writeback_due(self, held: Collection[str]) -> None:
        """Every poll, and when the duty is gained: a round over the stored flags (the flags
        may be computed by another replica; owed comments are retried)."""
        if self.writeback is not None and WRITEBACK in held:
            self.writeback.wake()


# -- `syncd run` --------------------------------------------------------------------------


def run_daemon(settings: Settings, *, register_webhooks: bool = False) -> int:
    """Serve until SIGTERM/SIGINT; 0 after a clean stop (failures raise one-line errors)."""
    import uvicorn

    from syncd.web.app import create_app

    lock = instance_lock(settings.store.url)
    if lock is not None:
        lock.acquire()
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("stop requested", signal=signal.Signals(signum).name)
        stop.set()

    try:
        with signals_handled(on_signal):
            daemon = Daemon(settings)
            if secret_text(settings.secrets.trello_api_secret) is None:
                log.warning("TRELLO_API_SECRET is not set: every Trello delivery will be refused")
            if not daemon.digest.destinations:
                log.info("SYNCD_DIGEST_URLS is not set: no weekly digest will be sent")
            daemon.start_workers()
            host, port = settings.server.host, settings.server.port
            config = uvicorn.Config(
                create_app(daemon.web_context()),
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
                store=daemon.store.safe_url,
                replica=daemon.replica,
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
    from syncd.trello.admin import register_webhooks

    try:
        for line in register_webhooks(daemon.runtime, index=daemon.boards):
            log.info("webhook", detail=line)
    except Exception as exc:  # polling still works without webhooks
        log.error("webhook registration failed", error=" ".join(str(exc).split())[:300])


__all__ = ["Daemon", "run_daemon"]
