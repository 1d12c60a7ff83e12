"""Delivering the digest through Apprise to every ``SYNCD_DIGEST_URLS`` destination.

The URLs carry tokens and passwords: they are secrets. Nothing here logs, prints or raises a URL:
a destination is named by its position and scheme (``destination 2 (mailto)``); the store knows
it by a fingerprint (a SHA-256 prefix of the URL) to remember who already has a period's digest.
Apprise's own log lines (which may quote a URL) are silenced while it sends.

Each destination gets its own Apprise call, so one failing destination never stops the others;
a failing one is tried again with exponential backoff (``attempts`` in all).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from syncd.config import ConfigError

ATTEMPTS = 3
BACKOFF_SECONDS = 1.0


@dataclass(frozen=True)
class Destination:
    """One Apprise URL of ``SYNCD_DIGEST_URLS`` (its repr never shows the URL)."""

    index: int  # 1-based position in SYNCD_DIGEST_URLS
    scheme: str
    url: str

    def __repr__(self) -> str:
        return f"Destination({self.name})"

    @property
    def name(self) -> str:
        return f"destination {self.index} ({self.scheme})"

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.url.encode()).hexdigest()[:16]


def parse_destinations(value: str | None) -> list[Destination]:
    """The space-separated Apprise URLs of ``SYNCD_DIGEST_URLS``; `ConfigError` (one line, no
    URL) for one Apprise does not understand."""
    urls = (value or "").split()
    if not urls:
        return []
    import apprise

    destinations: list[Destination] = []
    for index, url in enumerate(urls, start=1):
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        with _apprise_quiet():
            plugin = apprise.Apprise.instantiate(url) if scheme else None
        if plugin is None:
            shown = f" ({scheme}://…)" if scheme.isalnum() and len(scheme) < 16 else ""
            raise ConfigError(
                f"SYNCD_DIGEST_URLS: destination {index}{shown} is not a URL Apprise understands"
            )
        destinations.append(Destination(index, scheme, url))
    return destinations


@dataclass(frozen=True)
class Failure:
    destination: Destination
    attempts: int


def deliver(
    destinations: Sequence[Destination],
    title: str,
    body: str,
    *,
    attempts: int = ATTEMPTS,
    backoff: float = BACKOFF_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    on_delivered: Callable[[Destination], None] = lambda _d: None,
) -> list[Failure]:
    """Send the Markdown digest to each destination; the failures (after retries), if any."""
    import apprise

    failures: list[Failure] = []
    for destination in destinations:
        for attempt in range(1, attempts + 1):
            if _send_once(apprise, destination, title, body):
                on_delivered(destination)
                break
            if attempt < attempts:
                sleep(backoff * 2 ** (attempt - 1))
        else:
            failures.append(Failure(destination, attempts))
    return failures


def _send_once(apprise: object, destination: Destination, title: str, body: str) -> bool:
    sender = apprise.Apprise()  # type: ignore[attr-defined]
    try:
        with _apprise_quiet():
            sender.add(destination.url)
            result = sender.notify(
                body=body,
                title=title,
                body_format=apprise.NotifyFormat.MARKDOWN,  # type: ignore[attr-defined]
            )
    except Exception:  # a plugin's error text may quote the URL: never shown
        return False
    return bool(result)


@contextmanager
def _apprise_quiet() -> Iterator[None]:
    """Silence Apprise's logger (its lines may carry a destination URL)."""
    logger = logging.getLogger("apprise")
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.CRITICAL + 1)
    logger.propagate = False
    try:
        yield
    finally:
        logger.setLevel(level)
        logger.propagate = propagate
