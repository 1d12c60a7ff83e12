"""Building and sending the weekly digest once per period, whatever restarts or replicas happen.

`build_digest` tells the period's story (the 7 days before `now`, or since ``--since``) in
``digest.lang``. `send_digest` is what `syncd digest` and the daemon's digest duty run:

1. claim the period in the store (`Store.claim_digest`): a period already sent answers
   "already sent" (unless ``force``), one another process is sending answers "busy"; a claim
   left by a process that died lapses after `CLAIM_SECONDS`;
2. send to every destination that does not have it yet (each one recorded as soon as it
   accepted), retrying a failing one with backoff while the others still get theirs;
3. release the claim: "sent", or "failed" with one line naming the destinations that failed
   (never their URLs); the next attempt sends only to those.

A crash between a destination accepting the digest and the store recording it can send that
one destination the digest twice: the only duplicate possible, and only on a crash.

`DigestDuty` is the daemon's side: due once the period's scheduled moment has passed and the
period is not sent; after a failure it waits (`RETRY_SECONDS`, doubling) before trying again.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from state.store import Store
from state.timestamps import parse_iso, utc_iso
from syncd.config import Settings
from syncd.digest.compose import Digest, compose_digest
from syncd.digest.deliver import Destination, Failure, deliver
from syncd.digest.schedule import period_of, scheduled_at
from syncd.report.build import build_report

log = structlog.get_logger("syncd.digest")

CLAIM_SECONDS = 600
RETRY_SECONDS = 900
MAX_RETRY_SECONDS = 6 * 3600
PERIOD = timedelta(days=7)


def process_owner() -> str:
    """Who claims a digest: this host and process (shown in the store, never a secret)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def build_digest(
    store: Store, settings: Settings, now: datetime, since: datetime | None = None
) -> Digest:
    """The digest of the 7 days before `now` (or since `since`), in ``digest.lang``."""
    start = since or now - PERIOD
    config = settings.digest
    report = build_report(store, settings, now=now, since=start, lang=config.lang)
    return compose_digest(
        report,
        period=period_of(now, config.zone),
        start=start,
        end=now,
        zone=config.zone,
        lang=config.lang,
        dashboard_url=settings.server.public_url + "/",
    )


@dataclass(frozen=True)
class Outcome:
    """What one `send_digest` did; ``line`` is the one line to show (no URL)."""

    period: str
    status: str  # sent, already_sent, busy, failed
    line: str
    delivered: int = 0
    failures: tuple[Failure, ...] = ()


def send_digest(
    store: Store,
    settings: Settings,
    destinations: Sequence[Destination],
    *,
    now: datetime,
    since: datetime | None = None,
    force: bool = False,
    owner: str | None = None,
    send: Callable[..., list[Failure]] = deliver,
) -> Outcome:
    """Send the current period's digest to the destinations that do not have it yet."""
    period = period_of(now, settings.digest.zone)
    at = utc_iso(now)
    until = utc_iso(now + timedelta(seconds=CLAIM_SECONDS))
    state, row = store.claim_digest(period, owner or process_owner(), at, until, force=force)
    if state == "sent":
        line = (
            f"digest {period} already sent on {row['sent_at']}: nothing sent"
            " (--force sends it again)"
        )
        return Outcome(period, "already_sent", line)
    if state == "busy":
        line = f"digest {period} is being sent by {row['claimed_by']}: nothing sent"
        return Outcome(period, "busy", line)

    delivered_before = set(row["delivered"] or [])
    pending = [d for d in destinations if d.fingerprint not in delivered_before]
    failures: list[Failure] = []
    try:
        digest = build_digest(store, settings, now, since)
        failures = send(
            pending,
            digest.title,
            digest.body,
            on_delivered=lambda d: store.digest_delivered(period, d.fingerprint),
        )
    except BaseException as exc:
        store.finish_digest(period, utc_iso(now), error=f"not sent: {type(exc).__name__}")
        raise
    sent = len(pending) - len(failures)
    if failures:
        names = ", ".join(f.destination.name for f in failures)
        line = (
            f"digest {period}: {len(failures)} of {len(pending)} destination(s) failed after "
            f"{failures[0].attempts} attempts: {names}"
        )
        store.finish_digest(period, utc_iso(now), error=line)
        return Outcome(period, "failed", line, sent, tuple(failures))
    store.finish_digest(period, utc_iso(now), error=None)
    skipped = len(destinations) - len(pending)
    line = f"digest {period} sent to {sent} destination(s)" + (
        f" ({skipped} already had it)" if skipped else ""
    )
    return Outcome(period, "sent", line, sent)


class DigestDuty:
    """The daemon's weekly digest: sent once the period's scheduled moment has passed."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        destinations: Sequence[Destination],
        *,
        owner: str | None = None,
        send: Callable[..., list[Failure]] = deliver,
    ) -> None:
        self.store = store
        self.settings = settings
        self.destinations = list(destinations)
        self.owner = owner or process_owner()
        self.send = send

    def due(self, now: datetime) -> bool:
        """Whether this period's digest should be sent now."""
        if not self.destinations:
            return False
        period = period_of(now, self.settings.digest.zone)
        if now < scheduled_at(period, self.settings.digest):
            return False
        row = self.store.digest_run(period)
        if row is None or row["status"] == "pending":
            return True
        if row["status"] == "sent":
            return False
        if row["status"] == "sending":  # a live claim elsewhere, or one left by a dead process
            until = parse_iso(row["claimed_until"])
            return until is None or until <= now
        last = parse_iso(row["last_attempt_at"])
        wait = min(MAX_RETRY_SECONDS, RETRY_SECONDS * 2 ** max(0, int(row["attempts"]) - 1))
        return last is None or now >= last + timedelta(seconds=wait)

    def run(self, now: datetime) -> Outcome | None:
        """Send when due (never raises: a failure is logged in one line and retried later)."""
        if not self.due(now):
            return None
        try:
            outcome = send_digest(
                self.store,
                self.settings,
                self.destinations,
                now=now,
                owner=self.owner,
                send=self.send,
            )
        except Exception as exc:  # the store or the report: never a destination URL
            log.error("digest failed", error=" ".join(str(exc).split())[:300])
            return None
        event: dict[str, Any] = {"period": outcome.period, "delivered": outcome.delivered}
        if outcome.status == "failed":
            log.error(outcome.line, **event)
        else:
            log.info(outcome.line, **event)
        return outcome
