"""`syncd run`: one process serving HTTP, running the scheduled syncs and applying webhooks.

Owns the daemon's threads and their life cycle:

- **the writer** (`Writer`): every store write (mirror batches, webhook applies, flags, Figma
  rows, delivery records) runs on this one thread, in order. `SerialStore` is a `Store` whose
  write methods hand themselves to the writer, so every engine (the mirror, the Figma mirror,
  the flag recomputation) writes through it without knowing. Flags are recomputed after each
  sync pass, and after webhook changes once the writer is idle (a burst is one recomputation);
- **the webhook worker** (`worker.WebhookWorker`): applies accepted deliveries in order;
- **the scheduler** (`schedule`): the first pass at start, then the idle poll every
  ``poll_seconds`` (with the Figma sync) and the full reconcile every ``full_sync_hours``; every
  minute it also asks the weekly digest duty (`syncd.digest.service.DigestDuty`) whether the
  period's digest is due;
- **the HTTP server** (uvicorn, in a thread, serving `syncd.web.app.create_app`).

The main thread waits for SIGTERM/SIGINT, then stops taking work, lets the transaction in
flight finish and returns 0 within a few seconds. With SQLite, an ``fcntl.flock`` on
``<db>.lock`` keeps a second `syncd run` off the same store (it exits 1 with one line); with
PostgreSQL, a session advisory lock does the same.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any, TypeVar

import schedule
import structlog

from state.store import BoardBatch, Store, WriteResult, parse_iso, utc_iso
from syncd.config import Settings
from syncd.daemon.locks import instance_lock, signals_handled
from syncd.daemon.worker import FairLock, WebhookWorker
from syncd.daemon.writer import SerialStore, Writer
from syncd.digest.deliver import parse_destinations
from syncd.digest.service import DigestDuty
from syncd.errors import SyncFailed
from syncd.metrics import Metrics
from syncd.rules.facts import rules_from_config
from syncd.rules.flags import recompute
from syncd.runtime import Runtime, build_runtime
from syncd.trello.apply import TrelloApplier
from syncd.trello.webhooks import TRELLO_PATH, BoardIndex

log = structlog.get_logger("syncd.daemon")

T = TypeVar("T")

STOP_SECONDS = 5.0
DIGEST_CHECK_SECONDS = 60  # how often the scheduler asks whether the weekly digest is due

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
        urls = secrets.digest_urls.get_secret_value() if secrets.digest_urls else None
        self.digest = DigestDuty(self.store, settings, parse_destinations(urls))

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
        scheduled.every(DIGEST_CHECK_SECONDS).seconds.do(self.send_digest)
        self.sync_pass(full=False)
        self.send_digest()
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

    def send_digest(self) -> None:
        """The weekly digest, when due (once per period; see `syncd.digest.service`)."""
        if not self._stop.is_set():
            self.digest.run(self.clock())

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
            if daemon.trello_secret is None:
                log.warning("TRELLO_API_SECRET is not set: every Trello delivery will be refused")
            if not daemon.digest.destinations:
                log.info("SYNCD_DIGEST_URLS is not set: no weekly digest will be sent")
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
    from syncd.trello.admin import register_webhooks

    try:
        for line in register_webhooks(daemon.runtime, index=daemon.boards):
            log.info("webhook", detail=line)
    except Exception as exc:  # polling still works without webhooks
        log.error("webhook registration failed", error=" ".join(str(exc).split())[:300])


__all__ = ["Daemon", "run_daemon"]
