"""Wiring: from validated `Settings` to a ready store, Trello and Figma clients and sync engines.

`Runtime` is what every command works with; `sync_pass` is one complete sync (every Trello
board, every Figma file, then the flags, then write-back when enabled), shared by `syncd sync`,
`syncd demo` and the daemon.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from adapters.figma import FigmaAPI, make_figma_session
from adapters.transport import RequestEvent, RetryPolicy
from adapters.trello import TrelloAPI, make_trello_session
from state.store import BoardBatch, Store, WriteResult, utc_iso
from syncd.config import ConfigError, Settings
from syncd.figma.engine import FigmaFileReport, FigmaMirror
from syncd.rules.facts import rules_from_config
from syncd.rules.flags import Recomputed, recompute
from syncd.trello.engine import BoardReport, Mirror
from syncd.writeback.service import RoundReport, WriteBack


@dataclass
class Runtime:
    settings: Settings
    store: Store
    trello: TrelloAPI
    mirror: Mirror
    figma: FigmaMirror | None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    writeback: WriteBack | None = None  # with writeback.enabled


@dataclass
class PassResult:
    boards: list[BoardReport]
    figma: list[FigmaFileReport]
    flags: Recomputed | None
    writeback: RoundReport | None = None

    @property
    def failed(self) -> list[str]:
        failures = [f"{r.board}: {r.error}" for r in self.boards if r.error]
        failures += [f"figma {r.key}: {r.error}" for r in self.figma if r.mode == "failed"]
        return failures


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
        figma = FigmaMirror(figma_api, store, settings.figma.files, clock=clock)
    writeback = (
        WriteBack(store, trello, settings, clock=clock) if settings.writeback.enabled else None
    )
    return Runtime(settings, store, trello, mirror, figma, clock, writeback)


def sync_pass(runtime: Runtime, *, full: bool = False) -> PassResult:
    """Every Trello board, every Figma file, the governance flags, then write-back."""
    boards = runtime.mirror.sync(full=full)
    figma = runtime.figma.sync(force_tree=False) if runtime.figma else []
    flags = recompute(
        runtime.store, rules_from_config(runtime.settings.governance), runtime.clock()
    )
    return PassResult(boards, figma, flags, writeback_after_flags(runtime, flags))


def writeback_after_flags(runtime: Runtime, flags: Recomputed) -> RoundReport | None:
    """A write-back round after a flag computation (when disabled: remember it was off)."""
    if runtime.writeback is None:
        runtime.store.set_writeback_enabled(False, utc_iso(runtime.clock()))
        return None
    return runtime.writeback.run(flags)
