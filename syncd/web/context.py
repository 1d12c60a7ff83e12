"""What the HTTP layer is given: `WebContext`, and the two things it needs from a running daemon.

`create_app(context)` serves the routes over this object alone: settings, a store to read,
metrics, a readiness provider, a delivery intake and a clock. The daemon builds one from its
parts (`syncd.daemon.run.Daemon.web_context`); a test builds one from a store filled by hand.
The web layer never imports the daemon.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any, Protocol

from state.store import Store
from syncd.config import BoardConfig, Settings
from syncd.metrics import Metrics
from syncd.trello.schema import TrelloAction
from syncd.trello.webhooks import BoardIndex


class IntakeClosed(Exception):
    """The intake takes no more deliveries (the daemon is stopping): answered 503."""


class DeliveryIntake(Protocol):
    """Where verified deliveries go. `offer_trello` returns once the delivery is durably queued
    (the daemon: a group commit into ``webhook_queue``; the route waits for it off the event
    loop), `offer_figma` once the refresh is queued; the work itself happens later.

    What is offered is already checked (`syncd.trello.schema`, `syncd.figma.events`): a
    `TrelloAction` (``as_trello()`` gives it back as JSON for a durable queue; validate it
    again with `syncd.trello.schema.parse_action` when reading it back), and a configured
    file key with an event type syncd acts on.
    """

    def offer_trello(self, action: TrelloAction, board: BoardConfig, board_id: str) -> bool:
        """Queue a verified Trello action; False when it is a replay. May raise IntakeClosed."""
        ...

    def queue_trello(self, action: TrelloAction, board: BoardConfig, board_id: str) -> Future[bool]:
        """`offer_trello` without blocking: a future resolved once the action is queued (what
        the route awaits, so the event loop keeps serving). May raise IntakeClosed."""
        ...

    def offer_figma(self, key: str, event: str) -> None:
        """Queue a Figma event of a configured file. May raise IntakeClosed."""
        ...


class Readiness(Protocol):
    """The sync's health as `/readyz` and `/metrics` tell it."""

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """(ready, the JSON body of /readyz)."""
        ...

    def last_success(self) -> dict[str, datetime | None]:
        """Per configured board, the last successful sync."""
        ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


class WebContext:
    """Everything the routes use (see the module docstring).

    `boards` matches a delivery's board against the configured ones; by default one learning
    from `store` (the daemon passes the index its webhook registration also teaches).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        metrics: Metrics,
        health: Readiness,
        intake: DeliveryIntake,
        clock: Callable[[], datetime] = _utc_now,
        boards: BoardIndex | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.health = health
        self.intake = intake
        self.clock = clock
        self.boards = boards or BoardIndex(settings.trello.boards, store)
