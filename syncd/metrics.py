"""Prometheus metrics of `syncd run`, on a registry of their own (never the global one).

Owns `Metrics`: the counters the daemon bumps as things happen (remote API requests through the
transport's observer, retries, 429s, sync durations, webhook deliveries by outcome, delivery
shapes syncd does not model, how actions were applied, queue depths, the duties held) and the
gauges refreshed from the store at scrape time (cards mirrored per board, open flags per code,
last successful sync per board, Figma files rate limited until). `render()` gives the text
exposition format served on ``/metrics``. No label ever carries a secret or a delivery's text:
endpoints are the transport's templated paths (``/1/boards/{id}``), boards their configured
reference.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from adapters.transport import RequestEvent
from state.store import Store
from state.timestamps import parse_iso
from syncd.rules.governance import FlagCode

WEBHOOK_OUTCOMES = (
    "accepted",
    "replay",
    "bad_signature",
    "bad_json",
    "bad_request",
    "too_large",
    "disconnected",
    "unknown_board",
    "applied",
    "failed",
)
SYNC_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class Metrics:
    """Every metric of the daemon (see the module docstring)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.api_requests = Counter(
            "syncd_api_requests_total",
            "HTTP requests sent to the remote APIs, by service, endpoint and status.",
            ["service", "method", "endpoint", "status"],
            registry=registry,
        )
        self.api_seconds = Histogram(
            "syncd_api_request_seconds",
            "Duration of one HTTP attempt to a remote API.",
            ["service"],
            registry=registry,
        )
        self.api_retries = Counter(
            "syncd_api_retries_total",
            "HTTP attempts that failed and were retried (5xx, timeouts, 429).",
            ["service"],
            registry=registry,
        )
        self.api_rate_limited = Counter(
            "syncd_api_rate_limited_total",
            "HTTP 429 answers received.",
            ["service"],
            registry=registry,
        )
        self.sync_seconds = Histogram(
            "syncd_sync_duration_seconds",
            "Duration of one sync step (poll pass, full reconcile, Figma pass, webhook apply).",
            ["kind"],
            buckets=SYNC_BUCKETS,
            registry=registry,
        )
        self.cards = Gauge(
            "syncd_cards_mirrored",
            "Cards in the mirror (not deleted), by board.",
            ["board"],
            registry=registry,
        )
        self.webhooks = Counter(
            "syncd_webhook_deliveries_total",
            "Webhook deliveries, by source and outcome.",
            ["source", "outcome"],
            registry=registry,
        )
        self.unknown_shapes = Counter(
            "syncd_webhook_unknown_shapes_total",
            "Verified deliveries of a shape syncd does not model (a Trello action type, a Figma "
            "event type): answered, never applied directly.",
            ["source"],
            registry=registry,
        )
        self.webhook_applied = Counter(
            "syncd_webhook_actions_applied_total",
            "Trello actions applied, by how: direct (from the action), refetch (the card read "
            "again), board (the board synced), store (the action row only), included.",
            ["how"],
            registry=registry,
        )
        self.flags = Gauge(
            "syncd_flags_open",
            "Open governance flags, by code.",
            ["code"],
            registry=registry,
        )
        self.last_sync = Gauge(
            "syncd_last_successful_sync_timestamp_seconds",
            "Unix time of the last successful sync of each board.",
            ["board"],
            registry=registry,
        )
        self.figma_rate_limited = Gauge(
            "syncd_figma_rate_limited_until_timestamp_seconds",
            "Unix time until which Figma asked us to wait for a file (0 = not limited).",
            ["file"],
            registry=registry,
        )
        self.writer_queue = Gauge(
            "syncd_writer_queue_depth",
            "Store writes waiting for the writer thread.",
            registry=registry,
        )
        self.webhook_queue = Gauge(
            "syncd_webhook_queue_depth",
            "Webhook deliveries accepted and not yet applied.",
            registry=registry,
        )
        self.duties = Gauge(
            "syncd_duty_held",
            "1 while this process holds the duty (board:<ref>, figma:<key>, flags, …), else 0.",
            ["duty"],
            registry=registry,
        )
        self.writeback = Gauge(
            "syncd_writeback_comments",
            "Write-back comments by state: owed (not posted yet, e.g. the token may not write), "
            "in_doubt (attempted, being checked), posted.",
            ["state"],
            registry=registry,
        )
        for outcome in WEBHOOK_OUTCOMES:
            self.webhooks.labels("trello", outcome)
        for source in ("trello", "figma"):
            self.unknown_shapes.labels(source)
        self._lock = threading.Lock()
        # Every flag code is exposed from the start (0 until seen), so alerts see no gap.
        self._seen_flag_codes: set[str] = {code.value for code in FlagCode}
        for code in self._seen_flag_codes:
            self.flags.labels(code).set(0)

    # -- events -------------------------------------------------------------------------

    def observe_request(self, event: RequestEvent) -> None:
        """The transport's observer: one call per HTTP attempt."""
        status = str(event.status) if event.status else "none"
        self.api_requests.labels(event.service, event.method, event.endpoint, status).inc()
        self.api_seconds.labels(event.service).observe(event.seconds)
        if event.outcome in ("retry", "rate_limited"):
            self.api_retries.labels(event.service).inc()
        if event.status == 429:
            self.api_rate_limited.labels(event.service).inc()

    def delivery(self, outcome: str, source: str = "trello") -> None:
        self.webhooks.labels(source, outcome).inc()

    def unknown_shape(self, source: str) -> None:
        self.unknown_shapes.labels(source).inc()

    def applied(self, how: str) -> None:
        self.webhook_applied.labels(how).inc()

    def delivery_count(self, outcome: str, source: str = "trello") -> float:
        """The current value of one delivery counter (tests, benches)."""
        value = self.registry.get_sample_value(
            "syncd_webhook_deliveries_total", {"source": source, "outcome": outcome}
        )
        return value or 0.0

    def synced(self, kind: str, seconds: float) -> None:
        self.sync_seconds.labels(kind).observe(seconds)

    def duties_held(self, duties: Iterable[str], held: Collection[str]) -> None:
        """One gauge per duty of the deployment: 1 held here, 0 not."""
        for duty in duties:
            self.duties.labels(duty).set(1 if duty in held else 0)

    # -- gauges from the store ----------------------------------------------------------

    def refresh(
        self,
        store: Store,
        boards: Iterable[str],
        last_ok: Mapping[str, datetime | None],
    ) -> None:
        """Set the gauges from the store (called at scrape time; reads only)."""
        boards = list(boards)
        states = {row["board_ref"]: row for row in store.sync_states()}
        counts = store.live_card_counts()
        flags = store.open_flag_counts()
        figma = store.figma_files()
        writeback = store.writeback_counts()
        with self._lock:
            for state, count in writeback.items():
                self.writeback.labels(state).set(count)
            for ref in boards:
                board_id = (states.get(ref) or {}).get("board_id")
                self.cards.labels(ref).set(counts.get(board_id, 0) if board_id else 0)
                moment = last_ok.get(ref)
                if moment is not None:
                    self.last_sync.labels(ref).set(moment.timestamp())
            for code in self._seen_flag_codes - set(flags):
                self.flags.labels(code).set(0)
            for code, count in flags.items():
                self.flags.labels(code).set(count)
            self._seen_flag_codes |= set(flags)
            for row in figma:
                until = parse_iso(row.get("rate_limited_until"))
                self.figma_rate_limited.labels(row["key"]).set(until.timestamp() if until else 0)

    def render(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
