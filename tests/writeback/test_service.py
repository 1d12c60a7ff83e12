"""Write-back over the sandbox (both store backends): one comment per flag event, none on re-sync
nor after a restart, one on resolve; syncd's comments never count as activity; a read-only token;
a lost answer; replicas; the request budget; the dry run; the check line; the daemon's thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog

from adapters.sandbox import CONSORTIUM_SHORT_LINK, PRODUCT_SHORT_LINK, Sandbox
from adapters.sandbox import build_sample_world as sample
from adapters.transport import RetryPolicy, TokenBucket, TransientError
from state import models as m
from state.store import Store
from state.timestamps import utc_iso
from syncd.config import (
    BoardConfig,
    Secrets,
    ServerConfig,
    Settings,
    StoreConfig,
    TrelloConfig,
    WritebackConfig,
)
from syncd.report.build import build_report
from syncd.rules.facts import stored_facts
from syncd.rules.governance import Rules
from syncd.runtime import Runtime, build_runtime
from syncd.sync_pass import sync_pass
from syncd.trello.apply import TrelloApplier
from syncd.writeback.attempts import ProcessIdentity
from syncd.writeback.service import WriteBack, permission_line, preview, render_preview

FAST = RetryPolicy(max_attempts=8, backoff_initial=0.01, backoff_max=0.05, window_seconds=0.2)
PUBLIC_URL = "https://syncd.example.fr"
FIRST_FLAGS = {("12", "STALE_PRIORITY"), ("55", "NO_REFERENT")} | {
    (code, "TOO_MANY_PRIORITIES") for code in ("62", "77")
}


def settings_for(
    sandbox: Sandbox,
    url: str,
    *,
    enabled: bool = True,
    governance: Rules | None = None,
) -> Settings:
    return Settings(
        store=StoreConfig(url=url),
        trello=TrelloConfig(
            api_base=sandbox.trello_api_base,
            boards=(
                BoardConfig(id=CONSORTIUM_SHORT_LINK, role="consortium"),
                BoardConfig(id=PRODUCT_SHORT_LINK, role="product"),
            ),
        ),
        governance=governance or Rules(departments=("77", "95")),
        server=ServerConfig(public_url=PUBLIC_URL),
        writeback=WritebackConfig(enabled=enabled),
        secrets=Secrets(TRELLO_API_KEY=sandbox.api_key, TRELLO_TOKEN=sandbox.token),
    )


def runtime_for(sandbox: Sandbox, url: str, **kwargs: Any) -> Runtime:
    return build_runtime(settings_for(sandbox, url, **kwargs), policy=FAST)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(world=sample()) as running:
        yield running


def posts(sandbox: Sandbox) -> list[Any]:
    """The comment POSTs the sandbox received (any answer)."""
    return [
        r for r in sandbox.requests if r.method == "POST" and r.path.endswith("/actions/comments")
    ]


def syncd_comments(sandbox: Sandbox) -> list[dict[str, Any]]:
    """Every comment on the boards that carries syncd's marker."""
    return [
        action
        for actions in sandbox.world.actions.values()
        for action in actions
        if action["type"] == "commentCard" and "syncd-" in action["data"]["text"]
    ]


def events(store: Store) -> set[tuple[str, str, str]]:
    return {(r["department"], r["code"], r["event"]) for r in store.writeback_comments()}


def dashboard_card(store: Store, department: str) -> str:
    (card,) = {r["card_id"] for r in store.writeback_comments() if r["department"] == department}
    return card


# -- exactly once ----------------------------------------------------------------------------


