"""The sandbox's Trello state: boards, lists, cards, labels, members, checklists, custom fields,
attachments, actions and webhooks, all stored as Trello-shaped dicts.

Owns the data, the mutation methods (each one changes the state, bumps the card's and the board's
``dateLastActivity``, appends the matching Trello action and returns it), the JSON views the HTTP
routes serve, and the webhook store with its one background delivery worker. Everything is
guarded by one re-entrant lock, ``world.lock``; the routes hold it while they read.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import itertools
import json
import queue
import random
import re
import threading
import time
import unicodedata
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "EXCLUDED_ACTION_TYPES",
    "Delivery",
    "TrelloWorld",
    "id_timestamp",
    "iso",
    "object_id",
    "parse_iso",
    "webhook_signature",
]

_GLOBAL_COUNTER = itertools.count(random.SystemRandom().randrange(1 << 23))
_HEX24 = re.compile(r"^[0-9a-fA-F]{24}$")
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

Json = dict[str, Any]

# Trello's "excluded" action types: delivered to webhooks, never listed by the /actions routes.
EXCLUDED_ACTION_TYPES = frozenset({"updateCheckItem"})


# --------------------------------------------------------------------------- helpers


def object_id(
    at: datetime | None = None, counter: int | None = None, machine: int = 0x5A11D0B0
) -> str:
    """A 24-hex Mongo ObjectId whose first 8 hex chars are ``at`` as a Unix timestamp."""
    ts = int((at or datetime.now(UTC)).timestamp())
    n = next(_GLOBAL_COUNTER) if counter is None else counter
    return f"{ts & 0xFFFFFFFF:08x}{machine & 0xFFFFFFFFFF:010x}{n & 0xFFFFFF:06x}"


def id_timestamp(oid: str) -> datetime:
    """The creation time encoded in an ObjectId."""
    return datetime.fromtimestamp(int(oid[:8], 16), UTC)


def is_object_id(value: str) -> bool:
    return bool(_HEX24.match(value))


def iso(dt: datetime) -> str:
    """Trello's date format: ``2024-01-17T13:41:34.244Z``."""
    dt = dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_iso(value: str) -> datetime:
    """Parse an ISO date or date-time (``Z`` or offset; naive means UTC). Raises ValueError."""
    dt = datetime.fromisoformat(value.strip().replace("z", "Z"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def webhook_signature(secret: str, body: bytes, callback_url: str) -> str:
    """``X-Trello-Webhook``: base64(HMAC-SHA1(app secret, raw body + callbackURL))."""
    mac = hmac.new(secret.encode("utf-8"), body + callback_url.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def _slug(text: str) -> str:
    ascii_ = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_.lower()).strip("-")[:60] or "card"


def _initials(full_name: str) -> str:
    return "".join(part[0] for part in full_name.split() if part)[:3].upper()


_BOARD_PREFS: Json = {
    "permissionLevel": "private",
    "hideVotes": False,
    "voting": "disabled",
    "comments": "members",
    "invitations": "members",
    "selfJoin": False,
    "cardCovers": True,
    "isTemplate": False,
    "cardAging": "regular",
    "calendarFeedEnabled": False,
    "background": "blue",
    "backgroundImage": None,
    "backgroundImageScaled": None,
    "backgroundTile": False,
    "backgroundBrightness": "dark",
    "backgroundColor": "#0079BF",
    "backgroundBottomColor": "#0079BF",
    "backgroundTopColor": "#0079BF",
    "canBePublic": True,
    "canBeEnterprise": True,
    "canBeOrg": True,
    "canBePrivate": True,
    "canInvite": True,
}
_LABEL_COLORS = (
    "green",
    "yellow",
    "orange",
    "red",
    "purple",
    "blue",
    "sky",
    "lime",
    "pink",
    "black",
)
_TRANSLATION_KEYS = {
    "createCard": "action_create_card",
    "updateCard": "action_changed_a_card",
    "deleteCard": "action_delete_card",
    "addLabelToCard": "action_add_label_to_card",
    "removeLabelFromCard": "action_remove_label_from_card",
    "addMemberToCard": "action_added_member_to_card",
    "removeMemberFromCard": "action_removed_member_from_card",
    "updateCheckItemStateOnCard": "action_completed_checkitem",
    "addChecklistToCard": "action_add_checklist_to_card",
    "createCheckItem": "action_create_checkitem",
    "updateCustomFieldItem": "action_update_custom_field_item",
    "commentCard": "action_comment_on_card",
    "addAttachmentToCard": "action_add_attachment_to_card",
    "createList": "action_added_list_to_board",
    "createBoard": "action_create_board",
    "addMemberToBoard": "action_added_member_to_board",
}


@dataclass(frozen=True)
class Delivery:
    """One webhook POST the sandbox made (``status`` 0 = no answer)."""

    webhook_id: str
    callback_url: str
    action_id: str | None
    status: int
    at: float
    error: str | None = None


class _Dispatcher:
    """Delivers webhook POSTs in order from one background thread, started on first use."""

    def __init__(self, world: TrelloWorld) -> None:
        self._world = world
        self._queue: queue.Queue[tuple[str, Json, Json] | None] = queue.Queue()
        self._pending = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, webhook_id: str, action: Json, model: Json) -> None:
        with self._cond:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, args=(self._queue,), name="sandbox-webhooks", daemon=True
                )
                self._thread.start()
            self._queue.put((webhook_id, action, model))

    def _run(self, q: queue.Queue[tuple[str, Json, Json] | None]) -> None:
        while True:
            item = q.get()
            if item is None:
                return
            try:
                self._world._deliver_one(*item)
            except Exception:
                pass  # a delivery bug must not kill the worker
            finally:
                with self._cond:
                    if q is self._queue:
                        self._pending -= 1
                    self._cond.notify_all()

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self) -> None:
        """Stop the worker; undelivered items are dropped. A later submit starts a new one."""
        with self._cond:
            thread, q = self._thread, self._queue
            self._thread = None
            self._queue = queue.Queue()
            self._pending = 0
            self._cond.notify_all()
        if thread is not None:
            q.put(None)
            thread.join(timeout=2.0)


