"""Wiring: from validated `Settings` to a ready store, Trello and Figma clients and sync engines.

`Runtime` is what every command works with (the one sync pass over it is `syncd.sync_pass`);
`trello_client` and `figma_client` are the one place clients are built from settings; with
``writeback.enabled`` it carries the `WriteBack` that comments after each flag computation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from adapters.figma import FigmaAPI, make_figma_session
from adapters.transport import RequestEvent, RetryPolicy
from adapters.trello import TrelloAPI, make_trello_session
from state.store import BoardBatch, Store, WriteResult
from syncd.config import ConfigError, Settings
from syncd.figma.engine import FigmaMirror
from syncd.trello.engine import Mirror

if TYPE_CHECKING:  # imported by `build_runtime` only with writeback.enabled (Jinja2 and more)
    from syncd.writeback.service import WriteBack


@dataclass
class Runtime:
    settings: Settings
    store: Store
    trello: TrelloAPI
    mirror: Mirror
    figma: FigmaMirror | None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    writeback: WriteBack | None = None  # with writeback.enabled


def require_secret(settings: Settings, name: str) -> str:
    """A secret's value, or a `ConfigError` naming the missing environment variable."""
    secret = getattr(settings.secrets, name)
    alias = type(settings.secrets).model_fields[name].alias
    if secret is None or not secret.get_secret_value():
        raise ConfigError(f"{alias}: missing from the environment")
    return str(secret.get_secret_value())


def trello_client(
    settings: Settings,
    *,
    policy: RetryPolicy | None = None,
    observer: Callable[[RequestEvent], None] | None = None,
) -> TrelloAPI:
    """The Trello client of these settings (its own rate-limited session)."""
    token = require_secret(settings, "trello_token")
    session = make_trello_session(
        api_base=settings.trello.api_base,
        api_key=require_secret(settings, "trello_api_key"),
        token=token,
        max_requests_per_10s=settings.trello.max_requests_per_10s,
        timeout=settings.trello.timeout_seconds,
        policy=policy,
        observer=observer,
    )
    return TrelloAPI(session, token=token)


def figma_client(
    settings: Settings,
    *,
    policy: RetryPolicy | None = None,
    observer: Callable[[RequestEvent], None] | None = None,
) -> FigmaAPI:
    """The Figma client of these settings (its own rate-limited session)."""
    session = make_figma_session(
        api_base=settings.figma.api_base,
        token=require_secret(settings, "figma_token"),
        max_requests_per_minute=settings.figma.max_requests_per_minute,
        timeout=settings.figma.timeout_seconds,
        policy=policy,
        observer=observer,
    )
    return FigmaAPI(session)


def build_runtime(
    settings: Settings,
    *,
    store: Store | None = None,
    observer: Callable[[RequestEvent], None] | None = None,
    policy: RetryPolicy | None = None,
    progress: Callable[[str], None] | None = None,
    write: Callable[[BoardBatch], WriteResult] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Runtime:
    """Open the store (applying migrations) and build the clients from the settings."""
    trello = trello_client(settings, policy=policy, observer=observer)
    figma_api = (
        figma_client(settings, policy=policy, observer=observer) if settings.figma.files else None
    )
    clock = clock or (lambda: datetime.now(UTC))
    store = store or Store(settings.store.url)
    mirror = Mirror(
        trello, store, settings.trello.boards, clock=clock, progress=progress, write=write
    )
    figma = None
    if figma_api is not None:
        figma = FigmaMirror(
            figma_api,
            store,
            settings.figma.files,
            clock=clock,
            tree_interval=timedelta(minutes=settings.figma.tree_read_interval_minutes),
        )
    writeback = None
    if settings.writeback.enabled:
        from syncd.writeback.service import WriteBack

        writeback = WriteBack(store, trello, settings, clock=clock)
    return Runtime(settings, store, trello, mirror, figma, clock, writeback)