def test_one_comment_per_flag_event(sandbox: Sandbox, store_url: str) -> None:
    runtime = runtime_for(sandbox, store_url)
    result = sync_pass(runtime)
    assert result.writeback is not None and result.writeback.posted == 4
    assert {(d, c) for d, c, _event in events(runtime.store)} == FIRST_FLAGS
    assert len(posts(sandbox)) == 4 and len(syncd_comments(sandbox)) == 4
    rows = {r["department"]: r for r in runtime.store.writeback_comments()}
    for department, row in rows.items():
        card = sandbox.world.card(row["card_id"])
        assert card["idList"] == sandbox.world.find_list(CONSORTIUM_SHORT_LINK, "Départements")
        posted = sandbox.world.actions_by_id[row["comment_id"]]
        assert posted["data"]["text"] == row["text"]
        assert posted["data"]["card"]["id"] == row["card_id"]
        assert row["author_id"] == sandbox.world.me_id
        assert f"({department})" in row["text"] and f"{PUBLIC_URL}/" in row["text"]
    assert "- Connecter le SI insertion" in rows["62"]["text"]  # why: the four, by name
    assert "4 actions prioritaires ouvertes (maximum 3)" in rows["62"]["text"]

    sandbox.reset_counts()
    assert sync_pass(runtime).writeback.posted == 0  # type: ignore[union-attr]
    restarted = runtime_for(sandbox, store_url)  # a new process: a new store, a new identity
    assert sync_pass(restarted).writeback.posted == 0  # type: ignore[union-attr]
    assert posts(sandbox) == []

    card62 = dashboard_card(restarted.store, "62")
    world = sandbox.world
    world.set_check_item(card62, world.find_check_item(card62, "Connecter le SI"), True)
    result = sync_pass(restarted)
    assert result.writeback is not None and result.writeback.posted == 1
    (resolution,) = [r for r in restarted.store.writeback_comments() if r["event"] == "resolved"]
    assert (resolution["department"], resolution["card_id"]) == ("62", card62)
    assert "Signalement syncd levé" in resolution["text"]
    assert "Actions prioritaires ouvertes : 3 (maximum 3)." in resolution["text"]
    assert sync_pass(restarted).writeback.posted == 0  # type: ignore[union-attr]

    checklist = world.find_checklist(card62, "Actions prioritaires")
    world.add_check_item(checklist, "Ouvrir un second site")  # the flag opens again
    assert sync_pass(restarted).writeback.posted == 1  # type: ignore[union-attr]
    assert len(posts(sandbox)) == 2 and len(syncd_comments(sandbox)) == 6


def test_own_comments_are_mirrored_but_are_never_activity(sandbox: Sandbox, store_url: str) -> None:
    world = sandbox.world
    # The dashboard card of 62 is also a priority card of 26 (label), stale after 10 days.
    board = world.board(CONSORTIUM_SHORT_LINK)["id"]
    card62 = next(
        c["id"]
        for c in world.board_cards(board)
        if c["name"] == "Pas-de-Calais" and not c["closed"]
    )
    world.now = datetime.now(UTC) - timedelta(days=60)  # labelled long ago: no fresh activity
    for name in ("Drôme", "Prioritaire"):
        label = next((lb["id"] for lb in world.board_labels(board) if lb["name"] == name), None)
        world.add_label(card62, label or world.create_label(board, name))
    world.now = None
    governance = Rules(departments=("77", "95"), stale_after_days=10)
    runtime = runtime_for(sandbox, store_url, governance=governance)
    before = datetime.now(UTC)
    first = sync_pass(runtime)
    assert first.writeback is not None and first.writeback.posted >= 5
    assert ("26", "STALE_PRIORITY", "opened") in events(runtime.store)
    commented = {r["card_id"] for r in runtime.store.writeback_comments()}
    activity = {c.id: c.date_last_activity for c in stored_facts(runtime.store).cards}
    stale_since = _open_flag(runtime.store, "26", "STALE_PRIORITY")["since"]

    full = sync_pass(runtime, full=True)  # Trello's snapshot: every commented card was bumped
    assert full.writeback is not None and full.writeback.posted == 0
    stored = {row["id"]: row for row in runtime.store.read_mirror().cards}
    for card_id in commented:
        assert stored[card_id]["date_last_activity"] >= utc_iso(before)  # the raw mirror moved
    after = {c.id: c.date_last_activity for c in stored_facts(runtime.store).cards}
    assert {card: after[card] for card in commented} == {card: activity[card] for card in commented}
    assert _open_flag(runtime.store, "26", "STALE_PRIORITY")["since"] == stale_since  # no reset
    comment_ids = runtime.store.writeback_comment_ids()
    assert runtime.store.known_actions(comment_ids) == comment_ids  # mirrored like any action
    report = build_report(
        runtime.store, runtime.settings, now=datetime.now(UTC), since=before, lang="fr"
    )
    assert [c for c in report["changes"] if c.get("card_id") in commented] == []
    assert not [f for f in report["flags"] if f["resolved_at"] is not None]


