"""Trello webhook deliveries: the signature, and which configured board a delivery is about.

Owns ``X-Trello-Webhook`` verification (HMAC-SHA1 over the raw body + callback URL, compared as
bytes before anything is parsed) and `BoardIndex`, which matches an action's board (id or short
link) against the configured boards. The payload's typed model is `syncd.trello.schema`;
applying an accepted action is `syncd.trello.apply`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
import time
from collections.abc import Sequence

import structlog

from state.store import Store
from syncd.config import BoardConfig, Settings

log = structlog.get_logger("syncd.webhooks")


TRELLO_PATH = "/webhooks/trello"
_HEX24 = re.compile(r"^[0-9a-fA-F]{24}$")


def trello_callback_url(settings: Settings) -> str:
    """The webhooks' ``callbackURL`` (``public_url`` + ``/webhooks/trello``), signed over too."""
    return settings.server.public_url + TRELLO_PATH


# -- verification -------------------------------------------------------------------------


def trello_signature(secret: str, body: bytes, callback_url: str) -> str:
    """``X-Trello-Webhook``: base64(HMAC-SHA1(app secret, raw body + callbackURL))."""
    key = secret.encode("utf-8", "surrogatepass")
    mac = hmac.new(key, body + callback_url.encode("utf-8", "surrogatepass"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def signature_ok(body: bytes, header: str | None, secret: str | None, callback_url: str) -> bool:
    """Whether the header signs these exact bytes (constant-time; False without a secret)."""
    if not header or not secret:
        return False
    expected = trello_signature(secret, body, callback_url)
    presented = header.strip().encode("utf-8", "surrogatepass")  # never raises
    return hmac.compare_digest(expected.encode("ascii"), presented)


# -- which board --------------------------------------------------------------------------


class BoardIndex:
    """Matches an action's board (id or short link) against the configured boards.

    Knows the configured references (24-hex ids and short links) at once, and learns the real
    ids and short links from the store (``sync_state.board_id``, ``board.short_link``); a miss
    re-reads the store at most every `refresh_every` seconds.
    """

    def __init__(
        self, boards: Sequence[BoardConfig], store: Store, *, refresh_every: float = 1.0
    ) -> None:
        self.boards = list(boards)
        self.store = store
        self.refresh_every = refresh_every
        self._by_ref = {board.id: board for board in self.boards}
        self._ids: dict[str, BoardConfig] = {}
        self._links: dict[str, BoardConfig] = {}
        self._real: dict[str, str] = {}  # board ref -> real id
        for board in self.boards:
            if _HEX24.match(board.id):
                self.learn(board, board.id)
            else:
                self._links[board.id] = board
        self._lock = threading.Lock()
        self._refreshed_at = float("-inf")

    def learn(self, board: BoardConfig, board_id: str, short_link: str | None = None) -> None:
        self._ids[board_id] = board
        self._real[board.id] = board_id
        if short_link:
            self._links[short_link] = board

    def refresh(self) -> None:
        with self._lock:
            self._refreshed_at = time.monotonic()
        for state in self.store.sync_states():
            board = self._by_ref.get(state["board_ref"])
            if board is not None and state.get("board_id"):
                self.learn(board, state["board_id"])
        for row in self.store.board_rows():
            board = self._by_ref.get(row["id"]) or self._by_ref.get(row["short_link"])
            if board is None and row["id"] in self._ids:
                board = self._ids[row["id"]]
            if board is not None:
                self.learn(board, row["id"], row["short_link"] or None)

    def real_id(self, board: BoardConfig) -> str | None:
        return self._real.get(board.id)

    @property
    def complete(self) -> bool:
        """Every configured board's real id is known."""
        return all(board.id in self._real for board in self.boards)

    def _lookup(self, board_id: str | None, short_link: str | None) -> BoardConfig | None:
        if board_id and board_id in self._ids:
            return self._ids[board_id]
        if short_link and short_link in self._links:
            return self._links[short_link]
        return None

    def resolve(
        self, board_id: str | None, short_link: str | None
    ) -> tuple[BoardConfig, str] | None:
        """(configured board, real id) of the action's board, or None when it is not ours."""
        board = self._lookup(board_id, short_link)
        if board is None or not (board_id or board.id in self._real):
            with self._lock:
                due = time.monotonic() - self._refreshed_at >= self.refresh_every
            if due:
                self.refresh()
                board = self._lookup(board_id, short_link)
        if board is None:
            return None
        real = board_id or self._real.get(board.id)
        if real is None:
            return None
        if board_id and board.id not in self._real:
            self.learn(board, board_id, short_link)
        return board, real
