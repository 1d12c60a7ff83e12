"""Tests of the loopback Trello sandbox (adapters/sandbox): routes, paging, batch, auth, rate
limit, fault injection, webhooks, request counting and the sample data."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from adapters.sandbox import (
    FIGMA_BROKEN_URL,
    FIGMA_FILE_KEY,
    Sandbox,
    TrelloWorld,
    build_large_world,
    build_sample_world,
    id_timestamp,
    webhook_signature,
)

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
CONSORTIUM = "oSmy09cz"
PRODUCT = "BiT8tx09"


def _session(sb: Sandbox) -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # never go through an environment proxy for loopback
    s.headers.update(sb.auth_header)
    return s


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[Sandbox, requests.Session]]:
    """A read-only sandbox over the sample, without a rate limit."""
    with Sandbox(world=build_sample_world(NOW), rate_limit_per_10s=None) as sb:
        yield sb, _session(sb)


@pytest.fixture
def fresh() -> Iterator[tuple[Sandbox, requests.Session]]:
    """A sandbox of its own (mutations, limits, faults)."""
    with Sandbox(world=build_sample_world(NOW)) as sb:
        yield sb, _session(sb)


# --------------------------------------------------------------------------- nested board fetch


def test_board_defaults_return_no_nested_resources(shared: Any) -> None:
    sb, s = shared
    r = s.get(f"{sb.trello_api_base}/boards/{CONSORTIUM}")
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "lapins-consortium-départements"
    assert {"id", "name", "desc", "closed", "url", "shortUrl", "prefs", "labelNames"} <= set(body)
    assert not {"cards", "lists", "labels", "members", "checklists", "actions"} & set(body)


def test_board_snapshot_honours_parameters(shared: Any) -> None:
    sb, s = shared
    params = {
        "fields": "id,name,dateLastActivity",
        "actions": "none",
        "lists": "all",
        "cards": "all",
        "card_fields": "name,idList,closed,idLabels,idMembers,desc",
        "card_customFieldItems": "true",
        "card_attachments": "true",
        "customFields": "true",
        "labels": "all",
        "labels_limit": "1000",
        "members": "all",
        "checklists": "all",
        "checkItem_fields": "all",
    }
    body = s.get(f"{sb.trello_api_base}/boards/{CONSORTIUM}", params=params).json()
    assert set(body) == {
        "id",
        "name",
        "dateLastActivity",
        "lists",
        "cards",
        "customFields",
        "labels",
        "members",
        "checklists",
    }
    assert [x["name"] for x in body["lists"]][:4] == [
        "Départements",
        "Actions en cours",
        "Sujets transverses",
        "Fait",
    ]
    archived = [c for c in body["cards"] if c["closed"]]
    assert len(archived) == 2  # cards=all includes archived cards
    assert set(body["cards"][0]) == {
        "id",
        "name",
        "idList",
        "closed",
        "idLabels",
        "idMembers",
        "desc",
        "customFieldItems",
        "attachments",
    }
    fields = {f["name"]: f for f in body["customFields"]}
    assert fields["Statut"]["type"] == "list" and fields["Statut"]["options"]
    meuse = next(c for c in body["cards"] if c["name"] == "Meuse (55)")
    referent_id = fields["Référent territorial"]["id"]
    assert all(i["idCustomField"] != referent_id for i in meuse["customFieldItems"])
    seine = next(c for c in body["cards"] if c["name"] == "77 – Seine-et-Marne")
    assert {
        "id": seine["customFieldItems"][0]["id"],
        "value": {"text": "Camille Martin"},
    }.items() <= next(
        i for i in seine["customFieldItems"] if i["idCustomField"] == referent_id
    ).items()
    lists = {cl["name"] for cl in body["checklists"] if cl["idCard"] == seine["id"]}
    assert lists == {"Actions prioritaires", "Sujets importants"}

    open_only = s.get(
        f"{sb.trello_api_base}/boards/{CONSORTIUM}",
        params={"cards": "open", "card_fields": "closed"},
    ).json()["cards"]
    visible = s.get(
        f"{sb.trello_api_base}/boards/{CONSORTIUM}",
        params={"cards": "visible", "card_fields": "closed"},
    ).json()["cards"]
    assert not any(c["closed"] for c in open_only)
    assert len(open_only) == len(body["cards"]) - 2
    assert len(visible) == len(open_only) - 1  # one open card sits in the archived list


def test_nested_actions_only_when_asked(shared: Any) -> None:
    sb, s = shared
    base = f"{sb.trello_api_base}/boards/{PRODUCT}"
    body = s.get(base, params={"actions": "all", "fields": "name"}).json()
    assert len(body["actions"]) == 50  # actions_limit defaults to 50
    body = s.get(base, params={"actions": "commentCard", "actions_limit": "3"}).json()
    assert [a["type"] for a in body["actions"]] == ["commentCard"] * 3
    card = body["actions"][0]["data"]["card"]
    got = s.get(
        f"{sb.trello_api_base}/cards/{card['id']}",
        params={"fields": "name", "labels": "true", "members": "true"},
    ).json()
    assert got["name"] == card["name"] and "labels" in got and "members" in got


def test_wrong_custom_field_param_name_gives_no_values(shared: Any) -> None:
    sb, s = shared
    base = f"{sb.trello_api_base}/boards/{CONSORTIUM}"
    wrong = s.get(base, params={"cards": "all", "customFieldItems": "true"}).json()
    assert all("customFieldItems" not in c for c in wrong["cards"])
    # on the cards route it is the other way round
    cards = s.get(base + "/cards", params={"card_customFieldItems": "true"}).json()
    assert all("customFieldItems" not in c for c in cards)
    cards = s.get(base + "/cards", params={"customFieldItems": "true"}).json()
    assert any(c["customFieldItems"] for c in cards)


def test_labels_limit_defaults_to_50() -> None:
    world = TrelloWorld(seed=3, now=NOW)
    bid = world.create_board("many-labels", short_link="MANYlab1")
    for i in range(60):
        world.create_label(bid, f"label {i}", "green")
    with Sandbox(world=world, rate_limit_per_10s=None) as sb:
        s = _session(sb)
        base = f"{sb.trello_api_base}/boards/MANYlab1"
        assert len(s.get(base, params={"labels": "all"}).json()["labels"]) == 50
        assert (
            len(s.get(base, params={"labels": "all", "labels_limit": "1000"}).json()["labels"])
            == 60
        )
        assert len(s.get(base + "/labels").json()) == 50
        assert s.get(base, params={"labels_limit": "1001", "labels": "all"}).status_code == 400


def test_unknown_and_invalid_ids(shared: Any) -> None:
    sb, s = shared
    r = s.get(f"{sb.trello_api_base}/boards/{'a' * 24}")
    assert (r.status_code, r.text) == (404, "The requested resource was not found.")
    r = s.get(f"{sb.trello_api_base}/boards/not-an-id!")
    assert (r.status_code, r.text) == (400, "invalid id")
    assert s.get(f"{sb.trello_api_base}/nothing/here").status_code == 404
    assert (
        s.get(f"{sb.trello_api_base}/boards/{CONSORTIUM}", params={"cards": "bogus"}).status_code
        == 400
    )


def test_too_many_cards(fresh: Any) -> None:
    sb, s = fresh
    sb.too_many_cards_threshold = 10
    r = s.get(f"{sb.trello_api_base}/boards/{CONSORTIUM}", params={"cards": "all"})
    assert r.status_code == 403
    assert r.json() == {
        "message": "API_TOO_MANY_CARDS_REQUESTED",
        "error": "API_TOO_MANY_CARDS_REQUESTED",
    }
    assert s.get(f"{sb.trello_api_base}/boards/{CONSORTIUM}", params={"cards": "none"}).ok


# --------------------------------------------------------------------------- paging


def test_cards_paging_with_before(shared: Any) -> None:
    sb, s = shared
    base = f"{sb.trello_api_base}/boards/{PRODUCT}/cards"
    everything = s.get(base + "/all", params={"fields": "id"}).json()
    seen: list[str] = []
    params: dict[str, str] = {"limit": "7", "fields": "id,name"}
    while True:
        page = s.get(base + "/all", params=params).json()
        if not page:
            break
        ids = [c["id"] for c in page]
        assert ids == sorted(ids, reverse=True)  # newest first
        seen += ids
        params["before"] = ids[-1]
    assert sorted(seen) == sorted(c["id"] for c in everything)
    assert len(seen) == len(set(seen)) == 30
    newest = seen[0]
    since = s.get(base + "/all", params={"since": seen[2], "limit": "100"}).json()
    assert [c["id"] for c in since] == seen[:2]
    by_date = s.get(base + "/all", params={"before": id_timestamp(newest).isoformat()}).json()
    assert newest not in {c["id"] for c in by_date}
    assert s.get(base, params={"limit": "1001"}).status_code == 400


def test_actions_paging_newest_first(shared: Any) -> None:
    sb, s = shared
    base = f"{sb.trello_api_base}/boards/{CONSORTIUM}/actions"
    assert len(s.get(base).json()) == 50  # default limit
    assert s.get(base, params={"limit": "1001"}).status_code == 400
    everything = s.get(base, params={"limit": "1000"}).json()
    ids = [a["id"] for a in everything]
    assert ids == sorted(ids, reverse=True)
    assert [a["date"] for a in everything] == sorted((a["date"] for a in everything), reverse=True)
    pages: list[str] = []
    params = {"limit": "40"}
    while True:
        page = s.get(base, params=params).json()
        if not page:
            break
        pages += [a["id"] for a in page]
        params["before"] = page[-1]["id"]
    assert pages == ids
    since = s.get(base, params={"since": ids[5], "limit": "1000"}).json()
    assert [a["id"] for a in since] == ids[:5]  # exclusive
    by_date = s.get(base, params={"since": everything[5]["date"]}).json()
    assert [a["id"] for a in by_date] == [
        a["id"] for a in everything if a["date"] > everything[5]["date"]
    ]
    moves = s.get(base, params={"filter": "updateCard:idList", "limit": "1000"}).json()
    assert moves and all("listAfter" in a["data"] for a in moves)
    comments = s.get(base, params={"filter": "commentCard,createCard"}).json()
    assert {a["type"] for a in comments} == {"commentCard", "createCard"}


# --------------------------------------------------------------------------- batch


def test_batch(fresh: Any) -> None:
    sb, s = fresh
    routes = [f"/boards/{CONSORTIUM}?fields=name%2CshortLink"] * 9 + [f"/cards/{'b' * 24}"]
    r = s.get(f"{sb.trello_api_base}/batch", params={"urls": ",".join(routes)})
    assert r.status_code == 200
    body = r.json()
    assert len(body) == 10
    assert body[0] == {
        "200": {
            "id": body[0]["200"]["id"],
            "name": "lapins-consortium-départements",
            "shortLink": CONSORTIUM,
        }
    }
    assert list(body[9]) == ["404"]
    assert sb.count("/1/batch") == 1
    # a batch uses one rate-limit slot per route (Trello does not document it: plan for N)
    assert r.headers["x-rate-limit-api-token-remaining"] == "90"
    r = s.get(f"{sb.trello_api_base}/batch", params={"urls": ",".join([*routes, "/members/me"])})
    assert r.status_code == 400


def test_batch_of_actions_since_a_cursor(fresh: Any) -> None:
    """The poll's change check: each board's actions since an id or a date, inside one batch;
    a comma inside a route's query travels encoded (the batch splits routes on commas)."""
    sb, s = fresh
    base = f"{sb.trello_api_base}/boards/{CONSORTIUM}/actions"
    everything = s.get(base, params={"limit": "1000"}).json()
    newest, third = everything[0], everything[2]
    routes = [
        f"/boards/{CONSORTIUM}/actions?filter=all&memberCreator_fields=fullName%2Cusername"
        f"&since={third['id']}&limit=1000",
        f"/boards/{PRODUCT}/actions?filter=all&since={'f' * 24}&limit=1000",  # idle: []
        f"/boards/{CONSORTIUM}/actions?since={third['date'].replace(':', '%3A')}&limit=1000",
        f"/boards/{CONSORTIUM}/actions?since={newest['id']}&filter=all%2CcommentCard",
    ]
    body = s.get(f"{sb.trello_api_base}/batch", params={"urls": ",".join(routes)}).json()
    assert [a["id"] for a in body[0]["200"]] == [a["id"] for a in everything[:2]]
    assert body[1] == {"200": []}
    assert [a["id"] for a in body[2]["200"]] == [
        a["id"] for a in everything if a["date"] > third["date"]
    ]
    assert body[3] == {"200": []}
    assert sb.count("/1/batch") == 1 and len(sb.requests) == 2