# --------------------------------------------------------------------------- the world


class TrelloWorld:
    """Mutable, thread-safe Trello state (one lock). Ids are ObjectIds dated by ``clock()``."""

    def __init__(self, *, seed: int = 1, now: datetime | None = None) -> None:
        self.lock = threading.RLock()
        self.now: datetime | None = now
        self.api_secret = "sandbox-secret"
        self.deliver_webhooks = True
        self.webhook_timeout = 10.0
        self._rng = random.Random(seed)
        self._machine = self._rng.getrandbits(40)
        self._counter = itertools.count(self._rng.randrange(1 << 20))
        self._short_links: set[str] = set()
        self.boards: dict[str, Json] = {}
        self.lists: dict[str, Json] = {}
        self.cards: dict[str, Json] = {}
        self.labels: dict[str, Json] = {}
        self.members: dict[str, Json] = {}
        self.memberships: dict[str, list[Json]] = {}
        self.checklists: dict[str, Json] = {}
        self.custom_fields: dict[str, Json] = {}
        self.field_items: dict[str, dict[str, Json]] = {}
        self.attachments: dict[str, list[Json]] = {}
        self.comment_counts: Counter[str] = Counter()
        self.actions: dict[str, list[Json]] = {}
        self.actions_by_id: dict[str, Json] = {}
        self.deleted_cards: set[str] = set()
        self.webhooks: dict[str, Json] = {}
        self.webhook_tokens: dict[str, str] = {}
        self.deliveries: list[Delivery] = []
        self.me_id: str | None = None
        self._idshort: Counter[str] = Counter()
        self._dispatcher = _Dispatcher(self)

    # ----------------------------------------------------------------- clock and ids

    def clock(self) -> datetime:
        """``self.now`` when a test has set it, else the real UTC time."""
        return self.now if self.now is not None else datetime.now(UTC)

    def new_id(self, at: datetime | None = None) -> str:
        return object_id(at or self.clock(), next(self._counter), self._machine)

    def _short_link(self, wanted: str | None = None) -> str:
        if wanted:
            self._short_links.add(wanted)
            return wanted
        while True:
            link = "".join(self._rng.choice(_BASE62) for _ in range(8))
            if link not in self._short_links:
                self._short_links.add(link)
                return link

    # ----------------------------------------------------------------- building blocks

    def create_member(
        self, full_name: str, *, username: str | None = None, member_type: str = "normal"
    ) -> str:
        """Add a Trello member (not yet on any board); returns its id."""
        with self.lock:
            mid = self.new_id()
            uname = username or _slug(full_name).replace("-", "")[:20]
            self.members[mid] = {
                "id": mid,
                "fullName": full_name,
                "username": uname,
                "initials": _initials(full_name),
                "avatarHash": hashlib.md5(uname.encode(), usedforsecurity=False).hexdigest(),
                "avatarUrl": None,
                "confirmed": True,
                "memberType": member_type,
                "bio": "",
                "url": f"https://trello.com/{uname}",
                "status": "disconnected",
                "idBoards": [],
                "nonPublic": {},
                "nonPublicAvailable": True,
            }
            self.members[mid]["avatarUrl"] = (
                f"https://trello-members.s3.amazonaws.com/{mid}/{self.members[mid]['avatarHash']}"
            )
            if self.me_id is None:
                self.me_id = mid
            return mid

    def _me(self) -> str:
        if self.me_id is None:
            self.create_member("Sandbox Bot", username="sandboxbot")
        assert self.me_id is not None
        return self.me_id

    def create_board(
        self,
        name: str,
        *,
        short_link: str | None = None,
        desc: str = "",
        id_organization: str | None = None,
        by: str | None = None,
    ) -> str:
        """Add a board (records ``createBoard``); returns its id."""
        with self.lock:
            now = self.clock()
            bid = self.new_id(now)
            link = self._short_link(short_link)
            creator = by or self._me()
            self.boards[bid] = {
                "id": bid,
                "name": name,
                "desc": desc,
                "descData": None,
                "closed": False,
                "dateClosed": None,
                "idOrganization": id_organization,
                "idEnterprise": None,
                "idMemberCreator": creator,
                "pinned": False,
                "starred": False,
                "url": f"https://trello.com/b/{link}/{_slug(name)}",
                "shortUrl": f"https://trello.com/b/{link}",
                "shortLink": link,
                "prefs": copy.deepcopy(_BOARD_PREFS),
                "labelNames": {color: "" for color in _LABEL_COLORS},
                "dateLastActivity": iso(now),
                "dateLastView": iso(now),
                "subscribed": False,
                "creationMethod": None,
                "idBoardSource": None,
                "idTags": [],
                "powerUps": [],
                "premiumFeatures": [],
                "enterpriseOwned": False,
                "templateGallery": None,
            }
            self.memberships[bid] = []
            self.actions[bid] = []
            self._record(self.boards[bid], "createBoard", {}, by=creator)
            self.add_board_member(bid, creator, member_type="admin")
            return bid

    def add_board_member(self, board: str, member_id: str, *, member_type: str = "normal") -> None:
        """Put a member on a board (no action recorded)."""
        with self.lock:
            b = self._board(board)
            if any(m["idMember"] == member_id for m in self.memberships[b["id"]]):
                return
            self.memberships[b["id"]].append(
                {
                    "id": self.new_id(),
                    "idMember": member_id,
                    "memberType": member_type,
                    "unconfirmed": False,
                    "deactivated": False,
                }
            )
            self.members[member_id]["idBoards"].append(b["id"])

    def create_list(
        self, board: str, name: str, *, closed: bool = False, by: str | None = None
    ) -> str:
        """Add a list at the right end (records ``createList``); returns its id."""
        with self.lock:
            b = self._board(board)
            lid = self.new_id()
            pos = max((x["pos"] for x in self.lists.values() if x["idBoard"] == b["id"]), default=0)
            self.lists[lid] = {
                "id": lid,
                "name": name,
                "closed": closed,
                "pos": pos + 16384,
                "softLimit": None,
                "idBoard": b["id"],
                "subscribed": False,
                "color": None,
                "creationMethod": None,
            }
            self._record(b, "createList", {"list": {"id": lid, "name": name}}, by=by)
            return lid

    def archive_list(self, list_id: str, closed: bool = True, *, by: str | None = None) -> Json:
        """Archive (or restore) a list (``updateList`` with ``old.closed``)."""
        with self.lock:
            x = self.lists[list_id]
            old = x["closed"]
            x["closed"] = closed
            data = {
                "list": {"id": list_id, "name": x["name"], "closed": closed},
                "old": {"closed": old},
            }
            return self._record(self.boards[x["idBoard"]], "updateList", data, by=by)

    def create_label(self, board: str, name: str, color: str | None = None) -> str:
        """Add a label to a board; returns its id."""
        with self.lock:
            b = self._board(board)
            lid = self.new_id()
            self.labels[lid] = {"id": lid, "idBoard": b["id"], "name": name, "color": color}
            if color and not b["labelNames"].get(color):
                b["labelNames"][color] = name
            return lid

    def create_custom_field(
        self,
        board: str,
        name: str,
        *,
        type: str = "text",
        options: Iterable[str] = (),
        card_front: bool = True,
    ) -> str:
        """Add a custom field definition (type text, number, date, checkbox or list)."""
        with self.lock:
            b = self._board(board)
            fid = self.new_id()
            pos = 16384 * (
                1 + sum(1 for f in self.custom_fields.values() if f["idModel"] == b["id"])
            )
            field: Json = {
                "id": fid,
                "idModel": b["id"],
                "modelType": "board",
                "fieldGroup": hashlib.sha1(fid.encode(), usedforsecurity=False).hexdigest(),
                "display": {"cardFront": card_front},
                "name": name,
                "pos": pos,
                "type": type,
                "isSuggestedField": False,
            }
            if type == "list":
                field["options"] = [
                    {
                        "id": self.new_id(),
                        "idCustomField": fid,
                        "value": {"text": text},
                        "color": "none",
                        "pos": 16384 * (i + 1),
                    }
                    for i, text in enumerate(options)
                ]
            self.custom_fields[fid] = field
            return fid

    # ----------------------------------------------------------------- look-ups

    def _board(self, id_or_short_link: str) -> Json:
        b = self.resolve_board(id_or_short_link)
        if b is None:
            raise KeyError(f"unknown board {id_or_short_link!r}")
        return b

    def resolve_board(self, id_or_short_link: str) -> Json | None:
        """The stored board dict for an id or shortLink, or None."""
        with self.lock:
            b = self.boards.get(id_or_short_link) or self.boards.get(id_or_short_link.lower())
            if b is not None:
                return b
            return next(
                (x for x in self.boards.values() if x["shortLink"] == id_or_short_link), None
            )

    def resolve_card(self, id_or_short_link: str) -> Json | None:
        """The stored card dict for an id or shortLink (None when unknown or deleted)."""
        with self.lock:
            c = self.cards.get(id_or_short_link) or self.cards.get(id_or_short_link.lower())
            if c is not None:
                return c
            return next(
                (x for x in self.cards.values() if x["shortLink"] == id_or_short_link), None
            )

    def _card(self, card_id: str) -> Json:
        c = self.resolve_card(card_id)
        if c is None:
            raise KeyError(f"unknown card {card_id!r}")
        return c

    def board(self, id_or_short_link: str) -> Json:
        """A copy of the board (all fields). KeyError when unknown."""
        with self.lock:
            return copy.deepcopy(self._board(id_or_short_link))

    def card(self, card_id: str) -> Json:
        """The full card JSON (with labels and badges). KeyError when unknown or deleted."""
        with self.lock:
            return self.card_json(self._card(card_id))

    def find_card(self, name_substring: str, board: str | None = None) -> Json:
        """The first card (by creation) whose name contains the text, case-insensitively."""
        needle = name_substring.casefold()
        with self.lock:
            bid = self._board(board)["id"] if board else None
            for c in self.cards.values():
                if (bid is None or c["idBoard"] == bid) and needle in c["name"].casefold():
                    return self.card_json(c)
        raise KeyError(f"no card named like {name_substring!r}")

    def find_list(self, board: str, name: str) -> str:
        with self.lock:
            bid = self._board(board)["id"]
            return next(
                x["id"] for x in self.lists.values() if x["idBoard"] == bid and x["name"] == name
            )

    def find_label(self, board: str, name: str) -> str:
        with self.lock:
            bid = self._board(board)["id"]
            return next(
                x["id"] for x in self.labels.values() if x["idBoard"] == bid and x["name"] == name
            )

    def find_member(self, full_name: str) -> str:
        with self.lock:
            return next(m["id"] for m in self.members.values() if m["fullName"] == full_name)

    def find_custom_field(self, board: str, name: str) -> str:
        with self.lock:
            bid = self._board(board)["id"]
            return next(
                f["id"]
                for f in self.custom_fields.values()
                if f["idModel"] == bid and f["name"] == name
            )

    def find_checklist(self, card_id: str, name: str) -> str:
        with self.lock:
            c = self._card(card_id)
            return next(i for i in c["idChecklists"] if self.checklists[i]["name"] == name)

    def find_check_item(self, card_id: str, name_substring: str) -> str:
        needle = name_substring.casefold()
        with self.lock:
            c = self._card(card_id)
            for cl_id in c["idChecklists"]:
                for item in self.checklists[cl_id]["checkItems"]:
                    if needle in item["name"].casefold():
                        return item["id"]
        raise KeyError(f"no check item named like {name_substring!r}")

    # ----------------------------------------------------------------- JSON views (hold the lock)

    def board_json(self, b: Json) -> Json:
        return copy.deepcopy(b)

    def board_model(self, b: Json) -> Json:
        """The board subset Trello sends as a board webhook's ``model``."""
        keys = (
            "id",
            "name",
            "desc",
            "descData",
            "closed",
            "idOrganization",
            "idEnterprise",
            "pinned",
            "url",
            "shortUrl",
            "prefs",
            "labelNames",
        )
        return {k: copy.deepcopy(b[k]) for k in keys}

    def list_json(self, x: Json) -> Json:
        return dict(x)

    def label_json(self, label: Json, uses: int | None = None) -> Json:
        out = dict(label)
        out["uses"] = uses if uses is not None else self.label_uses(label["idBoard"])[label["id"]]
        return out

    def label_uses(self, board_id: str) -> Counter[str]:
        uses: Counter[str] = Counter()
        for c in self.cards.values():
            if c["idBoard"] == board_id:
                uses.update(c["idLabels"])
        return uses

    def member_json(self, m: Json) -> Json:
        out = copy.deepcopy(m)
        out.pop("idBoards", None)
        return out

    def member_brief(self, mid: str) -> Json:
        m = self.members.get(mid) or {
            "id": mid,
            "fullName": "",
            "username": "",
            "initials": "",
            "avatarHash": None,
            "avatarUrl": None,
        }
        return {
            "id": m["id"],
            "activityBlocked": False,
            "avatarHash": m["avatarHash"],
            "avatarUrl": m["avatarUrl"],
            "fullName": m["fullName"],
            "idMemberReferrer": None,
            "initials": m["initials"],
            "nonPublic": {},
            "nonPublicAvailable": True,
            "username": m["username"],
        }

    def checklist_json(self, cl: Json, *, check_items: bool = True) -> Json:
        out = copy.deepcopy(cl)
        if not check_items:
            out.pop("checkItems")
        return out

    def custom_field_json(self, f: Json) -> Json:
        return copy.deepcopy(f)

    def field_items_json(self, card_id: str) -> list[Json]:
        return [copy.deepcopy(i) for i in self.field_items.get(card_id, {}).values()]

    def attachments_json(self, card_id: str) -> list[Json]:
        return [dict(a) for a in self.attachments.get(card_id, [])]

    def card_json(self, c: Json) -> Json:
        """The card with its computed ``labels`` and ``badges`` (no nested extras)."""
        out = copy.deepcopy(c)
        out["labels"] = [
            {
                "id": lid,
                "idBoard": c["idBoard"],
                "name": self.labels[lid]["name"],
                "color": self.labels[lid]["color"],
            }
            for lid in c["idLabels"]
            if lid in self.labels
        ]
        items = [i for cl in c["idChecklists"] for i in self.checklists[cl]["checkItems"]]
        out["badges"] = {
            "attachmentsByType": {"trello": {"board": 0, "card": 0}},
            "location": False,
            "votes": 0,
            "viewingMemberVoted": False,
            "subscribed": False,
            "fogbugz": "",
            "checkItems": len(items),
            "checkItemsChecked": sum(1 for i in items if i["state"] == "complete"),
            "checkItemsEarliestDue": None,
            "comments": self.comment_counts[c["id"]],
            "attachments": len(self.attachments.get(c["id"], [])),
            "description": bool(c["desc"]),
            "due": c["due"],
            "dueComplete": c["dueComplete"],
            "start": c["start"],
        }
        return out

    def board_lists(self, board_id: str) -> list[Json]:
        return sorted(
            (x for x in self.lists.values() if x["idBoard"] == board_id), key=lambda x: x["pos"]
        )

    def board_cards(self, board_id: str) -> list[Json]:
        """Stored cards of a board in display order (list position, then card position)."""
        list_pos = {x["id"]: x["pos"] for x in self.lists.values() if x["idBoard"] == board_id}
        return sorted(
            (c for c in self.cards.values() if c["idBoard"] == board_id),
            key=lambda c: (list_pos.get(c["idList"], 0), c["pos"]),
        )

    def board_labels(self, board_id: str) -> list[Json]:
        return [x for x in self.labels.values() if x["idBoard"] == board_id]

    def board_checklists(self, board_id: str) -> list[Json]:
        cards = {c["id"]: c for c in self.cards.values() if c["idBoard"] == board_id}
        return [cl for cl in self.checklists.values() if cl["idCard"] in cards]

    def board_custom_fields(self, board_id: str) -> list[Json]:
        return [f for f in self.custom_fields.values() if f["idModel"] == board_id]

    def board_actions(self, board_id: str) -> list[Json]:
        """Stored actions of a board, newest first (by id)."""
        return sorted(self.actions.get(board_id, []), key=lambda a: a["id"], reverse=True)

    def actions_newest_first(
        self, board_id: str, *, since_id: str | None = None, before_id: str | None = None
    ) -> Iterator[Json]:
        """The board's actions with ``since_id < id < before_id``, newest first, lazily: the
        routes take one page of it (a world may hold its history in a compact form)."""
        for action in self.board_actions(board_id):
            if before_id is not None and action["id"] >= before_id:
                continue
            if since_id is not None and action["id"] <= since_id:
                return
            yield action

    # ----------------------------------------------------------------- recording

    def _card_ref(self, c: Json, **extra: Any) -> Json:
        return {
            "id": c["id"],
            "name": c["name"],
            "idShort": c["idShort"],
            "shortLink": c["shortLink"],
            **extra,
        }

    def _list_ref(self, list_id: str) -> Json:
        x = self.lists[list_id]
        return {"id": x["id"], "name": x["name"]}

    def _record(
        self,
        board: Json,
        type_: str,
        data: Json,
        *,
        card: Json | None = None,
        by: str | None = None,
        member: str | None = None,
    ) -> Json:
        now = self.clock()
        stamp = iso(now)
        creator = by or self._me()
        action: Json = {
            "id": self.new_id(now),
            "idMemberCreator": creator,
            "data": {
                **data,
                "board": {
                    "id": board["id"],
                    "name": board["name"],
                    "shortLink": board["shortLink"],
                },
            },
            "appCreator": None,
            "type": type_,
            "date": stamp,
            "limits": {},
            "display": {
                "translationKey": _TRANSLATION_KEYS.get(type_, "action_" + type_),
                "entities": {},
            },
            "memberCreator": self.member_brief(creator),
        }
        if member is not None:
            action["member"] = self.member_brief(member)
        board["dateLastActivity"] = max(board["dateLastActivity"], stamp)
        if card is not None and card["id"] in self.cards:
            card["dateLastActivity"] = max(card["dateLastActivity"], stamp)
        self.actions.setdefault(board["id"], []).append(action)
        self.actions_by_id[action["id"]] = action
        if self.deliver_webhooks and self.webhooks:
            self._enqueue(board, card, action)
        return copy.deepcopy(action)

    # ----------------------------------------------------------------- mutations

    def create_card(
        self,
        board: str,
        list_id: str,
        name: str,
        desc: str = "",
        label_ids: Iterable[str] = (),
        member_ids: Iterable[str] = (),
        *,
        by: str | None = None,
    ) -> Json:
        """Add a card at the bottom of a list; returns the ``createCard`` action."""
        with self.lock:
            b = self._board(board)
            if self.lists.get(list_id, {}).get("idBoard") != b["id"]:
                raise KeyError(f"list {list_id!r} is not on board {board!r}")
            pos = max((c["pos"] for c in self.cards.values() if c["idList"] == list_id), default=0)
            card = self._add_card(b, list_id, name, desc, label_ids, member_ids, pos + 16384)
            return self._record(
                b,
                "createCard",
                {"card": self._card_ref(card), "list": self._list_ref(list_id)},
                card=card,
                by=by,
            )

    def _add_card(
        self,
        b: Json,
        list_id: str,
        name: str,
        desc: str,
        label_ids: Iterable[str],
        member_ids: Iterable[str],
        pos: float,
        now: datetime | None = None,
    ) -> Json:
        """Store a new card (its id dated `now`, default the clock) without recording."""
        with self.lock:
            now = now or self.clock()
            cid = self.new_id(now)
            self._idshort[b["id"]] += 1
            id_short = self._idshort[b["id"]]
            link = self._short_link()
            label_list = list(dict.fromkeys(label_ids))
            member_list = list(dict.fromkeys(member_ids))
            card: Json = {
                "id": cid,
                "address": None,
                "checkItemStates": None,
                "closed": False,
                "coordinates": None,
                "creationMethod": None,
                "dateLastActivity": iso(now),
                "desc": desc,
                "descData": {"emoji": {}} if desc else None,
                "dueReminder": None,
                "idBoard": b["id"],
                "idLabels": label_list,
                "idList": list_id,
                "idMembersVoted": [],
                "idShort": id_short,
                "idAttachmentCover": None,
                "locationName": None,
                "manualCoverAttachment": False,
                "name": name,
                "pos": pos,
                "shortLink": link,
                "isTemplate": False,
                "cardRole": None,
                "dueComplete": False,
                "due": None,
                "email": None,
                "idChecklists": [],
                "idMembers": member_list,
                "shortUrl": f"https://trello.com/c/{link}",
                "start": None,
                "subscribed": False,
                "url": f"https://trello.com/c/{link}/{id_short}-{_slug(name)}",
                "cover": {
                    "idAttachment": None,
                    "color": None,
                    "idUploadedBackground": None,
                    "size": "normal",
                    "brightness": "dark",
                    "idPlugin": None,
                },
            }
            self.cards[cid] = card
            return card

    def _update_card(self, c: Json, changed: Json, old: Json, extra: Json, by: str | None) -> Json:
        data = {"card": self._card_ref(c, **changed), "old": old, **extra}
        return self._record(self.boards[c["idBoard"]], "updateCard", data, card=c, by=by)

    def move_card(
        self,
        card_id: str,
        list_id: str,
        *,
        pos: float | None = None,
        by: str | None = None,
    ) -> Json:
        """Move a card to another list of its board (``updateCard`` with listBefore/listAfter).

        Without `pos` the card keeps its position number, as a ``PUT /1/cards/{id}`` of
        ``idList`` alone does, and the action names only ``old.idList`` (the recorded shape);
        with `pos` both change and ``old`` names both.
        """
        with self.lock:
            c = self._card(card_id)
            if self.lists.get(list_id, {}).get("idBoard") != c["idBoard"]:
                raise KeyError(f"list {list_id!r} is not on the card's board")
            before = c["idList"]
            c["idList"] = list_id
            changed: Json = {"idList": list_id}
            old: Json = {"idList": before}
            if pos is not None and pos != c["pos"]:
                old["pos"] = c["pos"]
                c["pos"] = changed["pos"] = pos
            return self._update_card(
                c,
                changed,
                old,
                {"listBefore": self._list_ref(before), "listAfter": self._list_ref(list_id)},
                by,
            )

    def set_pos(self, card_id: str, pos: float, *, by: str | None = None) -> Json:
        """Move a card within its list (``updateCard`` with ``old.pos``)."""
        with self.lock:
            c = self._card(card_id)
            old = c["pos"]
            c["pos"] = pos
            return self._update_card(
                c, {"pos": pos}, {"pos": old}, {"list": self._list_ref(c["idList"])}, by
            )

    def set_due_complete(self, card_id: str, complete: bool, *, by: str | None = None) -> Json:
        """Mark a card's due date done or not (``updateCard`` with ``old.dueComplete``)."""
        with self.lock:
            c = self._card(card_id)
            old = c["dueComplete"]
            c["dueComplete"] = complete
            return self._update_card(
                c,
                {"dueComplete": complete},
                {"dueComplete": old},
                {"list": self._list_ref(c["idList"])},
                by,
            )

    def rename_card(self, card_id: str, name: str, *, by: str | None = None) -> Json:
        with self.lock:
            c = self._card(card_id)
            old = c["name"]
            c["name"] = name
            c["url"] = f"https://trello.com/c/{c['shortLink']}/{c['idShort']}-{_slug(name)}"
            return self._update_card(
                c, {}, {"name": old}, {"list": self._list_ref(c["idList"])}, by
            )

    def set_desc(self, card_id: str, desc: str, *, by: str | None = None) -> Json:
        with self.lock:
            c = self._card(card_id)
            old = c["desc"]
            c["desc"] = desc
            return self._update_card(
                c, {"desc": desc}, {"desc": old}, {"list": self._list_ref(c["idList"])}, by
            )

    def set_due(self, card_id: str, due: datetime | str | None, *, by: str | None = None) -> Json:
        with self.lock:
            c = self._card(card_id)
            old = c["due"]
            c["due"] = iso(due) if isinstance(due, datetime) else due
            return self._update_card(
                c, {"due": c["due"]}, {"due": old}, {"list": self._list_ref(c["idList"])}, by
            )

    def archive_card(self, card_id: str, closed: bool = True, *, by: str | None = None) -> Json:
        """Archive (or with ``closed=False`` restore) a card."""
        with self.lock:
            c = self._card(card_id)
            old = c["closed"]
            c["closed"] = closed
            return self._update_card(
                c, {"closed": closed}, {"closed": old}, {"list": self._list_ref(c["idList"])}, by
            )

    def delete_card(self, card_id: str, *, by: str | None = None) -> Json:
        """Delete a card for good; the action carries only the card's tombstone."""
        with self.lock:
            c = self._card(card_id)
            cid = c["id"]
            for cl_id in c["idChecklists"]:
                self.checklists.pop(cl_id, None)
            self.field_items.pop(cid, None)
            self.attachments.pop(cid, None)
            del self.cards[cid]
            self.deleted_cards.add(cid)
            data = {
                "card": {"id": cid, "idShort": c["idShort"], "shortLink": c["shortLink"]},
                "list": self._list_ref(c["idList"]),
            }
            b = self.boards[c["idBoard"]]
            action = self._record(b, "deleteCard", data, by=by)
            if self.deliver_webhooks:
                self._enqueue_card_hooks(c, action)
            return action

    def _label_action(self, card_id: str, label_id: str, add: bool, by: str | None) -> Json:
        with self.lock:
            c = self._card(card_id)
            label = self.labels[label_id]
            if label["idBoard"] != c["idBoard"]:
                raise KeyError(f"label {label_id!r} is not on the card's board")
            if add and label_id not in c["idLabels"]:
                c["idLabels"].append(label_id)
            elif not add and label_id in c["idLabels"]:
                c["idLabels"].remove(label_id)
            data = {
                "card": self._card_ref(c),
                "label": {"id": label_id, "name": label["name"], "color": label["color"]},
                "text": label["name"],
                "value": label["color"],
            }
            type_ = "addLabelToCard" if add else "removeLabelFromCard"
            return self._record(self.boards[c["idBoard"]], type_, data, card=c, by=by)

    def add_label(self, card_id: str, label_id: str, *, by: str | None = None) -> Json:
        return self._label_action(card_id, label_id, True, by)

    def remove_label(self, card_id: str, label_id: str, *, by: str | None = None) -> Json:
        return self._label_action(card_id, label_id, False, by)

    def _member_action(self, card_id: str, member_id: str, add: bool, by: str | None) -> Json:
        with self.lock:
            c = self._card(card_id)
            m = self.members[member_id]
            if add and member_id not in c["idMembers"]:
                c["idMembers"].append(member_id)
            elif not add and member_id in c["idMembers"]:
                c["idMembers"].remove(member_id)
            data: Json = {
                "idMember": member_id,
                "card": self._card_ref(c),
                "member": {"id": member_id, "name": m["fullName"]},
            }
            if not add:
                data["deactivated"] = False
            type_ = "addMemberToCard" if add else "removeMemberFromCard"
            return self._record(
                self.boards[c["idBoard"]], type_, data, card=c, by=by, member=member_id
            )

    def add_member(self, card_id: str, member_id: str, *, by: str | None = None) -> Json:
        return self._member_action(card_id, member_id, True, by)

    def remove_member(self, card_id: str, member_id: str, *, by: str | None = None) -> Json:
        return self._member_action(card_id, member_id, False, by)

    def add_checklist(
        self, card_id: str, name: str, items: Iterable[str] = (), *, by: str | None = None
    ) -> Json:
        """Add a checklist (``addChecklistToCard``, then one ``createCheckItem`` per item);
        returns the ``addChecklistToCard`` action."""
        with self.lock:
            c = self._card(card_id)
            clid = self.new_id()
            pos = 16384 * (len(c["idChecklists"]) + 1)
            self.checklists[clid] = {
                "id": clid,
                "name": name,
                "idBoard": c["idBoard"],
                "idCard": c["id"],
                "pos": pos,
                "checkItems": [],
            }
            c["idChecklists"].append(clid)
            action = self._record(
                self.boards[c["idBoard"]],
                "addChecklistToCard",
                {"card": self._card_ref(c), "checklist": {"id": clid, "name": name}},
                card=c,
                by=by,
            )
            for item in items:
                self.add_check_item(clid, item, by=by)
            return action

    def add_check_item(
        self, checklist_id: str, name: str, *, complete: bool = False, by: str | None = None
    ) -> Json:
        """Append an item to a checklist (``createCheckItem``)."""
        with self.lock:
            cl = self.checklists[checklist_id]
            c = self.cards[cl["idCard"]]
            iid = self.new_id()
            item = {
                "id": iid,
                "idChecklist": checklist_id,
                "name": name,
                "nameData": {"emoji": {}},
                "pos": 16384 * (len(cl["checkItems"]) + 1),
                "state": "complete" if complete else "incomplete",
                "due": None,
                "dueReminder": None,
                "idMember": None,
            }
            cl["checkItems"].append(item)
            data = {
                "card": self._card_ref(c),
                "checklist": {"id": checklist_id, "name": cl["name"]},
                "checkItem": {
                    "id": iid,
                    "name": name,
                    "state": item["state"],
                    "textData": {"emoji": {}},
                },
            }
            return self._record(self.boards[c["idBoard"]], "createCheckItem", data, card=c, by=by)

    def set_check_item(
        self, card_id: str, item_id: str, complete: bool, *, by: str | None = None
    ) -> Json:
        """Tick or untick a check item (``updateCheckItemStateOnCard``)."""
        with self.lock:
            c = self._card(card_id)
            for cl_id in c["idChecklists"]:
                cl = self.checklists[cl_id]
                for item in cl["checkItems"]:
                    if item["id"] == item_id:
                        item["state"] = "complete" if complete else "incomplete"
                        data = {
                            "card": self._card_ref(c),
                            "checklist": {"id": cl_id, "name": cl["name"]},
                            "checkItem": {
                                "id": item_id,
                                "name": item["name"],
                                "state": item["state"],
                                "textData": {"emoji": {}},
                            },
                        }
                        return self._record(
                            self.boards[c["idBoard"]],
                            "updateCheckItemStateOnCard",
                            data,
                            card=c,
                            by=by,
                        )
            raise KeyError(f"no check item {item_id!r} on card {card_id!r}")

    def _check_item_of(self, card_id: str, item_id: str) -> tuple[Json, Json, Json]:
        """(card, checklist, item) for a check item of a card; KeyError when unknown."""
        c = self._card(card_id)
        for cl_id in c["idChecklists"]:
            cl = self.checklists[cl_id]
            for item in cl["checkItems"]:
                if item["id"] == item_id:
                    return c, cl, item
        raise KeyError(f"no check item {item_id!r} on card {card_id!r}")

    @staticmethod
    def _check_item_ref(item: Json) -> Json:
        return {
            "id": item["id"],
            "name": item["name"],
            "state": item["state"],
            "textData": {"emoji": {}},
        }

    def rename_check_item(
        self, card_id: str, item_id: str, name: str, *, by: str | None = None
    ) -> Json:
        """Rename a check item (``updateCheckItem`` with ``old.name``).

        ``updateCheckItem`` is one of Trello's *excluded* action types: it is delivered to
        webhooks but never listed by the ``/actions`` routes (see `EXCLUDED_ACTION_TYPES`).
        """
        with self.lock:
            c, cl, item = self._check_item_of(card_id, item_id)
            old = item["name"]
            item["name"] = name
            data = {
                "card": self._card_ref(c),
                "checklist": {"id": cl["id"], "name": cl["name"]},
                "checkItem": self._check_item_ref(item),
                "old": {"name": old},
            }
            return self._record(self.boards[c["idBoard"]], "updateCheckItem", data, card=c, by=by)

    def delete_check_item(self, card_id: str, item_id: str, *, by: str | None = None) -> Json:
        """Delete a check item (``deleteCheckItem``)."""
        with self.lock:
            c, cl, item = self._check_item_of(card_id, item_id)
            cl["checkItems"].remove(item)
            data = {
                "checkItem": self._check_item_ref(item),
                "card": self._card_ref(c),
                "checklist": {"id": cl["id"], "name": cl["name"]},
            }
            return self._record(self.boards[c["idBoard"]], "deleteCheckItem", data, card=c, by=by)

    def rename_checklist(self, checklist_id: str, name: str, *, by: str | None = None) -> Json:
        """Rename a checklist (``updateChecklist``: the action names the checklist, no card)."""
        with self.lock:
            cl = self.checklists[checklist_id]
            c = self.cards[cl["idCard"]]
            old = cl["name"]
            cl["name"] = name
            data = {"checklist": {"id": checklist_id, "name": name}, "old": {"name": old}}
            return self._record(self.boards[c["idBoard"]], "updateChecklist", data, card=c, by=by)

    def delete_checklist(self, checklist_id: str, *, by: str | None = None) -> Json:
        """Delete a checklist and its items (``removeChecklistFromCard``)."""
        with self.lock:
            cl = self.checklists.pop(checklist_id)
            c = self.cards[cl["idCard"]]
            c["idChecklists"].remove(checklist_id)
            data = {
                "checklist": {"id": checklist_id, "name": cl["name"]},
                "card": self._card_ref(c),
            }
            return self._record(
                self.boards[c["idBoard"]], "removeChecklistFromCard", data, card=c, by=by
            )

    def set_custom_field(
        self, card_id: str, field_id: str, text: str | None, *, by: str | None = None
    ) -> Json:
        """Set (or clear with None/"") a card's custom-field value (``updateCustomFieldItem``).

        ``text`` is the value as text: the option text for a ``list`` field, ``"true"`` for a
        checkbox, digits for a number, an ISO date for a date.
        """
        with self.lock:
            c = self._card(card_id)
            f = self.custom_fields[field_id]
            items = self.field_items.setdefault(c["id"], {})
            previous = items.get(field_id)
            value: Json | None = None
            id_value: str | None = None
            if text not in (None, ""):
                assert text is not None
                if f["type"] == "list":
                    id_value = next(
                        (
                            o["id"]
                            for o in f["options"]
                            if o["value"]["text"].casefold() == text.casefold()
                        ),
                        None,
                    )
                    if id_value is None:
                        raise KeyError(f"{text!r} is not an option of {f['name']!r}")
                else:
                    key = {
                        "text": "text",
                        "number": "number",
                        "date": "date",
                        "checkbox": "checked",
                    }[f["type"]]
                    value = {key: text}
            if value is None and id_value is None:
                items.pop(field_id, None)
                item: Json = {
                    "id": previous["id"] if previous else self.new_id(),
                    "value": None,
                    "idValue": None,
                    "idCustomField": field_id,
                    "idModel": c["id"],
                    "modelType": "card",
                }
            else:
                item = {
                    "id": previous["id"] if previous else self.new_id(),
                    "value": value,
                    "idValue": id_value,
                    "idCustomField": field_id,
                    "idModel": c["id"],
                    "modelType": "card",
                }
                items[field_id] = item
            old = (
                {"idValue": previous["idValue"] if previous else None}
                if f["type"] == "list"
                else {"value": copy.deepcopy(previous["value"]) if previous else None}
            )
            data = {
                "card": self._card_ref(c),
                "customField": {"id": field_id, "name": f["name"], "type": f["type"]},
                "customFieldItem": copy.deepcopy(item),
                "old": old,
            }
            return self._record(
                self.boards[c["idBoard"]], "updateCustomFieldItem", data, card=c, by=by
            )

    def comment(self, card_id: str, text: str, *, by: str | None = None) -> Json:
        with self.lock:
            c = self._card(card_id)
            self.comment_counts[c["id"]] += 1
            data = {
                "text": text,
                "textData": {"emoji": {}},
                "card": self._card_ref(c),
                "list": self._list_ref(c["idList"]),
            }
            return self._record(self.boards[c["idBoard"]], "commentCard", data, card=c, by=by)

    def add_attachment(
        self,
        card_id: str,
        name: str,
        url: str,
        *,
        mime_type: str | None = None,
        size: int | None = None,
        by: str | None = None,
    ) -> Json:
        """Attach a link (or, with ``size``, an upload) to a card (``addAttachmentToCard``)."""
        with self.lock:
            c = self._card(card_id)
            now = self.clock()
            aid = self.new_id(now)
            existing = self.attachments.setdefault(c["id"], [])
            att = {
                "id": aid,
                "bytes": size,
                "date": iso(now),
                "edgeColor": None,
                "idMember": by or self._me(),
                "isUpload": size is not None,
                "mimeType": mime_type or "",
                "name": name,
                "previews": [],
                "url": url,
                "pos": 16384 * (len(existing) + 1),
                "fileName": name if size is not None else None,
            }
            existing.append(att)
            data = {
                "card": self._card_ref(c),
                "attachment": {"id": aid, "name": name, "url": url},
                "list": self._list_ref(c["idList"]),
            }
            return self._record(
                self.boards[c["idBoard"]], "addAttachmentToCard", data, card=c, by=by
            )

    # ----------------------------------------------------------------- webhooks

    @staticmethod
    def webhook_json(hook: Json) -> Json:
        keys = (
            "id",
            "description",
            "idModel",
            "callbackURL",
            "active",
            "consecutiveFailures",
            "firstConsecutiveFailDate",
        )
        return {k: hook[k] for k in keys}

    def create_webhook(
        self,
        token: str,
        callback_url: str,
        id_model: str,
        description: str = "",
        active: bool = True,
    ) -> Json:
        """Store a webhook (no HEAD check here; the route does it). ValueError on duplicates."""
        with self.lock:
            for hid, hook in self.webhooks.items():
                if (
                    hook["callbackURL"] == callback_url
                    and hook["idModel"] == id_model
                    and self.webhook_tokens[hid] == token
                ):
                    raise ValueError(
                        "A webhook with that callback, model, and token already exists"
                    )
            hid = self.new_id()
            self.webhooks[hid] = {
                "id": hid,
                "description": description,
                "idModel": id_model,
                "callbackURL": callback_url,
                "active": active,
                "consecutiveFailures": 0,
                "firstConsecutiveFailDate": None,
            }
            self.webhook_tokens[hid] = token
            return self.webhook_json(self.webhooks[hid])

    def delete_webhook(self, webhook_id: str) -> bool:
        with self.lock:
            self.webhook_tokens.pop(webhook_id, None)
            return self.webhooks.pop(webhook_id, None) is not None

    def _model_for(self, id_model: str) -> Json | None:
        b = self.boards.get(id_model)
        if b is not None:
            return self.board_model(b)
        c = self.cards.get(id_model)
        return self.card_json(c) if c is not None else None

    def _enqueue(self, board: Json, card: Json | None, action: Json) -> None:
        for hid, hook in self.webhooks.items():
            if not hook["active"]:
                continue
            if hook["idModel"] == board["id"]:
                self._dispatcher.submit(hid, copy.deepcopy(action), self.board_model(board))
            elif card is not None and hook["idModel"] == card["id"]:
                self._dispatcher.submit(hid, copy.deepcopy(action), self.card_json(card))

    def _enqueue_card_hooks(self, card: Json, action: Json) -> None:
        for hid, hook in self.webhooks.items():
            if hook["active"] and hook["idModel"] == card["id"]:
                model = {k: card[k] for k in ("id", "name", "idShort", "shortLink", "idBoard")}
                self._dispatcher.submit(hid, copy.deepcopy(action), model)

    def deliver_raw(self, webhook_id: str, action: Json, model: Json | None = None) -> None:
        """Queue one delivery of an arbitrary action to a webhook (even if not active)."""
        with self.lock:
            hook = self.webhooks[webhook_id]
            if model is None:
                model = self._model_for(hook["idModel"]) or {"id": hook["idModel"]}
            self._dispatcher.submit(webhook_id, copy.deepcopy(action), model)

    def wait_deliveries(self, timeout: float = 5.0) -> bool:
        """Wait until every queued delivery has been attempted; False on timeout."""
        return self._dispatcher.wait(timeout)

    def _deliver_one(self, webhook_id: str, action: Json, model: Json) -> None:
        with self.lock:
            hook = self.webhooks.get(webhook_id)
            if hook is None:
                return
            url = hook["callbackURL"]
            body = {"action": action, "model": model, "webhook": self.webhook_json(hook)}
            secret = self.api_secret
            timeout = self.webhook_timeout
        raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(
            url,
            data=raw,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Trello Webhooks (sandbox)",
                "X-Trello-Webhook": webhook_signature(secret, raw, url),
            },
        )
        status, error = 0, None
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                status = response.status
                response.read()
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        with self.lock:
            self.deliveries.append(
                Delivery(webhook_id, url, action.get("id"), status, time.time(), error)
            )
            hook = self.webhooks.get(webhook_id)
            if hook is None:
                return
            if status == 410:
                self.delete_webhook(webhook_id)
            elif 200 <= status < 300:
                hook["consecutiveFailures"] = 0
                hook["firstConsecutiveFailDate"] = None
            else:
                hook["consecutiveFailures"] += 1
                if hook["firstConsecutiveFailDate"] is None:
                    hook["firstConsecutiveFailDate"] = iso(datetime.now(UTC))

    def close(self) -> None:
        """Stop the delivery worker (pending deliveries are dropped)."""
        self._dispatcher.close()


# Never route loopback (or any sandbox) traffic through an environment proxy.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def head_status(url: str, timeout: float = 5.0) -> int:
    """Status of a HEAD request (0 when there was no answer), as Trello's webhook check does."""
    try:
        with _OPENER.open(urllib.request.Request(url, method="HEAD"), timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return 0
