"""Webhook verification and application, without HTTP: signatures, the direct application of
each full-change action onto a real store, replays, and the refetch and board-sync paths."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from adapters.sandbox import CONSORTIUM_SHORT_LINK, PRODUCT_SHORT_LINK, Sandbox, webhook_signature
from adapters.transport import ApiError
from state import models as m
from state.store import CARD_BATCH_FIELDS, BoardBatch
from syncd.config import BoardConfig
from syncd.demo import demo_settings
from syncd.payloads import BadDelivery
from syncd.report.build import build_report
from syncd.runtime import Runtime, build_runtime
from syncd.trello.actions import DIRECT_ACTIONS, plan
from syncd.trello.admin import delete_webhooks, list_webhooks, register_webhooks
from syncd.trello.apply import TrelloApplier
from syncd.trello.rows import UPDATE_FIELDS
from syncd.trello.schema import (
    KNOWN_ACTION_TYPES,
    CardData,
    TrelloAction,
    TrelloDelivery,
    parse_delivery,
)
from syncd.trello.webhooks import (
    TRELLO_PATH,
    BoardIndex,
    signature_ok,
    trello_signature,
)

CALLBACK = "https://syncd.example.org/webhooks/trello"
SECRET = "app-oauth-secret"


# -- signatures ---------------------------------------------------------------------------


def _payload() -> bytes:
    action = {"id": "65a7d90e0000000000000001", "type": "updateCard", "data": {"é": "ü"}}
    return json.dumps({"action": action, "model": {"id": "b"}}, ensure_ascii=False).encode()


def test_signature_matches_trello_recipe_and_the_sandbox() -> None:
    body = _payload()
    header = trello_signature(SECRET, body, CALLBACK)
    assert header == webhook_signature(SECRET, body, CALLBACK)
    assert signature_ok(body, header, SECRET, CALLBACK)


@pytest.mark.parametrize(
    "header, secret, url",
    [
        (None, SECRET, CALLBACK),  # missing
        ("", SECRET, CALLBACK),  # empty
        ("bm90IGEgc2lnbmF0dXJl", SECRET, CALLBACK),  # wrong
        ("ok", "another-secret", CALLBACK),  # signed with another secret
        ("ok", SECRET, CALLBACK + "/"),  # another callback URL
        ("ok", None, CALLBACK),  # no secret configured: nothing verifies
    ],
)
def test_signature_rejects(header: str | None, secret: str | None, url: str) -> None:
    body = _payload()
    if header == "ok":
        header = trello_signature(SECRET, body, CALLBACK)
    assert not signature_ok(body, header, secret, url)


def test_signature_is_over_raw_bytes_not_reencoded_json() -> None:
    body = _payload()
    header = trello_signature(SECRET, body, CALLBACK)
    reencoded = json.dumps(json.loads(body), separators=(",", ":")).encode()
    assert json.loads(reencoded) == json.loads(body)
    assert not signature_ok(reencoded, header, SECRET, CALLBACK)
    ascii_escaped = json.dumps(json.loads(body)).encode()  # \u00e9 instead of UTF-8
    assert not signature_ok(ascii_escaped, header, SECRET, CALLBACK)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"\xff\xfe", b"[1, 2]", b'{"action": {}}', b'{"action": {"id": 3}}', b"{}"],
)
def test_parse_rejects_what_trello_never_sends(body: bytes) -> None:
    with pytest.raises(BadDelivery):
        parse_delivery(body)


def test_delivery_board_prefers_action_data_then_model() -> None:
    b1, b2, b3, c = "b1" + "0" * 22, "b2" + "0" * 22, "b3" + "0" * 22, "c" * 24

    def board(payload: dict[str, Any]) -> tuple[str | None, str | None]:
        action = {"id": "a" * 24, "type": "updateCard", "date": "2026-01-01", **payload["action"]}
        return TrelloDelivery.model_validate({**payload, "action": action}).board()

    assert board({"action": {"data": {"board": {"id": b1, "shortLink": "s1"}}}}) == (b1, "s1")
    assert board({"action": {"data": {}}, "model": {"id": b2}}) == (b2, None)
    assert board({"action": {}, "model": {"id": c, "idBoard": b3}}) == (b3, None)


# -- application onto a real store --------------------------------------------------------


class World:
    """A synced sandbox + store, and an applier running inline (no threads)."""

    def __init__(self, sandbox: Sandbox, runtime: Runtime) -> None:
        self.sandbox = sandbox
        self.w = sandbox.world
        self.runtime = runtime
        self.store = runtime.store
        self.applier = TrelloApplier(
            store=runtime.store, trello=runtime.trello, mirror=runtime.mirror
        )
        self.index = BoardIndex(runtime.settings.trello.boards, runtime.store)

    def resolve(self, action: dict[str, Any]) -> tuple[BoardConfig, str]:
        match = self.index.resolve(*TrelloDelivery.model_validate({"action": action}).board())
        assert match is not None
        return match

    def checked(self, action: dict[str, Any]) -> TrelloAction:
        """The action as the intake hands it over."""
        return TrelloDelivery.model_validate({"action": action}).action

    def deliver(self, action: dict[str, Any]) -> str:
        return self.applier.deliver(self.checked(action), *self.resolve(action))

    def card(self, card_id: str) -> dict[str, Any]:
        batch = self.store.card_batch(
            CONSORTIUM_SHORT_LINK, "consortium", [card_id], observed_at="x"
        )
        if not batch.cards:
            batch = self.store.card_batch(PRODUCT_SHORT_LINK, "product", [card_id], observed_at="x")
        assert batch.cards, f"card {card_id} not live in the store"
        return {
            **batch.cards[0],
            "labels": sorted(r["label_id"] for r in batch.card_labels),
            "members": sorted(r["member_id"] for r in batch.card_members),
            "items": {r["id"]: (r["state"], r["name"]) for r in batch.check_items},
            "checklists": {r["id"]: r["name"] for r in batch.checklists},
            "fields": {r["custom_field_id"]: r["value"] for r in batch.custom_field_items},
            "figma": {r["node_id"] for r in batch.figma_links},
        }

    def versions(self, action_id: str) -> list[dict[str, Any]]:
        table = m.CardVersion.__table__
        with self.store.reader.begin() as connection:
            rows = connection.execute(select(table).where(table.c.action_id == action_id))
            return [dict(row) for row in rows.mappings()]

    def versions_of(self, card_id: str) -> list[dict[str, Any]]:
        table = m.CardVersion.__table__
        with self.store.reader.begin() as connection:
            rows = connection.execute(select(table).where(table.c.card_id == card_id))
            return [dict(row) for row in rows.mappings()]

    def requests(self) -> int:
        return self.sandbox.count("/1/")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with Sandbox(deliver_webhooks=False) as sandbox:
        sandbox.world.now = datetime.now(UTC).replace(microsecond=0)  # tests move it on
        settings = demo_settings(sandbox, tmp_path / "store.db")
        runtime = build_runtime(settings)
        reports = runtime.mirror.sync(full=True)
        assert all(report.error is None for report in reports)
        yield World(sandbox, runtime)
        runtime.store.close()


def _dashboard(world: World, name: str = "Drôme") -> dict[str, Any]:
    return world.w.find_card(name, board=CONSORTIUM_SHORT_LINK)


def test_each_full_change_action_applies_without_any_request(world: World) -> None:
    w = world.w
    card = _dashboard(world)
    cid = card["id"]
    other_list = w.find_list(CONSORTIUM_SHORT_LINK, "Actions en cours")
    label = w.find_label(CONSORTIUM_SHORT_LINK, "Prioritaire")
    member = w.find_member("Léa Dubois")
    item = w.find_check_item(cid, "Activer la prise de RDV")
    checklist = w.find_checklist(cid, "Actions prioritaires")
    text_field = w.find_custom_field(CONSORTIUM_SHORT_LINK, "Référent territorial")
    list_field = w.find_custom_field(CONSORTIUM_SHORT_LINK, "Statut")
    items = [i["id"] for i in w.checklists[checklist]["checkItems"] if i["id"] != item]
    assert items, "the checklist keeps an item after the deleted one"
    figma = "https://www.figma.com/design/JhZCwwrmaw2NYrITCj8QAK/RDV?node-id=7-1"
    before = world.requests()

    steps: list[tuple[Callable[[], dict[str, Any]], list[str], Callable[[Any], bool]]] = [
        (lambda: w.move_card(cid, other_list), ["list"], lambda c: c["list_id"] == other_list),
        (
            lambda: w.move_card(cid, w.find_list(CONSORTIUM_SHORT_LINK, "Fait"), pos=3.5),
            ["list"],
            lambda c: c["pos"] == 3.5,
        ),
        (lambda: w.set_pos(cid, 12.25), [], lambda c: c["pos"] == 12.25),
        (
            lambda: w.set_desc(cid, f"Référent : Nina\nMaquette {figma}"),
            ["desc"],
            lambda c: c["figma"] == {"7:1"} and c["desc"].startswith("Référent : Nina"),
        ),
        (
            lambda: w.set_due(cid, "2027-01-15T12:00:00.000Z"),
            ["due"],
            lambda c: c["due"] == "2027-01-15T12:00:00.000Z",
        ),
        (lambda: w.set_due_complete(cid, True), [], lambda c: c["due_complete"] is True),
        (lambda: w.set_due_complete(cid, False), [], lambda c: c["due_complete"] is False),
        (lambda: w.add_label(cid, label), ["labels"], lambda c: label in c["labels"]),
        (lambda: w.add_member(cid, member), ["members"], lambda c: member in c["members"]),
        (
            lambda: w.set_check_item(cid, item, True),
            ["checklist"],
            lambda c: c["items"][item] == ("complete", c["items"][item][1]),
        ),
        (
            lambda: w.rename_check_item(cid, item, "Prise de RDV activée"),
            [],
            lambda c: c["items"][item] == ("complete", "Prise de RDV activée"),
        ),
        (
            lambda: w.rename_checklist(checklist, "Priorités 2027"),
            [],
            lambda c: c["checklists"][checklist] == "Priorités 2027",
        ),
        (lambda: w.delete_check_item(cid, item), ["checklist"], lambda c: item not in c["items"]),
        (
            lambda: w.delete_checklist(checklist),
            ["checklist"],
            lambda c: checklist not in c["checklists"] and not set(items) & set(c["items"]),
        ),
        (
            lambda: w.set_custom_field(cid, text_field, "Nina Petit"),
            ["custom_field"],
            lambda c: c["fields"][text_field] == "Nina Petit",
        ),
        (
            lambda: w.set_custom_field(cid, list_field, "En pause"),
            ["custom_field"],
            lambda c: c["fields"][list_field] == "En pause",
        ),
        (
            lambda: w.set_custom_field(cid, text_field, None),
            ["custom_field"],
            lambda c: text_field not in c["fields"],
        ),
        (lambda: w.comment(cid, "Point d'étape"), [], lambda c: True),
        (lambda: w.remove_label(cid, label), ["labels"], lambda c: label not in c["labels"]),
        (lambda: w.remove_member(cid, member), ["members"], lambda c: member not in c["members"]),
        (lambda: w.archive_card(cid), ["closed"], lambda c: c["closed"]),
        (lambda: w.archive_card(cid, closed=False), ["closed"], lambda c: not c["closed"]),
    ]
    actions = []
    for change, fields, check in steps:
        w.now += timedelta(seconds=1)
        action = change()
        actions.append(action)
        assert plan(action) == "direct", action["type"]
        assert world.applier.apply(action, *world.resolve(action)) == "direct", action
        stored = world.card(cid)
        assert check(stored), (action["type"], stored)
        versions = world.versions(action["id"])
        assert [v["field"] for v in versions] == fields, action["type"]
        assert all(v["source"] == "webhook" and v["card_id"] == cid for v in versions)
        assert stored["date_last_activity"] == action["date"]
    assert world.requests() == before, "a full-change action needs no request"

    # Raw actions are stored as webhook actions, the cursor has not moved.
    assert world.store.known_actions(a["id"] for a in actions) == {a["id"] for a in actions}
    # The mirror now equals Trello: a full snapshot finds nothing to change.
    report = world.runtime.mirror.sync_board(
        next(b for b in world.runtime.settings.trello.boards if b.role == "consortium"), full=True
    )
    assert report.error is None
    assert report.changes == 0
    assert world.card(cid)["pos"] == 12.25


def test_rename_is_refetched_because_the_url_follows_the_name(world: World) -> None:
    cid = _dashboard(world)["id"]
    world.w.now += timedelta(seconds=1)
    action = world.w.rename_card(cid, "Drôme (26) – tableau de bord")
    assert plan(action) == "refetch"
    before = world.sandbox.count("/1/batch")
    assert world.deliver(action) == "applied"
    assert world.sandbox.count("/1/batch") - before == 1
    stored = world.card(cid)
    assert stored["name"] == "Drôme (26) – tableau de bord"
    assert stored["url"] == world.w.card(cid)["url"] and "tableau-de-bord" in stored["url"]
    assert [v["field"] for v in world.versions(action["id"])] == ["name"]


def test_an_action_on_the_same_millisecond_as_the_stored_card_is_refetched(world: World) -> None:
    cid = _dashboard(world)["id"]
    world.w.now += timedelta(seconds=1)
    first = world.w.add_label(cid, world.w.find_label(CONSORTIUM_SHORT_LINK, "Prioritaire"))
    second = world.w.set_due_complete(cid, True)  # same clock reading
    assert first["date"] == second["date"]
    assert world.applier.apply(first, *world.resolve(first)) == "direct"
    assert world.applier.apply(second, *world.resolve(second)) == "refetch"
    assert world.card(cid)["due_complete"] is True


def test_checklist_rename_of_a_checklist_not_stored_keeps_the_action_only(world: World) -> None:
    cid = _dashboard(world)["id"]
    world.w.now += timedelta(seconds=1)
    added = world.w.add_checklist(cid, "Nouvelle liste", ["Une étape"])
    checklist = added["data"]["checklist"]["id"]
    world.w.now += timedelta(seconds=1)
    renamed = world.w.rename_checklist(checklist, "Renommée")
    before = world.requests()
    assert world.applier.apply(renamed, *world.resolve(renamed)) == "store"
    assert world.requests() == before
    assert world.applier.apply(added, *world.resolve(added)) == "refetch"
    assert world.card(cid)["checklists"][checklist] == "Renommée"


def test_webhook_never_moves_the_cursor_and_the_poll_skips_known_actions(world: World) -> None:
    cid = _dashboard(world)["id"]
    cursor = world.store.sync_state(CONSORTIUM_SHORT_LINK)["action_cursor"]
    action = world.w.move_card(cid, world.w.find_list(CONSORTIUM_SHORT_LINK, "Fait"))
    assert world.deliver(action) == "applied"
    assert world.store.sync_state(CONSORTIUM_SHORT_LINK)["action_cursor"] == cursor
    before = world.sandbox.count("/1/batch")
    reports = world.runtime.mirror.sync()
    consortium = next(r for r in reports if r.board == CONSORTIUM_SHORT_LINK)
    assert consortium.mode == "incremental" and consortium.cards == 0  # nothing refetched
    assert world.sandbox.count("/1/batch") - before == 1  # the change check only
    assert world.store.sync_state(CONSORTIUM_SHORT_LINK)["action_cursor"] == action["id"]


def test_replay_is_applied_once(world: World) -> None:
    cid = _dashboard(world)["id"]
    action = world.w.move_card(cid, world.w.find_list(CONSORTIUM_SHORT_LINK, "Fait"))
    assert world.deliver(action) == "applied"
    assert world.deliver(action) == "replay"
    assert world.deliver(json.loads(json.dumps(action))) == "replay"
    assert len(world.versions(action["id"])) == 1
    deliveries = world.store.count(m.WebhookDelivery)
    assert deliveries == 1


def test_delete_card_marks_it_gone(world: World) -> None:
    card = world.w.find_card("Meuse", board=CONSORTIUM_SHORT_LINK)
    action = world.w.delete_card(card["id"])
    assert world.deliver(action) == "applied"
    versions = world.versions(action["id"])
    assert [v["field"] for v in versions] == ["deleted"]
    table = m.Card.__table__
    with world.store.reader.begin() as connection:
        deleted_at = connection.execute(
            select(table.c.deleted_at).where(table.c.id == card["id"])
        ).scalar_one()
    assert deleted_at is not None


def test_a_card_created_and_deleted_before_syncd_saw_it_has_no_history(world: World) -> None:
    """Issue 10, phantom deletions: late and retried deliveries about a card created and
    deleted between two syncs write no history and nothing reaches the report."""
    w = world.w
    since = datetime.now(UTC) - timedelta(minutes=1)
    product_id = w.board(PRODUCT_SHORT_LINK)["id"]
    list_id = next(x["id"] for x in w.lists.values() if x["idBoard"] == product_id)
    create = w.create_card(PRODUCT_SHORT_LINK, list_id, "Carte éphémère [77]")
    cid = create["data"]["card"]["id"]
    w.now += timedelta(seconds=1)
    label = w.add_label(cid, w.find_label(PRODUCT_SHORT_LINK, "Bug"))
    w.now += timedelta(seconds=1)
    comment = w.comment(cid, "Doublon, à supprimer")
    w.now += timedelta(seconds=1)
    delete = w.delete_card(cid)
    for action in (create, delete, label, comment):  # the creation first, late
        assert world.deliver(action) == "applied"
    assert world.deliver(create) == "replay"  # Trello retries the creation
    assert world.deliver(delete) == "replay"
    assert world.versions_of(cid) == []
    assert not any(card["id"] == cid for card in world.store.read_mirror().cards)
    world.runtime.mirror.sync()  # the poll reads the four actions: all known
    assert world.versions_of(cid) == []
    report = build_report(world.store, world.runtime.settings, now=datetime.now(UTC), since=since)
    assert not [c for c in report["changes"] if c.get("card_id") == cid]
    assert "supprimée" not in json.dumps(report["changes"], ensure_ascii=False)


def test_a_deletion_is_recorded_once_whatever_arrives_after_it(world: World) -> None:
    w = world.w
    meuse = w.find_card("Meuse", board=CONSORTIUM_SHORT_LINK)
    cid = meuse["id"]
    w.now += timedelta(seconds=1)
    label = w.add_label(cid, w.find_label(CONSORTIUM_SHORT_LINK, "Transverse"))
    w.now += timedelta(seconds=1)
    delete = w.delete_card(cid)
    for action in (delete, label):  # the label's delivery arrives after the deletion
        assert world.deliver(action) == "applied"
    world.runtime.mirror.sync()
    world.runtime.mirror.sync(full=True)
    versions = world.versions_of(cid)
    assert [(v["field"], json.loads(v["old"])) for v in versions] == [("deleted", meuse["name"])]


def test_create_card_is_refetched(world: World) -> None:
    w = world.w
    product_id = w.board(PRODUCT_SHORT_LINK)["id"]
    list_id = next(x["id"] for x in w.lists.values() if x["idBoard"] == product_id)
    action = w.create_card(PRODUCT_SHORT_LINK, list_id, "Nouvelle carte [77]", "desc")
    assert plan(action) == "refetch"
    before = world.sandbox.count("/1/batch")
    assert world.deliver(action) == "applied"
    assert world.sandbox.count("/1/batch") - before == 1
    cid = action["data"]["card"]["id"]
    stored = world.card(cid)
    assert stored["name"] == "Nouvelle carte [77]" and stored["list_id"] == list_id
    versions = world.versions(action["id"])
    assert [(v["field"], v["source"]) for v in versions] == [("created", "webhook")]


def test_checklist_added_is_refetched_and_a_comment_is_not(world: World) -> None:
    cid = _dashboard(world, "Meuse")["id"]
    before = world.sandbox.count("/1/batch")
    world.w.now += timedelta(seconds=1)
    assert world.deliver(world.w.comment(cid, "Point d'étape")) == "applied"
    assert world.sandbox.count("/1/batch") == before
    world.w.now += timedelta(seconds=1)
    action = world.w.add_checklist(cid, "Actions prioritaires", [])
    assert world.deliver(action) == "applied"
    assert world.sandbox.count("/1/batch") - before == 1


def test_action_older_than_the_stored_card_is_refetched(world: World) -> None:
    cid = _dashboard(world)["id"]
    fait = world.w.find_list(CONSORTIUM_SHORT_LINK, "Fait")
    stale = world.w.move_card(cid, fait)
    stale["date"] = "2000-01-01T00:00:00.000Z"  # older than anything stored
    before = world.sandbox.count("/1/batch")
    assert world.deliver(stale) == "applied"
    assert world.sandbox.count("/1/batch") - before == 1
    assert world.card(cid)["list_id"] == fait


def test_a_queued_run_refetches_its_cards_together_and_writes_once(world: World) -> None:
    w = world.w
    product_id = w.board(PRODUCT_SHORT_LINK)["id"]
    list_id = next(x["id"] for x in w.lists.values() if x["idBoard"] == product_id)
    drome, meuse = (_dashboard(world, name)["id"] for name in ("Drôme", "Meuse"))
    fait = w.find_list(CONSORTIUM_SHORT_LINK, "Fait")
    actions = []
    for change in (
        lambda: w.create_card(PRODUCT_SHORT_LINK, list_id, "Nouvelle carte 1 [77]"),
        lambda: w.move_card(drome, fait),
        lambda: w.create_card(PRODUCT_SHORT_LINK, list_id, "Nouvelle carte 2 [26]"),
        lambda: w.set_due_complete(meuse, True),
        lambda: w.comment(meuse, "Point d'étape"),
        lambda: w.archive_card(drome),
        lambda: w.create_card(PRODUCT_SHORT_LINK, list_id, "Nouvelle carte 3 [62]"),
    ):
        w.now += timedelta(seconds=1)
        actions.append(change())
    created = [a["data"]["card"]["id"] for a in actions if a["type"] == "createCard"]
    before = world.sandbox.count("/1/")
    run = [world.resolve(a) for a in actions]
    outcomes = world.applier.deliver_many(
        [
            (world.checked(a), *match)
            for a, match in zip([*actions, actions[1]], [*run, run[1]], strict=True)
        ]
    )
    assert outcomes == ["applied"] * len(actions) + ["replay"]
    assert world.sandbox.count("/1/") - before == 1  # the three new cards in one /1/batch
    assert world.card(drome)["list_id"] == fait and world.card(drome)["closed"]
    assert world.card(meuse)["due_complete"] is True
    assert {world.card(card)["name"][:15] for card in created} == {"Nouvelle carte "}
    cards = {a["data"]["card"]["id"] for a in actions}
    fields = sorted(v["field"] for card in cards for v in world.versions_of(card))
    assert fields == ["closed", "created", "created", "created", "list"]
    assert world.store.known_actions(a["id"] for a in actions) == {a["id"] for a in actions}


def test_a_card_deleted_within_a_run_is_gone_once(world: World) -> None:
    w = world.w
    meuse = w.find_card("Meuse", board=CONSORTIUM_SHORT_LINK)
    actions = []
    for change in (
        lambda: w.set_due_complete(meuse["id"], True),
        lambda: w.add_label(meuse["id"], w.find_label(CONSORTIUM_SHORT_LINK, "Prioritaire")),
        lambda: w.delete_card(meuse["id"]),
    ):
        w.now += timedelta(seconds=1)
        actions.append(change())
    before = world.requests()
    deliveries = [
        (world.checked(a), *world.resolve(a)) for a in reversed(actions)
    ]  # the deletion first
    assert world.applier.deliver_many(deliveries) == ["applied"] * 3
    assert world.requests() == before
    versions = world.versions_of(meuse["id"])
    assert [(v["field"], json.loads(v["old"])) for v in versions] == [("deleted", meuse["name"])]


def test_a_failed_run_stores_no_action_and_the_poll_catches_up(world: World) -> None:
    w = world.w
    product_id = w.board(PRODUCT_SHORT_LINK)["id"]
    list_id = next(x["id"] for x in w.lists.values() if x["idBoard"] == product_id)
    w.now += timedelta(seconds=1)
    created = w.create_card(PRODUCT_SHORT_LINK, list_id, "Carte [77]")
    w.now += timedelta(seconds=1)
    moved = w.move_card(_dashboard(world)["id"], w.find_list(CONSORTIUM_SHORT_LINK, "Fait"))

    def unreachable(card_ids: Any) -> Any:
        raise ApiError("Trello is down")

    world.applier.trello = type("Down", (), {"cards": staticmethod(unreachable)})()
    outcomes = world.applier.deliver_many(
        [(world.checked(a), *world.resolve(a)) for a in (created, moved)]
    )
    assert outcomes == ["failed", "applied"]  # one run per board
    assert world.store.known_actions([created["id"], moved["id"]]) == {moved["id"]}
    delivery = m.WebhookDelivery.__table__
    with world.store.reader.begin() as connection:
        marks = dict(connection.execute(select(delivery.c.action_id, delivery.c.outcome)).all())
    assert (marks[created["id"]], marks[moved["id"]]) == ("failed", "applied")
    world.runtime.mirror.sync()
    assert world.card(created["data"]["card"]["id"])["name"] == "Carte [77]"


def test_board_level_action_syncs_the_board(world: World) -> None:
    board_id = world.w.board(CONSORTIUM_SHORT_LINK)["id"]
    world.w.create_list(board_id, "Nouvelle liste")  # returns the list id
    action = world.w.board_actions(board_id)[0]  # newest first: its createList
    assert plan(action) == "board"
    assert world.deliver(action) == "applied"
    lists = world.store.read_mirror().lists
    assert "Nouvelle liste" in {row["name"] for row in lists}
    assert world.store.known_actions([action["id"]]) == {action["id"]}


# -- webhook management -------------------------------------------------------------------


class _HeadOk(BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:
        self.send_response(200 if self.path == "/webhooks/trello" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_register_list_delete_are_idempotent_and_only_touch_ours(tmp_path: Path) -> None:
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _HeadOk)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    public = f"http://127.0.0.1:{receiver.server_address[1]}"
    try:
        with Sandbox(deliver_webhooks=False) as sandbox:
            settings = demo_settings(sandbox, tmp_path / "store.db")
            settings = settings.model_copy(
                update={"server": settings.server.model_copy(update={"public_url": public})}
            )
            runtime = build_runtime(settings)  # nothing synced: ids come from one request each
            w = sandbox.world
            board_ids = {w.board(ref)["id"] for ref in (CONSORTIUM_SHORT_LINK, PRODUCT_SHORT_LINK)}
            foreign = w.create_webhook(sandbox.token, "https://other.example/hook", min(board_ids))

            lines = register_webhooks(runtime)
            assert len(lines) == 2 and all("registered" in line for line in lines)
            ours = [h for h in w.webhooks.values() if h["callbackURL"] == public + TRELLO_PATH]
            assert sorted(h["idModel"] for h in ours) == sorted(board_ids)
            created = sandbox.count("/1/webhooks", method="POST")
            again = register_webhooks(runtime)
            assert all("already registered" in line for line in again)
            assert sandbox.count("/1/webhooks", method="POST") == created  # nothing new

            listing = "\n".join(list_webhooks(runtime))
            for hook in ours:
                assert hook["id"] in listing
            assert CONSORTIUM_SHORT_LINK in listing and "(not ours)" in listing
            assert sandbox.token not in listing

            deleted = delete_webhooks(runtime)
            assert len(deleted) == 2
            assert list(w.webhooks) == [foreign["id"]]
            assert delete_webhooks(runtime) == ["no webhook of ours to delete"]
            runtime.store.close()
    finally:
        receiver.shutdown()
        receiver.server_close()


def test_the_applier_moves_every_card_row_the_store_replaces() -> None:
    """The applier carries over the lists the writer replaces card by card
    (`CARD_BATCH_FIELDS`, made from the writer's own children): each a `BoardBatch` list of
    rows, keyed by the card; the actions are not among them (they are kept, never replaced)."""
    fields = {field.name for field in dataclasses.fields(BoardBatch)}
    assert set(CARD_BATCH_FIELDS) <= fields
    assert CARD_BATCH_FIELDS[0] == "cards" and "actions" not in CARD_BATCH_FIELDS
    batch = BoardBatch(board_ref="b", role="product", observed_at="")
    assert all(getattr(batch, name) == [] for name in CARD_BATCH_FIELDS)


def test_an_action_not_understood_is_never_applied_directly(world: World) -> None:
    cid = _dashboard(world)["id"]
    action = world.w.move_card(cid, world.w.find_list(CONSORTIUM_SHORT_LINK, "Fait"))
    assert plan(action) == "direct"
    board = next(b for b in world.runtime.settings.trello.boards if b.role == "consortium")
    before = world.sandbox.count("/1/batch")
    checked = TrelloDelivery.model_validate({"action": action}).action.as_trello()
    (how,) = world.applier.apply_many(
        [checked], board, action["data"]["board"]["id"], understood=[False]
    )
    assert how == "refetch" and world.sandbox.count("/1/batch") - before == 1
    assert world.card(cid)["list_id"] == action["data"]["card"]["idList"]


def test_every_field_applied_directly_is_one_the_model_checks() -> None:
    """The applier reads only `as_trello()`: a card field the direct path applies and the model
    did not check would be absent (and the card refetched); none is."""
    assert set(UPDATE_FIELDS) <= set(CardData.model_fields)
    assert set(DIRECT_ACTIONS) <= KNOWN_ACTION_TYPES  # a type applied directly is modelled


def test_an_update_of_a_field_not_modelled_is_refetched(world: World) -> None:
    """``old`` keeps every key (its value dropped): the change is recognised and refetched."""
    cid = _dashboard(world)["id"]
    action = world.w.rename_card(cid, "Drôme (26)")
    action["data"]["old"] = {"name": "Drôme", "cover": None}  # cover: not a modelled field
    action["data"]["card"]["cover"] = {"color": "red"}
    delivery = TrelloDelivery.model_validate({"action": action})
    assert "cover" not in delivery.action.as_trello()["data"]["card"]
    before = world.sandbox.count("/1/batch")
    assert world.deliver(action) == "applied"
    assert world.sandbox.count("/1/batch") - before == 1  # refetched
    assert world.card(cid)["name"] == "Drôme (26)"
