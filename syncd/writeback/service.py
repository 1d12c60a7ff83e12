"""Write-back rounds: after each flag computation, plan the owed comments and post them.

One round (`WriteBack.run`), never two at once in a process:

1. **plan** the comments the flags owe (`syncd.writeback.plan`) and store them as rows (one per
   flag event, whatever the number of processes);
2. **reconcile** the rows in doubt (attempted, never finished) whose attempt can no longer land
   (`syncd.writeback.attempts`): read the card's comments; the comment carrying the row's marker
   (by the token's member) is recorded as posted, otherwise the row is owed again;
3. **post** the owed rows in order (a resolution only after its opening): within write-back's
   share of the budget (at most half the bucket's capacity per window, so a burst of flags is
   spread and never pushes syncd over Trello's limit) take a token from the sync's own bucket
   only when one is free beyond the sync's reserve (waiting in the round's thread, never in the
   sync's), record the attempt, ``POST`` once (no blind retry: a timeout may hide a success),
   record the comment id. A 401/403 (the token may not write) stops
   the round with one warning, logged once until posting works again; the rows stay owed and
   the next round tries again. A 429 or a remote failure stops the round too (a failure leaves
   its row in doubt, reconciled next round).

`preview` is ``syncd writeback --dry-run`` (what a round would post now, nothing written),
`permission_line` is ``syncd check``'s line, `WritebackWorker` runs rounds in the daemon's own
thread, woken after each flag computation.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from adapters.transport import ApiError, HttpStatusError, RateLimited
from adapters.trello import TrelloAPI
from state.store import Row, Store
from state.timestamps import parse_iso, utc_iso
from syncd.config import Settings
from syncd.rules.activity import activity_without_own_comments, own_comments_from_rows
from syncd.rules.facts import MirrorFacts, stored_facts
from syncd.rules.flags import Recomputed
from syncd.rules.governance import Evaluation, evaluate
from syncd.writeback.attempts import ProcessIdentity, settled
from syncd.writeback.marker import intent_of_action
from syncd.writeback.plan import OPENED, RESOLVED, Plan, plan_comments

log = structlog.get_logger("syncd.writeback")

RESERVE_SHARE = 0.5  # of the request budget, left to the sync: write-back spends only the rest
TOKEN_WAIT_SECONDS = 30.0  # at most this long for a spare token before the round stops
RECONCILE_MARGIN = timedelta(minutes=10)  # clock skew allowance when reading a card's comments
PAUSE_AFTER_POST = "SYNCD_TEST_PAUSE_AFTER_POST"  # tests: a file to write, then hang (kill -9)


@dataclass
class RoundReport:
    """What one round did (the summary line of `syncd sync`)."""

    planned: int = 0
    posted: int = 0
    reconciled: int = 0  # in doubt, found on the card: recorded as posted
    released: int = 0  # in doubt, not on the card: owed again
    owed: int = 0  # still owed at the end of the round
    in_doubt: int = 0  # attempted elsewhere, maybe still in flight: left alone
    stopped: str | None = None  # why posting stopped early (permission, budget, rate limit, …)

    def line(self) -> str:
        text = f"write-back: {self.posted} comment(s) posted, {self.owed} owed"
        if self.reconciled:
            text += f", {self.reconciled} found already posted"
        if self.in_doubt:
            text += f", {self.in_doubt} in doubt"
        return text + (f" ({self.stopped})" if self.stopped else "")


class WriteBack:
    """Comments on the dashboard cards of flagged départements (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        trello: TrelloAPI,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        identity: ProcessIdentity | None = None,
        stop: threading.Event | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.trello = trello
        self.settings = settings
        self.codes = tuple(settings.writeback.flags)
        self.rules = settings.governance
        self.public_url = settings.server.public_url
        self.clock = clock
        self.identity = identity or ProcessIdentity.current()
        self.stop = stop or threading.Event()
        # One request lasts at most about the timeout (a comment is one attempt): an attempt
        # older than this can no longer land.
        self.grace = timedelta(seconds=3 * settings.trello.timeout_seconds + 10)
        bucket = trello.session.bucket
        self.reserve = int(bucket.capacity * RESERVE_SHARE) if bucket is not None else 0
        # write-back's share: at most this many comments per window of the bucket
        self.share = max(1, bucket.capacity - self.reserve) if bucket is not None else 0
        self.window = bucket.window if bucket is not None else 0.0
        self.monotonic = monotonic
        self._sent: deque[float] = deque()  # when this process's recent comments were sent
        self._round = _round_lock(str(self.identity))  # one round at a time per process
        self._denied: str | None = None  # the permission refusal last seen (logged once)
        self._member_id: str | None = None

    # -- a round --------------------------------------------------------------------------

    def run(self, recomputed: Recomputed | None = None) -> RoundReport:
        """One round over the stored flags (`recomputed`: the evaluation just made, if any)."""
        with self._round:
            report = RoundReport()
            now = self.clock()
            enabled_since = self.store.writeback_state().get(
                "enabled_since"
            ) or self.store.set_writeback_enabled(True, utc_iso(now))
            facts, evaluation = _evaluation(self.store, self.rules, now, recomputed)
            plan = self._plan(facts, evaluation, enabled_since, utc_iso(now))
            if plan.new_rows:
                report.planned = self.store.add_writeback_comments(plan.new_rows)
            for intent, card in plan.retargets:
                self.store.retarget_writeback(intent, card)
            rows = self.store.writeback_comments()
            self._reconcile([r for r in rows if _in_doubt(r)], report)
            rows = self.store.writeback_comments()
            self._post(rows, report)
            report.owed = sum(1 for row in self.store.writeback_comments(unposted=True))
            if report.planned or report.posted or report.reconciled or report.released:
                log.info(
                    "write-back round",
                    planned=report.planned,
                    posted=report.posted,
                    reconciled=report.reconciled,
                    released=report.released,
                    owed=report.owed,
                    stopped=report.stopped,
                )
            return report

    def _plan(
        self,
        facts: MirrorFacts,
        evaluation: Evaluation,
        enabled_since: str | None,
        now: str,
    ) -> Plan:
        return plan_comments(
            self.store.writeback_flags(self.codes, enabled_since),
            self.store.writeback_comments(),
            {status.code: status for status in evaluation.departments},
            {card.id for card in facts.cards if not card.deleted and not card.closed},
            codes=self.codes,
            enabled_since=enabled_since,
            rules=self.rules,
            public_url=self.public_url,
            now=now,
        )

    # -- rows in doubt ----------------------------------------------------------------------

    def _reconcile(self, rows: Iterable[Row], report: RoundReport) -> None:
        now = self.clock()
        for row in rows:
            if not settled(
                self.identity, row["attempt"], parse_iso(row["attempted_at"]), now, self.grace
            ):
                report.in_doubt += 1
                continue
            attempted = parse_iso(row["attempted_at"]) or now
            try:
                comments = self.trello.card_comments(
                    row["card_id"], since=utc_iso(attempted - RECONCILE_MARGIN)
                )
                member = self._member()
            except HttpStatusError as exc:
                if exc.status == 404:  # the card is gone, and its comments with it
                    self._release(row, "the card is gone")
                    report.released += 1
                    continue
                log.warning("write-back cannot check a card", card=row["card_id"], error=str(exc))
                report.in_doubt += 1
                return
            except ApiError as exc:
                log.warning("write-back cannot check a card", card=row["card_id"], error=str(exc))
                report.in_doubt += 1
                return
            mine = sorted(
                (
                    c
                    for c in comments
                    if intent_of_action(c) == row["id"]
                    and (member is None or c.get("idMemberCreator") == member)
                ),
                key=lambda c: str(c.get("id")),
            )
            if mine:
                found = mine[0]
                self.store.finish_writeback(
                    row["id"],
                    str(found["id"]),
                    found.get("idMemberCreator"),
                    found.get("date") or utc_iso(now),
                )
                report.reconciled += 1
                log.info(
                    "write-back comment found posted",
                    department=row["department"],
                    code=row["code"],
                    flag_event=row["event"],
                    comment=found["id"],
                )
            else:
                self._release(row, "not on the card after an interrupted post")
                report.released += 1

    def _release(self, row: Row, why: str) -> None:
        self.store.release_writeback(row["id"], row["attempt"], why)

    def _member(self) -> str | None:
        """The token's Trello member (author of syncd's comments), learnt once."""
        if self._member_id is None:
            self._member_id = self.store.writeback_state().get("member_id")
        if self._member_id is None:
            member = self.trello.token_info().get("idMember")
            if isinstance(member, str) and member:
                self._member_id = member
                self.store.set_writeback_member(member)
        return self._member_id

    # -- posting ----------------------------------------------------------------------------

    def _post(self, rows: list[Row], report: RoundReport) -> None:
        posted_openings = {
            row["flag_id"] for row in rows if row["event"] == OPENED and row["comment_id"]
        }
        for row in rows:
            if row["comment_id"] is not None or row["attempt"] is not None:
                continue
            if row["event"] == RESOLVED and row["flag_id"] not in posted_openings:
                continue  # its opening first
            if self.stop.is_set():
                report.stopped = "stopping"
                return
            if not self._take_token():
                report.stopped = "request budget in use by the sync"
                return
            attempt = str(self.identity)
            at = utc_iso(self.clock())
            if not self.store.claim_writeback(
                row["id"], attempt, at, self._activity_before(row["card_id"])
            ):
                continue  # another process is posting it
            try:
                action = self.trello.post_comment(row["card_id"], row["text"])
            except HttpStatusError as exc:
                self.store.release_writeback(row["id"], attempt, _one_line(exc))
                if exc.status in (401, 403):
                    self._deny(exc, rows)
                    report.stopped = "the token may not write"
                    return
                log.warning(
                    "write-back comment refused",
                    department=row["department"],
                    card=row["card_id"],
                    error=_one_line(exc),
                )
                continue
            except RateLimited as exc:
                self.store.release_writeback(row["id"], attempt, _one_line(exc))
                report.stopped = "rate limited"
                return
            except ApiError as exc:  # no answer or a 5xx: maybe posted; checked next round
                self.store.note_writeback_error(row["id"], _one_line(exc))
                log.warning(
                    "write-back comment in doubt", card=row["card_id"], error=_one_line(exc)
                )
                report.stopped = "Trello did not answer"
                return
            _pause_for_tests(row["id"])
            author = action.get("idMemberCreator")
            self.store.finish_writeback(
                row["id"], str(action.get("id")), author, action.get("date") or at
            )
            if isinstance(author, str) and author and author != self._member_id:
                self._member_id = author
                self.store.set_writeback_member(author)
            if row["event"] == OPENED:
                posted_openings.add(row["flag_id"])
            report.posted += 1
            self._allowed()
            log.info(
                "write-back comment posted",
                department=row["department"],
                code=row["code"],
                flag_event=row["event"],
                card=row["card_id"],
                comment=action.get("id"),
            )

    def _take_token(self) -> bool:
        """Within write-back's share of the window, a token of the sync's bucket beyond its
        reserve; waits for both in this thread (False: stopping, or none came in time)."""
        bucket = self.trello.session.bucket
        if bucket is None:
            return True
        deadline = self.monotonic() + TOKEN_WAIT_SECONDS
        while True:
            now = self.monotonic()
            while self._sent and now - self._sent[0] >= self.window:
                self._sent.popleft()
            if len(self._sent) < self.share:
                if bucket.try_acquire(self.reserve):
                    self._sent.append(now)
                    return True
                wait = bucket.seconds_until(self.reserve + 1)
            else:
                wait = self._sent[0] + self.window - now
            left = deadline - now
            if left <= 0 or self.stop.wait(min(left, max(0.01, wait))):
                return False

    def _activity_before(self, card_id: str) -> str | None:
        """The card's activity as the rules see it, just before syncd comments on it."""
        cards, own, actions = self.store.own_comment_activity([card_id])
        if not cards:
            return None
        activity = activity_without_own_comments(
            parse_iso(cards[0]["date_last_activity"]), own_comments_from_rows(own), actions
        )
        return None if activity is None else utc_iso(activity)

    def _deny(self, exc: HttpStatusError, rows: list[Row]) -> None:
        reason = f"{exc.status} {_one_line(exc.body) or 'refused'}"
        if self._denied is None:
            owed = sum(1 for row in rows if row["comment_id"] is None)
            log.warning(
                "write-back cannot post: the Trello token may not write comments "
                f"({reason}); {owed} comment(s) stay owed and will be posted once it may "
                "(a token with scope read,write is needed)"
            )
        self._denied = reason

    def _allowed(self) -> None:
        if self._denied is not None:
            log.info("write-back can post again")
            self._denied = None


_ROUND_LOCKS: dict[str, threading.Lock] = {}
_ROUND_LOCKS_GUARD = threading.Lock()


def _round_lock(identity: str) -> threading.Lock:
    """The lock of the rounds of one identity: a process's own attempts are never in flight
    while another of its rounds looks at them (`syncd.writeback.attempts`)."""
    with _ROUND_LOCKS_GUARD:
        return _ROUND_LOCKS.setdefault(identity, threading.Lock())


def _in_doubt(row: Mapping[str, Any]) -> bool:
    return row["attempt"] is not None and row["comment_id"] is None


def _evaluation(
    store: Store, rules: Any, now: datetime, recomputed: Recomputed | None
) -> tuple[MirrorFacts, Evaluation]:
    if recomputed is not None:
        return recomputed.facts, recomputed.evaluation
    facts = stored_facts(store)
    return facts, evaluate(facts.cards, facts.lists, rules, now)


def _pause_for_tests(intent: str) -> None:
    """Tests only: hang between the request and the commit, to be killed there."""
    path = os.environ.get(PAUSE_AFTER_POST)
    if not path:
        return
    Path(path).write_text(intent, encoding="utf-8")
    while True:
        time.sleep(1)


def _one_line(value: object) -> str:
    return " ".join(str(value).split())[:300]


# -- the dry run and the check ----------------------------------------------------------------


def preview(store: Store, settings: Settings, now: datetime) -> list[Row]:
    """What a round would post now, in order (``syncd writeback --dry-run``); writes nothing.

    Rows in doubt are included with ``in_doubt`` set: a round posts them only when their
    comment is not on the card.
    """
    rules = settings.governance
    facts, evaluation = _evaluation(store, rules, now, None)
    enabled_since = store.writeback_state().get("enabled_since") or utc_iso(now)
    codes = tuple(settings.writeback.flags)
    existing = store.writeback_comments()
    plan = plan_comments(
        store.writeback_flags(codes, enabled_since),
        existing,
        {status.code: status for status in evaluation.departments},
        {card.id for card in facts.cards if not card.deleted and not card.closed},
        codes=codes,
        enabled_since=enabled_since,
        rules=rules,
        public_url=settings.server.public_url,
        now=utc_iso(now),
    )
    retarget = dict(plan.retargets)
    pending = [
        {**row, "card_id": retarget.get(row["id"], row["card_id"]), "in_doubt": _in_doubt(row)}
        for row in existing
        if row["comment_id"] is None
    ]
    pending += [{**row, "in_doubt": False} for row in plan.new_rows]
    urls = {card.id: card.url for card in facts.cards}
    for row in pending:
        row["card_url"] = urls.get(row["card_id"], "")
    return pending


def can_write(token_info: Mapping[str, Any]) -> bool:
    """Whether a token's permissions (``GET /1/tokens/{token}``) let it write on boards."""
    permissions = token_info.get("permissions")
    if not isinstance(permissions, list):
        return False
    return any(
        isinstance(p, Mapping) and p.get("modelType") == "Board" and p.get("write") is True
        for p in permissions
    )


def permission_line(settings: Settings, trello: TrelloAPI) -> tuple[bool, str]:
    """``syncd check``: whether write-back can post (asks Trello the token's permissions)."""
    if not settings.writeback.enabled:
        return True, "write-back: disabled (writeback.enabled = false)"
    try:
        info = trello.token_info()
    except ApiError as exc:
        return False, f"write-back: cannot read the token's permissions: {exc}"
    if can_write(info):
        return True, "write-back: enabled; the token may write, comments can be posted"
    return False, (
        "write-back: enabled but the Trello token is read-only: comments cannot be posted "
        "(they stay owed); create a token with scope read,write"
    )


# -- the daemon's thread ----------------------------------------------------------------------


class WritebackWorker:
    """Runs write-back rounds in a thread of its own, woken after each flag computation, so a
    round (its requests, its wait for a spare token) never holds up the sync or the writer."""

    def __init__(self, writeback: WriteBack) -> None:
        self.writeback = writeback
        self._wake = threading.Event()
        self._latest: Recomputed | None = None
        self._thread: threading.Thread | None = None
        self.rounds = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="syncd-writeback", daemon=True)
            self._thread.start()

    def wake(self, recomputed: Recomputed | None = None) -> None:
        self._latest = recomputed
        self._wake.set()

    def stop(self, timeout: float) -> None:
        self.writeback.stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        stop = self.writeback.stop
        while not stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if stop.is_set():
                return
            try:
                report = self.writeback.run(self._latest)
            except Exception as exc:  # the thread must survive anything
                log.error("write-back round failed", error=_one_line(exc))
                continue
            finally:
                self.rounds += 1
            if report.stopped == "request budget in use by the sync" and report.owed:
                self._wake.set()  # carry on as the budget frees up


def render_preview(rows: list[Row], *, enabled: bool) -> str:
    """The dry run's output: each comment a round would post now, with its card."""
    count = len(rows)
    if not enabled:
        head = "write-back is disabled (writeback.enabled = false); " + (
            f"enabled, it would post {count} comment(s) now:" if rows else "nothing is owed"
        )
    else:
        head = f"write-back would post {count} comment(s) now:" if rows else "nothing to post"
    out = [head]
    for number, row in enumerate(rows, 1):
        where = row.get("card_url") or row["card_id"]
        doubt = " (in doubt: posted only if not already on the card)" if row["in_doubt"] else ""
        out += [
            "",
            f"--- {number}/{count} · {row['department']} · {row['code']} {row['event']}"
            f" · card {where}{doubt}",
            row["text"],
        ]
    return "\n".join(out) + "\n"
