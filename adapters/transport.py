"""The one HTTP transport of syncd: `ApiSession`, a `requests.Session` that owns the wire.

Every request syncd sends to Trello or Figma goes through an `ApiSession`, the one place that:

- rewrites the public API prefixes (``https://api.trello.com/1``, ``https://trello.com/1``,
  ``https://api.figma.com``) to the configured base URL (the sandbox in tests and the demo);
- strips credentials from the query string (py-trello puts ``key``/``token`` there) and sends
  them as headers instead, so secrets never appear in URLs, logs or tracebacks;
- sets a timeout on every request (py-trello sets none);
- spends a token bucket shared by every thread (`TokenBucket`), and on a 429 makes every thread
  wait out the window;
- retries connection errors, timeouts, 5xx and 429 with exponential backoff and jitter
  (tenacity), honouring ``Retry-After`` when present, and gives up after a bounded number of
  tries with a one-line `ApiError`;
- reports each attempt to an optional observer (metrics) and keeps plain counters.

`ApiSession.single_attempt()` turns the retries off for the requests of one thread: a write
that must not be repeated blindly (a timeout may hide a success that only the caller can check)
makes one attempt, with a token its caller took itself (`TokenBucket.try_acquire`).

A ``Retry-After`` longer than `RetryPolicy.max_retry_after` is not slept through: the request
fails at once with `RateLimited` carrying the time to wait, and the caller decides (Figma marks
the file "rate limited until T").
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
)

__all__ = [
    "ApiError",
    "ApiSession",
    "HttpStatusError",
    "RateLimited",
    "RequestEvent",
    "RetryPolicy",
    "TokenBucket",
    "TransientError",
]


class ApiError(Exception):
    """A remote call failed for good; the message is one clear line without secrets."""


class HttpStatusError(ApiError):
    """The remote answered a non-retryable HTTP error status."""

    def __init__(self, message: str, status: int, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class TransientError(ApiError):
    """A failure worth retrying: 5xx, connection reset, timeout."""


class RateLimited(ApiError):
    """The remote answered 429; `retry_after` is the seconds it asked us to wait, if any."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """How hard the transport tries before giving up."""

    max_attempts: int = 6  # tries against errors (5xx, disconnects, timeouts)
    max_rate_limited: int = 30  # 429s ridden out per request (each waits out the window)
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    window_seconds: float = 10.0  # the remote's rate-limit window, waited out on a bare 429
    max_retry_after: float = 120.0  # a longer Retry-After fails fast instead of sleeping


@dataclass(frozen=True)
class RequestEvent:
    """One HTTP attempt, as reported to the observer (metrics)."""

    service: str
    method: str
    endpoint: str  # path with ids replaced by {id}
    status: int  # 0 when no answer came back
    seconds: float
    outcome: str  # "ok", "retry", "rate_limited", "error"


class TokenBucket:
    """A thread-safe token bucket: `capacity` requests per `window` seconds, refilled smoothly.

    `pause(seconds)` empties the bucket and blocks every caller for that long (a 429 means the
    remote's window is spent for everyone).
    """

    def __init__(
        self,
        capacity: int,
        window: float = 10.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if capacity < 1:
            raise ValueError("a token bucket needs a capacity of at least 1")
        self.capacity = capacity
        self.window = window
        self._rate = capacity / window
        self._tokens = float(capacity)
        self._clock = clock
        self._sleep = sleep
        self._stamp = clock()
        self._blocked_until = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, blocking until one is free; return the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                if now < self._blocked_until:
                    delay = self._blocked_until - now
                else:
                    self._tokens = min(
                        self.capacity, self._tokens + (now - self._stamp) * self._rate
                    )
                    self._stamp = now
                    if self._tokens >= 1.0:
                        self._tokens -= 1.0
                        return waited
                    delay = (1.0 - self._tokens) / self._rate
            self._sleep(delay)
            waited += delay

    def try_acquire(self, reserve: int = 0) -> bool:
        """Take one token only when one is free beyond `reserve` tokens; never blocks.

        For work that must leave the budget's headroom to the others (write-back leaves it to
        the sync): it spends the same budget but never makes anyone else wait.
        """
        with self._lock:
            now = self._clock()
            if now < self._blocked_until:
                return False
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now
            if self._tokens >= 1.0 + reserve:
                self._tokens -= 1.0
                return True
            return False

    def seconds_until(self, tokens: float) -> float:
        """How long until `tokens` tokens are free (0 when they already are)."""
        with self._lock:
            now = self._clock()
            blocked = max(0.0, self._blocked_until - now)
            available = min(self.capacity, self._tokens + max(0.0, now - self._stamp) * self._rate)
            if blocked:
                available = 0.0
            return blocked + max(0.0, tokens - available) / self._rate

    def pause(self, seconds: float) -> None:
        """Block every caller for `seconds` and start the next window empty."""
        with self._lock:
            now = self._clock()
            self._blocked_until = max(self._blocked_until, now + seconds)
            self._tokens = 0.0
            self._stamp = self._blocked_until


_COLLECTIONS = frozenset(
    {"boards", "cards", "lists", "webhooks", "tokens", "checklists", "members", "actions", "files"}
)


def endpoint_template(path: str) -> str:
    """`/1/boards/5f.../cards` -> `/1/boards/{id}/cards`: a low-cardinality metrics label."""
    parts: list[str] = []
    for segment in path.split("/"):
        after_collection = bool(parts) and parts[-1] in _COLLECTIONS
        keep = not segment or not after_collection or segment in {"me"}
        parts.append(segment if keep else "{id}")
    return "/".join(parts)


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


@dataclass
class TransportStats:
    """Plain counters, readable without the metrics registry (per-board summaries, benches)."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    by_endpoint: Counter[str] = field(default_factory=Counter)