def _open_flag(store: Store, department: str, code: str) -> dict[str, Any]:
    (flag,) = [f for f in store.flags() if (f["department"], f["code"]) == (department, code)]
    return flag


def test_syncd_comments_cost_no_refetch(sandbox: Sandbox, store_url: str) -> None:
    runtime = runtime_for(sandbox, store_url)
    sync_pass(runtime)
    sandbox.reset_counts()
    sync_pass(runtime)  # the change check brings the new comment actions; no card refetched
    assert [(r.method, r.path) for r in sandbox.requests] == [("GET", "/1/batch")]
    applier = TrelloApplier(store=runtime.store, trello=runtime.trello, mirror=runtime.mirror)
    board = runtime.settings.trello.boards[0]
    board_id = sandbox.world.board(CONSORTIUM_SHORT_LINK)["id"]
    own = syncd_comments(sandbox)[0]
    sandbox.reset_counts()
    copy = {**own, "id": "f" * 24, "date": "2100-01-01T00:00:00.000Z"}  # someone's copy, later
    assert applier.apply(copy, board, board_id) == "direct"  # activity, applied with no request
    assert applier.apply(own, board, board_id) == "store"  # a webhook of syncd's own comment
    assert len(sandbox.requests) == 0


# -- permission, lost answers, replicas, budget ----------------------------------------------


def test_a_read_only_token_owes_the_comments_and_posts_them_once_it_may(
    sandbox: Sandbox, store_url: str
) -> None:
    sandbox.read_only = True
    runtime = runtime_for(sandbox, store_url)
    with structlog.testing.capture_logs() as logs:
        first = sync_pass(runtime)
        second = sync_pass(runtime)
    assert not first.failed and len(runtime.store.flags()) == 5  # mirror and flags carry on
    assert first.writeback is not None and first.writeback.posted == 0
    assert first.writeback.owed == 4 and first.writeback.stopped == "the token may not write"
    assert second.writeback is not None and second.writeback.owed == 4
    refusals = [line for line in logs if "write-back cannot post" in line["event"]]
    assert len(refusals) == 1 and refusals[0]["log_level"] == "warning"
    assert "401 unauthorized permission requested" in refusals[0]["event"]
    assert len(posts(sandbox)) == 2 and syncd_comments(sandbox) == []  # one try per round
    assert permission_line(runtime.settings, runtime.trello)[0] is False
    assert runtime.store.writeback_counts() == {"owed": 4, "in_doubt": 0, "posted": 0}

    sandbox.read_only = False
    assert permission_line(runtime.settings, runtime.trello)[0] is True
    third = sync_pass(runtime)
    assert third.writeback is not None and (third.writeback.posted, third.writeback.owed) == (4, 0)
    assert sync_pass(runtime).writeback.posted == 0  # type: ignore[union-attr]
    assert len(syncd_comments(sandbox)) == 4
    assert runtime.store.writeback_counts() == {"owed": 0, "in_doubt": 0, "posted": 4}


def test_a_lost_answer_is_looked_up_on_the_card_before_posting_again(
    sandbox: Sandbox, store_url: str
) -> None:
    runtime = runtime_for(sandbox, store_url)
    assert runtime.writeback is not None
    real_post = runtime.trello.post_comment
    lost = []

    def post_then_lose_the_answer(card_id: str, text: str) -> dict[str, Any]:
        answer = real_post(card_id, text)
        if not lost:
            lost.append(answer["id"])
            raise TransientError("trello POST: ReadTimeout (no answer)")
        return answer

    runtime.trello.post_comment = post_then_lose_the_answer  # type: ignore[method-assign]
    first = sync_pass(runtime)
    assert first.writeback is not None and first.writeback.stopped == "Trello did not answer"
    assert len(syncd_comments(sandbox)) == 1
    assert runtime.store.writeback_counts() == {"owed": 3, "in_doubt": 1, "posted": 0}
    following = runtime.store.writeback_comments()[1]["card_id"]
    sandbox.disconnect_next(1, path_prefix=f"/1/cards/{following}/actions/comments")  # lost
    second = sync_pass(runtime)
    assert second.writeback is not None and second.writeback.reconciled == 1
    assert second.writeback.stopped == "Trello did not answer"
    third = sync_pass(runtime)  # the one cut off: not on the card, so posted again
    assert third.writeback is not None and third.writeback.released == 1
    assert (third.writeback.posted, third.writeback.owed) == (3, 0)
    assert len(syncd_comments(sandbox)) == 4  # each once
    assert lost[0] in runtime.store.writeback_comment_ids()