def test_a_route_refused_inside_a_batch(fresh: Any) -> None:
    sb, s = fresh
    sb.refuse_in_batch(1, status=401, path_prefix=f"/1/boards/{PRODUCT}/actions")
    routes = [f"/boards/{CONSORTIUM}/actions?limit=1", f"/boards/{PRODUCT}/actions?limit=1"]
    r = s.get(f"{sb.trello_api_base}/batch", params={"urls": ",".join(routes)})
    assert r.status_code == 200  # the batch is answered, the one route refused in its place
    first, second = r.json()
    assert list(first) == ["200"] and len(first["200"]) == 1
    assert second == {
        "401": {"message": "unauthorized permission requested", "error": "UNAUTHORIZED"}
    }
    # a direct request is not a route inside a batch; the fault was used once
    assert s.get(f"{sb.trello_api_base}/boards/{PRODUCT}/actions").status_code == 200
    again = s.get(f"{sb.trello_api_base}/batch", params={"urls": ",".join(routes)}).json()
    assert [list(answer) for answer in again] == [["200"], ["200"]]


# --------------------------------------------------------------------------- auth and limits


def test_auth_required(fresh: Any) -> None:
    sb, s = fresh
    anon = requests.Session()
    anon.trust_env = False
    url = f"{sb.trello_api_base}/boards/{CONSORTIUM}"
    r = anon.get(url)
    assert (r.status_code, r.text) == (401, "invalid key")
    r = anon.get(
        url,
        headers={"Authorization": f'OAuth oauth_consumer_key="{sb.api_key}", oauth_token="nope"'},
    )
    assert (r.status_code, r.text) == (401, "unauthorized permission requested")
    assert anon.get(url, params={"key": sb.api_key, "token": sb.token}).status_code == 200
    assert s.get(url).status_code == 200
    assert [r.credentials_in_query for r in sb.requests] == [False, False, True, False]
    assert sb.requests[-1].token == sb.token


