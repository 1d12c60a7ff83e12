"""The sandbox's comment endpoint (``POST /1/cards/{id}/actions/comments``), a card's comments,
the token route and the read-only token mode, as Trello answers them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from adapters.sandbox import Sandbox, build_sample_world

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
CONSORTIUM = "oSmy09cz"


@pytest.fixture
def sandbox() -> Iterator[tuple[Sandbox, requests.Session]]:
    with Sandbox(world=build_sample_world(NOW)) as sb:
        session = requests.Session()
        session.trust_env = False
        session.headers.update(sb.auth_header)
        yield sb, session


def test_a_comment_is_a_commentcard_action_by_the_token_member(sandbox: Any) -> None:
    sb, s = sandbox
    world = sb.world
    card = world.find_card("Seine-et-Marne")
    world.now = NOW.replace(hour=9)
    r = s.post(
        f"{sb.trello_api_base}/cards/{card['id']}/actions/comments",
        json={"text": "Signalement **levé**"},
    )
    assert r.status_code == 200
    action = r.json()
    assert action["type"] == "commentCard"
    assert action["idMemberCreator"] == world.me_id
    assert action["data"]["text"] == "Signalement **levé**"
    assert action["data"]["card"]["id"] == card["id"]
    assert action["date"] == "2026-11-30T09:00:00.000Z"
    assert world.card(card["id"])["dateLastActivity"] == action["date"]  # Trello bumps it
    listed = s.get(f"{sb.trello_api_base}/cards/{card['id']}/actions").json()  # commentCard
    assert listed[0] == action
    since = s.get(
        f"{sb.trello_api_base}/cards/{card['id']}/actions",
        params={"filter": "commentCard", "since": "2026-11-30T08:30:00Z"},
    ).json()
    assert [a["id"] for a in since] == [action["id"]]
    assert sb.count(f"/1/cards/{card['id']}/actions/comments", method="POST") == 1


def test_a_comment_needs_a_text_and_a_card(sandbox: Any) -> None:
    sb, s = sandbox
    card = sb.world.find_card("Seine-et-Marne")
    base = sb.trello_api_base
    assert s.post(f"{base}/cards/{card['id']}/actions/comments").status_code == 400
    too_long = {"text": "x" * 16385}
    assert s.post(f"{base}/cards/{card['id']}/actions/comments", json=too_long).status_code == 400
    assert (
        s.post(f"{base}/cards/{'0' * 24}/actions/comments", json={"text": "x"}).status_code == 404
    )


def test_a_read_only_token_gets_trellos_401_on_writes_and_reads_on(sandbox: Any) -> None:
    sb, s = sandbox
    sb.read_only = True
    card = sb.world.find_card("Seine-et-Marne")
    comments = sb.world.comment_counts[card["id"]]
    r = s.post(f"{sb.trello_api_base}/cards/{card['id']}/actions/comments", json={"text": "x"})
    assert (r.status_code, r.text) == (401, "unauthorized permission requested")
    assert sb.world.comment_counts[card["id"]] == comments
    assert s.get(f"{sb.trello_api_base}/boards/{CONSORTIUM}").status_code == 200
    token = s.get(f"{sb.trello_api_base}/tokens/{sb.token}", params={"fields": "permissions"})
    assert {p["write"] for p in token.json()["permissions"]} == {False}
    sb.read_only = False
    token = s.get(f"{sb.trello_api_base}/tokens/{sb.token}").json()
    assert token["idMember"] == sb.world.me_id
    assert {p["write"] for p in token["permissions"]} == {True}
    assert s.get(f"{sb.trello_api_base}/tokens/{'x' * 64}").status_code == 401


class _Receiver:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                outer.bodies.append(
                    json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/trello"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_comment_is_delivered_to_the_boards_webhook(sandbox: Any) -> None:
    sb, s = sandbox
    receiver = _Receiver()
    try:
        board_id = sb.world.board(CONSORTIUM)["id"]
        hook = s.post(
            f"{sb.trello_api_base}/webhooks",
            json={"callbackURL": receiver.url, "idModel": board_id},
        )
        assert hook.status_code == 200
        card = sb.world.find_card("Seine-et-Marne")
        posted = s.post(
            f"{sb.trello_api_base}/cards/{card['id']}/actions/comments", json={"text": "Bonjour"}
        ).json()
        assert sb.wait_deliveries(5)
        assert [body["action"] for body in receiver.bodies] == [posted]
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
