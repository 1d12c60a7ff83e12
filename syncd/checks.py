"""`syncd check`: the config is valid (it loaded), the store opens, each remote answers once."""

from __future__ import annotations

from collections.abc import Iterator

from adapters.transport import ApiError
from state.store import Store, StoreError
from syncd.config import ConfigError, Settings
from syncd.runtime import require_secret


def run_checks(settings: Settings) -> Iterator[tuple[bool, str]]:
    """Yield (ok, line) for the store, each Trello board and each Figma file."""
    from adapters.figma import FigmaAPI, make_figma_session
    from adapters.transport import RetryPolicy
    from adapters.trello import TrelloAPI, make_trello_session

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
        token = require_secret(settings, "trello_token")
        session = make_trello_session(
            api_base=settings.trello.api_base,
            api_key=require_secret(settings, "trello_api_key"),
            token=token,
            max_requests_per_10s=settings.trello.max_requests_per_10s,
            timeout=settings.trello.timeout_seconds,
            policy=once,
        )
        trello = TrelloAPI(session, token=token)
        newest = trello.newest_action_ids([board.id for board in settings.trello.boards])
        for board in settings.trello.boards:
            yield (
                True,
                f"trello board {board.id} ({board.role}): reachable, "
                f"newest action {newest[board.id]}",
            )
    except (ConfigError, ApiError) as exc:
        yield False, f"trello: {exc}"
    for key in settings.figma.files:
        try:
            figma = FigmaAPI(
                make_figma_session(
                    api_base=settings.figma.api_base,
                    token=require_secret(settings, "figma_token"),
                    max_requests_per_minute=settings.figma.max_requests_per_minute,
                    timeout=settings.figma.timeout_seconds,
                    policy=once,
                )
            )
            meta = figma.file_meta(key)
            yield True, f"figma file {key}: {meta.get('file', {}).get('name', '')!r}"
        except (ConfigError, ApiError) as exc:
            yield False, f"figma file {key}: {exc}"
    if settings.secrets.trello_api_secret is None:
        yield False, "TRELLO_API_SECRET: missing (webhook signatures cannot be verified)"