def test_rate_limit_after_100_requests(fresh: Any) -> None:
    sb, s = fresh
    url = f"{sb.trello_api_base}/members/me"
    statuses = [s.get(url).status_code for _ in range(100)]
    assert statuses == [200] * 100
    r = s.get(url)
    assert r.status_code == 429
    assert r.json() == {"error": "API_TOKEN_LIMIT_EXCEEDED", "message": "Rate limit exceeded"}
    assert r.headers["x-rate-limit-api-token-remaining"] == "0"
    assert r.headers["x-rate-limit-api-token-max"] == "100"
    assert r.headers["x-rate-limit-api-token-interval-ms"] == "10000"
    assert "Retry-After" not in r.headers
    sb.reset_rate_limit()
    assert s.get(url).status_code == 200


# --------------------------------------------------------------------------- fault injection


def test_fault_injection(fresh: Any) -> None:
    sb, s = fresh
    board = f"{sb.trello_api_base}/boards/{CONSORTIUM}"
    sb.fail_next(2, status=503, path_prefix="/1/boards")
    assert s.get(f"{sb.trello_api_base}/members/me").status_code == 200  # prefix not matched
    r = s.get(board)
    assert (r.status_code, r.text) == (503, "Service Unavailable")
    assert s.get(board).status_code == 503
    assert s.get(board).status_code == 200

    sb.disconnect_next(1)
    with pytest.raises(requests.ConnectionError):
        s.get(board)
    assert s.get(board).status_code == 200

    sb.garbage_next(1)
    r = s.get(board)
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()

    sb.rate_limit_next(1)
    r = s.get(board)
    assert r.status_code == 429 and r.json()["error"] == "API_TOKEN_LIMIT_EXCEEDED"
    assert s.get(board).status_code == 200
    assert [x.status for x in sb.requests] == [200, 503, 503, 200, 0, 200, 200, 429, 200]


