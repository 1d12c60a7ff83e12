"""The Trello calls syncd makes, through py-trello's client over one `ApiSession`.

py-trello is used only as a transport (`TrelloClient.fetch_json`), never through its lazy
`Board`/`Card` objects, which cost one request per property (N+1). Every call passes its nested
parameters explicitly: Trello's defaults silently truncate (``labels_limit`` and
``actions_limit`` default to 50, ``/cards`` defaults to ``filter=visible``).

Credentials travel in the ``Authorization: OAuth oauth_consumer_key=…, oauth_token=…`` header
set by the session; py-trello's ``key``/``token`` query parameters are stripped there.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import requests
from trello import TrelloClient
from trello.exceptions import ResourceUnavailable

from adapters.transport import (
    ApiError,
    ApiSession,
    HttpStatusError,
    RequestEvent,
    RetryPolicy,
    TokenBucket,
)

TRELLO_PUBLIC_PREFIXES = ("https://api.trello.com/1", "https://trello.com/1")
MAX_PAGE = 1000
MAX_BATCH = 10
# The action that opens a board's history: no action of the board is older.
BOARD_BIRTH_ACTIONS = frozenset({"createBoard", "copyBoard", "convertToBoardFromCard"})

# One nested GET /1/boards/{id}: the whole board but its actions (see trello-api.md §1.1).
SNAPSHOT_PARAMS: dict[str, str] = {
    "fields": "id,name,desc,closed,url,shortUrl,shortLink,dateLastActivity,labelNames",
    "actions": "none",
    "lists": "all",
    "list_fields": "id,name,closed,pos,idBoard",
    "cards": "all",
    "card_fields": "all",
    "card_customFieldItems": "true",
    "card_attachments": "true",
    "card_attachment_fields": "id,name,url,date,bytes,mimeType,isUpload",
    "customFields": "true",
    "labels": "all",
    "label_fields": "id,idBoard,name,color",
    "labels_limit": "1000",
    "members": "all",
    "member_fields": "id,fullName,username,initials",
    "checklists": "all",
    "checklist_fields": "all",
    "checkItems": "all",
    "checkItem_fields": "all",
}
# Without cards, for the paged fallback on boards too large for one request.
SKELETON_PARAMS = {**SNAPSHOT_PARAMS, "cards": "none", "checklists": "none"}
CARD_PARAMS: dict[str, str] = {
    "fields": "all",
    "checklists": "all",
    "checkItem_fields": "all",
    "customFieldItems": "true",
    "attachments": "true",
    "attachment_fields": "all",
    "members": "true",
    "member_fields": "all",
}  # no commas: `/1/batch` separates its routes with commas
# Every read of a board's actions (pages, and the change check inside `/1/batch`).
ACTION_PARAMS: dict[str, str] = {"filter": "all", "memberCreator_fields": "fullName,username"}


def oauth_header(api_key: str, token: str) -> dict[str, str]:
    """Trello's header form of key + token (keeps both out of URLs and logs)."""
    return {"Authorization": f'OAuth oauth_consumer_key="{api_key}", oauth_token="{token}"'}


def make_trello_session(
    *,
    api_base: str,
    api_key: str,
    token: str,
    max_requests_per_10s: int,
    timeout: float,
    policy: RetryPolicy | None = None,
    observer: Callable[[RequestEvent], None] | None = None,
) -> ApiSession:
    """The Trello `ApiSession`: rewrite, auth header, timeout, shared bucket, retries."""
    policy = policy or RetryPolicy()
    return ApiSession(
        service="trello",
        base_url=api_base,
        rewrite_prefixes=TRELLO_PUBLIC_PREFIXES,
        auth_headers=oauth_header(api_key, token),
        strip_params=("key", "token"),
        timeout=timeout,
        bucket=TokenBucket(max_requests_per_10s, policy.window_seconds),
        policy=policy,
        observer=observer,
    )


class TooManyCards(ApiError):
    """Trello refused a nested board fetch as too large (403 API_TOO_MANY_CARDS_REQUESTED)."""


@dataclass(frozen=True)
class BatchAnswer:
    """One route's answer inside a `/1/batch` response."""

    status: int
    body: Any


@dataclass(frozen=True)
class BoardCheck:
    """One board's newest action id, or why it failed (`syncd check`'s reachability line)."""

    newest: str | None = None  # None: the board has no action at all
    error: str | None = None


@dataclass(frozen=True)
class BoardActions:
    """One board's answer to the change check: the first page (newest first, at most
    `MAX_PAGE`) of its actions since the cursor, or why Trello refused it."""

    actions: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    @property
    def more(self) -> bool:
        """A full page: older actions since the cursor may follow (`actions_pages(before=)`)."""
        return len(self.actions) >= MAX_PAGE


@dataclass(frozen=True)
class CardAnswer:
    """One card's answer inside a card `/1/batch`: the card, None when it is gone, or why
    Trello refused it."""

    card: dict[str, Any] | None = None
    error: str | None = None


