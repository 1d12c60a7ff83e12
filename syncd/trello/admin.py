"""`syncd webhooks register|list|delete`: the Trello webhooks of the configured boards.

Owns the idempotent management of our webhooks: exactly one per configured board, its
``idModel`` the board's real 24-hex id (from the store's sync state, else one
``GET /1/boards/{shortLink}?fields=id``), its ``callbackURL`` ``public_url + /webhooks/trello``.
Only webhooks with that callback are ours: `delete_webhooks` never touches another's. Every
function returns the lines the command prints (no secret in them: the token never appears).
"""

from __future__ import annotations

import re
from typing import Any

from syncd.config import BoardConfig
from syncd.runtime import Runtime
from syncd.trello.webhooks import BoardIndex, trello_callback_url

_HEX24 = re.compile(r"^[0-9a-fA-F]{24}$")
DESCRIPTION = "syncd mirror: {ref} ({role})"


def board_ids(runtime: Runtime, index: BoardIndex | None = None) -> dict[str, str]:
    """Each configured board's real id: as configured, from the store, else one request."""
    states = {row["board_ref"]: row for row in runtime.store.sync_states()}
    stored = {row["short_link"]: row["id"] for row in runtime.store.board_rows()}
    result: dict[str, str] = {}
    for board in runtime.settings.trello.boards:
        board_id = (
            board.id
            if _HEX24.match(board.id)
            else (states.get(board.id) or {}).get("board_id") or stored.get(board.id)
        )
        if not board_id:
            board_id = runtime.trello.board_id(board.id)
        result[board.id] = board_id
        if index is not None:
            index.learn(board, board_id)
    return result


def _ours(runtime: Runtime) -> list[dict[str, Any]]:
    url = trello_callback_url(runtime.settings)
    return [hook for hook in runtime.trello.webhooks() if hook.get("callbackURL") == url]


def register_webhooks(runtime: Runtime, *, index: BoardIndex | None = None) -> list[str]:
    """Make exactly one webhook per configured board (creates nothing when all exist)."""
    url = trello_callback_url(runtime.settings)
    ids = board_ids(runtime, index)
    existing = _ours(runtime)
    lines: list[str] = []
    for board in runtime.settings.trello.boards:
        board_id = ids[board.id]
        hooks = [hook for hook in existing if hook.get("idModel") == board_id]
        if hooks:
            hook = hooks[0]
            state = "active" if hook.get("active", True) else "INACTIVE"
            lines.append(f"{board.id}: webhook {hook['id']} already registered ({state})")
            continue
        hook = runtime.trello.create_webhook(url, board_id, _description(board))
        lines.append(f"{board.id}: webhook {hook.get('id')} registered → {url}")
    return lines


def list_webhooks(runtime: Runtime) -> list[str]:
    """Our token's webhooks: id, board, callback, active, consecutive failures."""
    try:
        ids = board_ids(runtime)
    except Exception:  # listing must work even when a board cannot be resolved
        ids = {}
    names = {board_id: ref for ref, board_id in ids.items()}
    url = trello_callback_url(runtime.settings)
    hooks = runtime.trello.webhooks()
    if not hooks:
        return ["no webhook registered for this token"]
    lines = ["id                        board                     active  failures  callback"]
    for hook in hooks:
        model = str(hook.get("idModel", ""))
        board = names.get(model, model)
        mark = "" if hook.get("callbackURL") == url else "  (not ours)"
        lines.append(
            f"{hook.get('id', '')!s:<25} {board:<25} "
            f"{'yes' if hook.get('active', True) else 'no':<7} "
            f"{hook.get('consecutiveFailures', 0)!s:<9} {hook.get('callbackURL', '')}{mark}"
        )
    return lines


def delete_webhooks(runtime: Runtime) -> list[str]:
    """Delete our webhooks (callback == ours) and only those."""
    lines: list[str] = []
    for hook in _ours(runtime):
        runtime.trello.delete_webhook(hook["id"])
        lines.append(f"deleted webhook {hook['id']} (board {hook.get('idModel')})")
    return lines or ["no webhook of ours to delete"]


def _description(board: BoardConfig) -> str:
    return DESCRIPTION.format(ref=board.id, role=board.role)