def test_request_counting_and_latency() -> None:
    with Sandbox(world=build_sample_world(NOW), latency=0.01) as sb:
        s = _session(sb)
        s.get(f"{sb.trello_api_base}/boards/{CONSORTIUM}")
        s.get(f"{sb.trello_api_base}/boards/{PRODUCT}/cards")
        s.get(f"{sb.trello_api_base}/members/me")
        s.delete(f"{sb.trello_api_base}/webhooks/{'c' * 24}")
        assert sb.count() == 4
        assert sb.count("/1/boards") == 2
        assert sb.count("/1/boards", method="GET") == 2
        assert sb.count(method="DELETE") == 1
        sb.reset_counts()
        assert sb.count() == 0


def test_figma_hook() -> None:
    calls: list[tuple[str, str]] = []

    class Stub:
        def handle(
            self,
            method: str,
            path: str,
            query: dict[str, list[str]],
            headers: dict[str, str],
            body: bytes,
        ) -> tuple[int, dict[str, str], bytes]:
            calls.append((method, path))
            return 200, {"Content-Type": "application/json"}, b'{"name": "RDV"}'

    with Sandbox(world=TrelloWorld(now=NOW)) as sb:
        s = _session(sb)
        assert s.get(f"{sb.figma_api_base}/v1/files/{FIGMA_FILE_KEY}").status_code == 404
        sb.figma = Stub()
        r = s.get(f"{sb.figma_api_base}/v1/files/{FIGMA_FILE_KEY}/meta")
        assert r.json() == {"name": "RDV"}
        assert calls == [("GET", f"/v1/files/{FIGMA_FILE_KEY}/meta")]
        assert sb.count("/v1/") == 2


