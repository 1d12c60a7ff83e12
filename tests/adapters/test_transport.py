"""The one HTTP transport: rewrite, auth header, bucket, retries, Retry-After, clear errors."""

from __future__ import annotations

import threading
import time

import pytest
import requests
import responses

from adapters.transport import (
    ApiSession,
    HttpStatusError,
    RateLimited,
    RetryPolicy,
    TokenBucket,
    TransientError,
    endpoint_template,
)
from adapters.trello import TrelloAPI, make_trello_session

BASE = "http://sandbox.test/1"


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def trello_session(sleep: Sleeps | None = None, attempts: int = 4) -> ApiSession:
    session = make_trello_session(
        api_base=BASE,
        api_key="KEY123",
        token="TOKEN456",
        max_requests_per_10s=90,
        timeout=5,
        policy=RetryPolicy(max_attempts=attempts, backoff_initial=0.01, window_seconds=0.05),
    )
    if sleep is not None:
        session._sleep = sleep
    return session


@responses.activate
def test_rewrites_both_public_prefixes_and_moves_credentials_to_a_header() -> None:
    responses.get(f"{BASE}/boards/abc", json={"id": "abc"})
    responses.get(f"{BASE}/tokens/TOKEN456/webhooks", json=[])
    api = TrelloAPI(trello_session(), token="TOKEN456")
    assert api.client.fetch_json("/boards/abc") == {"id": "abc"}
    session = api.session
    session.get("https://trello.com/1/tokens/TOKEN456/webhooks")
    for call in responses.calls:
        url = call.request.url or ""
        assert url.startswith(BASE)
        assert "key=" not in url and "KEY123" not in url
        assert call.request.headers["Authorization"] == (
            'OAuth oauth_consumer_key="KEY123", oauth_token="TOKEN456"'
        )


@responses.activate
def test_retries_5xx_and_disconnects_then_succeeds() -> None:
    url = f"{BASE}/boards/abc"
    responses.get(url, status=502, body="bad gateway")
    responses.get(url, body=requests.ConnectionError("reset"))
    responses.get(url, json={"ok": True})
    sleeps = Sleeps()
    session = trello_session(sleeps)
    assert session.get("https://api.trello.com/1/boards/abc").json() == {"ok": True}
    assert len(responses.calls) == 3
    assert len(sleeps.calls) == 2 and all(s > 0 for s in sleeps.calls)
    assert session.stats.retries == 2


@responses.activate
def test_gives_up_after_bounded_attempts_with_one_line() -> None:
    responses.get(f"{BASE}/boards/abc", status=503, body="down\nfor\nmaintenance")
    session = trello_session(Sleeps(), attempts=3)
    with pytest.raises(TransientError) as error:
        session.get(f"{BASE}/boards/abc")
    assert len(responses.calls) == 3
    assert "503" in str(error.value) and "\n" not in str(error.value)
    assert "TOKEN456" not in str(error.value)


@responses.activate
def test_429_waits_out_the_window_for_every_thread() -> None:
    url = f"{BASE}/boards/abc"
    responses.get(url, status=429, json={"error": "API_TOKEN_LIMIT_EXCEEDED"})
    responses.get(url, json={"ok": True})
    session = trello_session()
    assert session.bucket is not None
    started = time.monotonic()
    assert session.get(url).json() == {"ok": True}
    assert session.stats.rate_limited == 1
    # the bucket, shared by every thread, blocked for the whole window before the retry
    assert time.monotonic() - started >= 0.05


@responses.activate
def test_retry_after_is_honoured_and_a_long_one_fails_fast() -> None:
    url = f"{BASE}/boards/abc"
    responses.get(url, status=429, headers={"Retry-After": "2"})
    responses.get(url, json={"ok": True})
    sleeps = Sleeps()
    session = trello_session(sleeps)
    assert session.bucket is not None
    session.bucket._sleep = Sleeps()
    assert session.get(url).json() == {"ok": True}
    assert 2.0 in sleeps.calls

    responses.get(f"{BASE}/later", status=429, headers={"Retry-After": "86400"})
    sleeps.calls.clear()
    with pytest.raises(RateLimited) as error:
        session.get(f"{BASE}/later")
    assert error.value.retry_after == pytest.approx(86400)
    assert sleeps.calls == []


@responses.activate
def test_4xx_is_not_retried_and_garbage_is_a_clear_error() -> None:
    responses.get(f"{BASE}/boards/gone", status=404, body="The requested resource was not found.")
    responses.get(f"{BASE}/boards/junk", body="<html>oops</html>")
    api = TrelloAPI(trello_session(Sleeps()))
    with pytest.raises(HttpStatusError) as error:
        api.board_snapshot("gone")
    assert error.value.status == 404 and len(responses.calls) == 1
    with pytest.raises(Exception, match="not JSON"):
        api.board_snapshot("junk")


def test_token_bucket_spends_capacity_then_waits() -> None:
    now = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(5, 10.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        assert bucket.acquire() == 0.0
    assert bucket.acquire() == pytest.approx(2.0)  # one token refills every 2 s
    bucket.pause(10.0)
    assert bucket.acquire() == pytest.approx(12.0)


def test_token_bucket_is_shared_by_threads() -> None:
    bucket = TokenBucket(50, 0.5)
    taken: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(20):
            bucket.acquire()
            with lock:
                taken.append(1)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(taken) == 80


def test_endpoint_template_hides_ids() -> None:
    assert endpoint_template("/1/boards/oSmy09cz/actions") == "/1/boards/{id}/actions"
    assert endpoint_template("/1/tokens/abc/webhooks") == "/1/tokens/{id}/webhooks"
    assert endpoint_template("/1/batch") == "/1/batch"


def test_try_acquire_leaves_the_reserve_and_never_blocks() -> None:
    now = [0.0]
    bucket = TokenBucket(10, 10.0, clock=lambda: now[0], sleep=lambda _s: None)
    taken = sum(bucket.try_acquire(reserve=5) for _ in range(10))
    assert taken == 5  # the other 5 stay for the sync
    assert bucket.seconds_until(6) == pytest.approx(1.0)
    for _ in range(5):
        assert bucket.acquire() == 0.0  # the sync still gets its reserve without waiting
    now[0] += 1.0
    assert not bucket.try_acquire(reserve=5)
    bucket.pause(3.0)
    assert not bucket.try_acquire() and bucket.seconds_until(1) == pytest.approx(4.0)


@responses.activate
def test_single_attempt_neither_retries_nor_takes_a_token() -> None:
    responses.post(f"{BASE}/cards/c1/actions/comments", status=503)
    responses.post(f"{BASE}/cards/c2/actions/comments", status=429, json={})
    session = trello_session(Sleeps())
    assert session.bucket is not None
    api = TrelloAPI(session, token="TOKEN456")
    before = session.bucket._tokens
    with pytest.raises(TransientError):
        api.post_comment("c1", "texte")
    with pytest.raises(RateLimited):
        api.post_comment("c2", "texte")
    assert len(responses.calls) == 2  # one attempt each
    assert session.bucket._tokens <= before  # a 429 still empties the window for everyone
    responses.get(f"{BASE}/boards/b", status=503)
    responses.get(f"{BASE}/boards/b", json={"id": "b"})
    assert api.board_snapshot("b") == {"id": "b"}  # outside the block, retries as before