class TrelloAPI:
    """Typed access to the Trello routes syncd uses (one method per route)."""

    def __init__(self, session: ApiSession, *, token: str = "") -> None:
        self.session = session
        self.token = token
        # key/token are placeholders: the session strips them and sends the auth header.
        self.client = TrelloClient(api_key="-", api_secret="-", http_service=session)

    def _call(
        self,
        path: str,
        params: dict[str, str] | None = None,
        method: str = "GET",
        body: dict[str, Any] | None = None,
    ) -> Any:
        try:
            return self.client.fetch_json(
                path, http_method=method, query_params=dict(params or {}), post_args=body
            )
        except HttpStatusError as exc:
            if exc.status == 403 and "API_TOO_MANY_CARDS_REQUESTED" in exc.body:
                raise TooManyCards(str(exc)) from None
            raise
        except ResourceUnavailable as exc:  # a non-200 2xx/3xx py-trello did not expect
            raise ApiError(f"trello {method} {path}: unexpected answer ({exc._status})") from None
        except (json.JSONDecodeError, requests.JSONDecodeError):
            raise ApiError(f"trello {method} {path}: the answer is not JSON") from None

    # -- boards -------------------------------------------------------------------------

    def board_snapshot(self, board: str) -> dict[str, Any]:
        """The whole board in one request (raises `TooManyCards` when Trello refuses)."""
        return _expect(self._call(f"/boards/{board}", SNAPSHOT_PARAMS), dict, f"board {board}")

    def board_skeleton(self, board: str) -> dict[str, Any]:
        """The board without cards nor checklists (for the paged fallback)."""
        return _expect(self._call(f"/boards/{board}", SKELETON_PARAMS), dict, f"board {board}")

    def board_cards_pages(self, board: str) -> Iterator[list[dict[str, Any]]]:
        """Every card of the board (archived included), newest first, 1000 per request."""
        params = {**CARD_PARAMS, "filter": "all"}
        return self._pages(f"/boards/{board}/cards", params, "cards page")

    def actions_pages(
        self, board: str, *, since: str | None = None, before: str | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Board actions newer than `since` (all when None) and older than `before` (an
        action id: the pages after one already read), newest first, 1000 per request."""
        return self._pages(
            f"/boards/{board}/actions",
            _actions_query(since),
            "actions page",
            before=before,
            # nothing is older than the board's creation: a full page ending with it is the last
            first=lambda action: action.get("type") in BOARD_BIRTH_ACTIONS,
        )

    def _pages(
        self,
        path: str,
        params: dict[str, str],
        what: str,
        *,
        before: str | None = None,
        first: Callable[[dict[str, Any]], bool] = lambda _item: False,
    ) -> Iterator[list[dict[str, Any]]]:
        """Trello's backwards paging: ``limit=1000``, then ``before=<oldest id seen>``, until a
        short page or the `first` item there can be."""
        while True:
            query = {**params, "limit": str(MAX_PAGE)}
            if before:
                query["before"] = before
            page = _expect(self._call(path, query), list, what)
            if page:
                yield page
            if len(page) < MAX_PAGE:
                return
            oldest = min(page, key=lambda item: item["id"])
            if first(oldest):
                return
            before = oldest["id"]

    # -- batch --------------------------------------------------------------------------

    def batch(self, routes: Sequence[str]) -> list[BatchAnswer]:
        """Up to 10 GET routes in one request (`/1/batch`)."""
        if not 0 < len(routes) <= MAX_BATCH:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH} routes, not {len(routes)}")
        urls = ",".join(routes)
        answer = _expect(self._call("/batch", {"urls": urls}), list, "batch")
        results = []
        for item in answer:
            if not isinstance(item, dict) or len(item) != 1:
                raise ApiError("trello batch: unexpected answer shape")
            ((status, body),) = item.items()
            results.append(BatchAnswer(int(status) if str(status).isdigit() else 0, body))
        if len(results) != len(routes):
            raise ApiError(f"trello batch: {len(results)} answers for {len(routes)} routes")
        return results

    def actions_check(self, cursors: Mapping[str, str | None]) -> dict[str, BoardActions]:
        """The change check: each board's actions since its cursor (an action id or a date;
        None: all), first page, 10 boards per `/1/batch` request. An idle board answers ``[]``,
        so an idle poll costs 1 request per 10 boards and a changed board's actions come with
        it (`BoardActions.more`: read the older pages with `actions_pages(before=)`).

        A board Trello refuses inside the batch (deleted, token removed from it) gets its own
        error and the others their answer; a batch request that fails as a whole raises.
        """
        boards = list(cursors)
        result: dict[str, BoardActions] = {}
        for start in range(0, len(boards), MAX_BATCH):
            chunk = boards[start : start + MAX_BATCH]
            routes = [
                # safe="": the commas inside a route are encoded (the batch splits on commas)
                f"/boards/{quote(board)}/actions?"
                + urlencode({**_actions_query(cursors[board]), "limit": str(MAX_PAGE)}, safe="")
                for board in chunk
            ]
            for board, answer in zip(chunk, self.batch(routes), strict=True):
                if answer.status != 200 or not isinstance(answer.body, list):
                    error = f"trello change check of board {board}: {answer.status}"
                    result[board] = BoardActions(error=error)
                else:
                    result[board] = BoardActions(answer.body)
        return result

    def change_check(self, boards: Sequence[str]) -> dict[str, BoardCheck]:
        """The newest action id of each board (1 request per 10 boards): `syncd check`.

        A board Trello refuses inside the batch (deleted, token removed from it) gets its own
        error and the others their answer; a batch request that fails as a whole raises.
        """
        result: dict[str, BoardCheck] = {}
        for start in range(0, len(boards), MAX_BATCH):
            chunk = list(boards[start : start + MAX_BATCH])
            routes = [f"/boards/{quote(board)}/actions?limit=1&fields=id" for board in chunk]
            for board, answer in zip(chunk, self.batch(routes), strict=True):
                if answer.status != 200 or not isinstance(answer.body, list):
                    error = f"trello change check of board {board}: {answer.status}"
                    result[board] = BoardCheck(error=error)
                else:
                    result[board] = BoardCheck(answer.body[0]["id"] if answer.body else None)
        return result

    def cards(self, card_ids: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        """Fetch cards by id through `/1/batch` (10 per request); None for a deleted card.
        Raises on the first card Trello refuses."""
        result: dict[str, dict[str, Any] | None] = {}
        for card_id, answer in self.card_answers(card_ids).items():
            if answer.error is not None:
                raise ApiError(answer.error)
            result[card_id] = answer.card
        return result

    def card_answers(self, card_ids: Sequence[str]) -> dict[str, CardAnswer]:
        """Each card's answer through `/1/batch` (10 per request): the card, None for a
        deleted one, or the refusal of that card alone (the batch request that fails as a
        whole raises)."""
        query = urlencode(CARD_PARAMS, safe="")
        result: dict[str, CardAnswer] = {}
        for start in range(0, len(card_ids), MAX_BATCH):
            chunk = list(card_ids[start : start + MAX_BATCH])
            answers = self.batch([f"/cards/{quote(card_id)}?{query}" for card_id in chunk])
            for card_id, answer in zip(chunk, answers, strict=True):
                if answer.status == 200 and isinstance(answer.body, dict):
                    result[card_id] = CardAnswer(answer.body)
                elif answer.status in (404, 400):
                    result[card_id] = CardAnswer(None)
                else:
                    error = f"trello card {card_id} in batch: {answer.status}"
                    result[card_id] = CardAnswer(error=error)
        return result

    # -- webhooks -----------------------------------------------------------------------

    def webhooks(self) -> list[dict[str, Any]]:
        """The webhooks of our token."""
        return _expect(self._call(f"/tokens/{self.token}/webhooks"), list, "webhooks")

    def create_webhook(self, callback_url: str, id_model: str, description: str) -> dict[str, Any]:
        body = {"callbackURL": callback_url, "idModel": id_model, "description": description}
        return _expect(self._call("/webhooks", method="POST", body=body), dict, "webhook")

    def delete_webhook(self, webhook_id: str) -> None:
        self._call(f"/webhooks/{webhook_id}", method="DELETE")

    # -- comments (write-back) ----------------------------------------------------------

    def post_comment(self, card_id: str, text: str) -> dict[str, Any]:
        """Comment on a card (``POST /1/cards/{id}/actions/comments``); the new ``commentCard``
        action. One attempt with the token the caller took (`ApiSession.single_attempt`): a
        timeout may hide a success, so only the caller, who can look, may try again."""
        with self.session.single_attempt():
            answer = self._call(
                f"/cards/{quote(card_id)}/actions/comments", method="POST", body={"text": text}
            )
        return _expect(answer, dict, f"comment on card {card_id}")

    def card_comments(self, card_id: str, *, since: str | None = None) -> list[dict[str, Any]]:
        """The comments of a card (``commentCard`` actions, newest first, 1000 at most), those
        after `since` (an ISO date) when given."""
        params = {"filter": "commentCard", "limit": str(MAX_PAGE)}
        if since:
            params["since"] = since
        answer = self._call(f"/cards/{quote(card_id)}/actions", params)
        return _expect(answer, list, f"comments of card {card_id}")

    def token_info(self) -> dict[str, Any]:
        """Our token's member and permissions (``GET /1/tokens/{token}``): may it write?"""
        answer = self._call(f"/tokens/{self.token}", {"fields": "idMember,permissions"})
        return _expect(answer, dict, "token")

    def board_id(self, board: str) -> str:
        """The 24-hex id of a board given by id or short link (one ``?fields=id`` request)."""
        answer = _expect(self._call(f"/boards/{board}", {"fields": "id"}), dict, f"board {board}")
        board_id = answer.get("id")
        if not isinstance(board_id, str) or not board_id:
            raise ApiError(f"trello board {board}: the answer has no id")
        return board_id


def _actions_query(since: str | None) -> dict[str, str]:
    """The query of a read of board actions, since the cursor when there is one."""
    return {**ACTION_PARAMS, "since": since} if since else dict(ACTION_PARAMS)


def _expect(value: Any, kind: type, what: str) -> Any:
    if not isinstance(value, kind):
        raise ApiError(
            f"trello {what}: expected a JSON {kind.__name__}, got {type(value).__name__}"
        )
    return value