# --------------------------------------------------------------------------- webhooks


class _Callback:
    """A tiny local webhook receiver: HEAD answers ``head_status``, POSTs are recorded."""

    def __init__(self) -> None:
        self.head_status = 200
        self.post_status = 200
        self.posts: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                self.send_response(outer.head_status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                outer.posts.append((dict(self.headers), raw))
                self.send_response(outer.post_status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/trello?board=1"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def callback() -> Iterator[_Callback]:
    cb = _Callback()
    yield cb
    cb.close()


def test_webhook_life_cycle(fresh: Any, callback: _Callback) -> None:
    sb, s = fresh
    world = sb.world
    board_id = world.board(CONSORTIUM)["id"]
    api = sb.trello_api_base

    callback.head_status = 404
    r = s.post(f"{api}/webhooks", json={"callbackURL": callback.url, "idModel": board_id})
    assert r.status_code == 400
    assert r.text == f"URL ({callback.url}) did not return 200 status code, got 404"
    callback.head_status = 200

    r = s.post(
        f"{api}/webhooks",
        json={"callbackURL": callback.url, "idModel": board_id, "description": "syncd"},
    )
    assert r.status_code == 200
    hook = r.json()
    assert hook == {
        "id": hook["id"],
        "description": "syncd",
        "idModel": board_id,
        "callbackURL": callback.url,
        "active": True,
        "consecutiveFailures": 0,
        "firstConsecutiveFailDate": None,
    }
    dup = s.post(
        f"{api}/tokens/{sb.token}/webhooks", data={"callbackURL": callback.url, "idModel": board_id}
    )
    assert (dup.status_code, dup.text) == (
        400,
        "A webhook with that callback, model, and token already exists",
    )
    assert [h["id"] for h in s.get(f"{api}/tokens/{sb.token}/webhooks").json()] == [hook["id"]]

    card = world.find_card("Formation des agents")
    fait = world.find_list(CONSORTIUM, "Fait")
    action = world.move_card(card["id"], fait)
    assert sb.wait_deliveries(5)
    assert len(callback.posts) == 1
    headers, raw = callback.posts[0]
    assert headers["X-Trello-Webhook"] == webhook_signature(sb.api_secret, raw, callback.url)
    assert headers["X-Trello-Webhook"] != webhook_signature("wrong", raw, callback.url)
    payload = json.loads(raw)
    assert payload["action"] == action
    assert payload["action"]["data"]["listAfter"] == {"id": fait, "name": "Fait"}
    assert payload["action"]["data"]["old"] == {"idList": card["idList"]}
    assert payload["model"]["id"] == board_id
    assert payload["webhook"]["id"] == hook["id"]

    callback.post_status = 500
    world.comment(card["id"], "Retour très positif des équipes ✔")
    assert sb.wait_deliveries(5)
    got = s.get(f"{api}/webhooks/{hook['id']}").json()
    assert got["consecutiveFailures"] == 1 and got["firstConsecutiveFailDate"]

    callback.post_status = 410  # Gone: Trello deletes the webhook
    sb.deliver_raw(hook["id"], {"id": "x", "type": "commentCard", "data": {}})
    assert sb.wait_deliveries(5)
    assert s.get(f"{api}/webhooks/{hook['id']}").status_code == 404

    again = s.post(f"{api}/webhooks", params={"callbackURL": callback.url, "idModel": board_id})
    assert again.status_code == 200
    assert s.delete(f"{api}/webhooks/{again.json()['id']}").json() == {"_value": None}
    assert s.get(f"{api}/tokens/{sb.token}/webhooks").json() == []


# --------------------------------------------------------------------------- world and sample


def test_mutation_actions_and_deleted_cards(fresh: Any) -> None:
    sb, s = fresh
    world = sb.world
    world.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    first = world.find_list(PRODUCT, "Backlog")
    created = world.create_card(
        PRODUCT, first, "[Bug] Nouveau bug", label_ids=(world.find_label(PRODUCT, "Bug"),)
    )
    cid = created["data"]["card"]["id"]
    assert created["type"] == "createCard" and created["date"] == "2026-12-01T09:00:00.000Z"
    assert id_timestamp(cid) == world.now
    renamed = world.rename_card(cid, "[Bug] Bug renommé")
    assert renamed["data"]["old"] == {"name": "[Bug] Nouveau bug"}
    archived = world.archive_card(cid)
    assert (archived["data"]["old"], archived["data"]["card"]["closed"]) == (
        {"closed": False},
        True,
    )
    member = world.find_member("Karim Benali")
    added = world.add_member(cid, member)
    assert added["data"]["member"] == {"id": member, "name": "Karim Benali"}
    deleted = world.delete_card(cid)
    assert set(deleted["data"]["card"]) == {"id", "idShort", "shortLink"}
    assert s.get(f"{sb.trello_api_base}/cards/{cid}").status_code == 404
    board = world.board(PRODUCT)
    assert board["dateLastActivity"] == "2026-12-01T09:00:00.000Z"
    seine = world.find_card("77 – Seine-et-Marne")["id"]
    tick = world.set_check_item(seine, world.find_check_item(seine, "CCAS"), True)
    assert tick["data"]["checkItem"]["state"] == "complete"
    assert tick["data"]["checklist"]["name"] == "Actions prioritaires"
    field = world.find_custom_field(CONSORTIUM, "Référent territorial")
    meuse = world.find_card("Meuse (55)")["id"]
    cf = world.set_custom_field(meuse, field, "Jeanne Roux")
    assert cf["data"]["old"] == {"value": None}
    assert cf["data"]["customFieldItem"]["value"] == {"text": "Jeanne Roux"}
    card = s.get(
        f"{sb.trello_api_base}/cards/{meuse}",
        params={"customFieldItems": "true", "checklists": "all", "list": "true"},
    ).json()
    assert card["list"]["name"] == "Départements"
    assert any(i["value"] == {"text": "Jeanne Roux"} for i in card["customFieldItems"])
    assert {cl["name"] for cl in card["checklists"]} == {
        "Actions prioritaires",
        "Sujets importants",
    }


def test_card_field_and_checklist_mutations_have_trellos_action_shapes(fresh: Any) -> None:
    sb, s = fresh
    world = sb.world
    world.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    seine = world.find_card("77 – Seine-et-Marne")
    cid = seine["id"]
    fait = world.find_list(CONSORTIUM, "Fait")
    moved = world.move_card(cid, fait)
    assert moved["data"]["old"] == {"idList": seine["idList"]}  # the recorded shape
    assert world.card(cid)["pos"] == seine["pos"]  # idList alone keeps the position
    back = world.move_card(cid, seine["idList"], pos=7.5)
    assert back["data"]["old"] == {"idList": fait, "pos": seine["pos"]}
    assert (back["data"]["card"]["idList"], back["data"]["card"]["pos"]) == (seine["idList"], 7.5)
    pos = world.set_pos(cid, 12.25)
    assert (pos["data"]["old"], pos["data"]["card"]["pos"]) == ({"pos": 7.5}, 12.25)
    done = world.set_due_complete(cid, True)
    assert (done["data"]["old"], done["data"]["card"]["dueComplete"]) == (
        {"dueComplete": False},
        True,
    )
    item = world.find_check_item(cid, "CCAS")
    checklist = world.find_checklist(cid, "Actions prioritaires")
    renamed = world.rename_check_item(cid, item, "CCAS de Meaux")
    assert renamed["type"] == "updateCheckItem"
    assert renamed["data"]["old"] == {"name": "Relancer les CCAS partenaires"}
    assert renamed["data"]["checkItem"]["name"] == "CCAS de Meaux"
    gone = world.delete_check_item(cid, item)
    assert gone["type"] == "deleteCheckItem" and gone["data"]["checklist"]["id"] == checklist
    retitled = world.rename_checklist(checklist, "Priorités 2027")
    assert retitled["type"] == "updateChecklist"
    assert set(retitled["data"]) == {"checklist", "old", "board"}  # no card
    removed = world.delete_checklist(checklist)
    assert removed["type"] == "removeChecklistFromCard" and removed["data"]["card"]["id"] == cid
    card = s.get(f"{sb.trello_api_base}/cards/{cid}", params={"checklists": "all"}).json()
    assert checklist not in {cl["id"] for cl in card["checklists"]}
    assert card["dueComplete"] is True and card["pos"] == 12.25
    assert card["dateLastActivity"] == "2026-12-01T09:00:00.000Z"


def test_excluded_action_types_are_delivered_but_never_listed(fresh: Any) -> None:
    sb, s = fresh
    world = sb.world
    world.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    cid = world.find_card("77 – Seine-et-Marne")["id"]
    renamed = world.rename_check_item(cid, world.find_check_item(cid, "CCAS"), "CCAS de Meaux")
    listed = s.get(f"{sb.trello_api_base}/boards/{CONSORTIUM}/actions", params={"limit": 1000})
    assert renamed["id"] not in {a["id"] for a in listed.json()}
    on_card = s.get(f"{sb.trello_api_base}/cards/{cid}/actions", params={"filter": "all"})
    assert renamed["id"] not in {a["id"] for a in on_card.json()}
    single = s.get(f"{sb.trello_api_base}/actions/{renamed['id']}")
    assert single.status_code == 200 and single.json()["type"] == "updateCheckItem"


def test_sample_world_content() -> None:
    world = build_sample_world(NOW)
    again = build_sample_world(NOW)
    assert world.board(CONSORTIUM)["id"] == again.board(CONSORTIUM)["id"]
    assert sorted(world.cards) == sorted(again.cards)  # deterministic for a given now
    cons = world.board(CONSORTIUM)["id"]
    dashboards = [
        c["name"]
        for c in world.board_cards(cons)
        if c["idList"] == world.find_list(CONSORTIUM, "Départements")
    ]
    assert len(dashboards) == 12  # the how-to card + 11 départements (no Val-d'Oise)
    assert not any("Val-d'Oise" in name for name in dashboards)
    assert world.find_card("<script>alert(1)</script>")
    assert world.find_card("la somme des RDV du mois")
    stale = world.find_card("[Aveyron] Signature")
    assert (NOW - datetime.fromisoformat(stale["dateLastActivity"])).days >= 60
    pdc = world.find_card("Pas-de-Calais", board=CONSORTIUM)
    priority = world.checklists[world.find_checklist(pdc["id"], "Actions prioritaires")]
    assert sum(i["state"] == "incomplete" for i in priority["checkItems"]) == 4
    meuse = world.find_card("Meuse (55)")
    assert not meuse["idMembers"] and "éférent" not in meuse["desc"]
    assert not any(i["value"] for i in world.field_items.get(meuse["id"], {}).values())
    product = world.board_cards(world.board(PRODUCT)["id"])
    assert len(product) == 30
    texts = [c["desc"] for c in product] + [
        a["url"] for c in product for a in world.attachments.get(c["id"], [])
    ]
    assert any("node-id=5-95" in t for t in texts)
    assert any("node-id=148%3A129" in t for t in texts)
    assert FIGMA_BROKEN_URL in texts
    actions = world.board_actions(cons)
    assert all(a["date"] < "2026-11-30T08:00:00.000Z" for a in actions)
    assert [a["id"] for a in actions] == sorted((a["id"] for a in actions), reverse=True)
    assert [a["date"] for a in actions] == sorted((a["date"] for a in actions), reverse=True)


def test_large_world_builds() -> None:
    world = build_large_world(cards=300, actions=1500, now=NOW)
    bid = world.board("LARGEb01")["id"]
    assert len(world.board_cards(bid)) == 300
    assert len(world.actions[bid]) == 1500
    assert len(world.board_lists(bid)) == 10
