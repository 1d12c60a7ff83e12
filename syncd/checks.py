"""`syncd check`: the config is valid (it loaded), the store opens, each remote answers once,
whether write-back can post (when enabled; the token's permissions, nothing is posted) and which
access mode guards the dashboard (with a login: the provider's discovery, once)."""

from __future__ import annotations

from collections.abc import Iterator

from adapters.transport import ApiError, RetryPolicy
from state.store import Store, StoreError
from syncd.config import ConfigError, Settings
from syncd.runtime import figma_client, trello_client
from syncd.web.auth import access_checks
from syncd.writeback.service import permission_line


def run_checks(settings: Settings) -> Iterator[tuple[bool, str]]:
    """Yield (ok, line) for the store, each Trello board and each Figma file."""
    yield (
        True,
        f"config: {len(settings.trello.boards)} board(s), "
        f"{len(settings.figma.files)} Figma file(s)",
    )
    try:
        store = Store(settings.store.url)
        yield True, f"store: {store.safe_url}"
        store.close()
    except StoreError as exc:
        yield False, f"store: {exc}"
    once = RetryPolicy(max_attempts=1)
    try:
        trello = trello_client(settings, policy=once)
        checks = trello.change_check([board.id for board in settings.trello.boards])
        for board in settings.trello.boards:
            check = checks[board.id]
            if check.error is not None:
                yield False, f"trello board {board.id} ({board.role}): {check.error}"
            else:
                yield (
                    True,
                    f"trello board {board.id} ({board.role}): reachable, "
                    f"newest action {check.newest}",
                )
    except (ConfigError, ApiError) as exc:
        yield False, f"trello: {exc}"
    else:
        yield permission_line(settings, trello)
    if settings.figma.files:
        try:
            figma = figma_client(settings, policy=once)
        except ConfigError as exc:
            yield False, f"figma: {exc}"
        else:
            for key in settings.figma.files:
                try:
                    yield True, f"figma file {key}: {figma.file_meta(key).get('name', '')!r}"
                except ApiError as exc:
                    yield False, f"figma file {key}: {exc}"
    if settings.secrets.trello_api_secret is None:
        yield False, "TRELLO_API_SECRET: missing (webhook signatures cannot be verified)"
    yield from access_checks(settings)
