"""Many large boards for the scale bench (``bench/bench_scale.py``), built fast and the same
every time.

Owns ``build_scale_world`` and ``ScaleWorld``: ``boards`` boards (``SCALE000``, ``SCALE001``, …;
the first is the consortium, its first list the départements' dashboard cards ``CD77 – tableau
de bord``), each with ``cards`` cards (labels, members, an "Actions prioritaires" checklist on
every other card, a "Référent territorial" value on two cards in three, a département code in
one title in three) and exactly ``actions`` listed actions (more only when creating the cards
takes more): ``createBoard``, ``createList``, then ``createCard``/``addChecklistToCard``/
``createCheckItem`` for every card, then comments, moves and ticked items over the year.

Cards, checklists and values are ordinary world state. The history is kept compact: a kind, a
card and an argument per action in arrays, its id and date computed from its position, and is
turned into Trello-shaped actions only when a route pages through it (``actions_newest_first``),
so a million actions cost a few megabytes. Changes made after the build are recorded as usual
and are newer than the history.
"""

from __future__ import annotations

import heapq
import random
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, overload

from .trello_world import TrelloWorld, iso, object_id

__all__ = ["SCALE_SEED", "ScaleWorld", "build_scale_world", "scale_short_link"]

SCALE_SEED = 20261201
Json = dict[str, Any]

_CREATE_CARD, _ADD_CHECKLIST, _CREATE_ITEM, _COMMENT, _MOVE, _CHECK = range(6)
_TYPES = (
    "createCard",
    "addChecklistToCard",
    "createCheckItem",
    "commentCard",
    "updateCard",
    "updateCheckItemStateOnCard",
)
_KEYS = (
    "action_create_card",
    "action_add_checklist_to_card",
    "action_create_checkitem",
    "action_comment_on_card",
    "action_move_card_from_list_to_list",
    "action_completed_checkitem",
)
_ITEMS = 3  # items of each "Actions prioritaires" checklist
_LISTS = 10
_PEOPLE = (
    "Camille Martin",
    "Julien Moreau",
    "Sophie Lefèvre",
    "Thomas Girard",
    "Nathalie Bernard",
    "Léa Dubois",
    "Antoine Rousseau",
    "Mathilde Fournier",
)
_TOPICS = (
    "Prise de RDV en ligne",
    "Interconnexion avec le SI départemental",
    "Rappels SMS",
    "Formation des secrétariats",
    "Statistiques mensuelles",
    "Convocations par courrier",
    "Lieux de permanence",
    "Accessibilité du parcours usager",
)
# INSEE codes of the 101 départements (20 is split into 2A and 2B).
_CODES = (
    [f"{n:02d}" for n in range(1, 96) if n != 20] + ["2A", "2B"] + ["971", "972", "973", "974"]
) + ["976"]


def scale_short_link(index: int) -> str:
    """The short link of the scale world's board `index` (``SCALE000``, ``SCALE001``, …)."""
    return f"SCALE{index:03d}"


class _Ids(Sequence[str]):
    """The history's action ids by position (ascending), computed, for bisect."""

    def __init__(self, history: _History) -> None:
        self.history = history

    def __len__(self) -> int:
        return len(self.history.kinds)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self.history.action_id(index)


@dataclass
class _History:
    """One board's compact action history (see the module docstring)."""

    board: Json  # the board reference of every action's data
    machine: int
    start: int  # Unix seconds; action i is dated start + step * (i + 1)
    step: int
    lists: list[Json]  # list references, by list index
    cards: list[Json] = field(default_factory=list)  # card references, by card index
    checklists: list[tuple[Json, list[Json]] | None] = field(default_factory=list)
    people: list[str] = field(default_factory=list)
    kinds: array[int] = field(default_factory=lambda: array("B"))
    card: array[int] = field(default_factory=lambda: array("I"))
    arg: array[int] = field(default_factory=lambda: array("I"))

    def at(self, index: int) -> datetime:
        return datetime.fromtimestamp(self.start + self.step * (index + 1), UTC)

    def action_id(self, index: int) -> str:
        return object_id(self.at(index), index, self.machine)

    def add(self, kind: int, card: int, arg: int = 0) -> int:
        self.kinds.append(kind)
        self.card.append(card)
        self.arg.append(arg)
        return len(self.kinds) - 1


