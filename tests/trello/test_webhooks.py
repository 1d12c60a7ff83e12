"""Webhook verification and application, without HTTP: signatures, the direct application of
each full-change action onto a real store, replays, and the refetch and board-sync paths."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from adapters.sandbox import CONSORTIUM_SHORT_LINK, PRODUCT_SHORT_LINK, Sandbox, webhook_signature
from state import models as m
from state.store import BoardBatch
from syncd.demo import demo_settings
from syncd.payloads import BadDelivery
from syncd.runtime import Runtime, build_runtime
from syncd.trello.admin import delete_webhooks, list_webhooks, register_webhooks
from syncd.trello.apply import DIRECT_UPDATE_FIELDS, TrelloApplier, apply_to_batch, plan
from syncd.trello.schema import CardData, TrelloDelivery, parse_delivery
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


@pytest.mark.parametrize(
    "action, expected",
    [
        ({"type": "updateCard", "data": {"card": {"id": "c"}, "old": {"idList": "l"}}}, "direct"),
        ({"type": "updateCard", "data": {"card": {"id": "c"}, "old": {"name": "x"}}}, "direct"),
        ({"type": "updateCard", "data": {"card": {"id": "c"}, "old": {"start": None}}}, "refetch"),
        ({"type": "addLabelToCard", "data": {"card": {"id": "c"}}}, "direct"),
        ({"type": "deleteCard", "data": {"card": {"id": "c"}}}, "direct"),
        ({"type": "createCard", "data": {"card": {"id": "c"}}}, "refetch"),
        ({"type": "commentCard", "data": {"card": {"id": "c"}}}, "refetch"),
        ({"type": "addChecklistToCard", "data": {"card": {"id": "c"}}}, "refetch"),
        ({"type": "createList", "data": {"list": {"id": "l"}}}, "board"),
        ({"type": "moveCardToBoard", "data": {"card": {"id": "c"}}}, "board"),
        ({"type": "updateChecklist", "data": {"checklist": {"id": "x"}}}, "store"),
    ],
)
def test_plan(action: dict[str, Any], expected: str) -> None:
    assert plan(action) == expected


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

    def deliver(self, action: dict[str, Any]) -> str:
        delivery = TrelloDelivery.model_validate({"action": action})
        match = self.index.resolve(*delivery.board())
        assert match is not None
        return self.applier.deliver(delivery.action, *match)

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
            "items": {r["id"]: r["state"] for r in batch.check_items},
            "fields": {r["custom_field_id"]: r["value"] for r in batch.custom_field_items},
        }

    def versions(self, action_id: str) -> list[dict[str, Any]]:
        table = m.CardVersion.__table__
        with self.store.reader.begin() as connection:
            rows = connection.execute(select(table).where(table.c.action_id == action_id))
            return [dict(row) for row in rows.mappings()]

    def requests(self) -> int:
        return self.sandbox.count("/1/")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with Sandbox(deliver_webhooks=False) as sandbox:
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
    text_field = w.find_custom_field(CONSORTIUM_SHORT_LINK, "Référent territorial")
    list_field = w.find_custom_field(CONSORTIUM_SHORT_LINK, "Statut")
    before = world.requests()

    steps: list[tuple[dict[str, Any], str, Any]] = [
        (w.move_card(cid, other_list), "list", lambda c: c["list_id"] == other_list),
        (
            w.rename_card(cid, "Drôme <b>&</b> (26)"),
            "name",
            lambda c: c["name"] == "Drôme <b>&</b> (26)",
        ),
        (w.set_desc(cid, "Référent : Nina"), "desc", lambda c: c["desc"] == "Référent : Nina"),
        (
            w.set_due(cid, "2027-01-15T12:00:00.000Z"),
            "due",
            lambda c: c["due"] == "2027-01-15T12:00:00.000Z",
        ),
        (w.add_label(cid, label), "labels", lambda c: label in c["labels"]),
        (w.add_member(cid, member), "members", lambda c: member in c["members"]),
        (w.set_check_item(cid, item, True), "checklist", lambda c: c["items"][item] == "complete"),
        (
            w.set_custom_field(cid, text_field, "Nina Petit"),
            "custom_field",
            lambda c: c["fields"][text_field] == "Nina Petit",
        ),
        (
            w.set_custom_field(cid, list_field, "En pause"),
            "custom_field",
            lambda c: c["fields"][list_field] == "En pause",
        ),
        (
            w.set_custom_field(cid, text_field, None),
            "custom_field",
            lambda c: text_field not in c["fields"],
        ),
        (w.remove_label(cid, label), "labels", lambda c: label not in c["labels"]),
        (w.remove_member(cid, member), "members", lambda c: member not in c["members"]),
        (w.archive_card(cid), "closed", lambda c: c["closed"]),
        (w.archive_card(cid, closed=False), "closed", lambda c: not c["closed"]),
    ]
    for action, field, check in steps:
        assert plan(action) == "direct", action["type"]
        assert world.deliver(action) == "applied"
        stored = world.card(cid)
        assert check(stored), (action["type"], field, stored)
        versions = world.versions(action["id"])
        assert [v["field"] for v in versions] == [field], action["type"]
        assert versions[0]["source"] == "webhook"
        assert versions[0]["card_id"] == cid
        assert stored["date_last_activity"] == action["date"]
    assert world.requests() == before, "a full-change action needs no request"

    # Raw actions are stored as webhook actions, the cursor has not moved.
    actions = world.store.known_actions(a["id"] for a, _, _ in steps)
    assert actions == {a["id"] for a, _, _ in steps}
    # The mirror now equals Trello: a full snapshot finds nothing to change.
    report = world.runtime.mirror.sync_board(
        next(b for b in world.runtime.settings.trello.boards if b.role == "consortium"), full=True
    )
    assert report.error is None
    assert report.changes == 0


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


def test_comment_and_checklist_are_refetched(world: World) -> None:
    cid = _dashboard(world, "Meuse")["id"]
    before = world.sandbox.count("/1/batch")
    assert world.deliver(world.w.comment(cid, "Point d'étape")) == "applied"
    action = world.w.add_checklist(cid, "Actions prioritaires", [])
    assert world.deliver(action) == "applied"
    assert world.sandbox.count("/1/batch") - before == 2


def test_action_older_than_the_stored_card_is_refetched(world: World) -> None:
    cid = _dashboard(world)["id"]
    fait = world.w.find_list(CONSORTIUM_SHORT_LINK, "Fait")
    stale = world.w.move_card(cid, fait)
    stale["date"] = "2000-01-01T00:00:00.000Z"  # older than anything stored
    before = world.sandbox.count("/1/batch")
    assert world.deliver(stale) == "applied"
    assert world.sandbox.count("/1/batch") - before == 1
    assert world.card(cid)["list_id"] == fait


def test_apply_to_batch_refuses_incomplete_actions() -> None:
    batch = BoardBatch(board_ref="b", role="product", observed_at="now")
    batch.cards.append({"id": "c1", "board_id": "B", "date_last_activity": None})
    card = {"id": "c1"}
    incomplete = [
        {"type": "updateCard", "data": {"card": card, "old": {"name": "x"}}},  # new name absent
        {"type": "addLabelToCard", "data": {"card": card}},
        {"type": "updateCheckItemStateOnCard", "data": {"card": card, "checkItem": {"id": "i"}}},
        {"type": "updateCustomFieldItem", "data": {"card": card, "customFieldItem": {}}},
    ]
    for action in incomplete:
        assert not apply_to_batch(batch, action, board_id="B", options={}), action["type"]
    other_board = {"type": "addLabelToCard", "data": {"card": card, "label": {"id": "L"}}}
    assert not apply_to_batch(batch, other_board, board_id="OTHER")
    assert apply_to_batch(batch, other_board, board_id="B")
    assert batch.card_labels == [{"card_id": "c1", "label_id": "L"}]


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


def test_an_action_not_understood_is_never_applied_directly(world: World) -> None:
    cid = _dashboard(world)["id"]
    action = world.w.move_card(cid, world.w.find_list(CONSORTIUM_SHORT_LINK, "Fait"))
    assert plan(action) == "direct"
    board = next(b for b in world.runtime.settings.trello.boards if b.role == "consortium")
    before = world.sandbox.count("/1/batch")
    checked = TrelloDelivery.model_validate({"action": action}).action.as_trello()
    how = world.applier.apply(checked, board, action["data"]["board"]["id"], direct=False)
    assert how == "refetch" and world.sandbox.count("/1/batch") - before == 1
    assert world.card(cid)["list_id"] == action["data"]["card"]["idList"]


def test_every_field_applied_directly_is_one_the_model_checks() -> None:
    """The applier reads only `as_trello()`: a card field the direct path applies and the model
    did not check would be absent (and the card refetched); none is."""
    assert set(DIRECT_UPDATE_FIELDS) <= set(CardData.model_fields)


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