def test_replicas_post_each_comment_once(sandbox: Sandbox, store_url: str) -> None:
    """Three replicas (other machines: their attempts wait out the grace) round at once."""
    runtime = runtime_for(sandbox, store_url, enabled=False)
    sync_pass(runtime)
    settings = settings_for(sandbox, store_url)
    replicas = [ProcessIdentity(f"replica-{n}", "1", 100 + n, "0000") for n in range(3)]
    rounds = [
        WriteBack(Store(store_url), runtime.trello, settings, identity=identity)
        for identity in replicas
    ]
    threads = [threading.Thread(target=r.run) for r in rounds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(syncd_comments(sandbox)) == 4 and len(posts(sandbox)) == 4
    assert all(r["comment_id"] for r in runtime.store.writeback_comments())


def test_rounds_of_one_process_never_overlap(sandbox: Sandbox, store_url: str) -> None:
    """Two WriteBack objects of one process: its own attempts are never taken for a dead
    process's (the same identity, one round at a time)."""
    runtime = runtime_for(sandbox, store_url, enabled=False)
    sync_pass(runtime)
    settings = settings_for(sandbox, store_url)
    rounds = [WriteBack(Store(store_url), runtime.trello, settings) for _ in range(3)]
    assert len({str(r.identity) for r in rounds}) == 1
    threads = [threading.Thread(target=r.run) for r in rounds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(syncd_comments(sandbox)) == 4 and len(posts(sandbox)) == 4


def test_an_attempt_still_in_flight_elsewhere_is_left_alone(
    sandbox: Sandbox, store_url: str
) -> None:
    runtime = runtime_for(sandbox, store_url, enabled=False)
    sync_pass(runtime)
    writeback = WriteBack(runtime.store, runtime.trello, settings_for(sandbox, store_url))
    writeback.store.add_writeback_comments(_planned(writeback))
    busy = runtime.store.writeback_comments()[0]
    elsewhere = str(ProcessIdentity("another-host", "1", 7, "0000beef"))
    assert runtime.store.claim_writeback(busy["id"], elsewhere, utc_iso(datetime.now(UTC)), None)
    report = writeback.run()
    assert (report.posted, report.in_doubt, report.owed) == (3, 1, 1)
    assert not [r for r in sandbox.requests if r.path.startswith("/1/cards/") and r.method == "GET"]


def _planned(writeback: WriteBack) -> list[dict[str, Any]]:
    rows = preview(writeback.store, writeback.settings, datetime.now(UTC))
    return [{k: v for k, v in row.items() if k not in ("in_doubt", "card_url")} for row in rows]


class _FakeTime:
    """A clock for the bucket whose `wait` (write-back's sleep) moves it forward."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waited = 0.0

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.now += seconds
        self.waited += seconds
        return False

    def is_set(self) -> bool:
        return False

    def set(self) -> None:
        pass


def test_a_burst_is_spread_within_the_budget_leaving_the_sync_its_reserve(
    sandbox: Sandbox, store_url: str
) -> None:
    runtime = runtime_for(sandbox, store_url, enabled=False)
    sync_pass(runtime)
    fake = _FakeTime()
    bucket = TokenBucket(4, 10.0, clock=fake, sleep=fake.wait)  # 4 per 10 s: 2 for write-back
    runtime.trello.session.bucket = bucket
    taken: list[tuple[float, float]] = []  # (when, tokens left)
    take = bucket.try_acquire

    def spy(reserve: int = 0) -> bool:
        took = take(reserve)
        if took:
            taken.append((fake.now, bucket._tokens))
        return took

    bucket.try_acquire = spy  # type: ignore[method-assign]
    writeback = WriteBack(
        runtime.store,
        runtime.trello,
        settings_for(sandbox, store_url),
        stop=fake,  # type: ignore[arg-type]
        monotonic=fake,
    )
    report = writeback.run()
    assert report.posted == 4
    assert [when for when, _left in taken] == [0.0, 0.0, 10.0, 10.0]  # 2 per window
    assert min(left for _when, left in taken) >= 2  # never below the sync's reserve
    assert bucket.acquire() == 0.0  # the sync's next request waits for nothing


# -- dry run, check, daemon ------------------------------------------------------------------


def test_the_dry_run_prints_what_would_be_posted_and_posts_nothing(
    sandbox: Sandbox, store_url: str
) -> None:
    runtime = runtime_for(sandbox, store_url, enabled=False)
    sync_pass(runtime)
    sandbox.reset_counts()
    settings = settings_for(sandbox, store_url)
    rows = preview(runtime.store, settings, datetime.now(UTC))
    assert {(r["department"], r["code"]) for r in rows} == FIRST_FLAGS
    assert sandbox.requests == [] and runtime.store.writeback_comments() == []
    assert runtime.store.count(m.WritebackState, m.WritebackState.enabled_since.is_not(None)) == 0
    text = render_preview(rows, enabled=True)
    assert text.startswith("write-back would post 4 comment(s) now:")
    assert "62 · TOO_MANY_PRIORITIES opened · card https://trello.com/c/" in text
    assert "- Connecter le SI insertion" in text
    assert render_preview(rows, enabled=False).startswith("write-back is disabled")
    assert sync_pass(runtime_for(sandbox, store_url)).writeback.posted == 4  # type: ignore[union-attr]
    assert preview(runtime.store, settings, datetime.now(UTC)) == []
    assert render_preview([], enabled=True) == "nothing to post\n"


def test_write_back_disabled_comments_nothing_and_forgets_the_events_meanwhile(
    sandbox: Sandbox, store_url: str
) -> None:
    runtime = runtime_for(sandbox, store_url)
    sync_pass(runtime)
    off = runtime_for(sandbox, store_url, enabled=False)
    card62 = dashboard_card(off.store, "62")
    world = sandbox.world
    world.set_check_item(card62, world.find_check_item(card62, "Connecter le SI"), True)
    result = sync_pass(off)
    assert result.writeback is None and len(syncd_comments(sandbox)) == 4
    assert off.store.writeback_state()["enabled_since"] is None
    back_on = runtime_for(sandbox, store_url)
    assert sync_pass(back_on).writeback.posted == 1  # type: ignore[union-attr]
    # … the resolution of a comment a referent saw is still said
    assert ("62", "TOO_MANY_PRIORITIES", "resolved") in events(back_on.store)


def test_the_daemon_posts_from_its_own_thread(sandbox: Sandbox, tmp_path: Any) -> None:
    from syncd.daemon.run import Daemon

    daemon = Daemon(settings_for(sandbox, f"sqlite:///{tmp_path}/daemon.db"), policy=FAST)
    assert daemon.writeback is not None
    daemon.start_workers()
    try:
        daemon.sync_pass()
        deadline = time.monotonic() + 30
        while len(syncd_comments(sandbox)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(syncd_comments(sandbox)) == 4
        daemon.sync_pass()
        time.sleep(0.3)
        assert len(posts(sandbox)) == 4
    finally:
        daemon.stop(5)


class _AllButWriteback:
    """Leases of a replica that holds every duty but write-back (another replica posts)."""

    def __init__(self) -> None:
        self._held: frozenset[str] = frozenset()

    def acquire(self, duties: Any) -> frozenset[str]:
        self._held = frozenset(d for d in duties if d != "writeback")
        return self._held

    def held(self) -> frozenset[str]:
        return self._held

    def release(self) -> None:
        self._held = frozenset()


def test_a_daemon_without_the_writeback_duty_posts_nothing(sandbox: Sandbox, tmp_path: Any) -> None:
    from syncd.daemon.run import Daemon
    from syncd.daemon.scheduler import duties_of

    settings = settings_for(sandbox, f"sqlite:///{tmp_path}/replica.db")
    assert "writeback" in duties_of(settings)
    daemon = Daemon(settings, policy=FAST, leases=_AllButWriteback())
    daemon.start_workers()
    try:
        result = daemon.sync_pass()
        assert result is not None and result.flags is not None and result.flags.opened == 5
        daemon.scheduler.tick()  # the write-back task: not held, nothing woken
        time.sleep(0.3)
        assert posts(sandbox) == [] and daemon.writeback is not None
        assert daemon.writeback.rounds == 0
    finally:
        daemon.stop(5)