class ScaleWorld(TrelloWorld):
    """A `TrelloWorld` whose boards also have a compact, lazily listed history."""

    def __init__(self, *, seed: int = SCALE_SEED) -> None:
        super().__init__(seed=seed)
        self.histories: dict[str, _History] = {}

    def board_actions(self, board_id: str) -> list[Json]:
        return list(self.actions_newest_first(board_id))

    def actions_newest_first(
        self, board_id: str, *, since_id: str | None = None, before_id: str | None = None
    ) -> Iterator[Json]:
        recorded = sorted(self.actions.get(board_id, []), key=lambda a: a["id"], reverse=True)
        recorded = [
            a
            for a in recorded
            if (before_id is None or a["id"] < before_id)
            and (since_id is None or a["id"] > since_id)
        ]
        history = self.histories.get(board_id)
        if history is None:
            return iter(recorded)
        return heapq.merge(
            recorded,
            self._history_between(history, since_id, before_id),
            key=lambda a: a["id"],
            reverse=True,
        )

    def _history_between(
        self, history: _History, since_id: str | None, before_id: str | None
    ) -> Iterator[Json]:
        ids = _Ids(history)
        high = bisect_left(ids, before_id) if before_id is not None else len(ids)
        low = bisect_right(ids, since_id) if since_id is not None else 0
        for index in range(high - 1, low - 1, -1):
            yield self._history_action(history, index)

    def _history_action(self, h: _History, index: int) -> Json:
        kind, card, arg = h.kinds[index], h.cards[h.card[index]], h.arg[index]
        data: Json
        if kind == _CREATE_CARD:
            data = {"card": dict(card), "list": dict(h.lists[arg])}
        elif kind == _COMMENT:
            data = {
                "text": f"Commentaire n°{index}",
                "textData": {"emoji": {}},
                "card": dict(card),
                "list": dict(h.lists[arg]),
            }
        elif kind == _MOVE:
            before, after = h.lists[arg // 256], h.lists[arg % 256]
            data = {
                "card": {**card, "idList": after["id"]},
                "old": {"idList": before["id"]},
                "listBefore": dict(before),
                "listAfter": dict(after),
            }
        else:
            checklist = h.checklists[h.card[index]]
            assert checklist is not None
            reference, items = checklist
            data = {"card": dict(card), "checklist": dict(reference)}
            if kind != _ADD_CHECKLIST:
                item = items[arg // 2]
                state = "complete" if arg % 2 else "incomplete"
                data["checkItem"] = {**item, "state": state, "textData": {"emoji": {}}}
        creator = h.people[index % len(h.people)]
        return {
            "id": h.action_id(index),
            "idMemberCreator": creator,
            "data": {**data, "board": dict(h.board)},
            "appCreator": None,
            "type": _TYPES[kind],
            "date": iso(h.at(index)),
            "limits": {},
            "display": {"translationKey": _KEYS[kind], "entities": {}},
            "memberCreator": self.member_brief(creator),
        }


def build_scale_world(
    boards: int = 50, cards: int = 2000, actions: int = 20000, now: datetime | None = None
) -> ScaleWorld:
    """`boards` boards of `cards` cards and `actions` listed actions each (see the module
    docstring); the same world for the same arguments and `now` (default: the real time)."""
    anchor = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    w = ScaleWorld()
    w.now = anchor - timedelta(days=366)
    people = [w.create_member(name) for name in _PEOPLE]
    for index in range(boards):
        _build_board(w, index, cards, actions, anchor, people)
    w.now = now
    return w


def _build_board(
    w: ScaleWorld, index: int, cards: int, actions: int, anchor: datetime, people: list[str]
) -> None:
    rng = random.Random(SCALE_SEED + index)
    consortium = index == 0
    w.now = anchor - timedelta(days=366)
    bid = w.create_board(f"scale-{index:03d}", short_link=scale_short_link(index))
    b = w.boards[bid]
    for mid in people:
        w.add_board_member(bid, mid)
    names = [f"Colonne {n + 1}" for n in range(_LISTS)]
    if consortium:
        names[0] = "Départements"
    lists = [w.create_list(bid, name) for name in names]
    labels = [w.create_label(bid, f"Étiquette {n + 1}", None) for n in range(11)]
    priority = w.create_label(bid, "Prioritaire", "red")
    referent = w.create_custom_field(bid, "Référent territorial")
    recorded = len(w.actions[bid])
    setup = cards + (cards + 1) // 2 * (1 + _ITEMS)
    total = max(actions - recorded, setup)
    start = int((anchor - timedelta(days=365)).timestamp())
    h = _History(
        board={"id": bid, "name": b["name"], "shortLink": b["shortLink"]},
        machine=(w._machine + 1 + index) & 0xFFFFFFFFFF,
        start=start,
        step=max(1, int(timedelta(days=364).total_seconds()) // (total + 1)),
        lists=[{"id": lid, "name": w.lists[lid]["name"]} for lid in lists],
        people=people,
    )
    w.histories[bid] = h
    where = array("B")  # each card's list index, as the history moves it
    states: list[bytearray] = []  # each card's items, 1 = complete
    last = array("I")  # each card's last action
    for n in range(cards):
        at = h.at(len(h.kinds))
        dashboard = consortium and n < len(_CODES)
        if dashboard:
            name, home = f"CD{_CODES[n]} – tableau de bord", 0
        else:
            code = f" [{_CODES[n % len(_CODES)]}]" if n % 3 == 0 else ""
            name = f"Carte {n + 1} – {_TOPICS[n % len(_TOPICS)]}{code}"
            home = 1 + n % (_LISTS - 1) if consortium else n % _LISTS
        chosen = rng.sample(labels, n % 3) + ([priority] if n % 25 == 7 else [])
        card = w._add_card(
            b,
            lists[home],
            name,
            f"Description de la carte {n + 1}." if n % 3 else "",
            chosen,
            rng.sample(people, n % 2 + 1),
            16384.0 * (n + 1),
            now=at,
        )
        h.cards.append({k: card[k] for k in ("id", "name", "idShort", "shortLink")})
        where.append(home)
        last.append(h.add(_CREATE_CARD, n, home))
        if n % 3:
            w.field_items.setdefault(card["id"], {})[referent] = {
                "id": w.new_id(at),
                "value": {"text": _PEOPLE[n % len(_PEOPLE)]},
                "idValue": None,
                "idCustomField": referent,
                "idModel": card["id"],
                "modelType": "card",
            }
        states.append(bytearray(_ITEMS))
        if n % 2:
            h.checklists.append(None)
            continue
        clid = w.new_id(h.at(len(h.kinds)))
        items = [
            {
                "id": w.new_id(h.at(len(h.kinds) + 1 + k)),
                "idChecklist": clid,
                "name": f"Étape {k + 1}",
                "nameData": {"emoji": {}},
                "pos": 16384 * (k + 1),
                "state": "incomplete",
                "due": None,
                "dueReminder": None,
                "idMember": None,
            }
            for k in range(_ITEMS)
        ]
        w.checklists[clid] = {
            "id": clid,
            "name": "Actions prioritaires",
            "idBoard": bid,
            "idCard": card["id"],
            "pos": 16384,
            "checkItems": items,
        }
        card["idChecklists"].append(clid)
        h.checklists.append(
            (
                {"id": clid, "name": "Actions prioritaires"},
                [{"id": item["id"], "name": item["name"]} for item in items],
            )
        )
        h.add(_ADD_CHECKLIST, n)
        for k in range(_ITEMS):
            last[n] = h.add(_CREATE_ITEM, n, 2 * k)
    while len(h.kinds) < total and cards:
        n = rng.randrange(cards)
        op = len(h.kinds) % 3
        if op == 1 and not (consortium and where[n] == 0):  # dashboards stay in their list
            first = 1 if consortium else 0  # nor does a card join them
            span = _LISTS - first
            target = first + (where[n] - first + 1 + rng.randrange(span - 1)) % span
            last[n] = h.add(_MOVE, n, where[n] * 256 + target)
            where[n] = target
        elif op == 2 and h.checklists[n] is not None:
            k = rng.randrange(_ITEMS)
            states[n][k] ^= 1
            last[n] = h.add(_CHECK, n, 2 * k + states[n][k])
        else:
            last[n] = h.add(_COMMENT, n, where[n])
            w.comment_counts[h.cards[n]["id"]] += 1
    for n, reference in enumerate(h.cards):
        card = w.cards[reference["id"]]
        card["idList"] = lists[where[n]]
        card["dateLastActivity"] = iso(h.at(last[n]))
        for item, state in zip(
            w.checklists[card["idChecklists"][0]]["checkItems"] if card["idChecklists"] else [],
            states[n],
            strict=False,
        ):
            item["state"] = "complete" if state else "incomplete"
    if len(h.kinds):
        b["dateLastActivity"] = max(b["dateLastActivity"], iso(h.at(len(h.kinds) - 1)))
