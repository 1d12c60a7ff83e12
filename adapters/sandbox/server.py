"""The sandbox's loopback HTTP server: the slice of Trello's REST API that syncd uses, plus a
hook that hands ``/v1/`` and ``/v2/`` requests to a Figma imitation.

Owns ``Sandbox`` (start/stop, request log and counts, fault injection, Trello-like auth and
rate limiting, latency) and the Trello routes, which read a ``TrelloWorld`` under its lock.
Standard library only (``http.server.ThreadingHTTPServer``); nothing here talks to a real remote.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from .trello_world import (
    EXCLUDED_ACTION_TYPES,
    TrelloWorld,
    head_status,
    id_timestamp,
    is_object_id,
    parse_iso,
)

__all__ = ["FigmaHandler", "RecordedRequest", "Sandbox"]

Json = dict[str, Any]
Query = dict[str, list[str]]

NOT_FOUND = "The requested resource was not found."
_SHORT_LINK = re.compile(r"^[0-9A-Za-z]{8}$")
_OAUTH_PAIR = re.compile(r'(\w+)="([^"]*)"')
_BOARD_DEFAULT_FIELDS = [
    "name",
    "desc",
    "descData",
    "closed",
    "idOrganization",
    "pinned",
    "url",
    "shortUrl",
    "prefs",
    "labelNames",
]
_MEMBER_DEFAULT_FIELDS = ["avatarHash", "initials", "fullName", "username", "confirmed"]
_CHECKITEM_DEFAULT_FIELDS = ["name", "nameData", "pos", "state", "idChecklist"]
_CARD_FILTERS = ("all", "closed", "none", "open", "visible")
_MAX_BATCH = 10
_MAX_COMMENT = 16384  # Trello's longest comment
# Writes a read-only token may still make, as on Trello (webhooks need only read access).
_READ_TOKEN_WRITES = ("/1/webhooks", "/1/tokens/")


class FigmaHandler(Protocol):
    """What ``Sandbox.figma`` must provide (``adapters/sandbox/figma_world.py``)."""

    def handle(
        self, method: str, path: str, query: Query, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]: ...


@dataclass(frozen=True)
class RecordedRequest:
    """One request the sandbox received. ``status`` 0 = connection dropped without an answer."""

    method: str
    path: str
    query: Query
    status: int
    at: float
    credentials_in_query: bool = False
    token: str | None = None


@dataclass
class _Fault:
    kind: str  # fail | disconnect | rate_limit | garbage | route (a route inside /1/batch)
    remaining: int
    status: int = 500
    path_prefix: str = ""


@dataclass
class _Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any) -> _Reply:
        raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return cls(status, raw, {"Content-Type": "application/json; charset=utf-8"})

    @classmethod
    def text(cls, status: int, message: str) -> _Reply:
        return cls(status, message.encode("utf-8"), {"Content-Type": "text/plain; charset=utf-8"})


class ApiError(Exception):
    """A Trello error answer: a text body, or a JSON one when ``payload`` is given."""

    def __init__(self, status: int, message: str, payload: Json | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.payload = payload

    def reply(self) -> _Reply:
        if self.payload is not None:
            return _Reply.json(self.status, self.payload)
        return _Reply.text(self.status, self.message)


# --------------------------------------------------------------------------- query parameters


class _Params:
    """Typed access to a query string, with Trello's ``invalid value for X`` 400s."""

    def __init__(self, query: Query) -> None:
        self.query = query

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.get(name)
        if value is None:
            return default
        if value not in ("true", "false"):
            raise ApiError(400, f"invalid value for {name}")
        return value == "true"

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.get(name, default)
        assert value is not None
        if value not in allowed:
            raise ApiError(400, f"invalid value for {name}")
        return value

    def number(self, name: str, default: int, low: int, high: int) -> int:
        value = self.get(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ApiError(400, f"invalid value for {name}") from None
        if not low <= number <= high:
            raise ApiError(400, f"invalid value for {name}")
        return number

    def fields(self, name: str, default: list[str] | None = None) -> list[str] | None:
        """A field list (None = all fields). ``id`` is always returned."""
        value = self.get(name)
        if value is None:
            return default
        if value == "all":
            return None
        return [f for f in value.split(",") if f]

    def cursor(self, name: str) -> tuple[str, Any] | None:
        """``before``/``since``: an ObjectId or an ISO date."""
        value = self.get(name)
        if value is None or value in ("", "null", "lastView"):
            return None
        if is_object_id(value):
            return ("id", value.lower())
        try:
            return ("date", parse_iso(value))
        except ValueError:
            raise ApiError(400, f"invalid value for {name}") from None


def _pick(obj: Json, fields: list[str] | None) -> Json:
    if fields is None:
        return obj
    out = {"id": obj["id"]} if "id" in obj else {}
    for name in fields:
        if name in obj:
            out[name] = obj[name]
    return out


def _action_date(action: Json) -> datetime:
    return parse_iso(action["date"])


def _card_date(card: Json) -> datetime:
    return id_timestamp(card["id"])


def _after(obj: Json, when: Callable[[Json], datetime], cursor: tuple[str, Any]) -> bool:
    """Newer than ``since``: by id for an id, by date for a date (`when` is read only then)."""
    kind, value = cursor
    return obj["id"] > value if kind == "id" else when(obj) > value


def _before(obj: Json, when: Callable[[Json], datetime], cursor: tuple[str, Any]) -> bool:
    """Older than ``before``: by id for an id, by date for a date (`when` is read only then)."""
    kind, value = cursor
    return obj["id"] < value if kind == "id" else when(obj) < value


def _action_filter(spec: str) -> Callable[[Json], bool]:
    """``all`` or a comma list of types, with ``updateCard:idList`` style sub-filters."""
    if spec == "all":
        return lambda a: True
    wanted = [part.split(":", 1) for part in spec.split(",") if part]

    def match(action: Json) -> bool:
        for part in wanted:
            if action["type"] != part[0]:
                continue
            if len(part) == 1 or part[1] in action["data"].get("old", {}):
                return True
        return False

    return match


# --------------------------------------------------------------------------- Trello routes


class _TrelloRoutes:
    """The ``/1`` routes over one world. Every method runs with ``world.lock`` held."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    @property
    def world(self) -> TrelloWorld:
        return self.sandbox.world

    # -- lookups

    def _board(self, ident: str) -> Json:
        if not (is_object_id(ident) or _SHORT_LINK.match(ident)):
            raise ApiError(400, "invalid id")
        b = self.world.resolve_board(ident)
        if b is None:
            raise ApiError(404, NOT_FOUND)
        return b

    def _card(self, ident: str) -> Json:
        if not (is_object_id(ident) or _SHORT_LINK.match(ident)):
            raise ApiError(400, "invalid id")
        c = self.world.resolve_card(ident)
        if c is None:
            raise ApiError(404, NOT_FOUND)
        return c

    def _id(self, ident: str) -> str:
        if not is_object_id(ident):
            raise ApiError(400, "invalid id")
        return ident.lower()

    # -- dispatch

    def dispatch(self, method: str, path: str, query: Query, form: Json, token: str) -> Any:
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0] != "1":
            raise ApiError(404, NOT_FOUND)
        parts = parts[1:]
        p = _Params(query)
        head = parts[0] if parts else ""
        n = len(parts)
        if method == "GET":
            if head == "boards" and n >= 2:
                return self._board_routes(parts[1:], p)
            if head == "cards" and n >= 2:
                return self._card_routes(parts[1:], p)
            if head == "lists" and n in (2, 3):
                return self._list_routes(parts[1:], p)
            if head == "actions" and n == 2:
                action = self.world.actions_by_id.get(self._id(parts[1]))
                if action is None:
                    raise ApiError(404, NOT_FOUND)
                return action
            if head == "members" and n == 2:
                return self._member(parts[1], p)
            if head == "batch" and n == 1:
                return self._batch(p, token)
            if head == "tokens" and n == 2:
                return self._token(parts[1], token, p)
            if head == "tokens" and n == 3 and parts[2] == "webhooks":
                return self._list_webhooks(parts[1])
            if head == "tokens" and n == 4 and parts[2] == "webhooks":
                return self._get_webhook(parts[3], parts[1])
            if head == "webhooks" and n == 2:
                return self._get_webhook(parts[1], token)
        elif method == "POST":
            if head == "cards" and n == 4 and parts[2:] == ["actions", "comments"]:
                return self._comment(parts[1], form)
            if head == "webhooks" and n == 1:
                return self._create_webhook(form, token)
            if head == "tokens" and n == 3 and parts[2] == "webhooks":
                return self._create_webhook(form, parts[1])
        elif method == "PUT":
            if head == "webhooks" and n == 2:
                return self._update_webhook(parts[1], form, token)
        elif method == "DELETE":
            if head == "webhooks" and n == 2:
                return self._delete_webhook(parts[1], token)
            if head == "tokens" and n == 4 and parts[2] == "webhooks":
                return self._delete_webhook(parts[3], parts[1])
        raise ApiError(404, NOT_FOUND)

    # -- boards

    def _board_routes(self, parts: list[str], p: _Params) -> Any:
        b = self._board(parts[0])
        bid = b["id"]
        w = self.world
        if len(parts) == 1:
            return self._board_nested(b, p)
        sub = parts[1]
        if sub == "cards" and len(parts) in (2, 3):
            if len(parts) == 3 and parts[2] not in (*_CARD_FILTERS, "complete", "incomplete"):
                c = self._card(parts[2])
                if c["idBoard"] != bid:
                    raise ApiError(404, NOT_FOUND)
                return self._card_out(c, p.fields("fields"), p, nested=False)
            return self._board_cards(b, parts[2] if len(parts) == 3 else None, p)
        if len(parts) != 2:
            raise ApiError(404, NOT_FOUND)
        if sub == "actions":
            return self._actions(bid, p, filter_name="filter", limit_name="limit", paged=True)
        if sub == "lists":
            which = p.choice("filter", ("all", "open", "closed", "none"), "open")
            return self._lists(bid, which, p.fields("fields"))
        if sub == "labels":
            limit = p.number("limit", 50, 0, 1000)
            return self._labels(bid, p.fields("fields"), limit)
        if sub == "members":
            return [
                _pick(
                    w.member_json(w.members[m["idMember"]]),
                    p.fields("fields", _MEMBER_DEFAULT_FIELDS),
                )
                for m in w.memberships[bid]
            ]
        if sub == "checklists":
            return self._checklists(w.board_checklists(bid), p, "fields")
        if sub == "customFields":
            return [w.custom_field_json(f) for f in w.board_custom_fields(bid)]
        raise ApiError(404, NOT_FOUND)

    def _board_nested(self, b: Json, p: _Params) -> Json:
        w = self.world
        bid = b["id"]
        out = _pick(w.board_json(b), p.fields("fields", _BOARD_DEFAULT_FIELDS))
        actions = p.get("actions", "none")
        if actions != "none":
            assert actions is not None
            out["actions"] = self._actions(
                bid,
                p,
                filter_value=actions,
                limit_name="actions_limit",
                since_name="actions_since",
                paged=False,
            )
        which = p.choice("cards", _CARD_FILTERS, "none")
        if which != "none":
            selected = self._select_cards(bid, which)
            threshold = self.sandbox.too_many_cards_threshold
            if threshold is not None and len(selected) > threshold:
                raise ApiError(
                    403,
                    "API_TOO_MANY_CARDS_REQUESTED",
                    {
                        "message": "API_TOO_MANY_CARDS_REQUESTED",
                        "error": "API_TOO_MANY_CARDS_REQUESTED",
                    },
                )
            fields = p.fields("card_fields")
            out["cards"] = [self._card_out(c, fields, p, nested=True) for c in selected]
        lists = p.choice("lists", ("all", "open", "closed", "none"), "none")
        if lists != "none":
            out["lists"] = self._lists(bid, lists, p.fields("list_fields"))
        if p.choice("labels", ("all", "none"), "none") == "all":
            out["labels"] = self._labels(
                bid, p.fields("label_fields"), p.number("labels_limit", 50, 0, 1000)
            )
        members = p.choice("members", ("all", "none", "admins", "normal", "owners"), "none")
        if members != "none":
            fields = p.fields("member_fields", _MEMBER_DEFAULT_FIELDS)
            types = {"admins": {"admin"}, "owners": {"admin"}, "normal": {"normal"}}.get(members)
            out["members"] = [
                _pick(w.member_json(w.members[m["idMember"]]), fields)
                for m in w.memberships[bid]
                if types is None or m["memberType"] in types
            ]
        memberships = p.get("memberships", "none")
        if memberships != "none":
            assert memberships is not None
            kinds = set(memberships.split(","))
            out["memberships"] = [
                dict(m)
                for m in w.memberships[bid]
                if "all" in kinds
                or m["memberType"] in kinds
                or "active" in kinds
                or (m["idMember"] == w.me_id and "me" in kinds)
            ]
        if p.choice("checklists", ("all", "none"), "none") == "all":
            out["checklists"] = self._checklists(w.board_checklists(bid), p, "checklist_fields")
        if p.flag("customFields"):
            out["customFields"] = [w.custom_field_json(f) for f in w.board_custom_fields(bid)]
        return out

    def _select_cards(self, bid: str, which: str) -> list[Json]:
        w = self.world
        cards = w.board_cards(bid)
        if which == "all":
            return cards
        if which == "closed":
            return [c for c in cards if c["closed"]]
        if which == "open":
            return [c for c in cards if not c["closed"]]
        if which == "visible":
            return [c for c in cards if not c["closed"] and not w.lists[c["idList"]]["closed"]]
        return []

    def _card_out(self, c: Json, fields: list[str] | None, p: _Params, *, nested: bool) -> Json:
        """A card as the board (``nested``) or cards routes return it."""
        w = self.world
        prefix = "card_" if nested else ""
        out = _pick(w.card_json(c), fields)
        attachments = p.choice(prefix + "attachments", ("true", "false", "cover"), "false")
        if attachments != "false":
            atts = w.attachments_json(c["id"])
            if attachments == "cover":
                atts = [a for a in atts if a["id"] == c["idAttachmentCover"]]
            out["attachments"] = [_pick(a, p.fields(prefix + "attachment_fields")) for a in atts]
        # Only the context's own spelling works: ``card_customFieldItems`` nested under a board,
        # ``customFieldItems`` on the cards routes. The other one gives nothing, like Trello.
        if p.flag(prefix + "customFieldItems"):
            out["customFieldItems"] = w.field_items_json(c["id"])
        if p.choice(prefix + "checklists", ("all", "none"), "none") == "all":
            out["checklists"] = self._checklists(
                [w.checklists[i] for i in c["idChecklists"]], p, prefix + "checklist_fields"
            )
        if p.flag(prefix + "members"):
            mfields = p.fields(prefix + "member_fields", _MEMBER_DEFAULT_FIELDS)
            out["members"] = [_pick(w.member_json(w.members[m]), mfields) for m in c["idMembers"]]
        if not nested:
            if p.get("labels") in ("true", "all"):
                out["labels"] = w.card_json(c)["labels"]
            if p.flag("list"):
                out["list"] = _pick(w.list_json(w.lists[c["idList"]]), p.fields("list_fields"))
            if p.flag("board"):
                out["board"] = _pick(
                    w.board_json(w.boards[c["idBoard"]]),
                    p.fields("board_fields", _BOARD_DEFAULT_FIELDS),
                )
        return out

    def _checklists(self, checklists: list[Json], p: _Params, fields_name: str) -> list[Json]:
        w = self.world
        fields = p.fields(fields_name)
        with_items = p.choice("checkItems", ("all", "none"), "all") == "all"
        item_fields = p.fields("checkItem_fields", _CHECKITEM_DEFAULT_FIELDS)
        out = []
        for cl in sorted(checklists, key=lambda x: (x["idCard"], x["pos"])):
            data = w.checklist_json(cl)
            items = [_pick(i, item_fields) for i in data.pop("checkItems")]
            picked = _pick(data, fields)
            if with_items:
                picked["checkItems"] = items
            out.append(picked)
        return out

    def _lists(self, bid: str, which: str, fields: list[str] | None) -> list[Json]:
        lists = self.world.board_lists(bid)
        if which == "open":
            lists = [x for x in lists if not x["closed"]]
        elif which == "closed":
            lists = [x for x in lists if x["closed"]]
        elif which == "none":
            lists = []
        return [_pick(self.world.list_json(x), fields) for x in lists]

    def _labels(self, bid: str, fields: list[str] | None, limit: int) -> list[Json]:
        w = self.world
        uses = w.label_uses(bid)
        return [_pick(w.label_json(x, uses[x["id"]]), fields) for x in w.board_labels(bid)[:limit]]

    def _board_cards(self, b: Json, path_filter: str | None, p: _Params) -> list[Json]:
        which = path_filter or p.choice("filter", _CARD_FILTERS, "visible")
        if which in ("complete", "incomplete"):
            cards = [
                c
                for c in self._select_cards(b["id"], "open")
                if c["dueComplete"] == (which == "complete")
            ]
        else:
            cards = self._select_cards(b["id"], which)
        limit_given = p.get("limit") is not None
        limit = p.number("limit", 1000, 1, 1000)
        before, since = p.cursor("before"), p.cursor("since")
        if before:
            cards = [c for c in cards if _before(c, _card_date, before)]
        if since:
            cards = [c for c in cards if _after(c, _card_date, since)]
        if limit_given:
            cards = sorted(cards, key=lambda c: c["id"], reverse=True)[:limit]
        fields = p.fields("fields")
        return [self._card_out(c, fields, p, nested=False) for c in cards]

    def _actions(
        self,
        bid: str,
        p: _Params,
        *,
        filter_name: str | None = None,
        filter_value: str | None = None,
        limit_name: str,
        since_name: str = "since",
        paged: bool,
    ) -> list[Json]:
        spec = filter_value if filter_value is not None else p.get(filter_name or "filter", "all")
        assert spec is not None
        match = _action_filter(spec)
        limit = p.number(limit_name, 50, 0, 1000)
        since = p.cursor(since_name)
        # The nested ``actions_before`` is ignored, as on Trello (TRELLO-229).
        before = p.cursor("before") if paged else None
        # Id cursors bound the world's (lazy) newest-first stream; date cursors filter it.
        stream: Iterable[Json] = self.world.actions_newest_first(
            bid,
            since_id=since[1] if since and since[0] == "id" else None,
            before_id=before[1] if before and before[0] == "id" else None,
        )
        stream = (a for a in stream if match(a) and a["type"] not in EXCLUDED_ACTION_TYPES)
        if since and since[0] == "date":
            stream = (a for a in stream if _after(a, _action_date, since))
        if before and before[0] == "date":
            stream = (a for a in stream if _before(a, _action_date, before))
        page = p.number("page", 0, 0, 1_000_000) if paged else 0
        actions = list(itertools.islice(stream, page * limit, page * limit + limit))
        fields = p.fields("fields" if paged else "action_fields")
        keep_creator = p.flag("memberCreator" if paged else "action_memberCreator", True)
        keep_member = p.flag("member" if paged else "action_member", True)
        out = []
        for a in actions:
            item = json.loads(json.dumps(a))
            if not keep_creator:
                item.pop("memberCreator", None)
            if not keep_member:
                item.pop("member", None)
            out.append(_pick(item, fields) if fields is not None else item)
        return out

    # -- cards, lists, members

    def _card_routes(self, parts: list[str], p: _Params) -> Any:
        w = self.world
        c = self._card(parts[0])
        if len(parts) == 1:
            return self._card_out(c, p.fields("fields"), p, nested=False)
        if len(parts) == 2:
            sub = parts[1]
            if sub == "customFieldItems":
                return w.field_items_json(c["id"])
            if sub == "checklists":
                return self._checklists([w.checklists[i] for i in c["idChecklists"]], p, "fields")
            if sub == "attachments":
                return [_pick(a, p.fields("fields")) for a in w.attachments_json(c["id"])]
            if sub == "actions":
                spec = p.get("filter", "commentCard")
                assert spec is not None
                match = _action_filter(spec)
                acts = [
                    a
                    for a in w.board_actions(c["idBoard"])
                    if match(a)
                    and a["type"] not in EXCLUDED_ACTION_TYPES
                    and a["data"].get("card", {}).get("id") == c["id"]
                ]
                since, before = p.cursor("since"), p.cursor("before")
                if since:
                    acts = [a for a in acts if _after(a, _action_date, since)]
                if before:
                    acts = [a for a in acts if _before(a, _action_date, before)]
                return acts[: p.number("limit", 50, 0, 1000)]
            if sub in ("list", "board"):
                return (
                    w.list_json(w.lists[c["idList"]])
                    if sub == "list"
                    else _pick(w.board_json(w.boards[c["idBoard"]]), p.fields("fields"))
                )
        raise ApiError(404, NOT_FOUND)

    def _list_routes(self, parts: list[str], p: _Params) -> Any:
        w = self.world
        x = w.lists.get(self._id(parts[0]))
        if x is None:
            raise ApiError(404, NOT_FOUND)
        if len(parts) == 1:
            return _pick(w.list_json(x), p.fields("fields"))
        if parts[1] != "cards":
            raise ApiError(404, NOT_FOUND)
        which = p.choice("filter", _CARD_FILTERS, "open")
        cards = [c for c in self._select_cards(x["idBoard"], which) if c["idList"] == x["id"]]
        before, since = p.cursor("before"), p.cursor("since")
        if before:
            cards = [c for c in cards if _before(c, _card_date, before)]
        if since:
            cards = [c for c in cards if _after(c, _card_date, since)]
        if p.get("limit") is not None:
            cards = sorted(cards, key=lambda c: c["id"], reverse=True)[
                : p.number("limit", 1000, 1, 1000)
            ]
        return [self._card_out(c, p.fields("fields"), p, nested=False) for c in cards]

    def _member(self, ident: str, p: _Params) -> Json:
        w = self.world
        if ident == "me":
            mid = w.me_id or w._me()
        else:
            mid = next(
                (m["id"] for m in w.members.values() if ident in (m["id"], m["username"])), ""
            )
        m = w.members.get(mid)
        if m is None:
            raise ApiError(404, NOT_FOUND if is_object_id(ident) else "model not found")
        out = w.member_json(m)
        out["idBoards"] = list(m["idBoards"])
        return _pick(out, p.fields("fields"))

    # -- comments and tokens

    def _comment(self, ident: str, form: Json) -> Json:
        """``POST /1/cards/{id}/actions/comments``: the new ``commentCard`` action, by the
        token's member (Trello bumps the card's and the board's ``dateLastActivity``)."""
        c = self._card(ident)
        text = form.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > _MAX_COMMENT:
            raise ApiError(400, "invalid value for text")
        w = self.world
        return w.comment(c["id"], text, by=w.me_id or w._me())

    def _token(self, ident: str, token: str, p: _Params) -> Json:
        """``GET /1/tokens/{token}``: its member and permissions (write only when not read-only)."""
        if ident != token:
            raise ApiError(401, "invalid token")
        w = self.world
        write = not self.sandbox.read_only
        info = {
            "id": "0" * 24,
            "identifier": "syncd",
            "idMember": w.me_id or w._me(),
            "dateCreated": "2026-01-01T00:00:00.000Z",
            "dateExpires": None,
            "permissions": [
                {"idModel": "*", "modelType": "Board", "read": True, "write": write},
                {"idModel": "*", "modelType": "Organization", "read": True, "write": write},
            ],
        }
        return _pick(info, p.fields("fields"))

    # -- batch

    def _batch(self, p: _Params, token: str) -> list[Json]:
        raw = p.get("urls")
        if not raw:
            raise ApiError(400, "invalid value for urls")
        routes = [r for r in raw.split(",") if r]
        if len(routes) > _MAX_BATCH:
            raise ApiError(400, "invalid value for urls: at most 10 routes per batch")
        out = []
        for route in routes:
            split = urlsplit(route.strip())
            path = split.path if split.path.startswith("/") else "/" + split.path
            if path.startswith("/1/"):
                path = path[2:]
            if path.rstrip("/") in ("/batch", ""):
                out.append(
                    {"400": {"message": "batch requests cannot be nested", "error": "BAD_REQUEST"}}
                )
                continue
            fault = self.sandbox._take_fault("/1" + path, in_batch=True)
            if fault is not None:
                message = (
                    "unauthorized permission requested"
                    if fault.status == 401
                    else HTTPStatus(fault.status).phrase
                )
                error = HTTPStatus(fault.status).name
                out.append({str(fault.status): {"message": message, "error": error}})
                continue
            try:
                body = self.dispatch(
                    "GET", "/1" + path, parse_qs(split.query, keep_blank_values=True), {}, token
                )
                out.append({"200": body})
            except ApiError as exc:
                payload = exc.payload or {
                    "message": exc.message,
                    "error": HTTPStatus(exc.status).name,
                }
                out.append({str(exc.status): payload})
        return out

    # -- webhooks

    def _own_hook(self, ident: str, token: str) -> Json:
        hook = self.world.webhooks.get(self._id(ident))
        if hook is None:
            raise ApiError(404, NOT_FOUND)
        if self.world.webhook_tokens.get(hook["id"]) != token:
            raise ApiError(401, "webhook does not belong to token")
        return hook

    def _list_webhooks(self, token: str) -> list[Json]:
        w = self.world
        return [
            w.webhook_json(h) for hid, h in w.webhooks.items() if w.webhook_tokens[hid] == token
        ]

    def _get_webhook(self, ident: str, token: str) -> Json:
        return self.world.webhook_json(self._own_hook(ident, token))

    def _check_callback(self, url: str) -> None:
        if not url.startswith(("http://", "https://")):
            raise ApiError(400, "invalid value for callbackURL")
        # Trello's HEAD probe. The world lock is released meanwhile: the callback may call us.
        self.world.lock.release()
        try:
            status = head_status(url, timeout=5.0)
        finally:
            self.world.lock.acquire()
        if status != 200:
            raise ApiError(400, f"URL ({url}) did not return 200 status code, got {status}")

    def _create_webhook(self, form: Json, token: str) -> Json:
        w = self.world
        url = str(form.get("callbackURL") or "")
        id_model = str(form.get("idModel") or "")
        if not url:
            raise ApiError(400, "invalid value for callbackURL")
        if not is_object_id(id_model) or (id_model not in w.boards and id_model not in w.cards):
            raise ApiError(400, "invalid value for idModel")
        description = str(form.get("description") or "")
        active = _truthy(form.get("active", True))
        self._check_callback(url)
        try:
            return w.create_webhook(token, url, id_model, description, active)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None

    def _update_webhook(self, ident: str, form: Json, token: str) -> Json:
        hook = self._own_hook(ident, token)
        if "callbackURL" in form and form["callbackURL"] != hook["callbackURL"]:
            self._check_callback(str(form["callbackURL"]))
            hook = self._own_hook(ident, token)
            hook["callbackURL"] = str(form["callbackURL"])
        if "idModel" in form:
            id_model = str(form["idModel"])
            if id_model not in self.world.boards and id_model not in self.world.cards:
                raise ApiError(400, "invalid value for idModel")
            hook["idModel"] = id_model
        if "description" in form:
            hook["description"] = str(form["description"])
        if "active" in form:
            hook["active"] = _truthy(form["active"])
            if hook["active"]:
                hook["consecutiveFailures"] = 0
                hook["firstConsecutiveFailDate"] = None
        return self.world.webhook_json(hook)

    def _delete_webhook(self, ident: str, token: str) -> Json:
        hook = self._own_hook(ident, token)
        self.world.delete_webhook(hook["id"])
        return {"_value": None}


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("true", "1", "yes", "on")


# --------------------------------------------------------------------------- HTTP plumbing


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sandbox"
    sandbox: Sandbox  # set on the per-sandbox subclass

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        self.sandbox._handle(self, self.command, self.path, body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _serve

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send_reply(self, reply: _Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        # One write for head and body (no Nagle/delayed-ACK stall between two small writes).
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(reply.body)
        self.flush_headers()


class Sandbox:
    """A loopback server imitating Trello (``/1/...``) and, via ``figma``, Figma.

    Use as a context manager or call ``start()``/``stop()``. Thread-safe.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        api_key: str = "sandbox-key",
        token: str = "sandbox-token",
        api_secret: str = "sandbox-secret",
        world: TrelloWorld | None = None,
        rate_limit_per_10s: int | None = 100,
        deliver_webhooks: bool = True,
        figma: FigmaHandler | None = None,
    ) -> None:
        if world is None:
            from .sample import build_sample_world

            world = build_sample_world()
        self.host = host
        self.port = port
        self.latency = latency
        self.api_key = api_key
        self.token = token
        self.api_secret = api_secret
        self.world = world
        world.api_secret = api_secret
        world.deliver_webhooks = deliver_webhooks
        self.rate_limit_per_10s = rate_limit_per_10s
        self.rate_limit_interval = 10.0
        self.batch_counts_each_route = True
        self.too_many_cards_threshold: int | None = None
        # A token without write permission: every write but webhooks answers Trello's 401.
        self.read_only = False
        self.figma: FigmaHandler | None = figma
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._windows: dict[str, deque[float]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._routes = _TrelloRoutes(self)

    # -- life cycle

    def start(self) -> Sandbox:
        if self._server is not None:
            return self
        handler = type("SandboxHandler", (_Handler,), {"sandbox": self})
        server = ThreadingHTTPServer((self.host, self.port), handler)
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sandbox-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        self.world.close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def trello_api_base(self) -> str:
        return self.url + "/1"

    @property
    def figma_api_base(self) -> str:
        return self.url

    @property
    def auth_header(self) -> dict[str, str]:
        """The ``Authorization`` header the sandbox accepts."""
        return {
            "Authorization": f'OAuth oauth_consumer_key="{self.api_key}", '
            f'oauth_token="{self.token}"'
        }

    # -- request log

    def count(self, path_prefix: str = "", method: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for r in self.requests
                if r.path.startswith(path_prefix) and (method is None or r.method == method.upper())
            )

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()

    def reset_rate_limit(self) -> None:
        with self._lock:
            self._windows.clear()

    # -- fault injection

    def _add_fault(self, fault: _Fault) -> None:
        if fault.remaining > 0:
            with self._lock:
                self._faults.append(fault)

    def fail_next(self, n: int, status: int = 500, path_prefix: str = "") -> None:
        """Answer the next ``n`` matching requests with ``status`` and a Trello-like text body."""
        self._add_fault(_Fault("fail", n, status, path_prefix))

    def disconnect_next(self, n: int, path_prefix: str = "") -> None:
        """Close the socket of the next ``n`` matching requests without any answer."""
        self._add_fault(_Fault("disconnect", n, 0, path_prefix))

    def rate_limit_next(self, n: int) -> None:
        """Answer the next ``n`` requests with Trello's 429."""
        self._add_fault(_Fault("rate_limit", n, 429, ""))

    def garbage_next(self, n: int) -> None:
        """Answer the next ``n`` requests with 200 and a body that is not JSON."""
        self._add_fault(_Fault("garbage", n, 200, ""))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def refuse_in_batch(self, n: int, status: int = 401, path_prefix: str = "") -> None:
        """Refuse the next ``n`` matching routes *inside* a ``/1/batch`` with ``status`` while
        the batch itself answers 200 and its other routes are served: Trello's answer for a
        board or card the token lost (``{"401": …}`` in its place in the array)."""
        self._add_fault(_Fault("route", n, status, path_prefix))

    def _take_fault(self, path: str, *, in_batch: bool = False) -> _Fault | None:
        """The next fault for a request (`in_batch`: for a route inside ``/1/batch``)."""
        with self._lock:
            for fault in self._faults:
                if (fault.kind == "route") != in_batch:
                    continue
                if fault.remaining > 0 and path.startswith(fault.path_prefix):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # -- webhooks

    def wait_deliveries(self, timeout: float = 5.0) -> bool:
        return self.world.wait_deliveries(timeout)

    def deliver_raw(self, webhook_id: str, action: Json, model: Json | None = None) -> None:
        self.world.deliver_raw(webhook_id, action, model)

    # -- rate limiting

    def _rate_headers(self, remaining: int | None) -> dict[str, str]:
        limit = self.rate_limit_per_10s
        if limit is None:
            return {}
        left = limit if remaining is None else max(remaining, 0)
        return {
            "x-rate-limit-api-token-interval-ms": str(int(self.rate_limit_interval * 1000)),
            "x-rate-limit-api-token-max": str(limit),
            "x-rate-limit-api-token-remaining": str(left),
            "x-rate-limit-api-key-interval-ms": str(int(self.rate_limit_interval * 1000)),
            "x-rate-limit-api-key-max": str(limit * 3),
            "x-rate-limit-api-key-remaining": str(left + 2 * limit),
        }

    def _spend(self, token: str, cost: int) -> tuple[bool, int | None]:
        """Take ``cost`` requests from the token's 10 s window: (allowed, remaining)."""
        limit = self.rate_limit_per_10s
        if limit is None:
            return True, None
        now = time.monotonic()
        with self._lock:
            window = self._windows.setdefault(token, deque())
            while window and now - window[0] >= self.rate_limit_interval:
                window.popleft()
            if len(window) + cost > limit:
                return False, limit - len(window)
            window.extend([now] * cost)
            return True, limit - len(window)

    # -- request handling

    def _record(
        self,
        method: str,
        path: str,
        query: Query,
        status: int,
        creds: bool = False,
        token: str | None = None,
    ) -> None:
        with self._lock:
            self.requests.append(
                RecordedRequest(method, path, query, status, time.time(), creds, token)
            )

    def _handle(self, h: _Handler, method: str, target: str, body: bytes) -> None:
        split = urlsplit(target)
        path, query = split.path, parse_qs(split.query, keep_blank_values=True)
        creds = "key" in query or "token" in query
        if self.latency > 0:
            time.sleep(self.latency)
        fault = self._take_fault(path)
        if fault is not None:
            if fault.kind == "disconnect":
                self._record(method, path, query, 0, creds)
                h.close_connection = True
                return
            reply = self._fault_reply(fault, path)
            self._record(method, path, query, reply.status, creds)
            h.send_reply(reply)
            return
        token: str | None = None
        if path.startswith(("/v1/", "/v2/")):
            reply = self._figma(method, path, query, h, body)
        elif path == "/1" or path.startswith("/1/"):
            reply, token = self._trello(method, path, query, h, body)
        else:
            reply = _Reply.text(404, f"Cannot {method} {path}")
        self._record(method, path, query, reply.status, creds, token)
        h.send_reply(reply)

    def _fault_reply(self, fault: _Fault, path: str) -> _Reply:
        if fault.kind == "rate_limit":
            reply = _Reply.json(
                429, {"error": "API_TOKEN_LIMIT_EXCEEDED", "message": "Rate limit exceeded"}
            )
            reply.headers.update(self._rate_headers(0))
            return reply
        if fault.kind == "garbage":
            return _Reply(
                200,
                b"<html><body>upstream hiccup",
                {"Content-Type": "application/json; charset=utf-8"},
            )
        try:
            phrase = HTTPStatus(fault.status).phrase
        except ValueError:
            phrase = "error"
        reply = _Reply.text(fault.status, phrase)
        if path.startswith("/1"):
            reply.headers.update(self._rate_headers(None))
        return reply

    def _figma(self, method: str, path: str, query: Query, h: _Handler, body: bytes) -> _Reply:
        if self.figma is None:
            return _Reply.json(404, {"status": 404, "err": "Not found"})
        headers = {k: v for k, v in h.headers.items()}
        status, out_headers, out_body = self.figma.handle(method, path, query, headers, body)
        return _Reply(status, out_body, dict(out_headers))

    def _credentials(self, query: Query, h: _Handler) -> tuple[str | None, str | None]:
        key = token = None
        auth = h.headers.get("Authorization") or ""
        if auth.startswith("OAuth "):
            pairs = dict(_OAUTH_PAIR.findall(auth))
            key, token = pairs.get("oauth_consumer_key"), pairs.get("oauth_token")
        key = key or (query.get("key") or [None])[0]
        token = token or (query.get("token") or [None])[0]
        return key, token

    def _trello(
        self, method: str, path: str, query: Query, h: _Handler, body: bytes
    ) -> tuple[_Reply, str | None]:
        key, token = self._credentials(query, h)
        if key != self.api_key:
            reply = _Reply.text(401, "invalid key")
            reply.headers.update(self._rate_headers(None))
            return reply, None
        if token != self.token:
            reply = _Reply.text(401, "unauthorized permission requested")
            reply.headers.update(self._rate_headers(None))
            return reply, None
        assert token is not None
        cost = 1
        if self.batch_counts_each_route and path.rstrip("/") == "/1/batch":
            urls = (query.get("urls") or [""])[0]
            cost = max(1, min(len([u for u in urls.split(",") if u]), _MAX_BATCH))
        allowed, remaining = self._spend(token, cost)
        if not allowed:
            reply = _Reply.json(
                429, {"error": "API_TOKEN_LIMIT_EXCEEDED", "message": "Rate limit exceeded"}
            )
            reply.headers.update(self._rate_headers(0))
            return reply, token
        if self.read_only and method != "GET" and not path.startswith(_READ_TOKEN_WRITES):
            reply = _Reply.text(401, "unauthorized permission requested")
            reply.headers.update(self._rate_headers(remaining))
            return reply, token
        try:
            form = self._form(query, h, body)
            world = self.world
            with world.lock:
                payload = self._routes.dispatch(method, path, query, form, token)
            reply = _Reply.json(200, payload)
        except ApiError as exc:
            reply = exc.reply()
        reply.headers.update(self._rate_headers(remaining))
        return reply, token

    @staticmethod
    def _form(query: Query, h: _Handler, body: bytes) -> Json:
        """Parameters of a write: the query string, then a form or JSON body on top."""
        form: Json = {k: v[0] for k, v in query.items() if v}
        if not body:
            return form
        ctype = (h.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype == "application/json":
            try:
                data = json.loads(body)
            except ValueError:
                raise ApiError(400, "invalid json") from None
            if isinstance(data, dict):
                form.update(data)
        else:
            parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            form.update({k: v[0] for k, v in parsed.items() if v})
        return form