class ApiSession(requests.Session):
    """A `requests.Session` that rewrites, authenticates, throttles and retries (see module doc)."""

    def __init__(
        self,
        *,
        service: str,
        base_url: str,
        rewrite_prefixes: tuple[str, ...] = (),
        auth_headers: Mapping[str, str] | None = None,
        strip_params: tuple[str, ...] = (),
        timeout: float = 30.0,
        bucket: TokenBucket | None = None,
        policy: RetryPolicy | None = None,
        observer: Callable[[RequestEvent], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        self.service = service
        self.base_url = base_url.rstrip("/")
        self.rewrite_prefixes = tuple(p.rstrip("/") for p in rewrite_prefixes)
        self._auth_headers = dict(auth_headers or {})
        self.strip_params = strip_params
        self.timeout = timeout
        self.bucket = bucket
        self.policy = policy or RetryPolicy()
        self.observer = observer
        self.stats = TransportStats()
        self._stats_lock = threading.Lock()
        self._sleep = sleep
        self._local = threading.local()
        self.headers["User-Agent"] = "syncd/0.1 (+https://rdv-solidarites.fr)"

    @contextmanager
    def single_attempt(self) -> Iterator[None]:
        """Inside the block, this thread's requests make one attempt: no retry, no token taken
        (the caller took one), a 429 or a 5xx raised at once (see the module docstring)."""
        previous = getattr(self._local, "single", False)
        self._local.single = True
        try:
            yield
        finally:
            self._local.single = previous

    # -- URL and parameters -------------------------------------------------------------

    def resolve(self, url: str) -> str:
        """Map a public API URL (or a path) onto the configured base URL."""
        for prefix in self.rewrite_prefixes:
            if url == prefix or url.startswith(prefix + "/") or url.startswith(prefix + "?"):
                return self.base_url + url[len(prefix) :]
        if url.startswith("/"):
            return self.base_url + url
        return url

    def _clean_params(self, params: Any) -> Any:
        if not self.strip_params or params is None:
            return params
        if isinstance(params, Mapping):
            return {k: v for k, v in params.items() if k not in self.strip_params}
        return [(k, v) for k, v in params if k not in self.strip_params]

    # -- the request --------------------------------------------------------------------

    def request(  # type: ignore[override]
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        method = method.decode() if isinstance(method, bytes) else str(method)
        url = self.resolve(url.decode() if isinstance(url, bytes) else str(url))
        if "params" in kwargs:
            kwargs["params"] = self._clean_params(kwargs["params"])
        headers = dict(kwargs.pop("headers", None) or {})
        headers.update(self._auth_headers)
        kwargs["headers"] = headers
        kwargs.setdefault("timeout", self.timeout)
        if not kwargs.get("proxies"):
            kwargs.pop("proxies", None)
        endpoint = endpoint_template(urlsplit(url).path)
        if getattr(self._local, "single", False):
            return self._attempt(method, url, endpoint, args, kwargs, take_token=False)

        failures = {"transient": 0, "rate_limited": 0}

        def stop(state: RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            kind = "rate_limited" if isinstance(exc, RateLimited) else "transient"
            failures[kind] += 1
            if kind == "rate_limited":
                return failures[kind] >= self.policy.max_rate_limited
            return failures[kind] >= self.policy.max_attempts

        retrying = Retrying(
            stop=stop,
            retry=retry_if_exception(_is_retryable),
            wait=self._wait,
            sleep=self._sleep,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                return self._attempt(method, url, endpoint, args, kwargs)
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(
        self,
        method: str,
        url: str,
        endpoint: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        take_token: bool = True,
    ) -> requests.Response:
        if self.bucket is not None and take_token:
            self.bucket.acquire()
        where = f"{self.service} {method} {_safe(url)}"
        started = time.perf_counter()
        try:
            response = super().request(method, url, *args, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            self._report(method, endpoint, 0, started, "retry")
            raise TransientError(f"{where}: {type(exc).__name__} (no answer)") from None
        status = response.status_code
        if status == 429:
            retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
            self._report(method, endpoint, status, started, "rate_limited")
            message = f"{where}: 429 rate limited"
            if retry_after is not None and retry_after > self.policy.max_retry_after:
                raise _FinalRateLimit(f"{message}, retry after {retry_after:.0f} s", retry_after)
            if self.bucket is not None:
                self.bucket.pause(retry_after if retry_after is not None else self.bucket.window)
            raise RateLimited(message, retry_after)
        if status >= 500:
            self._report(method, endpoint, status, started, "retry")
            raise TransientError(f"{where}: {status} {_snippet(response.text)}")
        if status >= 400:
            self._report(method, endpoint, status, started, "error")
            raise HttpStatusError(
                f"{where}: {status} {_snippet(response.text)}", status, response.text[:2000]
            )
        self._report(method, endpoint, status, started, "ok")
        return response

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        with self._stats_lock:
            self.stats.retries += 1
        if isinstance(exc, RateLimited):
            if exc.retry_after is not None:
                return exc.retry_after
            # The bucket already blocks everyone for the window; don't add to it.
            return 0.0 if self.bucket is not None else self.policy.window_seconds
        backoff = min(
            self.policy.backoff_max,
            self.policy.backoff_initial * (2 ** (state.attempt_number - 1)),
        )
        return backoff / 2 + random.uniform(0, backoff / 2)

    def _report(
        self, method: str, endpoint: str, status: int, started: float, outcome: str
    ) -> None:
        with self._stats_lock:
            self.stats.requests += 1
            self.stats.by_endpoint[endpoint] += 1
            if status == 429:
                self.stats.rate_limited += 1
        if self.observer is not None:
            self.observer(
                RequestEvent(
                    self.service, method, endpoint, status, time.perf_counter() - started, outcome
                )
            )


class _FinalRateLimit(RateLimited):
    """A 429 whose Retry-After is too long to sleep through: not retried."""


# tenacity retries RateLimited; the long-wait subclass must escape it.
def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, TransientError | RateLimited) and not isinstance(exc, _FinalRateLimit)


def _safe(url: str) -> str:
    """The URL for messages: no query string, and a token in the path (`/tokens/X`) masked."""
    parts = urlsplit(url)
    path = re.sub(r"(/tokens/)[^/]+", r"\1***", parts.path)
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _snippet(text: str, limit: int = 120) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"
